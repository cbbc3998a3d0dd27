"""Build the export documents (``portal.exports.documents``) from a proposal in the database.

Reads only: the proposal's current trades (after any edit), its figures, its run's IPS version,
its approvals, and the book's lots as they are now (so a sell beyond a lot's shares is caught
before anything is written). The writers then work on these plain values alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accounts.models import AssetClass, InvestmentPolicy, Restriction, TaxLot, User
from portal.exports.documents import (
    AccountSection,
    AllocationRow,
    ApprovalLine,
    IpsExcerpt,
    LotInstruction,
    Order,
    OrderSet,
    RationaleDocument,
    RealizedSummary,
    TradeLine,
)
from portal.exports.tradefiles import assign_blocks
from portal.models import Proposal, ProposalTrade
from portal.selectors import SCENARIO_LABELS

ZERO = Decimal(0)


def _dec(value: Any, default: Decimal = ZERO) -> Decimal:
    if value is None or value == "":
        return default
    return Decimal(str(value))


def person(user: User | None) -> str:
    """A user's name as printed on exports (full name, else the username)."""
    if user is None:
        return ""
    return user.get_full_name() or user.username


def scenario_label(proposal: Proposal) -> str:
    name = SCENARIO_LABELS.get(proposal.scenario, proposal.scenario.replace("_", " ").capitalize())
    return name


def order_id(proposal: Proposal, trade: ProposalTrade) -> str:
    return f"P{proposal.pk}-{trade.position:03d}"


def live_trades(proposal: Proposal) -> list[ProposalTrade]:
    """The orders an export carries: the current, non-dropped trades with shares, in order."""
    return list(
        proposal.trades.filter(dropped=False, shares__gt=0)
        .select_related("account__custodian", "security")
        .order_by("position")
    )


def _lot_instructions(
    trade: ProposalTrade, lots: Mapping[int, TaxLot]
) -> tuple[LotInstruction, ...]:
    out = []
    for row in trade.lots:
        lot = lots.get(row.get("taxlot") or -1)
        out.append(
            LotInstruction(
                lot_ref=str(row.get("lot_ref") or (lot.lot_ref if lot else row.get("lot_id"))),
                acquired=dt.date.fromisoformat(row["acquired"])
                if row.get("acquired")
                else (lot.acquired if lot else dt.date.min),
                shares=_dec(row["shares"]),
                # a lot no longer open in the book holds nothing that can be sold
                lot_shares=lot.quantity if lot is not None and lot.closed_on is None else ZERO,
                cost_basis=_dec(row.get("cost_basis")),
                proceeds=_dec(row.get("proceeds")),
                realized_gain=_dec(row.get("realized_gain")),
                term="short" if row.get("term") == "short" else "long",
            )
        )
    return tuple(out)


def _book_lots(trades: list[ProposalTrade]) -> dict[int, TaxLot]:
    ids = {row.get("taxlot") for t in trades for row in t.lots if row.get("taxlot")}
    return {lot.pk: lot for lot in TaxLot.objects.filter(pk__in=ids)}


def order_set(
    proposal: Proposal, *, trades: list[ProposalTrade], entered_at: dt.datetime
) -> OrderSet:
    """The orders of ``trades`` (``live_trades(proposal)``) with their lot instructions,
    grouped into blocks."""
    lots = _book_lots(trades)
    orders = []
    for t in trades:
        account = t.account
        orders.append(
            Order(
                order_id=order_id(proposal, t),
                block_id="",
                custodian=account.custodian.code,
                custodian_name=account.custodian.name,
                account_number=account.number,
                account_name=account.name,
                registration=account.registration,
                tax_treatment=account.tax_treatment,
                allows_fractional=account.allows_fractional and account.custodian.allows_fractional,
                side="buy" if t.side == "buy" else "sell",
                symbol=t.security.symbol,
                security_name=t.security.name,
                quantity=t.shares,
                price=t.price,
                estimated_value=t.estimated_value,
                lots=_lot_instructions(t, lots) if t.side == "sell" else (),
            )
        )
    with_blocks, blocks = assign_blocks(proposal.pk, orders)
    return OrderSet(
        proposal_id=proposal.pk,
        household=proposal.household.name,
        as_of=proposal.as_of,
        entered_at=entered_at,
        orders=with_blocks,
        blocks=blocks,
    )


