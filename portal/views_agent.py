"""The agent's pages: a plain-language request, its confirmation as a custom run, and the run
page with its explanation and follow-up questions. Thin views over ``agent.services``.

Access: the adviser assigned to the household requests, confirms and asks; colleagues and
compliance of the firm read; clients and other firms get 404 (clients never see the adviser's
rationale); a reader who may not change gets 403 on the POSTs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import can_change_household, household_for_user_or_404, is_firm_staff
from accounts.models import Household
from agent import services as agent
from agent.explain import RunFacts, collect_facts
from agent.forms import AgentConfirmForm, AgentQuestionForm, AgentRequestForm
from agent.models import AgentInteraction, InteractionKind
from optimizer.models import OptimizationRun, RunStatus
from portal.access import run_for_user_or_404


def _staff_household(user: Any, pk: int) -> Household:
    """A household of the user's firm, for advisers and compliance; 404 for everyone else."""
    household = household_for_user_or_404(user, pk)
    if not is_firm_staff(user):
        raise Http404("No such page")
    return household


def _adviser_household(user: Any, pk: int) -> Household:
    household = _staff_household(user, pk)
    if not can_change_household(user, household):
        raise PermissionDenied("Only an adviser assigned to this household may do this.")
    return household


def _parse_interaction(household: Household, iid: int) -> AgentInteraction:
    interaction = AgentInteraction.objects.filter(
        pk=iid, household=household, kind=InteractionKind.PARSE
    ).first()
    if interaction is None:
        raise Http404("No such request")
    return interaction


@login_required
@require_POST
def agent_request(request: HttpRequest, pk: int) -> HttpResponseBase:
    household = _adviser_household(request.user, pk)
    form = AgentRequestForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("text", []):
            messages.error(request, f"Request: {error}")
        return redirect(f"{reverse('household_detail', args=[household.pk])}#agent")
    interaction = agent.agent_parse(
        household=household,
        text=form.cleaned_data["text"],
        actor=request.user,  # type: ignore[arg-type]
    )
    return redirect("agent_parse", pk=household.pk, iid=interaction.pk)


def _parse_page(
    request: HttpRequest, household: Household, interaction: AgentInteraction, status: int = 200
) -> HttpResponse:
    view = agent.parse_view(interaction)
    can_change = can_change_household(request.user, household)
    runs = OptimizationRun.objects.filter(
        household=household, overrides__agent__interaction=interaction.pk
    ).order_by("-created_at", "-id")
    context = {
        "household": household,
        "view": view,
        "interaction": interaction,
        "can_change": can_change,
        "confirm_form": AgentConfirmForm(initial={"token": uuid.uuid4().hex})
        if can_change and view.confirmable
        else None,
        "revise_form": AgentRequestForm(initial={"text": interaction.request_text})
        if can_change
        else None,
        "runs": runs,
    }
    return render(request, "portal/agent/parse.html", context, status=status)


@login_required
@require_GET
def agent_parse(request: HttpRequest, pk: int, iid: int) -> HttpResponse:
    household = _staff_household(request.user, pk)
    return _parse_page(request, household, _parse_interaction(household, iid))


@login_required
@require_POST
def agent_confirm(request: HttpRequest, pk: int, iid: int) -> HttpResponseBase:
    household = _adviser_household(request.user, pk)
    interaction = _parse_interaction(household, iid)
    form = AgentConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The confirmation expired; confirm again.")
        return _parse_page(request, household, interaction, status=400)
    try:
        run = agent.agent_confirm(
            interaction=interaction,
            actor=request.user,  # type: ignore[arg-type]
            token=form.cleaned_data["token"],
        )
    except agent.NothingToConfirm as exc:
        messages.error(request, str(exc))
        return _parse_page(request, household, interaction, status=400)
    return redirect("agent_run", pk=run.pk)


def _run_context(request: HttpRequest, run: OptimizationRun) -> dict[str, Any]:
    household = run.household
    can_change = can_change_household(request.user, household)
    result = json.loads(run.result.text) if run.result is not None else None
    facts: RunFacts = agent.run_facts(run)
    sheet = collect_facts(facts)
    explanation: AgentInteraction | None = None
    client: AgentInteraction | None = None
    explanation_text = client_text = ""
    if run.is_finished:
        if can_change:
            # the adviser's first look records the explanations (cached: once per result)
            explanation = agent.agent_explain(run=run, audience="adviser", actor=request.user)  # type: ignore[arg-type]
            client = agent.agent_explain(run=run, audience="client", actor=request.user)  # type: ignore[arg-type]
        else:
            explanation = agent.cached_explanation(run, "adviser")
            client = agent.cached_explanation(run, "client")
        explanation_text = (
            explanation.text if explanation else agent.deterministic_explanation(run, "adviser")
        )
        client_text = client.text if client else agent.deterministic_explanation(run, "client")
    flags = [ln.text for ln in sheet.lines if ln.role == "flag"]
    return {
        "run": run,
        "household": household,
        "result": result,
        "before": result["metrics"]["before"] if result else {},
        "after": result["metrics"]["after"] if result else {},
        "spec": agent.run_spec(run),
        "treatments": (run.overrides or {}).get("agent", {}).get("treatments", []),
        "checks": agent.request_checks(run),
        "explanation": explanation,
        "explanation_paragraphs": [p for p in explanation_text.split("\n\n") if p.strip()],
        "client": client,
        "client_text": client_text,
        "flags": flags,
        "answers": list(agent.answers_for_run(run)),
        "can_change": can_change,
        "question_form": AgentQuestionForm() if can_change and run.is_finished else None,
        "conflicts": run.summary.get("conflicts", []) if run.status == RunStatus.INFEASIBLE else [],
        "problems": run.summary.get("problems", []) if run.status == RunStatus.BLOCKED else [],
    }


@login_required
@require_GET
def agent_run(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_for_user_or_404(request.user, pk)
    return render(request, "portal/agent/run.html", _run_context(request, run))


@login_required
@require_POST
def agent_ask(request: HttpRequest, pk: int) -> HttpResponseBase:
    run = run_for_user_or_404(request.user, pk)
    if not can_change_household(request.user, run.household):
        raise PermissionDenied("Only an adviser assigned to this household may ask.")
    form = AgentQuestionForm(request.POST)
    if not form.is_valid() or not run.is_finished:
        context = _run_context(request, run)
        if run.is_finished:
            context["question_form"] = form
        else:
            messages.error(request, "The run has not finished yet; ask when it has.")
        return render(request, "portal/agent/run.html", context, status=400)
    interaction = agent.agent_answer(
        run=run,
        question=form.cleaned_data["question"],
        actor=request.user,  # type: ignore[arg-type]
    )
    return redirect(f"{reverse('agent_run', args=[run.pk])}#answer-{interaction.pk}")
