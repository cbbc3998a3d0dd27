"""The plain-language request box on the household page (firm staff only)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.access import can_change_household, is_firm_staff
from accounts.models import Household
from agent.forms import AgentRequestForm
from agent.models import AgentInteraction, InteractionKind
from optimizer.models import OptimizationRun

register = template.Library()

SHOWN = 5


@register.inclusion_tag("portal/agent/_request_box_body.html", takes_context=True)
def agent_request_box(context: template.Context, household: Household) -> dict[str, Any]:
    """The request form (for the assigned adviser) and the household's recent requests and
    custom runs (for advisers and compliance of the firm); nothing for clients."""
    user: Any = context.get("user")
    if not is_firm_staff(user) or user.firm_id != household.firm_id:
        return {"show": False}
    can_change = can_change_household(user, household)
    return {
        "show": True,
        "household": household,
        "csrf_token": context.get("csrf_token"),
        "form": AgentRequestForm() if can_change else None,
        "requests": list(
            AgentInteraction.objects.filter(household=household, kind=InteractionKind.PARSE)
            .select_related("actor")
            .order_by("-created_at", "-id")[:SHOWN]
        ),
        "runs": list(
            OptimizationRun.objects.filter(household=household, scenario="custom").order_by(
                "-created_at", "-id"
            )[:SHOWN]
        ),
    }
