"""The compiled post-processing loops (optimizer.core.kernels) make the decisions of the numpy
and Python formulations they replaced, to the bit: the hard-constraint check against the numpy
check, the tickets, deviation and objective against their numpy forms, the order-dropping loop
against the plain Python loop, and numpy's summation order."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import numpy as np
import pytest

import optimizer.core.engine as engine
from optimizer.core import kernels
from optimizer.core.bounds import base_bounds
from optimizer.core.engine import RunOptions, solve
from optimizer.core.model import BIG, build_problem_data
from optimizer.core.postprocess import (
    _EPS,
    Discrete,
    Evaluator,
    Order,
    Violation,
    _sigma_col,
    drop_judged,
    drop_orders,
    improve_step,
    round_checked,
    round_solution,
    round_step,
)
from optimizer.core.scenarios import resolve_settings
from optimizer.core.snapshot import load_snapshot
from optimizer.core.synthetic import synthetic_snapshot

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "docs" / "examples").glob("*.json"))


def _cases() -> list:
    snaps = [load_snapshot(p) for p in EXAMPLES]
    snaps += [
        synthetic_snapshot(n_stocks=30, n_lots=150, seed=1, gain_cap="20000", ticket_fee="4.95"),
        synthetic_snapshot(
            n_stocks=12, n_lots=40, seed=4, accounts=("taxable", "deferred"), bps="5"
        ),
        synthetic_snapshot(n_stocks=10, n_lots=30, n_funds=2, mode="transition", seed=3),
    ]
    return snaps


def _violations_reference(ev: Evaluator, dz: Discrete) -> list[Violation]:
    """The numpy check the compiled one replaced (kept here as its specification)."""
    pd = ev.pd
    out: list[Violation] = []
    x, b = ev.weights(dz)
    tickets = ev.tickets_per_account(dz)
    cash = ev._cash(x, b, tickets)
    margin = (0.005 * tickets * ev.has_bps - 1e-6) / pd.V
    for a in np.nonzero(cash < pd.floor + margin)[0]:
        out.append(Violation("cash", int(a), float(pd.floor[a] + margin[a] - cash[a])))
    R = float(ev.gN @ x)
    if pd.cap_net_w + _EPS * 0.1 < R:
        out.append(Violation("gain_net", 0, R - pd.cap_net_w + 1e-12))
    R_S = float(ev.gS @ x)
    if pd.cap_st_w + _EPS * 0.1 < R_S:
        out.append(Violation("gain_st", 0, R_S - pd.cap_st_w + 1e-12))
    hold = pd.h0 + (b - ev.to_pairs(x))
    if len(ev.rows):
        cw = ev.to_classes(hold)
        for c in ev.rows:
            if cw[c] > pd.class_hi_w[c]:
                out.append(Violation("class_hi", int(c), float(cw[c] - pd.class_hi_w[c])))
            if cw[c] < pd.class_lo_w[c]:
                out.append(Violation("class_lo", int(c), float(pd.class_lo_w[c] - cw[c])))
    w = ev.to_secs(hold)
    for i in np.nonzero(w > pd.mw_sec_w)[0]:
        out.append(Violation("max_weight", int(i), float(w[i] - pd.mw_sec_w[i])))
    if pd.has_pair_max:
        for k in np.nonzero(hold > pd.mw_pair)[0]:
            out.append(Violation("pair_max", int(k), float(hold[k] - pd.mw_pair[k])))
    if ev.has_cash_class:
        total = float(cash.sum())
        if total < pd.cash_lo_w:
            out.append(Violation("cash_class_lo", 0, pd.cash_lo_w - total))
        if total > pd.cash_hi_w:
            out.append(Violation("cash_class_hi", 0, total - pd.cash_hi_w))
    return out


def _random_lists(ev: Evaluator, rng: np.random.Generator, n: int) -> list[Discrete]:
    pd = ev.pd
    out = [Discrete(np.zeros(pd.L), np.zeros(pd.P))]
    for _ in range(n):
        sell = np.where(rng.random(pd.L) < 0.4, np.floor(pd.lot_q * rng.random(pd.L)), 0.0)
        budget = rng.uniform(0.0, 0.3) * pd.V / max(pd.P, 1)
        buy = np.where(rng.random(pd.P) < 0.4, np.floor(budget * rng.random(pd.P) / ev.pp), 0.0)
        if pd.P and rng.random() < 0.3:  # one concentrated purchase
            k = int(rng.integers(pd.P))
            buy[k] = np.floor(rng.uniform(0.1, 0.5) * pd.V / ev.pp[k])
        out.append(Discrete(sell, buy))
    return out


def test_compiled_check_equals_the_numpy_check() -> None:
    rng = np.random.default_rng(7)
    kinds: set[str] = set()
    n_lists = 0
    for snap in _cases():
        for scenario in ("moderate", "aggressive"):
            pd = build_problem_data(snap, resolve_settings(snap, scenario))
            ev = Evaluator(pd)
            for dz in _random_lists(ev, rng, 40):
                got, want = ev.violations(dz), _violations_reference(ev, dz)
                assert got == want
                assert ev.feasible(dz) is (not want)
                kinds |= {v.kind for v in want}
                n_lists += 1
    assert n_lists > 400
    # the random lists reach the constraints of every family these books have
    assert {"cash", "gain_net"} <= kinds
    assert kinds & {"class_hi", "class_lo"}


def test_compiled_check_sees_the_cash_band_and_the_maximum_weights() -> None:
    snap = synthetic_snapshot(n_stocks=12, n_lots=40, seed=4, accounts=("taxable", "deferred"))
    pd = build_problem_data(snap, resolve_settings(snap))
    # a cash band and maximum weights per security and per account on the same arrays (the compiled check reads
    # whatever the problem data says)
    pd = dataclasses.replace(
        pd,
        cash_lo=0.0,
        cash_hi=0.5,
        cash_lo_w=0.02,
        cash_hi_w=0.04,
        has_pair_max=True,
        mw_pair=np.full(pd.P, 0.03),
        mw_sec_w=np.full(pd.n, 0.06),
    )
    ev = Evaluator(pd)
    rng = np.random.default_rng(3)
    kinds: set[str] = set()
    for dz in _random_lists(ev, rng, 60):
        want = _violations_reference(ev, dz)
        assert ev.violations(dz) == want
        kinds |= {v.kind for v in want}
    assert {"pair_max", "max_weight", "cash_class_lo", "cash_class_hi"} <= kinds
    assert pd.cash_lo > -BIG


def _orders_reference(ev: Evaluator, dz: Discrete) -> list[Order]:
    """The numpy tickets the compiled ones replaced: sells first, in pair order."""
    out: list[Order] = []
    sold = np.nonzero(dz.sell > 0)[0]
    if len(sold):
        pairs = ev.lot_pair[sold]
        shares = np.bincount(pairs, weights=dz.sell[sold], minlength=ev.pd.P)
        order = np.argsort(pairs, kind="stable")
        keys, starts = np.unique(pairs[order], return_index=True)
        lots = sold[order].tolist()
        ends = [*starts[1:].tolist(), len(lots)]
        values = (shares[keys] * ev.pp[keys]).tolist()
        for k, a, e, value in zip(keys.tolist(), starts.tolist(), ends, values, strict=True):
            out.append(Order("sell", k, tuple(lots[a:e]), value))
    bought = np.nonzero(dz.buy > 0)[0]
    values = (dz.buy[bought] * ev.pp[bought]).tolist()
    for kb, value in zip(bought.tolist(), values, strict=True):
        out.append(Order("buy", kb, (), value))
    return out


def _objective_reference(ev: Evaluator, dz: Discrete) -> float:
    """The numpy objective the compiled terms replaced."""
    pd = ev.pd
    x, b = ev.weights(dz)
    d = ev.deviation(x, b)
    tickets = float(ev.tickets_per_account(dz).sum())
    lin = ev.k_lot @ x + ev.k_pair @ b + pd.ticket_fee_w * tickets
    drag = ev.drag_pair @ (b - ev.to_pairs(x))
    return float(ev.te2(d) + ev.tax(float(ev.gN @ x), float(ev.gS @ x)) + lin + drag)


def test_compiled_tickets_deviation_and_objective_equal_their_numpy_forms() -> None:
    rng = np.random.default_rng(11)
    n_orders = 0
    for snap in _cases():
        pd = build_problem_data(snap, resolve_settings(snap, "moderate"))
        ev = Evaluator(pd)
        for dz in _random_lists(ev, rng, 25):
            want = _orders_reference(ev, dz)
            assert ev.orders(dz) == want
            assert ev.smallest_order(dz) == min((o.value for o in want), default=np.inf)
            n_orders += len(want)
            assert np.array_equal(ev.deviation_of(dz), ev.deviation(*ev.weights(dz)))
            # the compiled terms add up to the numpy objective's bits
            assert ev.objective(dz) == _objective_reference(ev, dz)
    assert n_orders > 1000
    # and a trade list that sells several lots of one pair makes one ticket with all of them
    pd = build_problem_data(_cases()[-3], resolve_settings(_cases()[-3]))
    ev = Evaluator(pd)
    sell = np.zeros(pd.L)
    pair = int(np.bincount(pd.lot_pair).argmax())
    lots = np.nonzero(pd.lot_pair == pair)[0]
    assert len(lots) > 1
    sell[lots] = 1.0
    (only,) = ev.orders(Discrete(sell, np.zeros(pd.P)))
    assert only.side == "sell" and only.pair == pair and only.lots == tuple(lots.tolist())
    assert only.value == len(lots) * ev.pp[pair]


def test_one_call_steps_equal_the_separate_calls() -> None:
    """The round's steps as one compiled call each give what the separate calls give."""
    rng = np.random.default_rng(5)
    judged = feasible_rounded = rounds_compared = 0
    for snap in _cases():
        pd = build_problem_data(snap, resolve_settings(snap, "moderate"))
        ev = Evaluator(pd)
        xu, bu = base_bounds(pd)
        for dz in _random_lists(ev, rng, 12):
            x, b = ev.weights(dz)
            x = x * rng.uniform(0.8, 1.2, len(x))
            b = b * rng.uniform(0.8, 1.2, len(b))
            rounded, ok, d = round_checked(ev, x, b)
            plain = round_solution(ev, x, b)
            assert np.array_equal(rounded.sell, plain.sell)
            assert np.array_equal(rounded.buy, plain.buy)
            assert ok == ev.feasible(plain)
            if ok:
                feasible_rounded += 1
                assert np.array_equal(d, ev.deviation_of(plain))
            for min_value in (50.0, 2000.0):
                # the whole round in one call: the three calls' results, or the rounded list
                # (to be repaired) when it breaks a hard constraint
                got, got_step = round_step(ev, x, b, xu, bu, min_trade_value=min_value)
                if not ok:
                    assert got_step is None
                    assert np.array_equal(got.sell, plain.sell)
                    assert np.array_equal(got.buy, plain.buy)
                    continue
                want, want_d = improve_step(ev, rounded, xu, bu, deviation=d)
                want_step = drop_judged(ev, want, min_trade_value=min_value, deviation=want_d)
                assert got_step is not None
                assert np.array_equal(got.sell, want.sell)
                assert np.array_equal(got.buy, want.buy)
                assert np.array_equal(got_step.dz.sell, want_step.dz.sell)
                assert np.array_equal(got_step.dz.buy, want_step.dz.buy)
                assert got_step.removed == want_step.removed
                assert got_step.stuck == want_step.stuck
                assert (got_step.feasible, got_step.smallest, got_step.objective) == (
                    want_step.feasible,
                    want_step.smallest,
                    want_step.objective,
                )
                rounds_compared += 1
            better, d2 = improve_step(ev, dz, xu, bu)
            again, _ = improve_step(ev, dz, xu, bu, deviation=ev.deviation_of(dz))
            assert np.array_equal(better.sell, again.sell)
            assert np.array_equal(better.buy, again.buy)
            assert np.array_equal(d2, ev.deviation_of(better))
            for min_value in (50.0, 2000.0):
                step = drop_judged(ev, dz, min_trade_value=min_value)
                assert step.feasible == ev.feasible(step.dz)
                assert step.smallest == ev.smallest_order(step.dz)
                assert step.objective == ev.objective(step.dz)
                judged += 1
            arrays = ev.order_arrays(dz)
            if len(arrays.sides):
                assert np.array_equal(
                    kernels.stable_order(arrays.values, arrays.sides, arrays.pairs),
                    np.lexsort((arrays.pairs, arrays.sides, arrays.values)),
                )
    assert judged > 100 and feasible_rounded > 10 and rounds_compared > 20


