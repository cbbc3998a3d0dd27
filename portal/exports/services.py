"""Export an approved proposal: the one write path of every export file (see docs/exports.md).

``export_proposal`` renders everything in memory first (trade files after validating every
order against the custodian's rules, the order memorandum, the client PDF, the manifest), then
stores the files, the memoranda and the export record, marks the proposal exported and appends
the audit event, all in one transaction. A refusal writes nothing. A proposal exports once:
calling again returns the stored export, so there is never a second set of orders.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.access import is_firm_staff
from accounts.models import User
from agent.explain import RunFacts, explain
from agent.services import agent_explain, run_spec
from audit.canonical import sha256_hex
from audit.history import acting_as
from audit.services import audit_record, audit_record_atomic
from portal import services as wf
from portal.exports.context import live_trades, order_id, order_set, person, rationale_document
from portal.exports.documents import ExportRefused, OrderSet, RenderedFile
from portal.exports.memorandum import People, manifest_file, memorandum_file
from portal.exports.pdf import render_rationale_pdf
from portal.exports.tradefiles import write_trade_files
from portal.models import (
    ApprovalStep,
    ExportFile,
    OrderMemorandum,
    Proposal,
    ProposalExport,
    ProposalStatus,
)

__all__ = ["ExportRefused", "client_explanation", "export_proposal", "record_download"]


def _who(user: User | None) -> str:
    if user is None:
        return ""
    return f"{person(user)} ({user.username}, {user.role})"


def _edited_result(proposal: Proposal) -> dict[str, Any]:
    """The run's result with the proposal's current trades and figures (after an edit)."""
    assert proposal.run.result is not None
    result = json.loads(proposal.run.result.text)
    trades = []
    for t in live_trades(proposal):
        trades.append(
            {
                "account": t.snapshot_account,
                "symbol": t.security.symbol,
                "side": t.side,
                "shares": str(t.shares),
                "price": str(t.price),
                "estimated_value": str(t.estimated_value),
                "cost": str(t.cost),
                "ticket_fee": str(t.ticket_fee),
                "realized_gain": None if t.realized_gain is None else str(t.realized_gain),
                "realized_short_term": None
                if t.realized_short_term is None
                else str(t.realized_short_term),
                "realized_long_term": None
                if t.realized_long_term is None
                else str(t.realized_long_term),
                "lots": t.lots,
            }
        )
    result.update(
        trades=trades,
        metrics=proposal.metrics,
        flags=proposal.flags,
        facts=proposal.facts,
        binding_constraints=proposal.binding_constraints,
    )
    return result


def client_explanation(proposal: Proposal, actor: User | None) -> tuple[tuple[str, ...], str]:
    """The plain-language explanation for the client PDF, and where it came from.

    Unedited: the run's recorded client explanation (the model's, checked number by number,
    or the deterministic text; recorded once per result). Edited: the deterministic text of
    the proposal's current trades and figures (the run's explanation no longer describes
    them)."""
    run = proposal.run
    if proposal.edited:
        text = explain(
            RunFacts(state="ok", result=_edited_result(proposal), spec=run_spec(run)), "client"
        )
        source = "deterministic"
    else:
        interaction = agent_explain(run=run, audience="client", actor=actor)
        text, source = interaction.text, interaction.source
    paragraphs = tuple(p.strip() for p in text.split("\n\n") if p.strip())
    return paragraphs, source


def _require_approved(proposal: Proposal) -> None:
    if proposal.status != ProposalStatus.APPROVED:
        raise wf.InvalidTransition(
            f"Proposal {proposal.pk} is {proposal.get_status_display().lower()}; only an "
            "approved proposal is exported."
        )


def _store(export: ProposalExport, position: int, f: RenderedFile) -> ExportFile:
    return ExportFile.objects.create(
        export=export,
        position=position,
        kind=f.kind,
        name=f.name,
        content_type=f.content_type,
        content=f.content,
        sha256=sha256_hex(f.content),
        size=len(f.content),
        order_count=f.order_count,
        total_shares=f.total_shares,
    )


def _approvers(proposal: Proposal) -> tuple[User, User | None]:
    """Who approved (the first approver, else who decided) and the four-eyes second approver."""
    steps = {a.step: a.approver for a in proposal.approvals.select_related("approver")}
    first = steps.get(ApprovalStep.FIRST) or proposal.decided_by
    assert first is not None, "an approved proposal has an approver"
    return first, steps.get(ApprovalStep.SECOND)


def render_export(
    proposal: Proposal,
    *,
    actor: User,
    entered_at: dt.datetime,
    explanation: tuple[str, ...],
    explanation_source: str,
) -> tuple[OrderSet, list[RenderedFile]]:
    """Every file of the export, in memory, in their fixed order (manifest last). Raises
    ``ExportRefused`` naming every order that breaks a custodian's rule."""
    trades = live_trades(proposal)
    orders = order_set(proposal, trades=trades, entered_at=entered_at)
    files = list(write_trade_files(orders))
    first, second = _approvers(proposal)
    people = People(
        recommended_by=_who(proposal.prepared_by),
        approved_by=_who(first),
        second_approved_by=_who(second),
        placed_by=_who(actor),
    )
    accounts = {t.account.number: t.account.discretionary for t in trades}
    files.append(memorandum_file(orders, people, accounts))
    doc = rationale_document(
        proposal,
        trades=trades,
        generated_at=entered_at,
        explanation=explanation,
        explanation_source=explanation_source,
    )
    files.insert(0, render_rationale_pdf(doc))
    header = {
        "snapshot_sha256": proposal.snapshot_sha256,
        "proposal_version": proposal.version,
        "exported_by": _who(actor),
    }
    files.append(manifest_file(orders, [(f, sha256_hex(f.content)) for f in files], header=header))
    return orders, files


