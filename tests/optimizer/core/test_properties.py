"""Property tests: no returned result ever violates a hard constraint."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.core.checker import CheckPolicy, check
from optimizer.core.engine import RunOptions, solve
from optimizer.core.errors import InfeasibleProblem
from optimizer.core.metrics import cash_after, holdings_after
from optimizer.core.snapshot import snapshot_from_dict

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
GROUPS = {"AAA": "AAA", "BBB": "AAA", "CCC": "CCC", "DDD": "DDD"}  # BBB is identical to AAA


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    n_acc = draw(st.integers(1, 2))
    accounts = [
        {
            "id": f"A{a}",
            "tax_treatment": draw(st.sampled_from(["taxable", "deferred", "exempt"])),
            "cash": str(draw(st.integers(0, 20000))),
            "allows_fractional": draw(st.booleans()),
            "cash_floor": str(draw(st.integers(0, 500))),
        }
        for a in range(n_acc)
    ]
    prices = {s: draw(st.integers(5, 300)) for s in SYMBOLS}
    lots = []
    for j in range(draw(st.integers(0, 7))):
        sym = draw(st.sampled_from(SYMBOLS))
        q = draw(st.integers(1, 200))
        lots.append(
            {
                "lot_id": f"L{j}",
                "account": f"A{draw(st.integers(0, n_acc - 1))}",
                "symbol": sym,
                "quantity": str(q),
                "cost_basis": str(q * draw(st.integers(1, 400))),
                "acquired": (
                    dt.date(2025, 6, 30) - dt.timedelta(days=draw(st.integers(1, 900)))
                ).isoformat(),
            }
        )
    raw = [draw(st.integers(0, 10)) for _ in SYMBOLS]
    total = sum(raw) or 1
    targets = {s: f"{0.95 * r / total:.4f}" for s, r in zip(SYMBOLS, raw, strict=True)}
    restrictions = []
    if draw(st.booleans()):
        restrictions.append({"symbol": draw(st.sampled_from(SYMBOLS)), "no_sell": True})
    if draw(st.booleans()):
        restrictions.append({"symbol": draw(st.sampled_from(SYMBOLS)), "no_buy": True})
    if draw(st.booleans()):
        restrictions.append({"symbol": draw(st.sampled_from(SYMBOLS)), "max_weight": "0.4"})
    wash: dict[str, Any] = {}
    if draw(st.booleans()):
        wash["recent_buys"] = [
            {"account": "A0", "symbol": draw(st.sampled_from(SYMBOLS)), "date": "2025-06-20"}
        ]
    if draw(st.booleans()):
        wash["recent_loss_sales"] = [
            {"account": "A0", "symbol": draw(st.sampled_from(SYMBOLS)), "date": "2025-06-10"}
        ]
    vols = [0.2, 0.21, 0.3, 0.05]
    cov = [[vols[i] * vols[j] * (1.0 if i == j else 0.5) for j in range(4)] for i in range(4)]
    return {
        "as_of": "2025-06-30",
        "mode": draw(
            st.sampled_from(["rebalance", "transition", "harvest", "raise_cash", "invest_cash"])
        ),
        "accounts": accounts,
        "securities": [
            {
                "symbol": s,
                "asset_class": "eq" if s != "DDD" else "bond",
                "price": str(prices[s]),
                "identical_group": GROUPS[s],
            }
            for s in SYMBOLS
        ],
        "lots": lots,
        "targets": {"securities": targets},
        "risk_model": {"level": "security", "labels": SYMBOLS, "covariance": cov},
        "tax": {"short_term_rate": "0.37", "long_term_rate": "0.2"},
        "budgets": {
            "max_net_realized_gain": draw(st.sampled_from([None, "0", "1000", "50000"])),
            "max_short_term_gain": draw(st.sampled_from([None, "0", "500"])),
            "no_short_term_gains": draw(st.booleans()),
        },
        "costs": {
            "bps": str(draw(st.sampled_from([0, 5, 20]))),
            "ticket_fee": draw(st.sampled_from(["0", "4.95"])),
            "min_trade_value": draw(st.sampled_from(["0", "250"])),
        },
        "restrictions": restrictions,
        "holding": {"near_long_term_days": 30, "hold_back_near_long_term": draw(st.booleans())},
        "wash_sale": wash,
        "objective": {"risk_aversion": str(draw(st.sampled_from([1, 20, 500])))},
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_no_result_violates_a_hard_constraint(data: dict[str, Any]) -> None:
    data["accounts"][0]["cash"] = str(int(data["accounts"][0]["cash"]) + 1000)
    for a in data["accounts"]:
        a["cash_to_raise"] = "300" if data["mode"] == "raise_cash" else "0"
    snap = snapshot_from_dict(data)
    try:
        result = solve(snap, options=RunOptions(explain=False))
    except InfeasibleProblem as exc:
        assert exc.conflicts or exc.summary
        return
    no_st = snap.budgets.no_short_term_gains
    assert check(snap, result.trades, CheckPolicy(no_short_term_gains=no_st)) == []
    # direct assertions, independent of the checker
    cash = cash_after(snap, result.trades)
    for a in snap.accounts:
        assert cash[a.id] >= a.cash_floor + a.cash_to_raise - Decimal("0.01")
    held = holdings_after(snap, result.trades)
    assert all(q >= 0 for q in held.values())
    groups = {(GROUPS[t.symbol], t.side) for t in result.trades}
    assert not any((g, "buy") in groups and (g, "sell") in groups for g, _ in groups)
    restricted_sell = {r.symbol for r in snap.restrictions if r.no_sell}
    restricted_buy = {r.symbol for r in snap.restrictions if r.no_buy}
    assert not any(t.side == "sell" and t.symbol in restricted_sell for t in result.trades)
    assert not any(t.side == "buy" and t.symbol in restricted_buy for t in result.trades)
    taxable_gain = sum(
        (ls.realized_gain for t in result.trades for ls in t.lots if ls.taxable), Decimal(0)
    )
    cap = snap.budgets.max_net_realized_gain
    if cap is not None:
        assert taxable_gain <= cap + Decimal("0.01")
    for t in result.trades:
        assert t.value >= snap.costs.min_trade_value
        if not snap.account(t.account).allows_fractional and t.side == "buy":
            assert t.shares == t.shares.to_integral_value()
        if snap.mode == "raise_cash":
            assert t.side == "sell"
        if snap.mode == "invest_cash":
            assert t.side == "buy"
