"""The proposal workflow: the only way a proposal changes (see ``docs/proposals.md``).

Every service is keyword-only, atomic, takes ``actor=``, locks the proposal row
(``select_for_update``) and checks ``expected_version`` when given, writes history on the
actor's behalf and appends its audit event in the same transaction. Refusals raise
``WorkflowError`` subclasses (a state or data problem, with an HTTP status for the views and
the API) or ``PermissionDenied`` (the actor's role does not allow it).

States::

    draft --submit--> pending_review
    draft | pending_review --approve (adviser)--> approved
                                     (four-eyes: stays pending_review until compliance approves)
    draft | pending_review --reject--> rejected
    draft | pending_review --withdraw--> withdrawn
    draft | pending_review --(newer proposal for the household / scenario)--> superseded
    approved --mark_exported--> exported
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import can_change_household
from accounts.models import Firm, Role, Security, User
from agent.render import format_money, format_percent
from audit.history import acting_as
from audit.services import audit_record
from optimizer.core.result import Trade, cents
from optimizer.core.snapshot import Snapshot
from optimizer.models import OptimizationRun, RunStatus
from optimizer.services import run_request
from portal import figures as fig
from portal.models import (
    OPEN_STATUSES,
    ApprovalStep,
    Proposal,
    ProposalApproval,
    ProposalEdit,
    ProposalStatus,
    ProposalTrade,
)
from portal.selectors import stale_changes

ZERO = Decimal(0)
WEIGHT = Decimal("0.000001")


class WorkflowError(Exception):
    """A refused workflow step; ``status`` is the HTTP status views and the API answer with."""

    status = 409

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class InvalidTransition(WorkflowError):
    status = 409


class VersionConflict(WorkflowError):
    status = 409


class StaleData(WorkflowError):
    """Lots, prices, cash, restrictions or the IPS changed after the run's snapshot."""

    status = 409


class EditRefused(WorkflowError):
    status = 400


# --------------------------------------------------------------------------- helpers


def _lock(proposal: Proposal) -> Proposal:
    """The proposal's row, locked until the transaction ends (concurrent writers queue here)."""
    return (
        Proposal.objects.select_for_update(of=("self",))
        .select_related("household__firm", "run__snapshot", "run__result", "prepared_by")
        .get(pk=proposal.pk)
    )


def _check_version(proposal: Proposal, expected_version: int | None) -> None:
    if expected_version is not None and proposal.version != expected_version:
        raise VersionConflict(
            f"Proposal {proposal.pk} changed while you were looking at it (it is at version "
            f"{proposal.version}, you saw version {expected_version}). Reload and try again."
        )


def _require_adviser(actor: User | None, proposal_or_household: Any, what: str) -> User:
    household = getattr(proposal_or_household, "household", proposal_or_household)
    if actor is None or not can_change_household(actor, household):
        raise PermissionDenied(f"Only an adviser assigned to {household} may {what}.")
    return actor


def _require_open(proposal: Proposal, what: str) -> None:
    if proposal.status not in OPEN_STATUSES:
        raise InvalidTransition(
            f"Proposal {proposal.pk} is {proposal.get_status_display().lower()}; it can no "
            f"longer be {what}."
        )


def _save(proposal: Proposal, actor: User | None, *, bump: bool = True) -> None:
    if bump:
        proposal.version += 1
    proposal.full_clean()
    with acting_as(actor):
        proposal.save()


def _audit(
    proposal: Proposal, actor: User | None, event: str, data: dict[str, Any] | None = None
) -> None:
    audit_record(
        actor=actor,
        event_type=event,
        firm=proposal.household.firm,
        obj=proposal,
        data={
            "household": proposal.household_id,
            "run": proposal.run_id,
            "status": proposal.status,
            "version": proposal.version,
            **(data or {}),
        },
    )


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def four_eyes_reasons(
    *,
    firm: Firm,
    realized_net: Decimal,
    turnover: Decimal,
    short_term_gain: Decimal,
    restricted: Sequence[str],
) -> list[str]:
    """Why the firm's policy requires a compliance officer's second approval (empty: it does
    not). Gains are net realized gains in taxable accounts; short-term gains are the gains of
    short-term lot sales in taxable accounts before losses; turnover is (buys + sells) / 2V."""
    reasons: list[str] = []
    gain_cap = firm.four_eyes_gain_threshold
    if gain_cap is not None and realized_net > gain_cap:
        reasons.append(
            f"Net realized gains of {format_money(realized_net)} exceed the firm's "
            f"{format_money(gain_cap)} threshold."
        )
    turnover_cap = firm.four_eyes_turnover_threshold
    if turnover_cap is not None and turnover > turnover_cap:
        reasons.append(
            f"Turnover of {format_percent(turnover.quantize(Decimal('0.0001')))} exceeds the "
            f"firm's {format_percent(turnover_cap.normalize())} threshold."
        )
    if firm.four_eyes_on_short_term_gain and short_term_gain > 0:
        reasons.append(f"Realizes {format_money(short_term_gain)} of short-term gains.")
    if firm.four_eyes_on_restricted_trade and restricted:
        reasons.append("Trades a restricted security: " + "; ".join(restricted) + ".")
    return reasons