def export_proposal(
    *, proposal: Proposal, actor: User, now: dt.datetime | None = None
) -> ProposalExport:
    """Export an approved proposal (idempotent: an exported proposal returns its export)."""
    proposal = Proposal.objects.select_related(
        "household__firm", "run__result", "prepared_by", "decided_by"
    ).get(pk=proposal.pk)
    existing = ProposalExport.objects.filter(proposal=proposal).first()
    if existing is not None:
        if not is_firm_staff(actor) or actor.firm_id != proposal.household.firm_id:
            raise PermissionDenied("Only the firm's staff see an export's files.")
        return existing
    wf._require_adviser(actor, proposal, "export this proposal")
    _require_approved(proposal)
    explanation, source = client_explanation(proposal, actor)
    entered_at = (now or timezone.now()).replace(microsecond=0)
    with transaction.atomic():
        p = wf._lock(proposal)
        done = ProposalExport.objects.filter(proposal=p).first()
        if done is not None:  # a concurrent click won
            return done
        _require_approved(p)
        orders, files = render_export(
            p,
            actor=actor,
            entered_at=entered_at,
            explanation=explanation,
            explanation_source=source,
        )
        manifest = files[-1]
        export = ProposalExport(
            proposal=p,
            proposal_version=p.version,
            exported_by=actor,
            entered_at=entered_at,
            snapshot_sha256=p.snapshot_sha256,
            manifest_sha256=sha256_hex(manifest.content),
            order_count=len(orders.orders),
            block_count=len(orders.blocks),
            total_shares=sum((o.quantity for o in orders.orders), Decimal(0)),
        )
        with acting_as(actor):
            export.full_clean()
            export.save()
            for position, f in enumerate(files, start=1):
                _store(export, position, f)
            _memoranda(export, p, orders, actor, entered_at)
        audit_record(
            actor=actor,
            event_type="export.created",
            firm=p.household.firm,
            obj=export,
            data={
                "proposal": p.pk,
                "household": p.household_id,
                "proposal_version": p.version,
                "entered_at": entered_at,
                "manifest_sha256": export.manifest_sha256,
                "orders": export.order_count,
                "blocks": export.block_count,
                "total_shares": str(export.total_shares),
                "files": [
                    {"name": f.name, "kind": f.kind, "sha256": sha256_hex(f.content)} for f in files
                ],
            },
        )
        wf.proposal_mark_exported(proposal=p, actor=actor, files=[f.name for f in files])
    return export


def _memoranda(
    export: ProposalExport,
    proposal: Proposal,
    orders: OrderSet,
    actor: User,
    entered_at: dt.datetime,
) -> None:
    trades = {order_id(proposal, t): t for t in live_trades(proposal)}
    first, second = _approvers(proposal)
    for o in orders.orders:
        trade = trades[o.order_id]
        memo = OrderMemorandum(
            export=export,
            proposal=proposal,
            trade=trade,
            order_id=o.order_id,
            block_id=o.block_id,
            account=trade.account,
            account_number=o.account_number,
            custodian=o.custodian,
            security=trade.security,
            symbol=o.symbol,
            side=o.side,
            quantity=o.quantity,
            order_type=o.order_type,
            time_in_force=o.time_in_force,
            limit_price=o.limit_price,
            estimated_price=o.price,
            estimated_value=o.estimated_value,
            lots=[
                {
                    "lot_ref": lot.lot_ref,
                    "acquired": lot.acquired.isoformat(),
                    "shares": str(lot.shares),
                    "cost_basis": str(lot.cost_basis),
                    "term": lot.term,
                }
                for lot in o.lots
            ],
            recommended_by=proposal.prepared_by,
            approved_by=first,
            second_approved_by=second,
            placed_by=actor,
            entered_at=entered_at,
            discretionary=trade.account.discretionary,
        )
        memo.full_clean()
        memo.save()


def record_download(*, file: ExportFile, actor: User) -> None:
    """An audit event for a download (who took which file, by its hash)."""
    proposal = file.export.proposal
    audit_record_atomic(
        actor=actor,
        event_type="export.downloaded",
        firm=proposal.household.firm,
        obj=file.export,
        data={
            "proposal": proposal.pk,
            "household": proposal.household_id,
            "file": file.name,
            "kind": file.kind,
            "sha256": file.sha256,
        },
    )
