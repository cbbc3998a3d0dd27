"""Exports of approved proposals: the export action and file downloads (thin views over
``portal.access`` and ``portal.exports.services``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from accounts.access import can_change_household
from portal import services as wf
from portal.access import export_file_for_user_or_404, proposal_for_user_or_404
from portal.exports.services import ExportRefused, export_proposal, record_download
from portal.forms import WithdrawForm
from portal.models import ExportFile, ProposalExport
from portal.views_proposals import _refused, _render_proposal


@login_required
@require_POST
def proposal_export(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Export an approved proposal (the PDF, trade files, memorandum and manifest). Exporting
    again shows the stored export: there is never a second set of orders."""
    proposal = proposal_for_user_or_404(request.user, pk)
    user: Any = request.user
    if not can_change_household(user, proposal.household):
        raise PermissionDenied(f"Only an adviser assigned to {proposal.household} exports.")
    if ProposalExport.objects.filter(proposal=proposal).exists():
        messages.info(request, "This proposal was exported already; its files are below.")
        return redirect("proposal_detail", pk=proposal.pk)
    form = WithdrawForm(request.POST)  # carries the version the adviser saw
    if not form.is_valid():
        return _render_proposal(request, proposal, status=400)
    if form.cleaned_data["version"] != proposal.version:
        return _refused(
            request,
            proposal,
            wf.VersionConflict(
                f"Proposal {proposal.pk} changed while you were looking at it. Reload and try "
                "again."
            ),
        )
    try:
        export = export_proposal(proposal=proposal, actor=user)
    except ExportRefused as exc:
        refusal = wf.EditRefused(exc.message, exc.problems)
        return _refused(request, proposal, refusal)
    except wf.WorkflowError as exc:
        return _refused(request, proposal, exc)
    orders = f"{export.order_count} order{'s' if export.order_count != 1 else ''}"
    blocks = f"{export.block_count} block{'s' if export.block_count != 1 else ''}"
    messages.success(
        request,
        f"Exported {orders} in {blocks}; {export.files.count()} files recorded with their SHA-256.",
    )
    return redirect("proposal_detail", pk=proposal.pk)


@login_required
@require_GET
def export_file_download(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """The stored bytes of one exported file (identical on every download)."""
    meta = export_file_for_user_or_404(request.user, pk, name)
    return stored_file_response(meta, request.user, inline_pdf=True)


def stored_file_response(meta: ExportFile, actor: Any, *, inline_pdf: bool) -> HttpResponse:
    """A file's stored bytes with its SHA-256 (``X-Content-SHA256``, ``ETag``); the download is
    recorded as an audit event. ``meta`` is the file without its bytes (as the access helpers
    give it), already checked for ``actor``."""
    content = ExportFile.objects.only("content").get(pk=meta.pk).content
    record_download(file=meta, actor=actor)
    response = HttpResponse(bytes(content), content_type=meta.content_type)
    inline = inline_pdf and meta.content_type == "application/pdf"
    response["Content-Disposition"] = (
        f'{"inline" if inline else "attachment"}; filename="{meta.name}"'
    )
    response["Content-Length"] = str(meta.size)
    response["ETag"] = f'"{meta.sha256}"'
    response["X-Content-SHA256"] = meta.sha256
    response["Cache-Control"] = "private, no-store"
    return response