def _apply_figures(
    proposal: Proposal,
    *,
    snapshot: Snapshot,
    trades: list[Trade],
    metrics: dict[str, Any],
    flags: list[dict[str, Any]],
    facts: list[dict[str, Any]],
) -> None:
    after = metrics["after"]
    proposal.metrics = metrics
    proposal.flags = flags
    proposal.facts = facts
    proposal.realized_net = _dec(after["realized"]["net"])
    proposal.realized_short_term_gain = _dec(after["realized"]["short_term_gains"])
    proposal.estimated_tax = _dec(after["estimated_tax"])
    proposal.turnover = _dec(after["turnover"]).quantize(WEIGHT)
    proposal.trading_cost = _dec(after["trading_cost"])
    proposal.tickets = int(after["tickets"])
    proposal.restricted_symbols = fig.restricted_trades(snapshot, trades)
    proposal.four_eyes_reasons = four_eyes_reasons(
        firm=proposal.household.firm,
        realized_net=proposal.realized_net,
        turnover=proposal.turnover,
        short_term_gain=proposal.realized_short_term_gain,
        restricted=proposal.restricted_symbols,
    )
    proposal.requires_four_eyes = bool(proposal.four_eyes_reasons)


def _supersede(proposal: Proposal, *, by: Proposal, actor: User | None, why: str) -> None:
    proposal.status = ProposalStatus.SUPERSEDED
    proposal.superseded_by = by
    _save(proposal, actor)
    _audit(proposal, actor, "proposal.superseded", {"superseded_by": by.pk, "why": why})


# --------------------------------------------------------------------------- staging


def proposal_stage(*, run: OptimizationRun, actor: User) -> Proposal:
    """Stage a draft proposal from a succeeded run (one proposal per run: staging the same run
    again returns the proposal already staged). Older open proposals of the same household and
    scenario are superseded by it."""
    existing = Proposal.objects.filter(run_id=run.pk).first()
    if existing is not None:
        return existing
    try:
        return _stage(run=run, actor=actor)
    except IntegrityError:
        return Proposal.objects.get(run_id=run.pk)


