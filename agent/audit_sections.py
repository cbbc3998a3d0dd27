"""What the agent adds to the audit tools: its interactions in the exam package, on the run
reconstruction page (with their audit events on the run's timeline) and on record-history
pages."""

from __future__ import annotations

from django.urls import reverse

from agent.models import AgentInteraction, InteractionKind
from audit.asof import register_history_model
from audit.export import model_exporter, register_exporter
from audit.reconstruction import (
    ReconstructionSection,
    SectionLink,
    register_reconstruction_section,
)
from optimizer.models import OptimizationRun

LABEL = "agent.AgentInteraction"
COLUMNS = (
    "When",
    "Kind",
    "Who",
    "Produced by",
    "Outcome",
    "Reason",
    "Model (host)",
    "Request SHA-256",
    "Response SHA-256",
    "Shown (SHA-256)",
    "Request or question",
)


def run_interactions(run: OptimizationRun) -> list[AgentInteraction]:
    """The request that started the run (if it came from one), then its explanations and
    answers, oldest first."""
    rows: list[AgentInteraction] = []
    parse_id = (run.overrides or {}).get("agent", {}).get("interaction")
    if isinstance(parse_id, int):
        parse = AgentInteraction.objects.filter(
            pk=parse_id, kind=InteractionKind.PARSE, household_id=run.household_id
        ).first()
        if parse is not None:
            rows.append(parse)
    rows.extend(
        AgentInteraction.objects.filter(run=run)
        .select_related("actor")
        .order_by("created_at", "id")
    )
    return rows


def _row(row: AgentInteraction) -> list[object]:
    kind = row.get_kind_display() + (f" ({row.audience})" if row.audience else "")
    first = (
        SectionLink(kind, reverse("agent_parse", args=[row.household_id, row.pk]))
        if row.kind == InteractionKind.PARSE
        else kind
    )
    model = f"{row.model} ({row.base_url_host})" if row.model else "none (offline)"
    return [
        row.created_at.isoformat(),
        first,
        row.actor.username if row.actor else "system",
        row.get_source_display(),
        row.get_outcome_display(),
        row.reason,
        model,
        row.request_sha256,
        row.response_sha256,
        row.output_sha256,
        row.request_text,
    ]


def agent_section(run: OptimizationRun) -> ReconstructionSection | None:
    rows = run_interactions(run)
    if not rows:
        return None
    return ReconstructionSection(
        key="agent",
        title="Agent: the request, explanations and answers",
        columns=COLUMNS,
        rows=[_row(r) for r in rows],
        note=(
            "Every model call is stored with its messages, tools, response, tokens and latency "
            "(never the key); a model text is used only if every number in it matches a fact."
        ),
        audit_objects=[(LABEL, str(r.pk)) for r in rows],
    )


def register() -> None:
    register_exporter(
        "agent_interactions",
        model_exporter(LABEL, name="agent_interactions", firm_lookup="household__firm_id"),
    )
    register_reconstruction_section("agent", agent_section, order=130)
    register_history_model(LABEL, firm_lookup="household__firm_id", household_lookup="household_id")
