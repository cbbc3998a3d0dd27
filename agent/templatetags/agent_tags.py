"""The agent on other pages: the request box on the household page and a run's explanation
(firm staff only)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.access import can_change_household, is_firm_staff
from accounts.models import Household
from agent.forms import AgentRequestForm
from agent.models import AgentInteraction, InteractionKind
from agent.services import answers_for_run, cached_explanation, deterministic_explanation
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


@register.inclusion_tag("portal/agent/_run_explanation.html", takes_context=True)
def agent_run_explanation(context: template.Context, run: OptimizationRun | None) -> dict[str, Any]:
    """A run's explanation and its questions, read-only, for other pages (e.g. a proposal's):
    the recorded explanation, or the deterministic one (nothing is recorded here). Firm staff
    only: a client never sees the adviser's rationale."""
    user: Any = context.get("user")
    if run is None or not is_firm_staff(user) or user.firm_id != run.household.firm_id:
        return {"show": False}
    if not run.is_finished:
        return {"show": True, "run": run, "pending": True}
    recorded = cached_explanation(run, "adviser")
    text = recorded.text if recorded else deterministic_explanation(run, "adviser")
    return {
        "show": True,
        "run": run,
        "pending": False,
        "paragraphs": [p for p in text.split("\n\n") if p.strip()],
        "recorded": recorded,
        "answers": list(answers_for_run(run)),
    }
