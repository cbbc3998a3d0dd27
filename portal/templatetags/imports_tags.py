"""The reconciliation section of the household page (firm staff only)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.access import breaks_visible, is_firm_staff
from accounts.models import BreakStatus, Household

register = template.Library()

SHOWN = 10


@register.inclusion_tag("portal/imports/_household_section.html", takes_context=True)
def household_breaks(context: template.Context, household: Household) -> dict[str, Any]:
    """Open reconciliation breaks of ``household``'s accounts, for advisers and compliance."""
    user = context.get("user")
    if not is_firm_staff(user):
        return {"show": False}
    breaks = (
        breaks_visible(user)
        .filter(account__household=household, status=BreakStatus.OPEN)
        .select_related("account", "security", "batch")
        .order_by("account__number", "security__symbol", "pk")
    )
    return {
        "show": True,
        "household": household,
        "breaks": list(breaks[:SHOWN]),
        "count": breaks.count(),
    }
