"""Who may see proposals, runs and approvals. Same rules as ``accounts.access``: outside the
user's firm (or, for a client, outside their household) every lookup is a 404.

- advisers and compliance read every proposal and run of their firm;
- a client reads only the approved (or exported) proposals of their own household, and no run;
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
from portal.models import CLIENT_VISIBLE_STATUSES, Proposal, ProposalApproval


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