@transaction.atomic
def _stage(*, run: OptimizationRun, actor: User) -> Proposal:
    run = (
        OptimizationRun.objects.select_for_update(of=("self",))
        .select_related("household__firm", "snapshot", "result")
        .get(pk=run.pk)
    )
    _require_adviser(actor, run.household, "stage a proposal")
    existing = Proposal.objects.filter(run=run).first()
    if existing is not None:
        return existing
    if run.status != RunStatus.SUCCEEDED:
        raise InvalidTransition(
            f"Run {run.pk} is {run.get_status_display().lower()}; only a succeeded run can be "
            "staged."
        )
    result = fig.result_of(run)
    if not result["trades"]:
        raise InvalidTransition(f"Run {run.pk} proposes no trades: there is nothing to stage.")
    snapshot = fig.snapshot_of(run)
    index = fig.BookIndex.of(run.household)
    lots = {lt.lot_id: lt for lt in snapshot.lots}
    securities = {
        s.symbol: s
        for s in Security.objects.filter(symbol__in={t["symbol"] for t in result["trades"]})
    }
    core_trades: list[Trade] = []
    rows: list[ProposalTrade] = []
    for position, t in enumerate(result["trades"], start=1):
        sales = [
            fig.lot_sale(snapshot, lots[x["lot_id"]], _dec(x["shares"])) for x in t.get("lots", [])
        ]
        trade = fig.core_trade(
            snapshot,
            account=t["account"],
            symbol=t["symbol"],
            side=t["side"],
            shares=_dec(t["shares"]),
            lots=sales,
        )
        core_trades.append(trade)
        account = index.accounts[t["account"]]
        stored_lots = fig.lot_rows(trade.lots, index, snapshot)
        security = securities[t["symbol"]]
        rows.append(
            ProposalTrade(
                position=position,
                account=account,
                security=security,
                snapshot_account=t["account"],
                side=t["side"],
                shares=trade.shares,
                original_shares=trade.shares,
                price=trade.price,
                estimated_value=_dec(t["estimated_value"]),
                cost=trade.cost,
                ticket_fee=trade.ticket_fee,
                realized_gain=_dec(t["realized_gain"]) if t["side"] == "sell" else None,
                realized_short_term=_dec(t["realized_short_term"]) if t["side"] == "sell" else None,
                realized_long_term=_dec(t["realized_long_term"]) if t["side"] == "sell" else None,
                lots=stored_lots,
                original_lots=stored_lots,
            )
        )
    proposal = Proposal(
        household=run.household,
        run=run,
        scenario=run.scenario,
        prepared_by=actor,
        snapshot_sha256=run.snapshot_sha256,
        as_of=run.as_of,
        binding_constraints=result["binding_constraints"],
    )
    _apply_figures(
        proposal,
        snapshot=snapshot,
        trades=core_trades,
        metrics=result["metrics"],
        flags=result["flags"],
        facts=result["facts"],
    )
    _save(proposal, actor, bump=False)
    with acting_as(actor):
        for row in rows:
            row.proposal = proposal
            row.full_clean()
            row.save()
    _audit(
        proposal,
        actor,
        "proposal.staged",
        {
            "scenario": run.scenario,
            "snapshot_sha256": run.snapshot_sha256,
            "result_sha256": run.result_sha256,
            "trades": [
                {
                    "account": r.snapshot_account,
                    "symbol": r.security.symbol,
                    "side": r.side,
                    "shares": r.shares,
                }
                for r in rows
            ],
            "realized_net": proposal.realized_net,
            "estimated_tax": proposal.estimated_tax,
            "requires_four_eyes": proposal.requires_four_eyes,
            "four_eyes_reasons": proposal.four_eyes_reasons,
        },
    )
    older = (
        Proposal.objects.select_for_update(of=("self",))
        .filter(household=run.household, scenario=run.scenario, status__in=OPEN_STATUSES)
        .exclude(pk=proposal.pk)
        .select_related("household__firm")
        .order_by("pk")
    )
    for old in older:
        _supersede(old, by=proposal, actor=actor, why="a newer proposal of the same scenario")
    return proposal


# --------------------------------------------------------------------------- editing


@dataclass(frozen=True)
class TradeChange:
    """One change to one trade: drop it, or set its shares (sells re-allocate their lots:
    the optimizer's lots first, lowest gain per share first), or name the lot sales exactly."""

    trade_id: int
    shares: Decimal | None = None
    drop: bool = False
    lots: dict[str, Decimal] = field(default_factory=dict)


