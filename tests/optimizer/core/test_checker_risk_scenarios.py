"""The independent checker, the covariance estimator, scenarios and the forecast."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from optimizer.core.checker import CheckIndex, CheckPolicy, check
from optimizer.core.engine import solve, solve_scenarios
from optimizer.core.errors import InvalidSnapshot
from optimizer.core.forecast import apply_trades
from optimizer.core.metrics import tax_liability
from optimizer.core.model import build_problem_data
from optimizer.core.problem import compiled_model
from optimizer.core.risk import asset_class_covariance, estimate_covariance, ledoit_wolf
from optimizer.core.scenarios import PRESET_NAMES, resolve_settings
from optimizer.core.snapshot import is_long_term
from tests.optimizer.core.builders import build, loss_only_portfolio, two_security_ira

POLICY = CheckPolicy(no_short_term_gains=True)


def _good() -> tuple[object, list]:
    snap = build(loss_only_portfolio())
    return snap, solve(snap).trades


def test_checker_accepts_the_engine_result_and_rejects_tampering() -> None:
    snap, trades = _good()
    assert check(snap, trades, POLICY) == []
    sell = next(t for t in trades if t.side == "sell")
    buy = next(t for t in trades if t.side == "buy")
    i, j = trades.index(sell), trades.index(buy)

    def variant(k: int, t: object) -> list:
        out = list(trades)
        out[k] = t
        return out

    too_big = dataclasses.replace(
        buy,
        shares=buy.shares * 100,
        value=buy.value * 100,
        cost=(buy.value * 100 * Decimal("0.0002")).quantize(Decimal("0.01")),
    )
    assert any("cash after trading" in e for e in check(snap, variant(j, too_big), POLICY))
    frac = dataclasses.replace(
        buy, shares=buy.shares + Decimal("0.5"), value=(buy.shares + Decimal("0.5")) * buy.price
    )
    assert any("fractional" in e for e in check(snap, variant(j, frac), POLICY))
    aapl = dataclasses.replace(sell, symbol="AAPL")
    assert any("no-sell" in e for e in check(snap, variant(i, aapl), POLICY))
    gain_lot = snap.lots[0]  # A1, short-term gain
    sale = dataclasses.replace(
        sell.lots[0],
        lot_id=gain_lot.lot_id,
        shares=Decimal(10),
        realized_gain=Decimal(10) * Decimal(190) - gain_lot.cost_basis * 10 / gain_lot.quantity,
    )
    st_sell = dataclasses.replace(
        sell,
        symbol="AAPL",
        shares=Decimal(10),
        value=Decimal(1900),
        cost=Decimal("0.38"),
        lots=(sale,),
    )
    errs = check(snap, [*trades, st_sell], POLICY)
    assert any("short-term gain" in e for e in errs)
    both = dataclasses.replace(
        buy,
        symbol=sell.symbol,
        price=sell.price,
        value=buy.shares * sell.price,
        cost=(buy.shares * sell.price * Decimal("0.0002")).quantize(Decimal("0.01")),
    )
    assert any("both bought and sold" in e for e in check(snap, variant(j, both), POLICY))
    small = dataclasses.replace(buy, shares=Decimal(0))
    assert any("positive" in e for e in check(snap, variant(j, small), POLICY))
    lied = dataclasses.replace(
        sell,
        lots=(dataclasses.replace(sell.lots[0], realized_gain=Decimal("999")), *sell.lots[1:]),
    )
    assert any("realized gain" in e for e in check(snap, variant(i, lied), POLICY))
    other_term = "long" if sell.lots[0].term == "short" else "short"
    wrong = dataclasses.replace(
        sell, lots=(dataclasses.replace(sell.lots[0], term=other_term), *sell.lots[1:])
    )
    index = CheckIndex(snap)
    for idx in (None, index):
        errs = check(snap, variant(i, wrong), POLICY, idx)
        assert any(f"term {other_term} is wrong" in e for e in errs)
    assert index.long_term == {lot.lot_id: is_long_term(lot, snap.as_of) for lot in snap.lots}


def test_exact_tax_netting() -> None:
    snap = build(loss_only_portfolio())
    assert tax_liability(Decimal(1000), Decimal(1000), snap) == Decimal("570.00")
    # LT loss offsets the ST gain at the ST rate
    assert tax_liability(Decimal(1000), Decimal(-400), snap) == Decimal("222.00")
    # a net loss deducts at most the $3,000 offset
    assert tax_liability(Decimal(-10000), Decimal(2000), snap) == Decimal("-1110.00")


def test_ledoit_wolf_makes_a_positive_definite_covariance() -> None:
    rng = np.random.default_rng(0)
    prices = pd.DataFrame(
        100 * np.cumprod(1 + rng.normal(0, 0.01, (30, 60)), axis=0),
        columns=[f"S{i}" for i in range(60)],
    )
    sigma = estimate_covariance(prices)
    assert np.linalg.eigvalsh(sigma.to_numpy()).min() > 0  # 29 returns < 60 securities
    _, delta = ledoit_wolf(prices.pct_change().iloc[1:].to_numpy())
    assert 0 < delta <= 1
    classes = {f"S{i}": ("a" if i % 2 else "b") for i in range(60)}
    cls = asset_class_covariance(sigma, classes)
    assert list(cls.index) == ["a", "b"] and np.allclose(cls, cls.T)
    bad = prices.copy()
    bad.iloc[3, 2] = np.nan
    with pytest.raises(InvalidSnapshot, match="S2"):
        estimate_covariance(bad)


def test_four_scenarios_in_one_call_share_the_compiled_problem() -> None:
    d = loss_only_portfolio()
    d["budgets"] = {"max_net_realized_gain": "25000.00"}
    d["restrictions"] = []
    snap = build(d)
    results = solve_scenarios(snap)
    assert list(results) == list(PRESET_NAMES)
    te = {name: r.metrics["after"]["tracking_error"] for name, r in results.items()}
    assert te["aggressive"] <= te["moderate"] + 1e-9 <= te["conservative"] + 2e-9
    pd_ = build_problem_data(snap, resolve_settings(snap, "moderate"))
    model = compiled_model(pd_, "CLARABEL")
    # every scenario solved on the same compiled problem (the first may have compiled it)
    assert model.solves >= sum(r.solver.solves for r in results.values())
    assert all(r.solver.compiled_reused for r in list(results.values())[1:])
    assert results["conservative"].settings["no_short_term_gains"] is True
    with pytest.raises(InvalidSnapshot):
        resolve_settings(snap, "reckless")


def test_forecast_ages_lots_and_tracking_error_falls() -> None:
    d = loss_only_portfolio()
    d["budgets"] = {"max_net_realized_gain": "5000.00"}
    d["restrictions"] = []
    d["forecast_years"] = 3
    result = solve(build(d))
    rows = result.forecast
    assert [r["year"] for r in rows] == [1, 2, 3]
    assert all(r["status"] == "ok" for r in rows)
    te = [r["tracking_error_after"] for r in rows]
    assert max(te[1:]) <= te[0] + 1e-12  # never worse than after year 1
    assert rows[0]["tracking_error_before"] > te[0]
    assert all(Decimal(r["realized_net"]) <= Decimal("5000.00") for r in rows)
    nxt = apply_trades(build(d), result.trades, build(d).as_of.replace(year=2026), "Y1")
    assert all(lot.quantity > 0 for lot in nxt.lots)
    assert nxt.tax.realized_ytd_long_term == 0


def test_scenario_overrides_and_invalid_knobs() -> None:
    snap = build(two_security_ira())
    st = resolve_settings(snap, "aggressive", {"tax_weight": 3.0})
    assert st.risk_aversion == 200.0 and st.tax_weight == 3.0
    with pytest.raises(InvalidSnapshot):
        resolve_settings(snap, None, {"loss_value_beyond_offset": 2.0})
    with pytest.raises(InvalidSnapshot):
        resolve_settings(snap, None, {"bogus": 1})