# --------------------------------------------------------------------------- the rationale


def _class_names() -> dict[str, str]:
    names = {c.code: c.name for c in AssetClass.objects.all()}
    names.setdefault("cash", "Cash")
    names.setdefault("cash_equivalents", "Cash equivalents")
    return names


def _bands(ips: InvestmentPolicy | None) -> dict[str, Decimal]:
    if ips is None:
        return {}
    bands: dict[str, Decimal] = {}
    for target in ips.targets.select_related("asset_class"):
        if target.asset_class is not None:
            bands[target.asset_class.code] = (
                target.band if target.band is not None else ips.default_band
            )
    return bands


def _allocation(proposal: Proposal, ips: InvestmentPolicy | None) -> tuple[AllocationRow, ...]:
    metrics = proposal.metrics or {}
    before = (metrics.get("before") or {}).get("asset_classes") or {}
    after = (metrics.get("after") or {}).get("asset_classes") or {}
    names = _class_names()
    order = {c.code: c.sort_order for c in AssetClass.objects.all()}
    bands = _bands(ips)
    keys = sorted(set(before) | set(after), key=lambda k: (order.get(k, 10_000), k))
    rows = []
    for key in keys:
        b, a = before.get(key) or {}, after.get(key) or {}
        target_raw = a.get("target", b.get("target"))
        target = _dec(target_raw) if target_raw is not None else None
        band = bands.get(key, ips.default_band if ips is not None else None)
        lower = max(ZERO, target - band) if target is not None and band is not None else None
        upper = min(Decimal(1), target + band) if target is not None and band is not None else None
        rows.append(
            AllocationRow(
                key=key,
                label=names.get(key, key.replace("_", " ").capitalize()),
                target=target,
                lower=lower,
                upper=upper,
                before=_dec(b.get("weight")),
                after=_dec(a.get("weight")),
            )
        )
    return tuple(rows)


def _accounts(trades: list[ProposalTrade]) -> tuple[AccountSection, ...]:
    sections: dict[int, list[ProposalTrade]] = {}
    for t in trades:
        sections.setdefault(t.account_id, []).append(t)
    out = []
    for rows in sections.values():
        account = rows[0].account
        taxable = account.tax_treatment == "taxable"
        lines = []
        for t in sorted(rows, key=lambda r: (r.side != "sell", r.security.symbol)):
            lots = _lot_instructions(t, {}) if t.side == "sell" else ()
            lines.append(
                TradeLine(
                    side="buy" if t.side == "buy" else "sell",
                    symbol=t.security.symbol,
                    security_name=t.security.name,
                    shares=t.shares,
                    price=t.price,
                    estimated_value=t.estimated_value,
                    realized_short_term=t.realized_short_term
                    if t.side == "sell" and taxable
                    else None,
                    realized_long_term=t.realized_long_term
                    if t.side == "sell" and taxable
                    else None,
                    lots=lots,
                )
            )
        out.append(
            AccountSection(
                label=account.name,
                custodian_name=account.custodian.name,
                account_number_masked="****" + account.number[-4:],
                registration=account.get_registration_display(),
                tax_treatment=account.get_tax_treatment_display(),
                trades=tuple(lines),
                buys=sum((t.estimated_value for t in rows if t.side == "buy"), ZERO),
                sells=sum((t.estimated_value for t in rows if t.side == "sell"), ZERO),
            )
        )
    return tuple(sorted(out, key=lambda s: (s.custodian_name, s.label, s.account_number_masked)))