def test_sigma_d_is_the_covariance_product_in_a_fixed_order() -> None:
    """lambda Sigma d from the compiled loops: numpy's product to rounding, and the same bits
    for the same input (no BLAS, whose kernels differ between machines)."""
    rng = np.random.default_rng(11)
    for r, m in ((1, 1), (3, 7), (30, 30), (12, 120)):
        Gt = rng.standard_normal((r, m))
        sig2 = rng.uniform(0.0, 0.1, m)
        d = rng.standard_normal(m) * 0.01
        got = kernels.sigma_d(Gt, sig2, d)
        want = Gt.T @ (Gt @ d) + sig2 * d
        assert np.allclose(got, want, rtol=1e-12, atol=1e-15)
        assert np.array_equal(got, kernels.sigma_d(Gt.copy(), sig2.copy(), d.copy()))
        # the loops' order: row by row of the factor (each row's dot product added left to
        # right, as Python's sum does), then the diagonal part
        ref = np.zeros(m)
        for row in Gt:
            ref += row * sum(float(g) * float(v) for g, v in zip(row, d, strict=True))
        assert np.array_equal(got, ref + sig2 * d)


@pytest.mark.parametrize("n", [*range(0, 20), 127, 128, 129, 255, 256, 300, 1000, 4099])
def test_sum_is_numpys_pairwise_sum(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        a = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)
        assert kernels.np_sum(a) == float(a.sum())


