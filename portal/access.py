"""Who may see proposals, runs and approvals. Same rules as ``accounts.access``: outside the
user's firm (or, for a client, outside their household) every lookup is a 404.

- advisers and compliance read every proposal and run of their firm;
- a client reads only the approved (or exported) proposals of their own household, and no run;
- exported files: firm staff read every file of their firm's exports; a client reads only the
  client PDF of their own household's approved proposals (every other file is a 404);
- order memoranda and export records: firm staff only;
- who may *change* a proposal (stage, edit, submit, approve, reject, withdraw) is decided by the
  services in ``portal.services`` (an assigned adviser; compliance for the second approval).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from accounts.access import is_firm_staff
from accounts.models import Role
from optimizer.models import OptimizationRun
from portal.models import (
    CLIENT_FILE_KINDS,
    CLIENT_VISIBLE_STATUSES,
    ExportFile,
    OrderMemorandum,
    Proposal,
    ProposalApproval,
    ProposalExport,
)


def proposals_visible(user: Any) -> QuerySet[Proposal]:
    if is_firm_staff(user):
        return Proposal.objects.filter(household__firm_id=user.firm_id)
    if (
        getattr(user, "is_authenticated", False)
        and user.role == Role.CLIENT
        and user.household_id is not None
    ):
        return Proposal.objects.filter(
            household_id=user.household_id,
            household__firm_id=user.firm_id,
            status__in=CLIENT_VISIBLE_STATUSES,
        )
    return Proposal.objects.none()


def proposal_for_user_or_404(user: Any, pk: int) -> Proposal:
    proposal = (
        proposals_visible(user)
        .filter(pk=pk)
        .select_related("household__firm", "run", "prepared_by", "decided_by")
        .first()
    )
    if proposal is None:
        raise Http404("No such proposal")
    return proposal


def runs_visible(user: Any) -> QuerySet[OptimizationRun]:
    if not is_firm_staff(user):
        return OptimizationRun.objects.none()
    return OptimizationRun.objects.filter(household__firm_id=user.firm_id)


def run_for_user_or_404(user: Any, pk: int) -> OptimizationRun:
    run = runs_visible(user).filter(pk=pk).select_related("household__firm").first()
    if run is None:
        raise Http404("No such run")
    return run


def approvals_visible(user: Any) -> QuerySet[ProposalApproval]:
    return ProposalApproval.objects.filter(proposal__in=proposals_visible(user))


def approval_for_user_or_404(user: Any, pk: int) -> ProposalApproval:
    approval = approvals_visible(user).filter(pk=pk).first()
    if approval is None:
        raise Http404("No such approval")
    return approval


def exports_visible(user: Any) -> QuerySet[ProposalExport]:
    if not is_firm_staff(user):
        return ProposalExport.objects.none()
    return ProposalExport.objects.filter(proposal__household__firm_id=user.firm_id)


def export_files_visible(user: Any) -> QuerySet[ExportFile]:
    """Files a user may list and download (without loading their bytes)."""
    files = ExportFile.objects.defer("content")
    if is_firm_staff(user):
        return files.filter(export__proposal__household__firm_id=user.firm_id)
    if getattr(user, "is_authenticated", False) and user.role == Role.CLIENT:
        return files.filter(
            kind__in=CLIENT_FILE_KINDS, export__proposal__in=proposals_visible(user)
        )
    return ExportFile.objects.none()


def export_file_for_user_or_404(user: Any, proposal_pk: int, name: str) -> ExportFile:
    file = (
        export_files_visible(user)
        .filter(export__proposal_id=proposal_pk, name=name)
        .select_related("export__proposal__household__firm")
        .first()
    )
    if file is None:
        raise Http404("No such file")
    return file


def memoranda_visible(user: Any) -> QuerySet[OrderMemorandum]:
    if not is_firm_staff(user):
        return OrderMemorandum.objects.none()
    return OrderMemorandum.objects.filter(proposal__household__firm_id=user.firm_id)
