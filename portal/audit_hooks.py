"""What the proposal workflow adds to the audit tools (docs/audit.md): its records in the exam
package and on record-history pages, the proposal's edits and approvals on the run
reconstruction page (with their audit events on the run's timeline), and proposals waiting
for a compliance approver in the four-eyes queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import reverse

from audit.asof import register_history_model
from audit.compliance import PendingApproval, register_pending_approvals
from audit.export import model_exporter, register_exporter
from audit.reconstruction import ReconstructionSection, SectionLink, register_reconstruction_section
from optimizer.models import OptimizationRun
from portal.models import Proposal, ProposalStatus


def proposal_section(run: OptimizationRun) -> ReconstructionSection | None:
    proposal = Proposal.objects.filter(run=run).select_related("prepared_by", "decided_by").first()
    if proposal is None:
        return None
    rows: list[list[Any]] = [
        [
            SectionLink(f"Proposal {proposal.pk}", reverse("proposal_detail", args=[proposal.pk])),
            "staged",
            str(proposal.prepared_by),
            proposal.created_at.isoformat(),
            f"status {proposal.status}, version {proposal.version}",
        ]
    ]
    for edit in proposal.edits.select_related("editor").order_by("created_at", "id"):
        rows.append(
            [
                f"Proposal {proposal.pk}",
                f"edit v{edit.from_version} -> v{edit.to_version}",
                str(edit.editor),
                edit.created_at.isoformat(),
                "; ".join(str(c) for c in edit.changes) or edit.note,
            ]
        )
    for approval in proposal.approvals.select_related("approver").order_by("created_at", "id"):
        rows.append(
            [
                f"Proposal {proposal.pk}",
                f"{approval.step} approval ({approval.role}) of v{approval.proposal_version}",
                str(approval.approver),
                approval.created_at.isoformat(),
                approval.comment,
            ]
        )
    if proposal.decided_at and proposal.status in (
        ProposalStatus.REJECTED,
        ProposalStatus.WITHDRAWN,
    ):
        rows.append(
            [
                f"Proposal {proposal.pk}",
                proposal.status,
                str(proposal.decided_by),
                proposal.decided_at.isoformat(),
                proposal.decision_comment,
            ]
        )
    return ReconstructionSection(
        key="proposal",
        title="Proposal: edits and approvals",
        columns=("Proposal", "What", "Who", "When", "Detail"),
        rows=rows,
        audit_objects=[("portal.Proposal", str(proposal.pk))],
    )


def pending_four_eyes(firm: Any, user: Any) -> Iterator[PendingApproval]:
    for p in (
        Proposal.objects.filter(
            household__firm=firm, status=ProposalStatus.PENDING_REVIEW, requires_four_eyes=True
        )
        .select_related("household", "prepared_by")
        .order_by("submitted_at", "id")
    ):
        yield PendingApproval(
            title=f"Proposal {p.pk} ({p.scenario})",
            household=p.household.name,
            requested_by=str(p.prepared_by),
            requested_at=p.submitted_at or p.created_at,
            reason="; ".join(str(r) for r in p.four_eyes_reasons),
            href=reverse("proposal_detail", args=[p.pk]),
        )


def register() -> None:
    register_reconstruction_section("proposal", proposal_section, order=110)
    register_pending_approvals("proposals", pending_four_eyes)
    for label, name, firm_lookup, household_lookup in (
        ("portal.Proposal", "proposals", "household__firm_id", "household_id"),
        (
            "portal.ProposalTrade",
            "proposal_trades",
            "proposal__household__firm_id",
            "proposal__household_id",
        ),
        (
            "portal.ProposalApproval",
            "proposal_approvals",
            "proposal__household__firm_id",
            "proposal__household_id",
        ),
        (
            "portal.ProposalEdit",
            "proposal_edits",
            "proposal__household__firm_id",
            "proposal__household_id",
        ),
    ):
        register_exporter(name, model_exporter(label, name=name, firm_lookup=firm_lookup))
        register_history_model(label, firm_lookup=firm_lookup, household_lookup=household_lookup)