@transaction.atomic
def proposal_edit(
    *,
    proposal: Proposal,
    actor: User,
    changes: Sequence[TradeChange],
    expected_version: int | None = None,
    note: str = "",
) -> Proposal:
    """Drop trades or change their shares before approval. The whole trade list is re-checked
    by the optimizer's independent checker (a violation refuses the edit and changes nothing),
    metrics, tax, flags and the four-eyes requirement are recomputed at once. The original
    figures stay on the ``ProposalEdit`` row and in history."""
    p = _lock(proposal)
    _require_adviser(actor, p, "edit this proposal")
    _require_open(p, "edited")
    _check_version(p, expected_version)
    first = p.approvals.select_related("approver").first()
    if first is not None:
        raise InvalidTransition(
            f"Proposal {p.pk} already has {first.approver}'s approval; reject or withdraw it "
            "and stage a new one instead of editing."
        )
    if not changes:
        raise EditRefused("The edit changes nothing.")
    snapshot = fig.snapshot_of(p.run)
    result = fig.result_of(p.run)
    settings = fig.settings_of(result)
    index = fig.BookIndex.of(p.household)
    rows = {t.pk: t for t in p.trades.select_related("security", "account")}
    lots = {lt.lot_id: lt for lt in snapshot.lots}
    problems: list[str] = []
    new_state: dict[int, tuple[Decimal, bool, list[Any]]] = {}
    log: list[dict[str, Any]] = []
    for change in changes:
        row = rows.get(change.trade_id)
        if row is None:
            raise EditRefused(f"Trade {change.trade_id} is not part of proposal {p.pk}.")
        label = f"{row.side} {row.security.symbol} in {row.snapshot_account}"
        if change.drop:
            new_state[row.pk] = (ZERO, True, [])
            log.append(
                {
                    "trade": row.pk,
                    "order": label,
                    "from": str(row.shares),
                    "to": "0",
                    "dropped": True,
                }
            )
            continue
        shares = change.shares
        if change.lots:
            shares = sum(change.lots.values(), ZERO)
        if shares is None or shares <= 0:
            problems.append(f"{label}: shares must be positive (drop the trade to remove it).")
            continue
        sales: list[Any] = []
        if row.side == "sell":
            try:
                if change.lots:
                    for lot_id, lot_shares in sorted(change.lots.items()):
                        lot = lots.get(lot_id)
                        if (
                            lot is None
                            or lot.account != row.snapshot_account
                            or lot.symbol != row.security.symbol
                        ):
                            raise ValueError(f"{label}: lot {lot_id} is not a lot of this position")
                        if lot_shares <= 0:
                            raise ValueError(f"{label}: lot {lot_id} shares must be positive")
                        sales.append(fig.lot_sale(snapshot, lot, lot_shares))
                else:
                    sales = fig.allocate_sale(
                        snapshot,
                        account=row.snapshot_account,
                        symbol=row.security.symbol,
                        shares=shares,
                        preferred=[x["lot_id"] for x in row.original_lots],
                    )
            except ValueError as exc:
                problems.append(str(exc))
                continue
        new_state[row.pk] = (shares, False, sales)
        log.append(
            {
                "trade": row.pk,
                "order": label,
                "from": str(row.shares),
                "to": str(shares),
                "dropped": False,
            }
        )
    if problems:
        raise EditRefused("The edit was refused.", problems)
    core_trades: list[Trade] = []
    for row in rows.values():
        if row.pk in new_state:
            shares, dropped, sales = new_state[row.pk]
        else:
            shares, dropped = row.shares, row.dropped
            sales = [fig.lot_sale(snapshot, lots[x["lot_id"]], _dec(x["shares"])) for x in row.lots]
        if dropped:
            continue
        core_trades.append(
            fig.core_trade(
                snapshot,
                account=row.snapshot_account,
                symbol=row.security.symbol,
                side=row.side,
                shares=shares,
                lots=sales,
            )
        )
    if not core_trades:
        raise EditRefused("An edit cannot drop every trade; withdraw the proposal instead.")
    core_trades.sort(key=lambda t: (t.account, 0 if t.side == "sell" else 1, t.symbol))
    figures = fig.evaluate(snapshot, settings, core_trades)
    if figures.violations:
        raise EditRefused(
            "The edited trade list breaks a hard constraint; nothing was changed.",
            figures.violations,
        )
    metrics_before = p.metrics
    from_version = p.version
    by_key = {(t.account, t.symbol, t.side): t for t in core_trades}
    with acting_as(actor):
        for row in rows.values():
            if row.pk not in new_state:
                continue
            shares, dropped, _ = new_state[row.pk]
            row.dropped = dropped
            row.shares = shares
            trade = by_key.get((row.snapshot_account, row.security.symbol, row.side))
            if trade is None:
                row.lots = []
                row.estimated_value = ZERO
                row.cost = ZERO
                row.ticket_fee = ZERO
                if row.side == "sell":
                    row.realized_gain = row.realized_short_term = row.realized_long_term = ZERO
            else:
                row.lots = fig.lot_rows(trade.lots, index, snapshot)
                row.estimated_value = cents(trade.value)
                row.cost = trade.cost
                row.ticket_fee = trade.ticket_fee
                if row.side == "sell":
                    st = sum((x.realized_gain for x in trade.lots if x.term == "short"), ZERO)
                    row.realized_gain = cents(trade.realized_gain)
                    row.realized_short_term = cents(st)
                    row.realized_long_term = cents(trade.realized_gain - st)
            row.full_clean()
            row.save()
    _apply_figures(
        p,
        snapshot=snapshot,
        trades=core_trades,
        metrics=figures.metrics,
        flags=figures.flags,
        facts=figures.facts,
    )
    p.edited = True
    _save(p, actor)
    edit = ProposalEdit(
        proposal=p,
        editor=actor,
        from_version=from_version,
        to_version=p.version,
        changes=log,
        note=note,
        metrics_before=metrics_before,
        metrics_after=p.metrics,
    )
    edit.full_clean()
    with acting_as(actor):
        edit.save()
    _audit(
        p,
        actor,
        "proposal.edited",
        {
            "edit": edit.pk,
            "changes": log,
            "note": note,
            "realized_net": p.realized_net,
            "estimated_tax": p.estimated_tax,
            "tickets": p.tickets,
            "requires_four_eyes": p.requires_four_eyes,
        },
    )
    return p


