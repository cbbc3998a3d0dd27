"""The metrics before and after trading, recomputed by hand from the snapshot and the trades."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from optimizer.core.engine import solve
from optimizer.core.snapshot import is_long_term
from optimizer.core.synthetic import synthetic_snapshot

CENT = Decimal("0.01")


def _unrealized(snap, sold: dict[str, Decimal]) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    price = {x.symbol: x.price for x in snap.securities}
    taxable = {a.id: a.taxable for a in snap.accounts}
    sums = {
        "short_term_gains": Decimal(0),
        "short_term_losses": Decimal(0),
        "long_term_gains": Decimal(0),
        "long_term_losses": Decimal(0),
    }
    for lot in snap.lots:
        if not taxable[lot.account]:
            continue
        q = lot.quantity - sold.get(lot.lot_id, Decimal(0))
        if q <= 0:
            continue
        gain = q * price[lot.symbol] - lot.cost_basis * q / lot.quantity
        term = "long_term" if is_long_term(lot, snap.as_of) else "short_term"
        sums[f"{term}_{'gains' if gain >= 0 else 'losses'}"] += gain
    return {k: v.quantize(CENT, rounding=ROUND_HALF_UP) for k, v in sums.items()}


def test_unrealized_gains_before_and_after_are_those_of_the_lots_left() -> None:
    for seed in (3, 8):
        snap = synthetic_snapshot(
            n_stocks=20,
            n_lots=80,
            seed=seed,
            gain_cap="6000",
            accounts=("taxable", "deferred"),
        )
        res = solve(snap)
        sold = {ls.lot_id: ls.shares for t in res.trades for ls in t.lots}
        assert sold and any(
            ls.shares < lot.quantity
            for t in res.trades
            for ls in t.lots
            for lot in snap.lots
            if lot.lot_id == ls.lot_id
        )  # partial sales among them
        assert res.metrics["before"]["unrealized"] == _unrealized(snap, {})
        assert res.metrics["after"]["unrealized"] == _unrealized(snap, sold)
        assert res.metrics["after"]["unrealized"] != res.metrics["before"]["unrealized"]
