"""Cases small enough to solve by hand, checked exactly."""

from __future__ import annotations

from decimal import Decimal

from optimizer.core.checker import CheckPolicy, check
from optimizer.core.engine import solve
from optimizer.core.postprocess import FRACTION_UNIT
from tests.optimizer.core.builders import build, two_security_ira


def test_two_securities_exact_share_count() -> None:
    result = solve(build(two_security_ira()))
    assert [(t.side, t.symbol, t.shares) for t in result.trades] == [("buy", "BBB", Decimal(200))]
    assert result.trades[0].value == Decimal(5000)
    assert result.metrics["after"]["cash"]["total"] == "0.00"
    assert result.metrics["after"]["tracking_error"] < 1e-9
    assert result.status == "optimal"


def test_overweight_sells_exact_lot_shares_in_ira() -> None:
    d = two_security_ira()
    d["accounts"][0]["cash"] = "0"
    d["lots"].append(
        {
            "lot_id": "L2",
            "account": "IRA1",
            "symbol": "BBB",
            "quantity": "100",
            "cost_basis": "2600",
            "acquired": "2021-01-04",
        }
    )
    # AAA 5,000 + BBB 2,500 = 7,500; 50/50 -> 3,750 each: sell 25 AAA, buy 50 BBB
    result = solve(build(d))
    got = {(t.side, t.symbol): t.shares for t in result.trades}
    assert got == {("sell", "AAA"): Decimal(25), ("buy", "BBB"): Decimal(50)}
    sell = next(t for t in result.trades if t.side == "sell")
    assert [(x.lot_id, x.shares) for x in sell.lots] == [("L1", Decimal(25))]
    # exact lot arithmetic: 25 * 50 - 4000 * 25 / 100 = 250
    assert sell.lots[0].realized_gain == Decimal(250)
    assert not sell.lots[0].taxable
    assert result.metrics["after"]["estimated_tax"] == "0.00"


def test_ticket_fee_drops_micro_trade() -> None:
    d = two_security_ira()
    d["targets"]["securities"] = {"AAA": "0.5", "BBB": "0.0005"}  # wants $5 of BBB
    d["costs"] = {"ticket_fee": "5.00"}
    result = solve(build(d))
    assert result.trades == []
    assert result.status == "nothing_to_do"


def test_min_trade_value_is_respected() -> None:
    d = two_security_ira()
    d["targets"]["securities"] = {"AAA": "0.5", "BBB": "0.004"}  # wants $40 of BBB
    d["costs"] = {"min_trade_value": "100"}
    result = solve(build(d))
    assert all(t.value >= 100 for t in result.trades)


def test_fractional_account_buys_fractional_shares() -> None:
    d = two_security_ira()
    d["accounts"][0]["allows_fractional"] = True
    d["securities"][1]["price"] = "30"
    result = solve(build(d))
    buy = next(t for t in result.trades if t.side == "buy")
    assert buy.shares != buy.shares.to_integral_value()
    unit = Decimal(str(FRACTION_UNIT))  # the share unit of fractional accounts
    assert buy.shares % unit == 0
    # within one share unit of the $5,000 of cash (a unit of BBB is worth 30 x unit)
    assert abs(buy.shares * Decimal(30) - Decimal(5000)) <= unit * Decimal(30)


def test_taxable_gain_lot_is_exact_and_taxed() -> None:
    d = two_security_ira()
    d["accounts"][0]["tax_treatment"] = "taxable"
    d["accounts"][0]["cash"] = "0"
    d["lots"].append(
        {
            "lot_id": "L2",
            "account": "IRA1",
            "symbol": "BBB",
            "quantity": "100",
            "cost_basis": "2600",
            "acquired": "2021-01-04",
        }
    )
    d["objective"] = {"risk_aversion": "1000"}
    result = solve(build(d))
    sell = next(t for t in result.trades if t.side == "sell")
    assert sell.symbol == "AAA"
    lot = sell.lots[0]
    assert lot.term == "long"
    assert lot.realized_gain == lot.shares * Decimal(50) - Decimal(4000) * lot.shares / Decimal(100)
    expected_tax = (lot.realized_gain * Decimal("0.20")).quantize(Decimal("0.01"))
    assert result.metrics["after"]["estimated_tax"] == str(expected_tax)
    assert check(build(d), result.trades, CheckPolicy(no_short_term_gains=False)) == []


def test_gain_budget_caps_realized_gains() -> None:
    d = two_security_ira()
    d["accounts"][0]["tax_treatment"] = "taxable"
    d["accounts"][0]["cash"] = "0"
    d["lots"][0]["cost_basis"] = "1000"  # $40 gain per share
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
    d["budgets"] = {"max_net_realized_gain": "400"}
    d["objective"] = {"risk_aversion": "1000"}
    result = solve(build(d))
    sell = next(t for t in result.trades if t.side == "sell")
    assert sell.shares == 10  # 10 shares x $40 = the whole $400 budget
    names = [b["constraint"] for b in result.binding_constraints]
    assert "gain_budget_net" in names
    fact = next(b for b in result.binding_constraints if b["constraint"] == "gain_budget_net")
    assert fact["limit"] == "400.00" and fact["used"] == "400.00"
    assert fact["available_gains"] == "4000.00"
    assert abs(fact["share_used"] - 0.1) < 1e-12
    assert fact["shadow_price"] > 0
    assert "binds" in fact["text"]