def _drop_reference(
    ev: Evaluator, dz: Discrete, *, min_trade_value: float, use_fee_test: bool = True
) -> tuple[Discrete, list[Order], list[Order]]:
    """The Python loop the compiled one replaced."""
    pd = ev.pd
    cur = dz.copy()
    removed: list[Order] = []
    stuck: list[Order] = []
    orders = sorted(_orders_reference(ev, cur), key=lambda o: (o.value, o.side, o.pair))
    x, b = ev.weights(cur)
    sd = ev.sigma_d(ev.deviation(x, b))
    R, R_S = float(ev.gN @ x), float(ev.gS @ x)
    tax = ev.tax_fn()
    base_tax = tax(R, R_S)
    for o in orders:
        small = o.value < min_trade_value - 1e-9
        e = int(ev.dev_of_pair[o.pair])
        if o.side == "buy":
            delta = o.value / pd.V
            dR = dS = 0.0
            lin = ev.k_pair[o.pair] * delta + ev.drag_pair[o.pair] * delta
        else:
            idx = np.array(o.lots, dtype=np.intp)
            xo = cur.sell[idx] * ev.lp[idx] / pd.V
            delta = -float(xo.sum())
            dR, dS = float(ev.gN[idx] @ xo), float(ev.gS[idx] @ xo)
            lin = float(ev.k_lot[idx] @ xo) + ev.drag_pair[o.pair] * delta
        d_te = -2.0 * delta * sd[e] + delta * delta * ev.sigma_diag[e]
        new_tax = tax(R - dR, R_S - dS)
        benefit = -(d_te + new_tax - base_tax - lin - pd.ticket_fee_w)
        if not small and (not use_fee_test or benefit <= 1e-12):
            continue
        cand = cur.copy()
        if o.side == "sell":
            cand.sell[idx] = 0.0
        else:
            cand.buy[o.pair] = 0.0
        if _violations_reference(ev, cand):
            if small:
                stuck.append(o)
            continue
        cur = cand
        removed.append(o)
        sd = sd - delta * _sigma_col(ev, e)
        R, R_S = R - dR, R_S - dS
        base_tax = new_tax
    return cur, removed, stuck


