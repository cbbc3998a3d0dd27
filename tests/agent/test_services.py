"""The agent in the database: AgentInteraction records (offline and through the stub model),
caching by input hash, confirmation into a custom run, explanations and answers on real runs."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from agent import services
from agent.models import AgentInteraction
from audit.models import AuditEvent
from optimizer.models import OptimizationRun, RunStatus
from tests.agent.openai_stub import Stub, refusal, slow, text, tool_call

REQUEST = "max $2K gains, don't sell VTI, no short-term gains"
KEY = "sk-test-secret-key"


def events(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=kind).order_by("seq"))


def confirmed_run(book, text_: str, capture, token: str = "a" * 32) -> OptimizationRun:
    interaction = services.agent_parse(household=book.household, text=text_, actor=book.owner)
    with capture(execute=True):
        run = services.agent_confirm(interaction=interaction, actor=book.owner, token=token)
    run.refresh_from_db()
    return run


# -- parse ------------------------------------------------------------------------------------
def test_an_offline_parse_is_recorded_with_history_and_an_audit_event(priced_book):
    book = priced_book
    row = services.agent_parse(household=book.household, text=REQUEST, actor=book.owner)
    row.refresh_from_db()
    assert (row.kind, row.source, row.outcome, row.reason) == (
        "parse",
        "deterministic",
        "ok",
        "no model configured",
    )
    assert (row.model, row.base_url_host, row.messages, row.response) == ("", "", [], None)
    assert row.household == book.household and row.actor == book.owner and row.run is None
    assert row.output["known_symbols"] == ["BND", "VTI"]
    assert row.output["parse"]["spec"]["max_net_gains"] == "2000"
    assert row.output["words"] == [
        "Custom scenario with the constraints below.",
        "Net realized gains are capped at $2,000.",
        "No short-term gains will be realized.",
        "VTI will not be sold.",
    ]
    assert row.output["overrides"]["budgets"] == {
        "max_net_realized_gain": "2000.00",
        "no_short_term_gains": True,
    }
    assert [t["how"] for t in row.output["treatments"]] == ["preference", "hard", "hard", "hard"]
    assert len(row.output_sha256) == 64 and len(row.cache_key) == 64
    (event,) = events("agent.parse")
    data = json.loads(event.payload)["data"]
    assert data["output_sha256"] == row.output_sha256 and data["outcome"] == "ok"
    assert event.object_id == str(row.pk) and event.actor == book.owner
    assert row.history.count() == 1 and row.history.first().history_user == book.owner


def test_the_same_request_gives_the_same_record(priced_book):
    book = priced_book
    first = services.agent_parse(household=book.household, text=REQUEST, actor=book.owner)
    again = services.agent_parse(household=book.household, text=REQUEST, actor=book.owner)
    assert again.pk == first.pk
    assert AgentInteraction.objects.count() == 1 and len(events("agent.parse")) == 1
    other = services.agent_parse(household=book.household, text=REQUEST + ".", actor=book.owner)
    assert other.pk != first.pk


def test_an_unknown_ticker_is_a_question_and_cannot_be_confirmed(priced_book):
    book = priced_book
    row = services.agent_parse(household=book.household, text="don't sell AAPL", actor=book.owner)
    view = services.parse_view(row)
    assert view.spec is None and not view.confirmable
    assert [q["kind"] for q in view.questions] == ["unknown_symbol"]
    assert "overrides" not in row.output
    with pytest.raises(services.NothingToConfirm):
        services.agent_confirm(interaction=row, actor=book.owner, token="b" * 32)


def test_records_are_append_only(priced_book):
    row = services.agent_parse(household=priced_book.household, text=REQUEST, actor=None)
    row.text = "changed"
    with pytest.raises(ValidationError):
        row.save()
    with pytest.raises(ValidationError):
        row.delete()


def test_a_model_parse_is_recorded_without_the_key(priced_book, openai_stub: Stub):
    book = priced_book
    args = {
        "scenario": "custom", "max_net_gains": "2000", "max_short_term_gains": None,
        "no_short_term_gains": True, "no_sell": ["VTI"], "no_buy": [], "must_sell": [],
        "raise_cash": None, "invest_cash": None, "max_tracking_error": None,
        "completion_target": None, "max_trades": None, "max_turnover": None,
        "harvest_losses": None, "notes": "",
    }  # fmt: skip
    openai_stub.script(tool_call(args))
    row = services.agent_parse(household=book.household, text=REQUEST, actor=book.owner)
    row.refresh_from_db()
    assert (row.source, row.outcome, row.model) == ("model", "ok", "stub-model")
    assert row.base_url_host == openai_stub.base_url.split("//")[1].split("/")[0]
    assert row.messages[1] == {"role": "user", "content": REQUEST}
    assert row.tools[0]["function"]["name"] == "set_constraint_spec"
    assert row.response["choices"][0]["finish_reason"] == "tool_calls"
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (120, 30, 150)
    assert row.latency_ms is not None and len(row.request_sha256) == 64
    assert len(row.response_sha256) == 64
    assert row.output["parse"]["spec"]["no_sell"] == ["VTI"]
    dumped = json.dumps(
        [row.messages, row.tools, row.response, row.output, row.base_url_host, row.reason]
    )
    assert KEY not in dumped
    assert KEY not in AuditEvent.objects.get(event_type="agent.parse").payload
    # cached: a second identical request calls no model
    services.agent_parse(household=book.household, text=REQUEST, actor=book.owner)
    assert len(openai_stub.requests) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (tool_call("{not json"), "invalid_json: "),
        (refusal("No."), "refusal: No."),
        (slow(1.5, tool_call("{}")), "timeout: no answer within 0.3 s"),
    ],
)
def test_model_failures_fall_back_and_are_recorded(
    priced_book, openai_stub: Stub, settings, reply, reason
):
    settings.AGENT_TIMEOUT_SECONDS = 0.3
    openai_stub.script(reply)
    row = services.agent_parse(household=priced_book.household, text=REQUEST, actor=None)
    row.refresh_from_db()
    assert (row.source, row.outcome) == ("deterministic", "fallback")
    assert row.reason.startswith(reason)
    assert row.model == "stub-model" and row.messages  # the failed call is on record
    assert row.output["parse"]["spec"]["max_net_gains"] == "2000"  # the offline parser's spec
    assert json.loads(AuditEvent.objects.get(event_type="agent.parse").payload)["data"][
        "outcome"
    ] == ("fallback")


# -- confirm -> custom run ---------------------------------------------------------------------
def test_confirming_starts_the_custom_run_with_the_shown_overrides(
    priced_book, django_capture_on_commit_callbacks
):
    book = priced_book
    run = confirmed_run(book, REQUEST, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.scenario, run.request_text, run.requested_by) == ("custom", REQUEST, book.owner)
    interaction = AgentInteraction.objects.get(kind="parse")
    assert run.overrides["budgets"] == interaction.output["overrides"]["budgets"]
    assert run.overrides["agent"]["interaction"] == interaction.pk
    snapshot = json.loads(run.snapshot.text)
    assert snapshot["budgets"]["max_net_realized_gain"] == "2000.00"
    assert snapshot["budgets"]["no_short_term_gains"] is True
    assert {"symbol": "VTI", "no_sell": True, "reason": "adviser request"} in [
        {k: v for k, v in r.items() if v not in (None, False)} for r in snapshot["restrictions"]
    ]
    result = json.loads(run.result.text)
    assert all(t["symbol"] != "VTI" or t["side"] == "buy" for t in result["trades"])
    (event,) = events("agent.spec_confirmed")
    assert json.loads(event.payload)["data"]["run"] == run.pk
    # a double click (same token) returns the same run; a new confirmation starts another
    with django_capture_on_commit_callbacks(execute=True):
        same = services.agent_confirm(interaction=interaction, actor=book.owner, token="a" * 32)
        other = services.agent_confirm(interaction=interaction, actor=book.owner, token="c" * 32)
    assert same.pk == run.pk and other.pk != run.pk
    assert len(events("agent.spec_confirmed")) == 2


def test_only_the_assigned_adviser_confirms(priced_book):
    row = services.agent_parse(household=priced_book.household, text=REQUEST, actor=None)
    for user in (priced_book.colleague, priced_book.compliance, priced_book.client_user):
        with pytest.raises(PermissionDenied):
            services.agent_confirm(interaction=row, actor=user, token="d" * 32)
    assert not OptimizationRun.objects.exists()


def test_raising_cash_reaches_the_snapshot_and_the_trades(
    priced_book, django_capture_on_commit_callbacks
):
    run = confirmed_run(priced_book, "raise $2,000 cash", django_capture_on_commit_callbacks)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.overrides["cash_to_raise"] == {"schwab-12345678": "2000.00"}
    accounts = json.loads(run.snapshot.text)["accounts"]
    assert {a["id"]: a["cash_to_raise"] for a in accounts} == {
        "schwab-12345678": "2000.00",
        "schwab-87654321": "0",
    }
    result = json.loads(run.result.text)
    assert Decimal(result["metrics"]["after"]["cash"]["by_account"]["schwab-12345678"]) >= 2000
    first = next(t for t in result["trades"] if t["account"] == "schwab-12345678")
    assert (first["symbol"], first["side"]) == ("VTI", "sell")
    words = AgentInteraction.objects.get(kind="parse").output["treatments"][-1]["words"]
    assert words == (
        "Hard limit: account Pat Individual (schwab-12345678, the largest taxable account) ends "
        "with at least its cash floor plus $2,000 in cash."
    )


def test_a_raise_beyond_the_cash_band_leaves_the_portfolio_and_is_explained(
    priced_book, django_capture_on_commit_callbacks
):
    """The cash to raise leaves the portfolio: $5,000 of a $40,500 household is more than the
    IPS's 10% cash maximum, yet feasible, because the allocation (cash band included) is
    measured on the value that stays invested."""
    run = confirmed_run(priced_book, "raise $5,000 cash", django_capture_on_commit_callbacks)
    assert run.status == RunStatus.SUCCEEDED, run.error
    result = json.loads(run.result.text)
    raised = result["metrics"]["after"]["cash_raised"]
    assert Decimal(raised["total"]) == Decimal("5000.00")
    text_ = services.agent_explain(run=run, audience="adviser", actor=priced_book.owner).text
    assert text_ and "Model failed" not in text_


def test_cash_to_raise_in_an_unknown_account_blocks_the_run(
    priced_book, django_capture_on_commit_callbacks
):
    from optimizer.services import run_request

    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=priced_book.household,
            scenario="custom",
            actor=priced_book.owner,
            overrides={"cash_to_raise": {"schwab-00000000": "100.00"}},
        )
    run.refresh_from_db()
    assert run.status == RunStatus.BLOCKED
    assert "schwab-00000000: not an active account" in run.error


# -- explanations and answers -------------------------------------------------------------------
def test_explanations_are_recorded_once_per_result(priced_book, django_capture_on_commit_callbacks):
    book = priced_book
    run = confirmed_run(book, REQUEST, django_capture_on_commit_callbacks)
    adviser = services.agent_explain(run=run, audience="adviser", actor=book.owner)
    client = services.agent_explain(run=run, audience="client", actor=book.owner)
    assert adviser.text == services.deterministic_explanation(run, "adviser")
    assert client.text.startswith(("We propose", "No trades are proposed"))
    assert (adviser.kind, adviser.audience, adviser.run, adviser.basis_sha256) == (
        "explain",
        "adviser",
        run,
        run.result_sha256,
    )
    again = services.agent_explain(run=run, audience="adviser", actor=book.colleague)
    assert again.pk == adviser.pk
    assert services.cached_explanation(run, "adviser") == adviser
    assert len(events("agent.explain")) == 2
    assert services.request_checks(run) == []  # nothing checked after the solve here


def test_answers_are_cached_by_result_and_question(priced_book, django_capture_on_commit_callbacks):
    book = priced_book
    run = confirmed_run(book, REQUEST, django_capture_on_commit_callbacks)
    q = "Why is tracking error still where it is despite the tax?"
    first = services.agent_answer(run=run, question=q, actor=book.owner)
    assert "Tracking error to the target goes from 0.4% to 0.3%" in first.text
    assert "The $2,000 net gain cap did not bind: the trades realize less than it allows." in (
        first.text
    )
    assert (
        "The no-sell restriction on VTI (adviser request) forced a deviation from the target: "
        "the optimizer would sell it if allowed ($25,000.00 of lots blocked)."
    ) in first.text
    assert first.text == services.answer(services.run_facts(run), q)  # deterministic path
    spaced = services.agent_answer(run=run, question=f"  {q}  ".replace(" ", "  "), actor=None)
    assert spaced.pk == first.pk
    assert list(services.answers_for_run(run)) == [first]
    # another run on the same snapshot has the same result, hence the same answers
    with django_capture_on_commit_callbacks(execute=True):
        twin = services.agent_confirm(
            interaction=AgentInteraction.objects.get(kind="parse"), actor=book.owner, token="e" * 32
        )
    twin.refresh_from_db()
    assert twin.result_sha256 == run.result_sha256
    assert services.agent_answer(run=twin, question=q, actor=book.owner).pk == first.pk
    assert list(services.answers_for_run(twin)) == [first]
    with pytest.raises(ValueError, match="empty"):
        services.agent_answer(run=run, question="   ", actor=book.owner)


def test_a_model_answer_with_a_stray_number_is_rejected_and_recorded(
    priced_book, openai_stub: Stub, django_capture_on_commit_callbacks
):
    book = priced_book
    openai_stub.script(tool_call("{broken"))  # the parse falls back to the offline parser
    run = confirmed_run(book, REQUEST, django_capture_on_commit_callbacks)
    result = json.loads(run.result.text)
    te = 100 * result["metrics"]["after"]["tracking_error"]
    openai_stub.script(text(f"Tracking error is {te:.1f}% because a $2.7M tax bill was avoided."))
    row = services.agent_answer(run=run, question="Why is TE where it is?", actor=book.owner)
    row.refresh_from_db()
    assert (row.source, row.outcome) == ("deterministic", "rejected")
    assert row.reason == "number check: '$2.7M' matches no fact"
    assert row.text == services.answer(services.run_facts(run), "Why is TE where it is?")
    assert "$2.7M tax bill" in row.response["choices"][0]["message"]["content"]
    # a grounded model text is kept as written
    good = f"Tracking error after the trades is {te:.1f}%."
    openai_stub.script(text(good))
    explained = services.agent_explain(run=run, audience="adviser", actor=book.owner)
    assert (explained.source, explained.outcome, explained.text) == ("model", "ok", good)
    calls = len(openai_stub.requests)
    services.agent_explain(run=run, audience="adviser", actor=book.owner)
    assert len(openai_stub.requests) == calls  # same result, same model: the cached answer


def test_an_infeasible_run_is_explained_from_its_conflicts(
    priced_book, django_capture_on_commit_callbacks
):
    from optimizer.services import run_request

    overrides = {"restrictions": [{"symbol": "VTI", "max_weight": "0.10", "no_sell": True}]}
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=priced_book.household,
            scenario="moderate",
            actor=priced_book.owner,
            overrides=overrides,
        )
    run.refresh_from_db()
    assert run.status == RunStatus.INFEASIBLE
    row = services.agent_explain(run=run, audience="adviser", actor=priced_book.owner)
    assert row.text.startswith("The request cannot be met")
    assert "These constraints conflict:" in row.text and "VTI" in row.text
    assert row.basis_sha256 == services.run_basis(run) and row.basis_sha256


def test_an_unfinished_run_is_not_explained(priced_book):
    from optimizer.services import run_request

    run = run_request(household=priced_book.household, scenario="moderate", actor=None)
    assert run.status == RunStatus.QUEUED
    with pytest.raises(ValueError, match="has not finished"):
        services.agent_explain(run=run, audience="adviser", actor=None)
    assert services.deterministic_explanation(run, "adviser") == "The run has not finished yet."
