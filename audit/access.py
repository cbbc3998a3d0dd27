"""Who may see the audit pages. Same rule as ``accounts.access``: what a user may not know
exists is a 404, never a 403 that confirms it.

- compliance pages (event log, history diffs, verification, export, runs): compliance officers
  of the firm only; everyone else (advisers included) gets 404;
- a run's reconstruction, a household as of a past moment and a record's history: compliance
  and the advisers assigned to the household. An adviser of the firm who is not assigned gets
  403 (the household is visible to them elsewhere); clients, other firms and anonymous users 404.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.access import can_change_household
from accounts.models import Firm, Household, Role
from optimizer.models import OptimizationRun


def is_compliance(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.role == Role.COMPLIANCE
        and user.firm_id is not None
    )


def compliance_firm_or_404(user: Any) -> Firm:
    if not is_compliance(user):
        raise Http404("Not found")
    firm: Firm = user.firm
    return firm


def _firm_staff_firm_id(user: Any) -> int:
    if not (
        getattr(user, "is_authenticated", False)
        and user.role in (Role.ADVISER, Role.COMPLIANCE)
        and user.firm_id is not None
    ):
        raise Http404("Not found")
    return int(user.firm_id)


def can_audit_household(user: Any, household: Household) -> bool:
    if is_compliance(user) and user.firm_id == household.firm_id:
        return True
    return can_change_household(user, household)


def household_for_audit_or_404(user: Any, pk: int) -> Household:
    firm_id = _firm_staff_firm_id(user)
    household = Household.objects.filter(pk=pk, firm_id=firm_id).select_related("firm").first()
    if household is None:
        raise Http404("No such household")
    if not can_audit_household(user, household):
        raise PermissionDenied("Only compliance and the household's advisers may see this.")
    return household


def run_for_audit_or_404(user: Any, pk: int) -> OptimizationRun:
    firm_id = _firm_staff_firm_id(user)
    run = (
        OptimizationRun.objects.filter(pk=pk, household__firm_id=firm_id)
        .select_related("household__firm", "requested_by", "ips", "snapshot", "result", "batch")
        .first()
    )
    if run is None:
        raise Http404("No such run")
    if not can_audit_household(user, run.household):
        raise PermissionDenied("Only compliance and the household's advisers may see this run.")
    return run


def check_record_access(user: Any, *, household_id: int | None, firm_id: int | None) -> None:
    """For a record's history page: its household's rule, or compliance-only for firm-level
    records. Raises 404/403 as the module docstring says."""
    staff_firm = _firm_staff_firm_id(user)
    if firm_id is None or firm_id != staff_firm:
        raise Http404("No such record")
    if household_id is None:
        if not is_compliance(user):
            raise Http404("No such record")
        return
    household_for_audit_or_404(user, household_id)