# --------------------------------------------------------------------------- transitions


@transaction.atomic
def proposal_submit(
    *, proposal: Proposal, actor: User, expected_version: int | None = None
) -> Proposal:
    """draft -> pending_review: the adviser asks for review."""
    p = _lock(proposal)
    _require_adviser(actor, p, "submit this proposal")
    if p.status != ProposalStatus.DRAFT:
        raise InvalidTransition(
            f"Proposal {p.pk} is {p.get_status_display().lower()}; only a draft is submitted."
        )
    _check_version(p, expected_version)
    p.status = ProposalStatus.PENDING_REVIEW
    p.submitted_at = timezone.now()
    _save(p, actor)
    _audit(p, actor, "proposal.submitted")
    return p


@transaction.atomic
def proposal_approve(
    *,
    proposal: Proposal,
    actor: User,
    comment: str = "",
    expected_version: int | None = None,
) -> Proposal:
    """Approve (or give the second approval). Refused when the data changed after the run's
    snapshot (``StaleData`` lists what changed). Under the firm's four-eyes policy the
    household's adviser approves first and the proposal waits, pending review, for a
    compliance officer who is neither the preparer nor the first approver."""
    p = _lock(proposal)
    _require_open(p, "approved")
    _check_version(p, expected_version)
    first = p.approvals.select_related("approver").filter(step=ApprovalStep.FIRST).first()
    if first is None:
        if actor.role == Role.COMPLIANCE and actor.firm_id == p.household.firm_id:
            raise PermissionDenied(
                "The household's adviser approves first; compliance gives the second approval."
            )
        _require_adviser(actor, p, "approve this proposal")
        step = ApprovalStep.FIRST
    else:
        if not p.requires_four_eyes:  # pragma: no cover - a single approval closes the proposal
            raise InvalidTransition(f"Proposal {p.pk} is already approved.")
        if actor.role != Role.COMPLIANCE or actor.firm_id != p.household.firm_id:
            raise PermissionDenied(
                "This proposal needs a second approval by a compliance officer of the firm "
                f"({'; '.join(p.four_eyes_reasons)})"
            )
        if actor.pk in (p.prepared_by_id, first.approver_id):
            raise PermissionDenied("The second approver cannot be the preparer or first approver.")
        step = ApprovalStep.SECOND
    changes = stale_changes(p)
    if changes:
        raise StaleData(
            "The data changed after this proposal's run; re-run the scenario before approving.",
            changes,
        )
    approval = ProposalApproval(
        proposal=p,
        step=step,
        approver=actor,
        role=actor.role,
        proposal_version=p.version,
        comment=comment,
    )
    approval.full_clean(validate_unique=False)
    with acting_as(actor):
        approval.save()
    final = step == ApprovalStep.SECOND or not p.requires_four_eyes
    if final:
        p.status = ProposalStatus.APPROVED
        p.decided_by = actor
        p.decided_at = timezone.now()
        p.decision_comment = comment
    else:
        p.status = ProposalStatus.PENDING_REVIEW
        p.submitted_at = p.submitted_at or timezone.now()
    _save(p, actor)
    _audit(
        p,
        actor,
        "proposal.approved" if final else "proposal.first_approval",
        {
            "approval": approval.pk,
            "step": step,
            "comment": comment,
            "approved_version": approval.proposal_version,
            "four_eyes_reasons": p.four_eyes_reasons,
        },
    )
    if final:
        siblings = (
            Proposal.objects.select_for_update(of=("self",))
            .filter(household=p.household, status__in=OPEN_STATUSES)
            .exclude(pk=p.pk)
            .select_related("household__firm")
            .order_by("pk")
        )
        for other in siblings:
            _supersede(other, by=p, actor=actor, why="another proposal was approved")
    return p


