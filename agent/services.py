"""The agent in the portal: parse a request, confirm it as a custom run, explain a run, answer
questions on it. Every call is recorded as an ``AgentInteraction`` with an audit event, in one
transaction; a model call (when a model is configured) happens before that transaction opens.

Same input, same answer: each interaction has a ``cache_key``, the SHA-256 of what determines it
(for explanations and answers: the kind, the audience, the run's result SHA-256, the question,
the model and the prompt version; for a parse: the household, the text, its symbols and
accounts, the model and the prompt version). When a row with that key exists, it is returned
as it is: no model call, no new row. Whatever was answered first (model text, deterministic
text after a rejection or a failure) is the answer from then on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.access import can_change_household
from accounts.models import Household, ModelPortfolioTarget, TaxLot, User
from accounts.selectors import household_valuation, ips_in_force
from agent import llm
from agent.explain import (
    Audience,
    RunFacts,
    answer,
    collect_facts,
    explain,
    normalize_question,
)
from agent.models import AgentInteraction, InteractionKind
from agent.render import spec_to_words
from agent.spec import ConstraintSpec, Question, SpecError, validate_spec
from agent.to_optimizer import (
    AccountInfo,
    HouseholdContext,
    NotMappable,
    check_after,
    spec_to_optimizer,
)
from audit.history import acting_as
from audit.services import audit_record
from optimizer.adapter import _account_key
from optimizer.models import OptimizationRun, RunStatus
from optimizer.services import run_request

MAX_QUESTION_CHARS = 1000


class NothingToConfirm(Exception):
    """The parse has open questions (or no spec): there is nothing to run yet."""


# -- configuration ------------------------------------------------------------------------
def model_config() -> llm.ModelConfig:
    return llm.ModelConfig(
        base_url=settings.OPENAI_BASE_URL,
        api_key=settings.OPENAI_API_KEY,
        model=settings.AGENT_MODEL,
        timeout_seconds=settings.AGENT_TIMEOUT_SECONDS,
    )


def transport() -> llm.Transport | None:
    """The model transport, or None for the offline deterministic path."""
    config = model_config()
    return llm.Transport(config) if config.enabled else None


def _model_name() -> str:
    config = model_config()
    return config.model if config.enabled else ""


# -- what the agent knows about a household -------------------------------------------------
def known_symbols(household: Household) -> list[str]:
    """Tickers a request may name: open holdings, the IPS's securities and its model's."""
    symbols = set(
        TaxLot.objects.filter(
            account__household=household,
            account__is_active=True,
            closed_on__isnull=True,
            quantity__gt=0,
        ).values_list("security__symbol", flat=True)
    )
    ips = ips_in_force(household)
    if ips is not None:
        symbols |= {t.security.symbol for t in ips.targets.all() if t.security is not None}
        if ips.model_portfolio_id is not None:
            symbols |= set(
                ModelPortfolioTarget.objects.filter(model_id=ips.model_portfolio_id).values_list(
                    "security__symbol", flat=True
                )
            )
    return sorted(symbols)


def household_context(household: Household) -> HouseholdContext:
    valuation = household_valuation(household)
    ips = ips_in_force(household)
    return HouseholdContext(
        accounts=tuple(
            AccountInfo(
                id=_account_key(view.account),
                name=view.account.name,
                tax_treatment=view.account.tax_treatment,
                value=view.total,
            )
            for view in valuation.accounts
        ),
        ips_gain_budget=None if ips is None else ips.annual_gain_budget,
    )


def _context_key(context: HouseholdContext) -> dict[str, Any]:
    return {
        "accounts": [
            [a.id, a.tax_treatment, str(a.value.quantize(Decimal(1)))] for a in context.accounts
        ],
        "ips_gain_budget": None
        if context.ips_gain_budget is None
        else str(context.ips_gain_budget),
    }


# -- recording ----------------------------------------------------------------------------
def _record(
    *,
    kind: str,
    household: Household,
    run: OptimizationRun | None,
    actor: User | None,
    cache_key: str,
    request_text: str,
    output: dict[str, Any],
    text: str,
    source: str,
    outcome: str,
    reason: str,
    call: llm.Call | None,
    audience: str = "",
    basis_sha256: str = "",
) -> AgentInteraction:
    row = AgentInteraction(
        kind=kind,
        household=household,
        run=run,
        audience=audience,
        request_text=request_text,
        output=output,
        text=text,
        source=source,
        outcome=outcome,
        reason=reason,
        output_sha256=llm.sha256_of(output),
        basis_sha256=basis_sha256,
        cache_key=cache_key,
        actor=actor,
    )
    if call is not None:
        row.model = call.model
        row.base_url_host = call.host
        row.messages = call.messages
        row.tools = call.tools
        row.response = call.response
        row.prompt_tokens = call.prompt_tokens
        row.completion_tokens = call.completion_tokens
        row.total_tokens = call.total_tokens
        row.latency_ms = call.latency_ms
        row.request_sha256 = call.request_sha256
        row.response_sha256 = call.response_sha256
    try:
        with transaction.atomic():
            with acting_as(actor):
                row.save()
            audit_record(
                actor=actor,
                event_type=f"agent.{kind}",
                firm=household.firm,
                obj=row,
                data={
                    "household": household.pk,
                    "run": run.pk if run is not None else None,
                    "audience": audience,
                    "source": source,
                    "outcome": outcome,
                    "reason": reason,
                    "model": row.model,
                    "base_url_host": row.base_url_host,
                    "request_sha256": row.request_sha256,
                    "response_sha256": row.response_sha256,
                    "output_sha256": row.output_sha256,
                    "basis_sha256": basis_sha256,
                    "cache_key": cache_key,
                    "total_tokens": row.total_tokens,
                    "latency_ms": row.latency_ms,
                },
            )
    except IntegrityError:  # the same input was recorded meanwhile: that is the answer
        return AgentInteraction.objects.get(cache_key=cache_key)
    return row


# -- parse ----------------------------------------------------------------------------------
def agent_parse(*, household: Household, text: str, actor: User | None) -> AgentInteraction:
    """Read a plain-language request into a spec (or questions), recorded with what the
    optimizer will make of it (the treatments shown before confirming)."""
    symbols = known_symbols(household)
    context = household_context(household)
    key = llm.sha256_of(
        {
            "v": llm.PROMPT_VERSION,
            "kind": "parse",
            "household": household.pk,
            "text": text,
            "symbols": symbols,
            "context": _context_key(context),
            "model": _model_name(),
        }
    )
    cached = AgentInteraction.objects.filter(cache_key=key).first()
    if cached is not None:
        return cached
    result = llm.parse(text, known_symbols=symbols, transport=transport())
    outcome = result.outcome
    output: dict[str, Any] = {"parse": outcome.to_dict(), "known_symbols": symbols}
    if outcome.spec is not None:
        try:
            request = spec_to_optimizer(outcome.spec, context)
        except NotMappable as exc:
            question = Question(kind="unsupported", message=str(exc))
            output["parse"]["spec"] = None
            output["parse"]["questions"].append(question.to_dict())
        else:
            output["words"] = spec_to_words(outcome.spec)
            output["treatments"] = [t.to_dict() for t in request.treatments]
            output["overrides"] = request.overrides
    return _record(
        kind=InteractionKind.PARSE,
        household=household,
        run=None,
        actor=actor,
        cache_key=key,
        request_text=text,
        output=output,
        text="",
        source=result.source,
        outcome=result.status,
        reason=result.reason,
        call=result.call,
    )


@dataclass(frozen=True)
class ParseView:
    """A parse interaction as the request page shows it."""

    interaction: AgentInteraction
    spec: ConstraintSpec | None
    questions: list[dict[str, Any]]
    words: list[str]
    treatments: list[dict[str, str]]
    ignored: list[str]

    @property
    def confirmable(self) -> bool:
        return self.spec is not None and not self.questions


def parse_view(interaction: AgentInteraction) -> ParseView:
    parsed = interaction.output.get("parse", {})
    raw_spec = parsed.get("spec")
    spec = validate_spec(raw_spec) if raw_spec else None
    return ParseView(
        interaction=interaction,
        spec=spec,
        questions=[
            {**q, "label": str(q.get("kind", "")).replace("_", " ").capitalize()}
            for q in parsed.get("questions", [])
        ],
        words=list(interaction.output.get("words", [])),
        treatments=list(interaction.output.get("treatments", [])),
        ignored=list(parsed.get("ignored", [])),
    )


def agent_confirm(*, interaction: AgentInteraction, actor: User, token: str) -> OptimizationRun:
    """Start the custom run the adviser confirmed, with exactly the overrides shown to them.

    ``token`` comes from the confirmation form: the same token (a double click) returns the same
    run; opening the page again gives a new token, hence a new run on fresh data.
    """
    household = interaction.household
    if not can_change_household(actor, household):
        raise PermissionDenied("Only an adviser assigned to this household may start a run.")
    view = parse_view(interaction)
    overrides = interaction.output.get("overrides")
    if interaction.kind != InteractionKind.PARSE or not view.confirmable or not overrides:
        raise NothingToConfirm("This request has open questions; answer them first.")
    key = f"agent-{interaction.pk}-{token}"
    existing = OptimizationRun.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    overrides = json.loads(json.dumps(overrides))
    overrides["agent"]["interaction"] = interaction.pk
    with transaction.atomic():
        run = run_request(
            household=household,
            scenario="custom",
            actor=actor,
            idempotency_key=key,
            overrides=overrides,
            request_text=interaction.request_text,
        )
        audit_record(
            actor=actor,
            event_type="agent.spec_confirmed",
            firm=household.firm,
            obj=interaction,
            data={"run": run.pk, "spec": overrides["agent"]["spec"]},
        )
    return run


# -- explanations and answers -----------------------------------------------------------------
def run_spec(run: OptimizationRun) -> ConstraintSpec | None:
    """The confirmed spec a run came from, if any."""
    raw = (run.overrides or {}).get("agent", {}).get("spec")
    if not raw:
        return None
    try:
        return validate_spec(raw)
    except SpecError:
        return None


def run_facts(run: OptimizationRun) -> RunFacts:
    spec = run_spec(run)
    if run.status == RunStatus.SUCCEEDED and run.result is not None:
        return RunFacts(state="ok", result=json.loads(run.result.text), spec=spec)
    if run.status == RunStatus.INFEASIBLE:
        return RunFacts(state="infeasible", error=run.summary, message=run.error, spec=spec)
    if run.status == RunStatus.BLOCKED:
        return RunFacts(state="blocked", error=run.summary, message=run.error, spec=spec)
    if run.status == RunStatus.FAILED:
        return RunFacts(state="failed", message=run.error, spec=spec)
    return RunFacts(state="pending", spec=spec)


def run_basis(run: OptimizationRun) -> str:
    """What an explanation of ``run`` is from: its result's SHA-256, or for a run without a
    result the SHA-256 of its outcome (status, summary, error). Empty while it runs."""
    if not run.is_finished:
        return ""
    if run.result_sha256:
        return run.result_sha256
    return llm.sha256_of({"status": run.status, "summary": run.summary, "error": run.error})


def _write_key(kind: str, audience: str, basis: str, question: str) -> str:
    return llm.sha256_of(
        {
            "v": llm.PROMPT_VERSION,
            "kind": kind,
            "audience": audience,
            "basis": basis,
            "question": question,
            "model": _model_name(),
        }
    )


def cached_explanation(run: OptimizationRun, audience: Audience) -> AgentInteraction | None:
    basis = run_basis(run)
    if not basis:
        return None
    key = _write_key("explain", audience, basis, "")
    return AgentInteraction.objects.filter(cache_key=key).first()


def deterministic_explanation(run: OptimizationRun, audience: Audience) -> str:
    """The explanation without a model and without recording (for read-only viewers)."""
    return explain(run_facts(run), audience)


def agent_explain(
    *, run: OptimizationRun, audience: Audience, actor: User | None
) -> AgentInteraction:
    """The explanation of a finished run for the adviser or the client, recorded once."""
    basis = run_basis(run)
    if not basis:
        raise ValueError(f"run {run.pk} has not finished; there is nothing to explain yet")
    key = _write_key("explain", audience, basis, "")
    cached = AgentInteraction.objects.filter(cache_key=key).first()
    if cached is not None:
        return cached
    facts = run_facts(run)
    sheet = collect_facts(facts)
    result = llm.write(
        "explain_client" if audience == "client" else "explain_adviser",
        sheet=sheet,
        deterministic=lambda: explain(facts, audience, sheet),
        transport=transport(),
    )
    return _record(
        kind=InteractionKind.EXPLAIN,
        household=run.household,
        run=run,
        actor=actor,
        cache_key=key,
        request_text="",
        output={"text": result.text},
        text=result.text,
        source=result.source,
        outcome=result.status,
        reason=result.reason,
        call=result.call,
        audience=audience,
        basis_sha256=basis,
    )


def agent_answer(*, run: OptimizationRun, question: str, actor: User | None) -> AgentInteraction:
    """The answer to a follow-up question on a finished run, recorded once per question."""
    asked = normalize_question(question)[:MAX_QUESTION_CHARS]
    if not asked:
        raise ValueError("the question is empty")
    basis = run_basis(run)
    if not basis:
        raise ValueError(f"run {run.pk} has not finished; ask again when it has")
    key = _write_key("answer", "adviser", basis, asked)
    cached = AgentInteraction.objects.filter(cache_key=key).first()
    if cached is not None:
        return cached
    facts = run_facts(run)
    sheet = collect_facts(facts)
    result = llm.write(
        "answer",
        sheet=sheet,
        deterministic=lambda: answer(facts, asked, sheet),
        question=asked,
        transport=transport(),
    )
    return _record(
        kind=InteractionKind.ANSWER,
        household=run.household,
        run=run,
        actor=actor,
        cache_key=key,
        request_text=asked,
        output={"question": asked, "text": result.text},
        text=result.text,
        source=result.source,
        outcome=result.status,
        reason=result.reason,
        call=result.call,
        audience="adviser",
        basis_sha256=basis,
    )


def answers_for_run(run: OptimizationRun) -> QuerySet[AgentInteraction]:
    """Questions asked on this run or on any run with the same result (same answers)."""
    basis = run_basis(run)
    if not basis:
        return AgentInteraction.objects.none()
    return (
        AgentInteraction.objects.filter(
            kind=InteractionKind.ANSWER, basis_sha256=basis, household=run.household
        )
        .select_related("actor")
        .order_by("created_at", "id")
    )


def interactions_for_run(run: OptimizationRun) -> QuerySet[AgentInteraction]:
    """Every interaction tied to a run (its explanations and answers), oldest first."""
    return AgentInteraction.objects.filter(run=run).order_by("created_at", "id")


def request_checks(run: OptimizationRun) -> list[dict[str, Any]]:
    """The checked constraints of the run's request against its result (met or not)."""
    spec = run_spec(run)
    if spec is None or run.status != RunStatus.SUCCEEDED or run.result is None:
        return []
    return [c.to_dict() for c in check_after(spec, json.loads(run.result.text))]


__all__ = [
    "NothingToConfirm",
    "ParseView",
    "agent_answer",
    "agent_confirm",
    "agent_explain",
    "agent_parse",
    "answers_for_run",
    "cached_explanation",
    "deterministic_explanation",
    "household_context",
    "interactions_for_run",
    "known_symbols",
    "model_config",
    "parse_view",
    "request_checks",
    "run_basis",
    "run_facts",
    "run_spec",
    "transport",
]