def _realized(proposal: Proposal) -> RealizedSummary:
    after = (proposal.metrics or {}).get("after") or {}
    realized = after.get("realized") or {}
    return RealizedSummary(
        short_term_gains=_dec(realized.get("short_term_gains")),
        short_term_losses=_dec(realized.get("short_term_losses")),
        long_term_gains=_dec(realized.get("long_term_gains")),
        long_term_losses=_dec(realized.get("long_term_losses")),
        net=_dec(realized.get("net")),
        estimated_tax=_dec(after.get("estimated_tax"), proposal.estimated_tax),
        tax_deferred=_dec(after.get("realized_tax_deferred")),
    )


def _restriction_text(r: Restriction) -> str:
    what = r.get_kind_display()
    if r.kind == "max_weight" and r.max_weight is not None:
        what = f"At most {(r.max_weight * 100).quantize(Decimal('0.1'))}% in"
    where = f" in account ****{r.account.number[-4:]}" if r.account is not None else ""
    reason = r.get_reason_display().lower()
    note = f" ({r.note})" if r.note else ""
    return f"{what} {r.security.symbol}{where}: {reason}{note}."


def _ips(proposal: Proposal) -> IpsExcerpt | None:
    ips = proposal.run.ips
    if ips is None:
        return None
    names = _class_names()
    targets = []
    for t in ips.targets.select_related("asset_class", "security"):
        band = t.band if t.band is not None else ips.default_band
        key = t.asset_class.code if t.asset_class else t.security.symbol  # type: ignore[union-attr]
        label = names.get(key, key) if t.asset_class else f"{key} ({t.security.name})"  # type: ignore[union-attr]
        targets.append(
            AllocationRow(
                key=key,
                label=label,
                target=t.weight,
                lower=max(ZERO, t.weight - band),
                upper=min(Decimal(1), t.weight + band),
                before=ZERO,
                after=ZERO,
            )
        )
    restrictions = [
        _restriction_text(r)
        for r in Restriction.objects.filter(household=proposal.household)
        .select_related("security", "account")
        .order_by("security__symbol", "kind", "pk")
        if r.in_force(proposal.as_of)
    ]
    return IpsExcerpt(
        version=ips.version,
        effective_date=ips.effective_date,
        objectives=ips.objectives,
        targets=tuple(targets),
        restrictions=tuple(restrictions),
    )


def _approvals(proposal: Proposal) -> tuple[ApprovalLine, ...]:
    return tuple(
        ApprovalLine(
            step=a.get_step_display(),
            name=person(a.approver),
            role=a.role.capitalize(),
            at=a.created_at,
            comment=a.comment,
        )
        for a in proposal.approvals.select_related("approver").order_by("created_at", "id")
    )


def rationale_document(
    proposal: Proposal,
    *,
    trades: list[ProposalTrade],
    generated_at: dt.datetime,
    explanation: tuple[str, ...],
    explanation_source: str,
) -> RationaleDocument:
    metrics = proposal.metrics or {}
    before = metrics.get("before") or {}
    after = metrics.get("after") or {}
    household = proposal.household
    clients = tuple(str(c) for c in household.clients.order_by("pk"))
    ips = proposal.run.ips
    approvals = _approvals(proposal)
    return RationaleDocument(
        proposal_id=proposal.pk,
        firm_name=household.firm.name,
        household_name=household.name,
        client_names=clients,
        adviser_name=person(proposal.prepared_by),
        scenario_label=scenario_label(proposal),
        as_of=proposal.as_of,
        approved_at=proposal.decided_at,
        generated_at=generated_at,
        snapshot_sha256=proposal.snapshot_sha256,
        explanation=explanation,
        explanation_source=explanation_source,
        allocation=_allocation(proposal, ips),
        accounts=_accounts(trades),
        realized=_realized(proposal),
        tracking_error_before=_dec(before.get("tracking_error")),
        tracking_error_after=_dec(after.get("tracking_error")),
        turnover=proposal.turnover,
        trading_cost=proposal.trading_cost,
        tickets=len(trades),
        constraints=tuple(
            str(b["text"]) for b in proposal.binding_constraints or () if b.get("text")
        ),
        ips=_ips(proposal),
        approvals=approvals,
    )
