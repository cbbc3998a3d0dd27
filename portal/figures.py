"""A proposal's figures from its run's frozen snapshot, through the optimizer core.

Nothing here re-implements a rule: trades are rebuilt as the core's ``Trade``/``LotSale`` in
exact ``Decimal`` from the stored snapshot, hard constraints are re-checked by the core's
independent checker (``optimizer.core.checker.check``) and metrics, flags and facts come from
``optimizer.core.metrics`` and ``optimizer.core.binding``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accounts.models import Account, Household, TaxLot
from optimizer.core.binding import flags as core_flags
from optimizer.core.binding import nature_facts
from optimizer.core.checker import CheckPolicy, check
from optimizer.core.metrics import portfolio_metrics
from optimizer.core.model import ProblemData, build_problem_data
from optimizer.core.result import LotSale, Trade, cents, dumps
from optimizer.core.scenarios import Settings
from optimizer.core.snapshot import Lot, Snapshot, is_long_term, snapshot_from_dict
from optimizer.models import OptimizationRun

ZERO = Decimal(0)


def snapshot_of(run: OptimizationRun) -> Snapshot:
    if run.snapshot is None:
        raise ValueError(f"run {run.pk} has no stored snapshot")
    return snapshot_from_dict(json.loads(run.snapshot.text))


def result_of(run: OptimizationRun) -> dict[str, Any]:
    if run.result is None:
        raise ValueError(f"run {run.pk} has no stored result")
    data: dict[str, Any] = json.loads(run.result.text)
    return data


def settings_of(result: Mapping[str, Any]) -> Settings:
    """The resolved scenario knobs the run used (recorded in its result)."""
    st = result["settings"]
    return Settings(
        scenario=result["scenario"],
        risk_aversion=float(st["risk_aversion"]),
        tax_weight=float(st["tax_weight"]),
        loss_value_beyond_offset=float(st["loss_value_beyond_offset"]),
        no_short_term_gains=bool(st["no_short_term_gains"]),
    )


def account_key(account: Account) -> str:
    """The snapshot's account id (``optimizer.adapter`` convention)."""
    return f"{account.custodian.code}-{account.number}"


def lot_ref_of(lot: Lot) -> str:
    """The book's ``lot_ref`` of a snapshot lot (ids repeated across accounts carry a prefix)."""
    prefix = f"{lot.account}/"
    return lot.lot_id[len(prefix) :] if lot.lot_id.startswith(prefix) else lot.lot_id


@dataclass(frozen=True)
class BookIndex:
    """The household's accounts and lots keyed the way the snapshot names them."""

    accounts: dict[str, Account]
    lots: dict[tuple[str, str], TaxLot]

    @classmethod
    def of(cls, household: Household) -> BookIndex:
        accounts = {account_key(a): a for a in household.accounts.select_related("custodian").all()}
        lots = {
            (account_key(lot.account), lot.lot_ref): lot
            for lot in TaxLot.objects.filter(account__household=household).select_related(
                "account__custodian"
            )
        }
        return cls(accounts=accounts, lots=lots)

    def taxlot(self, lot: Lot) -> TaxLot | None:
        return self.lots.get((lot.account, lot_ref_of(lot)))


def lot_sale(snapshot: Snapshot, lot: Lot, shares: Decimal) -> LotSale:
    """Exact realized gain of selling ``shares`` of ``lot`` at the snapshot price."""
    price = snapshot.security(lot.symbol).price
    proceeds = shares * price
    basis = lot.cost_basis * shares / lot.quantity
    return LotSale(
        lot_id=lot.lot_id,
        shares=shares,
        proceeds=proceeds,
        cost_basis=basis,
        realized_gain=proceeds - basis,
        term="long" if is_long_term(lot, snapshot.as_of) else "short",
        holding_days=(snapshot.as_of - lot.holding_period_start).days,
        taxable=snapshot.account(lot.account).taxable,
    )


def core_trade(
    snapshot: Snapshot,
    *,
    account: str,
    symbol: str,
    side: str,
    shares: Decimal,
    lots: Sequence[LotSale],
) -> Trade:
    """An order priced and costed exactly as the optimizer and its checker define it."""
    sec = snapshot.security(symbol)
    value = shares * sec.price
    bps = snapshot.costs.bps + sec.cost_bps
    return Trade(
        account=account,
        symbol=symbol,
        side=side,
        shares=shares,
        price=sec.price,
        value=value,
        cost=cents(value * bps / Decimal(10000)),
        ticket_fee=snapshot.costs.ticket_fee,
        lots=tuple(sorted(lots, key=lambda x: x.lot_id)),
    )


