"""Household coordination, asset location and wash sales across accounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from optimizer.core.engine import solve
from tests.optimizer.core.builders import build


def household() -> dict[str, Any]:
    return {
        "as_of": "2025-06-30",
        "mode": "rebalance",
        "accounts": [
            {"id": "TAX", "tax_treatment": "taxable", "cash": "0"},
            {"id": "IRA", "tax_treatment": "deferred", "cash": "0"},
        ],
        "securities": [
            {"symbol": "EQ", "asset_class": "equity", "price": "100"},
            {"symbol": "BD", "asset_class": "bonds", "price": "50"},
        ],
        "lots": [
            {
                "lot_id": "T1",
                "account": "TAX",
                "symbol": "EQ",
                "quantity": "600",
                "cost_basis": "20000",
                "acquired": "2015-01-05",
            },
            {
                "lot_id": "I1",
                "account": "IRA",
                "symbol": "EQ",
                "quantity": "400",
                "cost_basis": "20000",
                "acquired": "2015-01-05",
            },
        ],
        "targets": {"securities": {"EQ": "0.6", "BD": "0.4"}},
        "risk_model": {
            "level": "security",
            "labels": ["EQ", "BD"],
            "covariance": [[0.03, 0.0], [0.0, 0.004]],
        },
        "tax": {"short_term_rate": "0.37", "long_term_rate": "0.20"},
        "objective": {"risk_aversion": "100"},
    }


def test_rebalancing_happens_in_the_ira_where_gains_cost_no_tax() -> None:
    result = solve(build(household()))
    sold = {t.account: t.shares for t in result.trades if t.side == "sell"}
    bought = {t.account: t.shares for t in result.trades if t.side == "buy"}
    # household: $100K equity, needs 60/40 -> sell $40K of EQ, all of it in the IRA
    assert sold == {"IRA": Decimal(400)}
    assert bought == {"IRA": Decimal(800)}
    assert result.metrics["after"]["estimated_tax"] == "0.00"
    assert result.metrics["after"]["realized_tax_deferred"] == "20000.00"
    # no cross-account cash movement: each account's cash stays >= 0
    assert all(Decimal(v) >= 0 for v in result.metrics["after"]["cash"]["by_account"].values())


def test_loss_sale_blocked_by_a_buy_in_another_account() -> None:
    d = household()
    d["mode"] = "harvest"
    d["accounts"][0]["cash"] = "1000"
    d["lots"][0]["cost_basis"] = "90000"  # big loss in the taxable account
    d["securities"].append({"symbol": "EQ2", "asset_class": "equity", "price": "80"})
    d["risk_model"] = {
        "level": "security",
        "labels": ["EQ", "BD", "EQ2"],
        "covariance": [[0.03, 0.0, 0.0297], [0.0, 0.004, 0.0], [0.0297, 0.0, 0.03]],
    }
    d.pop("targets")
    d["wash_sale"] = {"recent_buys": [{"account": "IRA", "symbol": "EQ", "date": "2025-06-20"}]}
    result = solve(build(d))
    assert not any(t.side == "sell" and t.account == "TAX" for t in result.trades)
    flag = next(f for f in result.flags if f["kind"] == "harvest_blocked_wash_sale")
    assert flag["lot_id"] == "T1"
    assert flag["conflicting_buy_account"] == "IRA"
    assert flag["conflicting_buy_date"] == "2025-06-20"
    # without the recent buy the loss is harvested and replaced by EQ2 (not identical)
    d.pop("wash_sale")
    result2 = solve(build(d))
    sells = [t for t in result2.trades if t.side == "sell" and t.account == "TAX"]
    assert sells and sells[0].realized_gain < 0
    assert any(t.side == "buy" and t.symbol == "EQ2" for t in result2.trades)
    assert not any(t.side == "buy" and t.symbol == "EQ" for t in result2.trades)
    opened = [f for f in result2.flags if f["kind"] == "wash_sale_window_opened"]
    assert opened and opened[0]["no_buy_until"] == "2025-07-30"


def test_buy_blocked_after_a_recent_loss_sale_of_an_identical_security() -> None:
    d = household()
    d["securities"].append(
        {"symbol": "BD2", "asset_class": "bonds", "price": "40", "identical_group": "BD"}
    )
    d["risk_model"] = {
        "level": "security",
        "labels": ["EQ", "BD", "BD2"],
        "covariance": [[0.03, 0.0, 0.0], [0.0, 0.004, 0.004], [0.0, 0.004, 0.004]],
    }
    d["securities"][1]["identical_group"] = "BD"
    d["securities"].append({"symbol": "TIPS", "asset_class": "bonds", "price": "25"})
    d["risk_model"]["labels"].append("TIPS")
    for row, c in zip(d["risk_model"]["covariance"], [0.0, 0.0038, 0.0038], strict=True):
        row.append(c)
    d["risk_model"]["covariance"].append([0.0, 0.0038, 0.0038, 0.004])
    d["wash_sale"] = {
        "recent_loss_sales": [{"account": "TAX", "symbol": "BD2", "date": "2025-06-15"}]
    }
    result = solve(build(d))
    assert not any(t.side == "buy" and t.symbol in ("BD", "BD2") for t in result.trades)
    assert any(t.side == "buy" and t.symbol == "TIPS" for t in result.trades)
    assert any(
        f["kind"] == "buy_blocked_wash_sale" and f["identical_group"] == "BD" for f in result.flags
    )
    names = {b["constraint"] for b in result.binding_constraints}
    assert "wash_sale:BD" in names


def test_near_long_term_lot_is_held_back_and_flagged() -> None:
    d = household()
    d["accounts"] = [d["accounts"][0]]
    d["lots"] = [
        {
            "lot_id": "N1",
            "account": "TAX",
            "symbol": "EQ",
            "quantity": "1000",
            "cost_basis": "50000",
            "acquired": "2024-07-10",
        }
    ]
    result = solve(build(d))
    assert result.trades == []
    flag = next(f for f in result.flags if f["kind"] == "near_long_term")
    assert flag["days_to_long_term"] == 11 and flag["held_back"] is True
    d["holding"] = {"near_long_term_days": 30, "hold_back_near_long_term": False}
    result2 = solve(build(d))
    assert any(t.side == "sell" for t in result2.trades)