@transaction.atomic
def proposal_reject(
    *, proposal: Proposal, actor: User, comment: str, expected_version: int | None = None
) -> Proposal:
    """Reject with a reason: the household's adviser, or the compliance officer asked for a
    second approval."""
    p = _lock(proposal)
    _require_open(p, "rejected")
    _check_version(p, expected_version)
    awaiting_compliance = p.requires_four_eyes and p.approvals.exists()
    is_compliance = actor.role == Role.COMPLIANCE and actor.firm_id == p.household.firm_id
    if not (awaiting_compliance and is_compliance):
        _require_adviser(actor, p, "reject this proposal")
    if not comment.strip():
        raise InvalidTransition("Say why the proposal is rejected.")
    p.status = ProposalStatus.REJECTED
    p.decided_by = actor
    p.decided_at = timezone.now()
    p.decision_comment = comment.strip()
    _save(p, actor)
    _audit(p, actor, "proposal.rejected", {"comment": p.decision_comment})
    return p


@transaction.atomic
def proposal_withdraw(
    *, proposal: Proposal, actor: User, comment: str = "", expected_version: int | None = None
) -> Proposal:
    p = _lock(proposal)
    _require_adviser(actor, p, "withdraw this proposal")
    _require_open(p, "withdrawn")
    _check_version(p, expected_version)
    p.status = ProposalStatus.WITHDRAWN
    p.decision_comment = comment.strip()
    _save(p, actor)
    _audit(p, actor, "proposal.withdrawn", {"comment": p.decision_comment})
    return p


@transaction.atomic
def proposal_supersede(
    *, proposal: Proposal, actor: User, by: Proposal, expected_version: int | None = None
) -> Proposal:
    """Mark an open proposal as replaced by a newer one of the same household."""
    p = _lock(proposal)
    _require_adviser(actor, p, "supersede this proposal")
    _require_open(p, "superseded")
    _check_version(p, expected_version)
    if by.household_id != p.household_id or by.pk == p.pk:
        raise InvalidTransition("A proposal is superseded by another proposal of its household.")
    _supersede(p, by=by, actor=actor, why="superseded by the adviser")
    return p


@transaction.atomic
def proposal_mark_exported(
    *, proposal: Proposal, actor: User, files: Sequence[str] = ()
) -> Proposal:
    """approved -> exported (the exports record the files themselves)."""
    p = _lock(proposal)
    _require_adviser(actor, p, "export this proposal")
    if p.status != ProposalStatus.APPROVED:
        raise InvalidTransition(
            f"Proposal {p.pk} is {p.get_status_display().lower()}; only an approved proposal "
            "is exported."
        )
    p.status = ProposalStatus.EXPORTED
    p.exported_at = timezone.now()
    _save(p, actor)
    _audit(p, actor, "proposal.exported", {"files": list(files)})
    return p


def proposal_rerun(*, proposal: Proposal, actor: User) -> OptimizationRun:
    """Request a new run of the proposal's scenario on today's data (offered when the data is
    stale). Idempotent per proposal version: a double click starts one run."""
    with transaction.atomic():
        p = _lock(proposal)
        _require_adviser(actor, p, "re-run this proposal's scenario")
        run = p.run
        new = run_request(
            household=p.household,
            scenario=run.scenario,
            actor=actor,
            idempotency_key=f"rerun-proposal-{p.pk}-v{p.version}",
            overrides=run.overrides,
            request_text=run.request_text,
            solver=run.solver,
        )
        _audit(p, actor, "proposal.rerun_requested", {"new_run": new.pk})
    return new


@dataclass
class BulkOutcome:
    approved: list[Proposal] = field(default_factory=list)
    refused: list[tuple[Proposal, str]] = field(default_factory=list)


def proposal_bulk_approve(
    *, proposals: Iterable[tuple[Proposal, int]], actor: User, comment: str = ""
) -> BulkOutcome:
    """Approve several vanilla proposals after one confirmation, each in its own transaction
    (one refusal does not undo the others). Each entry names the version that was confirmed."""
    outcome = BulkOutcome()
    batch = str(uuid.uuid4())
    for proposal, version in proposals:
        if not proposal.is_vanilla:
            outcome.refused.append((proposal, "needs an individual review"))
            continue
        try:
            done = proposal_approve(
                proposal=proposal,
                actor=actor,
                comment=comment or f"Approved in bulk ({batch[:8]}).",
                expected_version=version,
            )
        except (WorkflowError, PermissionDenied) as exc:
            outcome.refused.append((proposal, getattr(exc, "message", str(exc))))
        else:
            outcome.approved.append(done)
    return outcome
