"""Raising cash beyond the IPS cash band: the withdrawn cash leaves the portfolio, so the
allocation (asset-class bounds, cash band, maximum weights) and the tracking error after trading
are measured on the value that stays invested, ``V - cash to raise``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from optimizer.core.checker import CheckPolicy, check
from optimizer.core.engine import solve
from optimizer.core.errors import InfeasibleProblem
from optimizer.core.result import Trade
from tests.optimizer.core.builders import build

D = Decimal


def banded_ira(raise_: str = "2000.00") -> dict[str, Any]:
    """IRA, no cash, no costs: 100 AAA at $60 ($6,000, equity) and 160 BBB at $25 ($4,000,
    bonds); V = $10,000. IPS 60/40 with +-5% bands and a 0-5% cash band; raise ``raise_``.

    Hand solution for $2,000 (20% of V, four times the cash band): $8,000 stays invested, so
    the 60/40 target is $4,800 AAA (80 shares: sell 20) and $3,200 BBB (128 shares: sell 32);
    the sales bring exactly $2,000, the raised cash, and the cash that stays is $0.
    """
    return {
        "as_of": "2025-06-30",
        "mode": "raise_cash",
        "accounts": [
            {"id": "IRA1", "tax_treatment": "deferred", "cash": "0", "cash_to_raise": raise_}
        ],
        "securities": [
            {"symbol": "AAA", "asset_class": "equity", "price": "60"},
            {"symbol": "BBB", "asset_class": "bonds", "price": "25"},
        ],
        "lots": [
            {
                "lot_id": "A1",
                "account": "IRA1",
                "symbol": "AAA",
                "quantity": "100",
                "cost_basis": "4000",
                "acquired": "2020-01-02",
            },
            {
                "lot_id": "B1",
                "account": "IRA1",
                "symbol": "BBB",
                "quantity": "160",
                "cost_basis": "4200",
                "acquired": "2020-01-02",
            },
        ],
        "targets": {
            "securities": {"AAA": "0.6", "BBB": "0.4"},
            "asset_classes": {
                "equity": {"target": "0.6", "band": "0.05"},
                "bonds": {"target": "0.4", "band": "0.05"},
                "cash": {"target": "0", "min": "0", "max": "0.05"},
            },
        },
        "risk_model": {
            "level": "security",
            "labels": ["AAA", "BBB"],
            "covariance": [[0.04, 0.0], [0.0, 0.01]],
        },
        "tax": {"short_term_rate": "0.37", "long_term_rate": "0.20"},
    }


def _sold(trades: list[Trade]) -> dict[str, Decimal]:
    assert all(t.side == "sell" for t in trades)
    return {t.symbol: t.shares for t in trades}


def test_raise_of_20_percent_with_a_5_percent_cash_band_is_exact() -> None:
    snap = build(banded_ira())
    result = solve(snap)
    assert _sold(result.trades) == {"AAA": D(20), "BBB": D(32)}
    assert [t.value for t in result.trades] == [D(1200), D(800)]
    after = result.metrics["after"]
    # the account holds the raised cash after trading ...
    assert after["cash"] == {"total": "2000.00", "by_account": {"IRA1": "2000.00"}}
    # ... which leaves the portfolio: reported apart and excluded from the allocation
    assert after["cash_raised"] == {"total": "2000.00", "by_account": {"IRA1": "2000.00"}}
    assert after["invested_value"] == "8000.00"
    classes = after["asset_classes"]
    assert classes["equity"]["value"] == "4800.00" and classes["equity"]["weight"] == 0.6
    assert classes["bonds"]["value"] == "3200.00" and classes["bonds"]["weight"] == 0.4
    assert classes["cash"]["value"] == "0.00" and classes["cash"]["weight"] == 0.0
    assert after["tracking_error"] < 1e-9
    assert after["drift_total"] < 1e-12
    assert after["total_value"] == "10000.00"  # before the withdrawal
    # before trading nothing has been raised: no such entries
    assert "cash_raised" not in result.metrics["before"]
    fact = next(f for f in result.facts if f["fact"] == "cash_raised")
    assert fact["total"] == "2000.00" and fact["invested_value"] == "8000.00"
    assert "$2,000.00" in fact["text"] and "$8,000.00" in fact["text"]
    assert check(snap, result.trades, CheckPolicy(no_short_term_gains=False)) == []


def test_the_same_raise_in_rebalance_mode_is_feasible_too() -> None:
    d = banded_ira()
    d["mode"] = "rebalance"
    result = solve(build(d))
    assert _sold(result.trades) == {"AAA": D(20), "BBB": D(32)}


def test_cash_that_stays_is_held_to_the_cash_band_of_the_invested_value() -> None:
    """$1,000 of cash that is not raised counts against the 0-5% band of the $8,000 invested
    ($400 at most): the surplus $600 goes back to the targets."""
    d = banded_ira()
    d["mode"] = "rebalance"
    d["accounts"][0]["cash"] = "1000"
    snap = build(d)
    result = solve(snap)
    after = result.metrics["after"]
    kept = D(after["cash"]["total"]) - D("2000")
    assert D(0) <= kept <= D("0.05") * D(9000)
    assert after["invested_value"] == "9000.00"
    assert after["asset_classes"]["cash"]["value"] == f"{kept:.2f}"
    # 60/40 of the $9,000 that stays: $5,400 AAA (90 shares) and $3,600 BBB (144 shares)
    assert _sold(result.trades) == {"AAA": D(10), "BBB": D(16)}
    assert check(snap, result.trades, CheckPolicy(no_short_term_gains=False)) == []


def test_the_checker_measures_weights_on_the_invested_value() -> None:
    """Raising the $2,000 from AAA alone (34 shares, $2,040) leaves $3,960 of AAA in the
    $8,000 that stays invested: 49.5% equity, below its 55% bound, and 50% bonds, above 45%."""
    snap = build(banded_ira())
    sell_aaa = solve(build(banded_ira())).trades[0]
    assert sell_aaa.symbol == "AAA"
    from dataclasses import replace

    from optimizer.core.result import LotSale

    lot = LotSale(
        lot_id="A1",
        shares=D(34),
        proceeds=D(2040),
        cost_basis=D(1360),
        realized_gain=D(680),
        term="long",
        holding_days=2006,
        taxable=False,
    )
    only_aaa = replace(sell_aaa, shares=D(34), value=D(2040), lots=(lot,))
    errors = check(snap, [only_aaa], CheckPolicy(no_short_term_gains=False))
    assert any("asset class equity: weight 0.495000 below its bound 0.55" in e for e in errors)
    assert any("asset class bonds: weight 0.500000 above its bound 0.45" in e for e in errors)
    assert not any("asset class cash" in e for e in errors)


def test_max_weight_is_measured_on_the_invested_value() -> None:
    """AAA at most 55% of what stays invested: $4,400 of $8,000 (73 shares at $60 = $4,380)."""
    d = banded_ira()
    d["targets"]["asset_classes"]["equity"] = {"target": "0.6", "band": "0.1"}
    d["targets"]["asset_classes"]["bonds"] = {"target": "0.4", "band": "0.1"}
    d["restrictions"] = [{"symbol": "AAA", "max_weight": "0.55", "reason": "concentration"}]
    snap = build(d)
    result = solve(snap)
    sold = _sold(result.trades)
    aaa_left = (D(100) - sold["AAA"]) * D(60)
    assert aaa_left <= D("0.55") * D(8000)
    assert aaa_left > D("0.55") * D(8000) - D(60)  # not a share more sold than needed
    assert check(snap, result.trades, CheckPolicy(no_short_term_gains=False)) == []


def test_raising_more_than_the_account_holds_is_still_infeasible() -> None:
    with pytest.raises(InfeasibleProblem, match="cannot hold the cash it must"):
        solve(build(banded_ira("10000.01")))


def test_forecast_years_after_a_raise_start_without_the_withdrawn_cash() -> None:
    d = banded_ira()
    d["mode"] = "rebalance"
    d["forecast_years"] = 2
    result = solve(build(d))
    year2 = result.forecast[1]
    assert year2["status"] == "ok"
    # the $2,000 was withdrawn: year 2 starts from the $8,000 on target and has nothing to do
    assert year2["tickets"] == 0
    assert year2["tracking_error_before"] < 1e-9


def test_documented_example_rounds_at_three_active_bounds(monkeypatch: Any) -> None:
    """docs/examples/raise_cash_beyond_cash_band.json: the continuous optimum has US equity at
    its 55% maximum, bonds at their 20% minimum and the cash that stays at its 5% maximum. The
    greedy repair after rounding fixes equity by selling one more VTI share, which pushes cash
    over its band, which it fixes by selling one less VTI share: a cycle. The repair then takes
    the single move that leaves the least violation (sell less VNQ, a class without bounds)."""
    from pathlib import Path

    from optimizer.core import postprocess
    from optimizer.core.snapshot import load_snapshot

    calls: list[int] = []
    original = postprocess._least_violation_move

    def counted(*args: Any) -> bool:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(postprocess, "_least_violation_move", counted)
    path = Path(__file__).resolve().parents[3] / "docs/examples/raise_cash_beyond_cash_band.json"
    snap = load_snapshot(path)
    result = solve(snap)
    assert calls
    assert result.status == "optimal"
    assert check(snap, result.trades, CheckPolicy(no_short_term_gains=False)) == []
    after = result.metrics["after"]
    assert after["cash_raised"]["total"] == "50000.00"
    kept = D(after["cash"]["total"]) - D("50000.00")
    assert D(0) <= kept <= D("0.05") * D(after["invested_value"])
    for name in ("bonds", "intl_equity", "us_equity"):
        band = snap.targets.asset_classes
        lo, hi = next(t.bounds() for t in band if t.asset_class == name)
        weight = D(str(after["asset_classes"][name]["weight"]))
        assert lo is not None and hi is not None
        assert lo - D("1e-8") <= weight <= hi + D("1e-8")
