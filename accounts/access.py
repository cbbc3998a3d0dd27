"""Who may see and change what. One helper per object type; outside the user's firm (or, for a
client, outside their household) every lookup is a 404, never a 403 that confirms existence.

- adviser: reads every household of the firm; changes only households they are assigned to.
- compliance: reads the whole firm; changes nothing.
- client: reads their own household only; changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import (
    Account,
    Household,
    ImportBatch,
    InvestmentPolicy,
    ReconciliationBreak,
    Role,
    TaxLot,
)


def _require_user(user: Any) -> Any:
    if not getattr(user, "is_authenticated", False):
        raise Http404("Not found")
    return user


def households_visible(user: Any) -> QuerySet[Household]:
    """Households ``user`` may read."""
    if not getattr(user, "is_authenticated", False):
        return Household.objects.none()
    if user.role in (Role.ADVISER, Role.COMPLIANCE) and user.firm_id is not None:
        return Household.objects.filter(firm_id=user.firm_id)
    if user.role == Role.CLIENT and user.household_id is not None:
        return Household.objects.filter(pk=user.household_id, firm_id=user.firm_id)
    return Household.objects.none()


def can_change_household(user: Any, household: Household) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.role == Role.ADVISER
        and user.firm_id == household.firm_id
        and household.advisers.filter(pk=user.pk).exists()
    )


def household_for_user_or_404(user: Any, pk: int) -> Household:
    household = households_visible(_require_user(user)).filter(pk=pk).select_related("firm").first()
    if household is None:
        raise Http404("No such household")
    return household


def household_for_change_or_404(user: Any, pk: int) -> Household:
    """Visible households that the user may not change give 403; invisible ones 404."""
    household = household_for_user_or_404(user, pk)
    if not can_change_household(user, household):
        raise PermissionDenied("Only an adviser assigned to this household may change it.")
    return household


def accounts_visible(user: Any) -> QuerySet[Account]:
    return Account.objects.filter(household__in=households_visible(user))


def account_for_user_or_404(user: Any, pk: int) -> Account:
    account = accounts_visible(_require_user(user)).filter(pk=pk).first()
    if account is None:
        raise Http404("No such account")
    return account


def lots_visible(user: Any) -> QuerySet[TaxLot]:
    return TaxLot.objects.filter(account__household__in=households_visible(user))


def lot_for_user_or_404(user: Any, pk: int) -> TaxLot:
    lot = lots_visible(_require_user(user)).filter(pk=pk).first()
    if lot is None:
        raise Http404("No such lot")
    return lot


def policies_visible(user: Any) -> QuerySet[InvestmentPolicy]:
    return InvestmentPolicy.objects.filter(household__in=households_visible(user))


def ips_for_user_or_404(user: Any, pk: int) -> InvestmentPolicy:
    ips = policies_visible(_require_user(user)).filter(pk=pk).first()
    if ips is None:
        raise Http404("No such investment policy")
    return ips


# Custodian imports: firm-level records. Advisers import into their firm's accounts; advisers
# and compliance read the firm's batches and breaks; a break is resolved by an adviser assigned
# to its household. Clients see none of it.


def is_firm_staff(user: Any) -> bool:
    """An adviser or compliance officer of a firm."""
    return bool(
        getattr(user, "is_authenticated", False)
        and user.role in (Role.ADVISER, Role.COMPLIANCE)
        and user.firm_id is not None
    )


def can_import(user: Any) -> bool:
    return is_firm_staff(user) and user.role == Role.ADVISER


def import_batches_visible(user: Any) -> QuerySet[ImportBatch]:
    if not is_firm_staff(user):
        return ImportBatch.objects.none()
    return ImportBatch.objects.filter(firm_id=user.firm_id)


def import_batch_for_user_or_404(user: Any, pk: int) -> ImportBatch:
    batch = import_batches_visible(_require_user(user)).filter(pk=pk).first()
    if batch is None:
        raise Http404("No such import")
    return batch


def breaks_visible(user: Any) -> QuerySet[ReconciliationBreak]:
    if not is_firm_staff(user):
        return ReconciliationBreak.objects.none()
    return ReconciliationBreak.objects.filter(
        batch__firm_id=user.firm_id, account__household__firm_id=user.firm_id
    )


def break_for_change_or_404(user: Any, pk: int) -> ReconciliationBreak:
    """Visible breaks the user may not resolve give 403; invisible ones 404."""
    brk = (
        breaks_visible(_require_user(user))
        .filter(pk=pk)
        .select_related("account__household", "batch")
        .first()
    )
    if brk is None:
        raise Http404("No such reconciliation break")
    if not can_change_household(user, brk.account.household):
        raise PermissionDenied("Only an adviser assigned to this household may resolve its breaks.")
    return brk
