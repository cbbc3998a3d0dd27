"""Solvers against a high-accuracy reference, DPP reuse and repeatability."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from optimizer.core.bounds import base_bounds
from optimizer.core.engine import RunOptions, solve
from optimizer.core.model import build_problem_data
from optimizer.core.problem import compiled_model, parameter_values, solver_options
from optimizer.core.scenarios import resolve_settings
from optimizer.core.synthetic import synthetic_snapshot
from tests.optimizer.core.builders import build, loss_only_portfolio, two_security_ira


def _relaxation(snap, solver: str, options: dict[str, float]) -> tuple[float, object]:
    pd = build_problem_data(snap, resolve_settings(snap))
    model = compiled_model(pd, solver)
    xu, bu = base_bounds(pd)
    sol = model.solve(parameter_values(pd, xu, bu), options)
    return sol.objective, sol


@pytest.mark.parametrize("seed", [0, 1])
def test_clarabel_and_scs_match_high_accuracy_reference(seed: int) -> None:
    snap = synthetic_snapshot(n_stocks=20, n_lots=60, seed=seed, gain_cap="15000", bps="5")
    ref, _ = _relaxation(
        snap,
        "CLARABEL",
        {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "max_iter": 500},
    )
    clarabel, _ = _relaxation(snap, "CLARABEL", solver_options("CLARABEL"))
    scs, _ = _relaxation(snap, "SCS", {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 500000})
    assert abs(ref) > 1e-5
    assert abs(clarabel - ref) <= 1e-4 * abs(ref)
    assert abs(scs - ref) <= 1e-4 * abs(ref)


def test_reference_by_a_different_method() -> None:
    """The two-security IRA relaxation solved by scipy (SLSQP) agrees with Clarabel."""
    d = two_security_ira()
    d["costs"] = {"bps": "10"}
    d["accounts"][0]["cash"] = "3000"
    snap = build(d)
    obj, _ = _relaxation(snap, "CLARABEL", solver_options("CLARABEL"))
    pd = build_problem_data(snap, resolve_settings(snap))
    lam = pd.settings.risk_aversion
    k = 10 / 1e4
    u = pd.lot_u[0]

    def f(z: np.ndarray) -> float:  # z = (sell AAA lot, buy AAA, buy BBB) in weights
        w = pd.A @ (pd.h0 + np.array([z[1] - z[0], z[2]]))
        dev = w - pd.t_sec
        return float(lam * dev @ pd.sigma @ dev + k * z.sum())

    cash = {"type": "ineq", "fun": lambda z: pd.cash0[0] + (1 - k) * z[0] - (1 + k) * (z[1] + z[2])}
    res = minimize(
        f,
        np.zeros(3),
        bounds=[(0, u), (0, 1), (0, 1)],
        constraints=[cash],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 500},
    )
    assert res.success
    assert abs(res.fun - obj) <= 1e-4 * abs(res.fun)


def test_lp_case_matches_highs() -> None:
    """With lambda = 0 the problem is a linear program: HiGHS (simplex/IPM) is the reference."""
    snap = build(loss_only_portfolio(), objective={"risk_aversion": "0"}, mode="harvest")
    ref, _ = _relaxation(snap, "HIGHS", {})
    obj, _ = _relaxation(snap, "CLARABEL", solver_options("CLARABEL"))
    assert ref < 0  # harvesting losses up to the ordinary-income offset is worth something
    assert abs(obj - ref) <= 1e-4 * abs(ref)


def test_compiled_problem_is_reused_on_warm_resolve() -> None:
    snap = synthetic_snapshot(n_stocks=30, n_lots=150, seed=7)
    pd = build_problem_data(snap, resolve_settings(snap))
    model = compiled_model(pd, "CLARABEL")
    assert model.is_dpp()
    solve(snap, options=RunOptions(explain=False))
    first_solves = model.solves
    assert first_solves >= 2  # relaxation + direction-fixed solve, same compiled problem
    # new prices (same structure): the same cvxpy problem object answers, without recompiling
    d = snap.securities[0]
    moved = snap.__class__(
        **{
            **snap.__dict__,
            "securities": (
                d.__class__(**{**d.__dict__, "price": d.price * 2}),
                *snap.securities[1:],
            ),
        }
    )
    pd2 = build_problem_data(moved, resolve_settings(moved))
    assert compiled_model(pd2, "CLARABEL") is model
    problem_before = model.problem
    param_prog = model.problem._cache.param_prog
    solve(moved, options=RunOptions(explain=False))
    assert model.problem is problem_before
    assert model.problem._cache.param_prog is param_prog
    assert model.solves > first_solves


def test_same_input_gives_byte_identical_json() -> None:
    snap = build(loss_only_portfolio(), forecast_years=2)
    a = solve(snap).to_json()
    b = solve(build(loss_only_portfolio(), forecast_years=2)).to_json()
    assert a == b
    assert '"solve_time' not in a


def test_scs_solves_the_pipeline() -> None:
    res = solve(build(two_security_ira()), solver="SCS")
    assert [(t.symbol, t.shares) for t in res.trades] == [("BBB", 200)]
    assert res.solver.name == "SCS"
