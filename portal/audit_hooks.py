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
from audit.export import (
    ExportContext,
    ExportFile,
    model_exporter,
    register_exporter,
    table_files,
)
from audit.reconstruction import ReconstructionSection, SectionLink, register_reconstruction_section
from optimizer.models import OptimizationRun
from portal.models import ExportFile as StoredExportFile
from portal.models import Proposal, ProposalExport, ProposalStatus


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


def exports_section(run: OptimizationRun) -> ReconstructionSection | None:
    export = (
        ProposalExport.objects.filter(proposal__run=run)
        .select_related("exported_by", "proposal")
        .first()
    )
    if export is None:
        return None
    who = str(export.exported_by)
    when = export.entered_at.isoformat()
    rows: list[list[Any]] = []
    for f in StoredExportFile.objects.filter(export=export).defer("content").order_by("position"):
        totals = (
            f"{f.order_count} orders, {f.total_shares.normalize():f} shares; "
            if f.order_count
            else ""
        )
        rows.append(
            [
                SectionLink(f.name, reverse("export_file", args=[export.proposal_id, f.name])),
                f.get_kind_display(),
                who,
                when,
                f"{totals}SHA-256 {f.sha256}",
            ]
        )
    for m in export.memoranda.select_related(
        "recommended_by", "approved_by", "second_approved_by", "placed_by"
    ):
        approved = str(m.approved_by) + (
            f" and {m.second_approved_by}" if m.second_approved_by else ""
        )
        rows.append(
            [
                m.order_id,
                "order memorandum",
                str(m.placed_by),
                m.entered_at.isoformat(),
                f"{m.side} {m.quantity.normalize():f} {m.symbol} in {m.account_number} "
                f"(block {m.block_id}); recommended by {m.recommended_by}, approved by "
                f"{approved}; discretionary: {'yes' if m.discretionary else 'no'}",
            ]
        )
    return ReconstructionSection(
        key="exports",
        title=f"Exports (manifest SHA-256 {export.manifest_sha256})",
        columns=("File or order", "What", "Who", "When", "Detail"),
        rows=rows,
        audit_objects=[("portal.ProposalExport", str(export.pk))],
    )


def exported_files(ctx: ExportContext) -> list[ExportFile]:
    """The exported files themselves (byte for byte) and a table of their hashes, for the
    exports entered in the range."""
    files = (
        StoredExportFile.objects.filter(
            export__proposal__household__firm=ctx.firm,
            export__entered_at__gte=ctx.start,
            export__entered_at__lt=ctx.end,
        )
        .select_related("export")
        .order_by("export__proposal_id", "position")
    )
    out: list[ExportFile] = []
    rows = []
    for f in files:
        path = f"exports/proposal-{f.export.proposal_id}/{f.name}"
        out.append(ExportFile(path, bytes(f.content)))
        rows.append(
            {
                "proposal": f.export.proposal_id,
                "export": f.export_id,
                "path": path,
                "kind": f.kind,
                "name": f.name,
                "sha256": f.sha256,
                "size": f.size,
                "order_count": f.order_count,
                "total_shares": f.total_shares,
                "entered_at": f.export.entered_at,
            }
        )
    columns = (
        "proposal",
        "export",
        "path",
        "kind",
        "name",
        "sha256",
        "size",
        "order_count",
        "total_shares",
        "entered_at",
    )
    return [*table_files("exports/files", columns, rows), *out]


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
    register_reconstruction_section("exports", exports_section, order=120)
    register_pending_approvals("proposals", pending_four_eyes)
    register_exporter("exported_files", exported_files)
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
        (
            "portal.ProposalExport",
            "proposal_exports",
            "proposal__household__firm_id",
            "proposal__household_id",
        ),
        (
            "portal.OrderMemorandum",
            "order_memoranda",
            "proposal__household__firm_id",
            "proposal__household_id",
        ),
    ):
        register_exporter(name, model_exporter(label, name=name, firm_lookup=firm_lookup))
        register_history_model(label, firm_lookup=firm_lookup, household_lookup=household_lookup)
