"""The performance paths give the answers of the plain ones.

- the compiled solver data applied with numpy equals cvxpy's ``get_problem_data``, and the
  solution (primal, duals, objective) equals ``problem.solve``;
- a result does not depend on what the process solved before (no solver state is reused);
- the vectorized / incremental helpers of post-processing make the decisions of the plain
  sequential versions;
- the direction-fixed solve is skipped only when the relaxed optimum is optimal for it;
- binding-constraint costs: dual estimates by default (an upper bound, said so), re-solves on
  demand.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import numpy as np
import pytest

import optimizer.core.engine as engine
from optimizer.core.bounds import base_bounds
from optimizer.core.direction import decide_directions
from optimizer.core.engine import RunOptions, solve
from optimizer.core.errors import OptimizerError
from optimizer.core.model import build_problem_data, incidence
from optimizer.core.postprocess import (
    Discrete,
    Evaluator,
    _sigma_col,
    _unit,
    improve,
    round_solution,
)
from optimizer.core.problem import (
    CompiledModel,
    clear_cache,
    compiled_model,
    parameter_values,
    solver_options,
)
from optimizer.core.scenarios import resolve_settings
from optimizer.core.synthetic import synthetic_snapshot
from tests.optimizer.core.builders import build, loss_only_portfolio, two_security_ira


def _snapshots() -> list:
    return [
        synthetic_snapshot(n_stocks=30, n_lots=150, seed=1, gain_cap="20000", ticket_fee="4.95"),
        synthetic_snapshot(
            n_stocks=12, n_lots=40, seed=4, accounts=("taxable", "deferred"), bps="5"
        ),
        synthetic_snapshot(n_stocks=10, n_lots=30, n_funds=2, mode="transition", seed=3),
        build(loss_only_portfolio()),
    ]


@pytest.mark.parametrize("solver", ["CLARABEL", "SCS"])
@pytest.mark.parametrize("case", range(4))
def test_compiled_data_and_solution_equal_cvxpy(solver: str, case: int) -> None:
    snap = _snapshots()[case]
    pd = build_problem_data(snap, resolve_settings(snap))
    model = CompiledModel(pd, solver)
    xu, bu = base_bounds(pd)
    values = parameter_values(pd, xu, bu)
    opts = solver_options(solver)
    fast = model.solve(values, opts)
    assert model.compiled is not None  # the fast path is in use
    data, offset = model.compiled.problem_data(values)
    model.assign(values)
    ref, _, inverse = model.problem.get_problem_data(solver, enforce_dpp=True)
    for key in ("A", "P"):
        assert np.array_equal(data[key].indptr, ref[key].indptr)
        assert np.array_equal(data[key].indices, ref[key].indices)
        assert np.array_equal(data[key].data, ref[key].data)
    assert np.array_equal(data["c"], ref["c"])
    assert np.array_equal(data["b"], ref["b"])
    assert offset == pytest.approx(inverse[-1]["offset"], abs=1e-15)
    plain = model._solve_cvxpy(values, opts)
    assert fast.status == plain.status
    assert np.array_equal(fast.x, plain.x)
    assert np.array_equal(fast.b, plain.b)
    assert fast.iterations == plain.iterations
    assert fast.objective == pytest.approx(plain.objective, rel=1e-12, abs=1e-15)
    assert sorted(fast.duals) == sorted(plain.duals)
    for name, dual in plain.duals.items():
        assert np.array_equal(fast.duals[name], dual), name


def test_new_parameter_values_reuse_the_compiled_data() -> None:
    snap = _snapshots()[0]
    pd = build_problem_data(snap, resolve_settings(snap))
    model = CompiledModel(pd, "CLARABEL")
    xu, bu = base_bounds(pd)
    opts = solver_options("CLARABEL")
    model.solve(parameter_values(pd, xu, bu), opts)
    compiled = model.compiled
    half = model.solve(parameter_values(pd, xu * 0.5, bu), opts)
    assert model.compiled is compiled
    assert np.all(half.x <= xu * 0.5 + 1e-9)
    plain = model._solve_cvxpy(parameter_values(pd, xu * 0.5, bu), opts)
    assert np.array_equal(half.x, plain.x)


def _new_model(solver: str):  # type: ignore[no-untyped-def]
    """A new compiled model of the first snapshot, its base bounds, the solver's default options
    and the parameter values."""
    snap = _snapshots()[0]
    pd = build_problem_data(snap, resolve_settings(snap))
    xu, bu = base_bounds(pd)
    return (
        pd,
        CompiledModel(pd, solver),
        xu,
        bu,
        solver_options(solver),
        parameter_values(pd, xu, bu),
    )


def test_a_runs_solve_function_gives_the_models_solutions() -> None:
    """The solve function of a run (parameters fixed once, only the bounds per solve) gives,
    bit for bit, what solving the whole parameter set gives, for every bound it is handed, and
    rejects bad bounds by name."""
    pd, model, xu, bu, opts, vals = _new_model("CLARABEL")
    run_solve, compile_time = model.solver_for(vals, opts)
    assert compile_time > 0 and model.compiled is not None  # compiled on first use
    assert model.solver_for(vals, opts)[1] == 0.0
    no_buys = np.zeros_like(bu)
    half = xu * 0.5
    for bounds in ((xu, bu), (xu, no_buys), (half, bu), (xu, bu)):
        got = run_solve(*bounds)
        want = model.solve({**vals, "xu": bounds[0], "bu": bounds[1]}, opts)
        assert np.array_equal(got.x, want.x) and np.array_equal(got.b, want.b)
        assert got.objective == want.objective and got.iterations == want.iterations
        assert sorted(got.duals) == sorted(want.duals)
        for name in want.duals:
            assert np.array_equal(got.duals[name], want.duals[name]), name
    assert float(run_solve(xu, no_buys).b.max()) < 1e-7
    assert model.solves == 9  # the run's solves are counted on the model too
    with pytest.raises(ValueError, match="parameter bu must be nonnegative"):
        run_solve(xu, -np.ones_like(bu))
    with pytest.raises(ValueError, match="parameter xu must be nonnegative"):
        run_solve(-np.ones_like(xu), bu)
    # a rejected bound leaves nothing behind: the next solve is the first one again
    again = run_solve(xu, bu)
    assert np.array_equal(again.x, model.solve(vals, opts).x)
    with pytest.raises(ValueError, match="parameter xu: 3 values"):
        run_solve(np.ones(3), bu)
    # new parameter values (a new scenario): a new solve function, which cvxpy agrees with
    pd2 = build_problem_data(pd.snapshot, resolve_settings(pd.snapshot, "aggressive"))
    vals2 = parameter_values(pd2, xu, bu)
    other, _ = model.solver_for(vals2, opts)
    fresh = CompiledModel(pd2, "CLARABEL")._solve_cvxpy(vals2, opts)
    got = other(xu, bu)
    assert got.objective == pytest.approx(fresh.objective, rel=1e-6)
    assert np.allclose(got.x, fresh.x, atol=1e-7)
    assert set(got.duals) == set(fresh.duals)
    for name in fresh.duals:
        assert np.allclose(got.duals[name], fresh.duals[name], atol=1e-6)


def test_scs_runs_solve_through_the_model() -> None:
    _pd, model, xu, bu, opts, vals = _new_model("SCS")
    run_solve, _ = model.solver_for(vals, opts)
    got = run_solve(xu, bu)
    want = model.solve(vals, opts)
    assert np.array_equal(got.x, want.x) and got.objective == want.objective
    assert model.solves == 2


def test_infeasible_continuous_problem_is_reported() -> None:
    snap = _snapshots()[1]
    pd = build_problem_data(snap, resolve_settings(snap))
    model = CompiledModel(pd, "CLARABEL")
    xu, bu = base_bounds(pd)
    values = parameter_values(pd, xu, bu)
    values["cf"] = values["cf"] - 2.0  # every account must free twice the household value
    assert model.solve(values, solver_options("CLARABEL")).status == "infeasible"


def _reprice(snap, factor: str):  # type: ignore[no-untyped-def]
    f = Decimal(factor)
    secs = tuple(
        dataclasses.replace(s, price=(s.price * (f if i % 2 else 2 - f)).quantize(Decimal("0.01")))
        for i, s in enumerate(snap.securities)
    )
    return dataclasses.replace(snap, securities=secs)


def test_result_does_not_depend_on_what_was_solved_before() -> None:
    base = _snapshots()[0]
    snap = _reprice(base, "1.007")
    clear_cache()
    fresh = solve(snap).to_json()
    for factor in ("1.001", "1.003", "0.998"):
        solve(_reprice(base, factor))
    assert solve(snap).to_json() == fresh
    clear_cache()
    assert solve(snap).to_json() == fresh


def test_incidence_matrix_equals_the_coo_construction() -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    for n_rows, n_cols in [(5, 20), (30, 150), (1, 0), (7, 2)]:
        rows = rng.integers(0, n_rows, n_cols)
        a = incidence(rows, n_rows)
        b = sp.csr_matrix((np.ones(n_cols), (rows, np.arange(n_cols))), shape=(n_rows, n_cols))
        assert np.array_equal(a.indptr, b.indptr)
        assert np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)


def test_bucket_sums_equal_the_sparse_products() -> None:
    snap = _snapshots()[1]
    pd = build_problem_data(snap, resolve_settings(snap))
    ev = Evaluator(pd)
    rng = np.random.default_rng(1)
    x, h = rng.random(pd.L), rng.random(pd.P)
    assert np.array_equal(ev.to_pairs(x), pd.S @ x)
    assert np.array_equal(ev.to_secs(h), pd.A @ h)
    assert np.array_equal(ev.to_devs(h), (pd.D @ pd.A) @ h)
    assert np.array_equal(ev.to_classes(h), (pd.Mc @ pd.A) @ h)


# ---------------------------------------------------------------- post-processing references


def _round_reference(ev: Evaluator, x: np.ndarray, b: np.ndarray) -> Discrete:
    """The lot-by-lot rounding loop (the documented rule, one lot at a time)."""
    pd = ev.pd
    s_cont = x * pd.V / ev.lp
    sell = np.zeros(pd.L)
    for j in range(pd.L):
        s, q, unit = s_cont[j], pd.lot_q[j], ev.unit_lot[j]
        if s <= 1e-9 * max(q, 1.0):
            continue
        if s >= q * (1 - 1e-6) - 1e-9:
            sell[j] = q
            continue
        if pd.lot_g[j] < 0 and pd.lot_taxable[j]:
            r = math.ceil(s / unit - 1e-6) * unit
        else:
            r = math.floor(s / unit + 1e-6) * unit
        sell[j] = q if r >= q - 1e-12 else r
    buy_cont = b * pd.V / ev.pp
    buy = np.floor(buy_cont / ev.unit_pair + 1e-6) * ev.unit_pair
    buy[buy_cont <= 0] = 0.0
    return Discrete(sell, np.maximum(buy, 0.0))


def _improve_reference(
    ev: Evaluator, dz: Discrete, xu: np.ndarray, bu: np.ndarray, passes: int = 2
) -> Discrete:
    """The plain sequential local search: one move at a time, the full check for each."""
    pd = ev.pd
    cur = dz.copy()
    x, b = ev.weights(cur)
    d = ev.deviation(x, b)
    sd = ev.sigma_d(d)
    R, R_S = float(ev.gN @ x), float(ev.gS @ x)
    for _ in range(passes):
        changed = False
        moves = [("buy", int(k)) for k in np.nonzero((cur.buy > 0) & (bu > 0))[0]]
        moves += [
            ("sell", int(j))
            for j in np.nonzero((cur.sell > 0) & (xu > 0) & (cur.sell < pd.lot_q - 1e-12))[0]
        ]
        for side, idx in moves:
            if side == "buy":
                unit = float(ev.unit_pair[idx])
                e = int(ev.dev_of_pair[idx])
                rate = ev.k_pair[idx] + ev.drag_pair[idx]
                best = -(2.0 * sd[e] + rate) / (2.0 * max(ev.sigma_diag[e], 1e-18))
                acc = pd.pair_acc[idx]
                spare = float(ev.cash_after(cur)[acc] - pd.floor[acc])
                best = min(best, spare / (1.0 + ev.k_pair[idx]))
                unit *= max(1.0, math.floor(best * pd.V / ev.pp[idx] / unit))
                delta = unit * ev.pp[idx] / pd.V
                dR = dS = 0.0
                lin = rate * delta
            else:
                unit = min(float(ev.unit_lot[idx]), float(pd.lot_q[idx] - cur.sell[idx]))
                w = unit * ev.lp[idx] / pd.V
                delta = -w
                e = int(ev.dev_of_pair[ev.lot_pair[idx]])
                dR, dS = float(ev.gN[idx]) * w, float(ev.gS[idx]) * w
                lin = ev.k_lot[idx] * w - ev.drag_pair[ev.lot_pair[idx]] * w
            d_te = 2.0 * delta * sd[e] + delta * delta * ev.sigma_diag[e]
            if d_te + ev.tax(R + dR, R_S + dS) - ev.tax(R, R_S) + lin >= -1e-15:
                continue
            cand = cur.copy()
            if side == "buy":
                cand.buy[idx] += unit
            else:
                cand.sell[idx] += unit
            if ev.violations(cand):
                continue
            cur = cand
            d = d + delta * _unit(len(d), e)
            sd = sd + delta * _sigma_col(ev, e)
            R, R_S = R + dR, R_S + dS
            changed = True
        if not changed:
            break
    return cur


def _captured_postprocess_inputs(monkeypatch: pytest.MonkeyPatch, snap, scenario: str):  # type: ignore[no-untyped-def]
    """What the runs' improvement started from: the rounded lists that broke no hard
    constraint (improved inside the round's compiled call) and the repaired ones."""
    seen: list[tuple] = []
    real_improve, real_round = engine.improve_step, engine.round_step

    def spy(ev, dz, xu, bu, passes=2, *, deviation=None):  # type: ignore[no-untyped-def]
        seen.append((ev, dz.copy(), xu.copy(), bu.copy()))
        return real_improve(ev, dz, xu, bu, passes, deviation=deviation)

    def round_spy(ev, x, b, xu, bu, **kw):  # type: ignore[no-untyped-def]
        rounded = round_solution(ev, x, b)
        if ev.feasible(rounded):
            seen.append((ev, rounded, xu.copy(), bu.copy()))
        return real_round(ev, x, b, xu, bu, **kw)

    monkeypatch.setattr(engine, "improve_step", spy)
    monkeypatch.setattr(engine, "round_step", round_spy)
    solve(snap, scenario=scenario, options=RunOptions(explain="none"))
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_improve_and_rounding_make_the_sequential_decisions(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    snap = synthetic_snapshot(
        n_stocks=15 + 3 * seed,
        n_lots=60 + 10 * seed,
        seed=500 + seed,
        gain_cap=str(4000 + 1500 * seed),
        ticket_fee=str(seed % 3),
        min_trade_value=str(50 * (seed % 3)),
        bps=str(1 + seed % 4),
        accounts=("taxable", "deferred") if seed % 2 else ("taxable",),
    )
    cases = []
    for scenario in ("moderate", "aggressive", "tax_sensitive"):
        cases += _captured_postprocess_inputs(monkeypatch, snap, scenario)
    assert cases
    for ev, dz, xu, bu in cases:
        got = improve(ev, dz, xu, bu)
        want = _improve_reference(ev, dz, xu, bu)
        assert np.array_equal(got.sell, want.sell)
        assert np.array_equal(got.buy, want.buy)
        # rounding of a perturbed continuous point, lot by lot vs vectorized
        rng = np.random.default_rng(seed)
        x = ev.weights(dz)[0] * rng.uniform(0.5, 1.5, len(dz.sell))
        b = ev.weights(dz)[1] * rng.uniform(0.5, 1.5, len(dz.buy))
        r1, r2 = round_solution(ev, x, b), _round_reference(ev, x, b)
        assert np.array_equal(r1.sell, r2.sell) and np.array_equal(r1.buy, r2.buy)


def test_improve_from_an_infeasible_start_uses_the_full_check() -> None:
    snap = _snapshots()[0]
    pd = build_problem_data(snap, resolve_settings(snap))
    ev = Evaluator(pd)
    xu, bu = base_bounds(pd)
    dz = Discrete(np.zeros(pd.L), np.zeros(pd.P))
    dz.buy[:] = np.floor(0.05 * pd.V / ev.pp)  # buys far beyond the cash: infeasible
    assert ev.violations(dz)
    got, want = improve(ev, dz, xu, bu), _improve_reference(ev, dz, xu, bu)
    assert np.array_equal(got.buy, want.buy) and np.array_equal(got.sell, want.sell)


# ---------------------------------------------------------------- fewer solves


def test_skipped_direction_fixed_solve_is_optimal_for_the_fixed_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snap = _snapshots()[0]
    st = resolve_settings(snap)
    pd = build_problem_data(snap, st)
    model = compiled_model(pd, "CLARABEL")
    xu0, bu0 = base_bounds(pd)
    opts = solver_options("CLARABEL")
    relaxed = model.solve(parameter_values(pd, xu0, bu0), opts)
    dirs = decide_directions(pd, relaxed.x, relaxed.b, hold_below=max(1e-6, 0.5 * pd.min_trade_w))
    xu, bu = dirs.bounds(pd, xu0, bu0)
    clipped = relaxed.x[xu == 0].sum() + relaxed.b[bu == 0].sum()
    assert clipped <= engine.SKIP_FIXED_TOL  # this case skips the fixed solve
    fixed = model.solve(parameter_values(pd, xu, bu), opts)
    assert fixed.objective == pytest.approx(relaxed.objective, rel=1e-6)
    # and the run indeed saves that solve
    skipped = solve(snap, options=RunOptions(explain="none")).solver.solves
    monkeypatch.setattr(engine, "SKIP_FIXED_TOL", -1.0)
    assert solve(snap, options=RunOptions(explain="none")).solver.solves == skipped + 1


def test_no_wasted_final_resolve_in_post_processing(monkeypatch: pytest.MonkeyPatch) -> None:
    snap = synthetic_snapshot(
        n_stocks=60, n_lots=300, seed=2, gain_cap="25000", ticket_fee="1", min_trade_value="100"
    )
    rounds: list[int] = []
    real = engine.round_step

    def spy(ev, x, b, xu, bu, **kw):  # type: ignore[no-untyped-def]
        rounds.append(1)
        return real(ev, x, b, xu, bu, **kw)

    monkeypatch.setattr(engine, "round_step", spy)
    res = solve(snap, scenario="aggressive", options=RunOptions(explain="none"))
    # every continuous solve after the direction-fixed one is rounded
    before_post = res.solver.solves - len(rounds) + 1
    assert before_post in (1, 2)


# ---------------------------------------------------------------- explain modes


def test_explain_modes() -> None:
    snap = build(loss_only_portfolio())
    duals = solve(snap)
    resolve = solve(snap, options=RunOptions(explain="resolve"))
    none = solve(snap, options=RunOptions(explain="none"))
    assert duals.trades == resolve.trades == none.trades
    assert resolve.solver.solves > duals.solver.solves == none.solver.solves
    assert duals.binding_constraints
    for b in duals.binding_constraints:
        est = b["estimated_effect"]
        assert est["method"] == "dual"
        assert est["text"].startswith("Estimated from the dual")
        assert "at most" in est["text"]
        assert Decimal(est["objective_decrease_at_most"]) >= 0
        assert "effect_if_relaxed" not in b
    measured = [b for b in resolve.binding_constraints if "effect_if_relaxed" in b]
    assert 1 <= len(measured) <= 3
    for b in measured:
        assert b["effect_if_relaxed"]["method"] == "resolve"
        assert "re-solving" in b["effect_if_relaxed"]["text"]
    for b in none.binding_constraints:
        assert "estimated_effect" not in b and "effect_if_relaxed" not in b
    assert RunOptions(explain=True).explain == "duals"
    assert RunOptions(explain=False).explain == "none"
    with pytest.raises(OptimizerError):
        RunOptions(explain="sometimes")


def _budget_case(cap: str):  # type: ignore[no-untyped-def]
    """Taxable AAA lot with a $40/share gain, risk wants it sold: the gain budget binds."""
    d = two_security_ira()
    d["accounts"][0]["tax_treatment"] = "taxable"
    d["accounts"][0]["cash"] = "0"
    d["lots"][0]["cost_basis"] = "1000"
    d["lots"].append(
        {
            "lot_id": "L2",
            "account": "IRA1",
            "symbol": "BBB",
            "quantity": "1",
            "cost_basis": "25",
            "acquired": "2021-01-04",
        }
    )
    d["budgets"] = {"max_net_realized_gain": cap}
    d["objective"] = {"risk_aversion": "1000"}
    return build(d)


def test_dual_estimate_is_the_shadow_price_times_the_step_and_bounds_the_gain() -> None:
    res = solve(_budget_case("400"))
    fact = next(b for b in res.binding_constraints if b["constraint"] == "gain_budget_net")
    est = fact["estimated_effect"]
    assert est["relax_by"] == "1000.00"
    assert Decimal(est["objective_decrease_at_most"]) == (
        Decimal(str(fact["shadow_price"] * 1000.0)).quantize(Decimal("0.01"))
    )
    assert "$1,000.00 more net gain budget" in est["text"]

    def continuous(cap: str) -> tuple[float, float]:
        snap = _budget_case(cap)
        pd = build_problem_data(snap, resolve_settings(snap))
        xu, bu = base_bounds(pd)
        sol = compiled_model(pd, "CLARABEL").solve(
            parameter_values(pd, xu, bu), solver_options("CLARABEL")
        )
        return sol.objective * pd.V, float(sol.duals["gain_net"].sum())

    p0, y0 = continuous("400")
    p1, _ = continuous("1400")
    assert y0 > 0
    # convexity of the optimal value in the limit: the first-order estimate bounds the saving
    assert 0 <= p0 - p1 <= y0 * 1000.0 * (1 + 1e-6) + 1e-6