def allocate_sale(
    snapshot: Snapshot,
    *,
    account: str,
    symbol: str,
    shares: Decimal,
    preferred: Iterable[str] = (),
) -> list[LotSale]:
    """Lot sales for a sell of ``shares``: the lots the optimizer chose first, then the other
    lots of the position; within each group the lowest realized gain per share first (losses,
    then the cheapest gains). Raises ``ValueError`` when the position holds fewer shares."""
    preferred_ids = set(preferred)
    position = [lt for lt in snapshot.lots if lt.account == account and lt.symbol == symbol]
    price = snapshot.security(symbol).price

    def order(lot: Lot) -> tuple[int, Decimal, str]:
        gain_per_share = price - lot.cost_basis / lot.quantity
        return (0 if lot.lot_id in preferred_ids else 1, gain_per_share, lot.lot_id)

    remaining = shares
    sales: list[LotSale] = []
    for lot in sorted(position, key=order):
        if remaining <= 0:
            break
        take = min(remaining, lot.quantity)
        sales.append(lot_sale(snapshot, lot, take))
        remaining -= take
    if remaining > 0:
        held = sum((lt.quantity for lt in position), ZERO)
        raise ValueError(
            f"sell {shares} {symbol} in {account}: the position holds only {held} shares"
        )
    return sales


def lot_rows(
    sales: Iterable[LotSale], index: BookIndex, snapshot: Snapshot
) -> list[dict[str, Any]]:
    """Lot sales as stored on a ``ProposalTrade`` (exact decimal strings, with the book's lot)."""
    lots = {lt.lot_id: lt for lt in snapshot.lots}
    rows = []
    for ls in sales:
        taxlot = index.taxlot(lots[ls.lot_id])
        rows.append(
            {
                "lot_id": ls.lot_id,
                "taxlot": taxlot.pk if taxlot is not None else None,
                "lot_ref": lot_ref_of(lots[ls.lot_id]),
                "acquired": lots[ls.lot_id].acquired.isoformat(),
                "shares": str(ls.shares),
                "proceeds": str(cents(ls.proceeds)),
                "cost_basis": str(cents(ls.cost_basis)),
                "realized_gain": str(cents(ls.realized_gain)),
                "term": ls.term,
                "holding_days": ls.holding_days,
                "taxable": ls.taxable,
            }
        )
    return rows


@dataclass
class Figures:
    """Everything a trade list implies, from the core."""

    violations: list[str]
    metrics: dict[str, Any]
    flags: list[dict[str, Any]]
    facts: list[dict[str, Any]]


def problem_data(snapshot: Snapshot, settings: Settings) -> ProblemData:
    return build_problem_data(snapshot, settings)


def evaluate(snapshot: Snapshot, settings: Settings, trades: list[Trade]) -> Figures:
    """Check ``trades`` against every hard constraint and compute metrics, flags and facts,
    encoded exactly as the optimizer's result JSON (money strings, floats to 8 decimals)."""
    violations = check(
        snapshot, trades, CheckPolicy(no_short_term_gains=settings.no_short_term_gains)
    )
    pd = problem_data(snapshot, settings)
    metrics = {
        "before": portfolio_metrics(pd, [], after=False),
        "after": portfolio_metrics(pd, trades, after=True),
    }
    return Figures(
        violations=violations,
        metrics=json.loads(dumps(metrics)),
        flags=json.loads(dumps(core_flags(pd, trades))),
        facts=json.loads(dumps(nature_facts(pd, trades))),
    )


def restricted_trades(snapshot: Snapshot, trades: Iterable[Trade]) -> list[str]:
    """``"SYM in ACCOUNT (reason)"`` for every trade in a security restricted in the snapshot."""
    out: list[str] = []
    for t in trades:
        for r in snapshot.restrictions:
            if r.symbol == t.symbol and r.account in (None, t.account):
                what = ", ".join(
                    w
                    for w, on in (
                        ("no sell", r.no_sell),
                        ("no buy", r.no_buy),
                        (f"max weight {r.max_weight}", r.max_weight is not None),
                    )
                    if on
                )
                label = f"{t.side} {t.symbol} in {t.account} ({what or 'restricted'}"
                label += f"; {r.reason})" if r.reason else ")"
                if label not in out:
                    out.append(label)
    return out