def test_compiled_drop_makes_the_decisions_of_the_python_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # what the runs' dropping started from (inside the round's compiled call, or after repair)
    seen: list[tuple] = []
    real, real_round = engine.drop_judged, engine.round_step

    def spy(ev, dz, **kw):  # type: ignore[no-untyped-def]
        seen.append((ev, dz.copy(), kw))
        return real(ev, dz, **kw)

    def round_spy(ev, x, b, xu, bu, **kw):  # type: ignore[no-untyped-def]
        improved, step = real_round(ev, x, b, xu, bu, **kw)
        if step is not None:
            seen.append((ev, improved.copy(), kw))
        return improved, step

    monkeypatch.setattr(engine, "drop_judged", spy)
    monkeypatch.setattr(engine, "round_step", round_spy)
    for seed in range(4):
        snap = synthetic_snapshot(
            n_stocks=20 + 5 * seed,
            n_lots=80 + 20 * seed,
            seed=900 + seed,
            ticket_fee=str(2 + seed),
            min_trade_value=str(100 * (seed + 1)),
            accounts=("taxable", "deferred") if seed % 2 else ("taxable",),
        )
        for scenario in ("moderate", "tax_sensitive"):
            solve(snap, scenario=scenario, options=RunOptions(explain="none", forecast=False))
    monkeypatch.undo()
    assert len(seen) >= 8
    decided = 0
    for ev, dz, kw in seen:
        for use_fee_test in (True, False):
            for min_value in (kw["min_trade_value"], 5 * kw["min_trade_value"]):
                got = drop_orders(ev, dz, min_trade_value=min_value, use_fee_test=use_fee_test)
                want = _drop_reference(ev, dz, min_trade_value=min_value, use_fee_test=use_fee_test)
                assert np.array_equal(got[0].sell, want[0].sell)
                assert np.array_equal(got[0].buy, want[0].buy)
                assert got[1] == want[1] and got[2] == want[2]
                decided += len(want[1]) + len(want[2])
    assert decided > 0  # the cases do remove (and get stuck on) orders


def test_forecast_years_are_summaries_with_the_full_runs_figures() -> None:
    snap = dataclasses.replace(
        synthetic_snapshot(n_stocks=15, n_lots=60, seed=5, gain_cap="3000"), forecast_years=3
    )
    res = solve(snap)
    assert [r["year"] for r in res.forecast] == [1, 2, 3]
    assert res.solver.forecast_solves > 0
    # the second year, run in full by hand, gives the forecast's row
    from optimizer.core.forecast import apply_trades

    nxt = apply_trades(snap, res.trades, snap.as_of + datetime.timedelta(days=365), "Y1")
    full = solve(nxt, overrides=dict(res.settings), options=RunOptions(forecast=False))
    row = res.forecast[1]
    after = full.metrics["after"]
    assert row["tracking_error_after"] == after["tracking_error"]
    assert row["realized_net"] == after["realized"]["net"]
    assert row["tickets"] == after["tickets"]
    summary = solve(nxt, overrides=dict(res.settings), options=RunOptions(summary_only=True))
    assert summary.input_sha256 == "" and summary.binding_constraints == []
    assert summary.trades == full.trades
