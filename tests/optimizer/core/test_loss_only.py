"""Gain cap $25K + do not sell AAPL + no short-term gains, with no long-term gains in the portfolio."""

from __future__ import annotations

from decimal import Decimal

from optimizer.core.checker import CheckPolicy, check
from optimizer.core.engine import solve
from tests.optimizer.core.builders import build, loss_only_portfolio


def test_loss_only_transition() -> None:
    snap = build(loss_only_portfolio())
    result = solve(snap)
    assert result.status == "optimal"
    sells = [t for t in result.trades if t.side == "sell"]
    assert sells, "the transition should still sell losing lots"
    # AAPL untouched: neither sold nor bought
    assert all(t.symbol != "AAPL" for t in result.trades)
    # no lot with a gain sold, realized gains <= 0
    assert all(ls.realized_gain <= 0 for t in sells for ls in t.lots)
    assert sum((ls.realized_gain for t in sells for ls in t.lots), Decimal(0)) < 0
    assert Decimal(result.metrics["after"]["realized"]["net"]) <= 0
    assert result.metrics["after"]["realized"]["short_term_gains"] == "0.00"
    assert result.metrics["after"]["realized"]["long_term_gains"] == "0.00"
    # the nature of the job is stated, and the binding constraints are named
    facts = {f["fact"]: f for f in result.facts}
    assert "loss_only_transition" in facts
    assert "loss-only" in facts["loss_only_transition"]["text"]
    assert "$25,000.00 gain budget cannot be used" in facts["loss_only_transition"]["text"]
    names = {b["constraint"] for b in result.binding_constraints}
    assert "no_sell:AAPL" in names
    assert any(n.startswith("no_short_term_gains:") for n in names)
    for b in result.binding_constraints:
        assert b["shadow_price"] > 0 and b["text"]
    # the tracking error still improves and the result passes the independent checker
    assert result.metrics["after"]["tracking_error"] < result.metrics["before"]["tracking_error"]
    assert check(snap, result.trades, CheckPolicy(no_short_term_gains=True)) == []


def test_without_the_rules_gains_are_sold() -> None:
    d = loss_only_portfolio()
    d["budgets"] = {"max_net_realized_gain": "25000.00", "no_short_term_gains": False}
    d["restrictions"] = []
    d["objective"] = {"risk_aversion": "200"}
    result = solve(build(d))
    sold = {ls.lot_id for t in result.trades for ls in t.lots}
    assert "A1" in sold  # the AAPL short-term gain lot is now sold
    assert Decimal(result.metrics["after"]["realized"]["net"]) <= Decimal("25000.00")
