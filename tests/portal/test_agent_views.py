"""The agent's pages for every role: owner, colleague, compliance, client, outsider, anonymous.

The request box on the household page, the request page (the spec in words, questions,
treatments, confirmation), the custom run it starts, the run page (explanation, client text,
checks, flags, trades) and follow-up questions; offline and with the stub model."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from agent.models import AgentInteraction
from audit.models import AuditEvent
from optimizer.models import OptimizationRun, RunStatus
from tests.agent.openai_stub import Stub, running_stub, text, tool_call
from tests.factories import PASSWORD

REQUEST = "max $2K gains, don't sell VTI, no short-term gains"
READERS = ("colleague", "compliance")
HIDDEN = ("client_user", "outsider")


def login(user) -> HttpClient:
    client = HttpClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def token(client: HttpClient) -> str:
    """The CSRF cookie a browser would have (every page has the logout form)."""
    if "csrftoken" not in client.cookies:
        client.get(reverse("household_list"))
    return client.cookies["csrftoken"].value


def post(client: HttpClient, url: str, data: dict | None = None):
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": token(client)})


def ask_for(book, text_: str = REQUEST) -> AgentInteraction:
    response = post(
        login(book.owner), reverse("agent_request", args=[book.household.pk]), {"text": text_}
    )
    assert response.status_code == 302
    return AgentInteraction.objects.get(kind="parse", request_text=text_)


def confirm_token(body: str) -> str:
    match = re.search(r'name="token" value="([0-9a-f]{32})"', body)
    assert match, "no confirmation form"
    return match.group(1)


@pytest.fixture
def agent_run(priced_book, django_capture_on_commit_callbacks) -> OptimizationRun:
    """The owner's request, read, confirmed and run (through the pages)."""
    interaction = ask_for(priced_book)
    owner = login(priced_book.owner)
    page = owner.get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            owner,
            reverse("agent_confirm", args=[priced_book.household.pk, interaction.pk]),
            {"token": confirm_token(page.content.decode())},
        )
    run = OptimizationRun.objects.get(scenario="custom")
    assert response.status_code == 302 and response["Location"] == reverse(
        "agent_run", args=[run.pk]
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


# -- the request box on the household page --------------------------------------------------
def test_household_page_shows_the_request_box_to_the_owner(priced_book):
    body = (
        login(priced_book.owner)
        .get(reverse("household_detail", args=[priced_book.household.pk]))
        .content.decode()
    )
    assert "Ask for a scenario in plain language" in body
    assert f'action="{reverse("agent_request", args=[priced_book.household.pk])}"' in body


@pytest.mark.parametrize("role", READERS)
def test_readers_see_the_box_without_the_form(priced_book, role):
    body = (
        login(getattr(priced_book, role))
        .get(reverse("household_detail", args=[priced_book.household.pk]))
        .content.decode()
    )
    assert "Ask for a scenario in plain language" in body
    assert reverse("agent_request", args=[priced_book.household.pk]) not in body
    assert "Only an adviser assigned to this household asks for scenarios" in body


def test_the_client_never_sees_the_box(priced_book):
    body = (
        login(priced_book.client_user)
        .get(reverse("household_detail", args=[priced_book.household.pk]))
        .content.decode()
    )
    assert "Ask for a scenario in plain language" not in body


# -- asking ------------------------------------------------------------------------------------
def test_owner_request_is_read_and_shown_back_in_words(priced_book):
    interaction = ask_for(priced_book)
    body = (
        login(priced_book.owner)
        .get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
        .content.decode()
    )
    for line in (
        "Net realized gains are capped at $2,000.",
        "No short-term gains will be realized.",
        "VTI will not be sold.",
        "Hard rule: VTI will not be sold (a no-sell restriction for this run).",
        "Confirm and run this custom scenario",
        "the offline parser",
    ):
        assert line in body
    assert AuditEvent.objects.filter(event_type="agent.parse", actor=priced_book.owner).count() == 1


def test_questions_come_back_and_there_is_nothing_to_confirm(priced_book):
    interaction = ask_for(priced_book, "keep gains under 25 and don't sell AAPL")
    body = (
        login(priced_book.owner)
        .get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
        .content.decode()
    )
    assert "Questions before anything runs" in body
    assert (
        "AAPL (in &quot;don&#x27;t sell AAPL&quot;) is not a security of this household or its target."
        in body
    )
    assert "$25 or $25,000?" in body
    assert "Confirm and run" not in body
    response = post(
        login(priced_book.owner),
        reverse("agent_confirm", args=[priced_book.household.pk, interaction.pk]),
        {"token": "f" * 32},
    )
    assert response.status_code == 400
    assert not OptimizationRun.objects.exists()


def test_an_empty_request_is_refused(priced_book):
    response = post(
        login(priced_book.owner),
        reverse("agent_request", args=[priced_book.household.pk]),
        {"text": " "},
    )
    assert response.status_code == 302 and response["Location"].endswith("#agent")
    assert not AgentInteraction.objects.exists()


@pytest.mark.parametrize("role", READERS)
def test_readers_cannot_ask_but_can_read_requests(priced_book, role):
    user = getattr(priced_book, role)
    client = login(user)
    response = post(
        client, reverse("agent_request", args=[priced_book.household.pk]), {"text": REQUEST}
    )
    assert response.status_code == 403
    interaction = ask_for(priced_book)
    page = client.get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "VTI will not be sold." in body and "Confirm and run" not in body
    response = post(
        client,
        reverse("agent_confirm", args=[priced_book.household.pk, interaction.pk]),
        {"token": "a" * 32},
    )
    assert response.status_code == 403
    assert not OptimizationRun.objects.exists()


@pytest.mark.parametrize("role", HIDDEN)
def test_clients_and_outsiders_get_404_everywhere(priced_book, role):
    interaction = ask_for(priced_book)
    client = login(getattr(priced_book, role))
    pk = priced_book.household.pk
    assert post(client, reverse("agent_request", args=[pk]), {"text": REQUEST}).status_code == 404
    assert client.get(reverse("agent_parse", args=[pk, interaction.pk])).status_code == 404
    confirm = reverse("agent_confirm", args=[pk, interaction.pk])
    assert post(client, confirm, {"token": "a" * 32}).status_code == 404
    assert AgentInteraction.objects.count() == 1


def test_anonymous_is_sent_to_login(priced_book):
    interaction = ask_for(priced_book)
    pk = priced_book.household.pk
    for url in (
        reverse("agent_parse", args=[pk, interaction.pk]),
        reverse("agent_run", args=[1]),
    ):
        response = HttpClient().get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = HttpClient().post(reverse("agent_request", args=[pk]), {"text": REQUEST})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_posts_need_the_csrf_token(priced_book):
    client = login(priced_book.owner)
    response = client.post(
        reverse("agent_request", args=[priced_book.household.pk]), {"text": REQUEST}
    )
    assert response.status_code == 403
    assert not AgentInteraction.objects.exists()


def test_another_households_request_is_404(priced_book):
    interaction = ask_for(priced_book)
    client = login(priced_book.outsider)
    other = priced_book.other_household.pk
    assert client.get(reverse("agent_parse", args=[other, interaction.pk])).status_code == 404


# -- the run ----------------------------------------------------------------------------------
def test_confirming_runs_the_custom_scenario_and_the_run_page_explains_it(priced_book, agent_run):
    assert agent_run.request_text == REQUEST and agent_run.requested_by == priced_book.owner
    body = login(priced_book.owner).get(reverse("agent_run", args=[agent_run.pk])).content.decode()
    for line in (
        "Why these trades",
        "Tracking error to the target goes from 0.4% to 0.3%",
        "The $2,000 net gain cap did not bind",
        "The no-sell restriction on VTI (adviser request) forced a deviation from the target",
        "For the client",
        "VTI is not sold, as restricted.",
        "Deterministic explanation from the run's facts.",
        "The confirmed request",
        "Binding constraints",
        "Stage as a proposal for review",
        "Ask about this run",
    ):
        assert line in body, line
    kinds = sorted(
        AgentInteraction.objects.filter(run=agent_run).values_list("audience", flat=True)
    )
    assert kinds == ["adviser", "client"]
    login(priced_book.owner).get(reverse("agent_run", args=[agent_run.pk]))
    assert AgentInteraction.objects.filter(run=agent_run).count() == 2  # recorded once


def test_the_request_page_links_its_runs(priced_book, agent_run):
    interaction = AgentInteraction.objects.get(kind="parse")
    body = (
        login(priced_book.compliance)
        .get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
        .content.decode()
    )
    assert reverse("agent_run", args=[agent_run.pk]) in body


@pytest.mark.parametrize("role", READERS)
def test_readers_see_the_run_but_record_nothing_and_cannot_ask(priced_book, agent_run, role):
    client = login(getattr(priced_book, role))
    response = client.get(reverse("agent_run", args=[agent_run.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Tracking error to the target goes from 0.4% to 0.3%" in body
    assert "Ask about this run" not in body and "Stage as a proposal" not in body
    assert not AgentInteraction.objects.filter(kind="explain").exists()
    ask = post(client, reverse("agent_ask", args=[agent_run.pk]), {"question": "Why?"})
    assert ask.status_code == 403
    assert not AgentInteraction.objects.filter(kind="answer").exists()


@pytest.mark.parametrize("role", HIDDEN)
def test_the_run_page_is_404_for_clients_and_outsiders(priced_book, agent_run, role):
    client = login(getattr(priced_book, role))
    assert client.get(reverse("agent_run", args=[agent_run.pk])).status_code == 404
    ask = post(client, reverse("agent_ask", args=[agent_run.pk]), {"question": "Why?"})
    assert ask.status_code == 404


def test_follow_up_questions_are_answered_and_listed(priced_book, agent_run):
    owner = login(priced_book.owner)
    question = "Why is tracking error still 0.3% despite the tax?"
    response = post(owner, reverse("agent_ask", args=[agent_run.pk]), {"question": question})
    answer_row = AgentInteraction.objects.get(kind="answer")
    assert (
        response["Location"]
        == f"{reverse('agent_run', args=[agent_run.pk])}#answer-{answer_row.pk}"
    )
    assert answer_row.request_text == question and answer_row.actor == priced_book.owner
    body = owner.get(reverse("agent_run", args=[agent_run.pk])).content.decode()
    assert f'id="answer-{answer_row.pk}"' in body
    assert "Why is tracking error still 0.3% despite the tax?" in body
    assert "The no-sell restriction on VTI (adviser request) forced a deviation" in answer_row.text
    # the same question again is the same answer, not a new record
    post(owner, reverse("agent_ask", args=[agent_run.pk]), {"question": question})
    assert AgentInteraction.objects.filter(kind="answer").count() == 1
    # compliance reads the answers
    assert (
        question
        in login(priced_book.compliance)
        .get(reverse("agent_run", args=[agent_run.pk]))
        .content.decode()
    )
    empty = post(owner, reverse("agent_ask", args=[agent_run.pk]), {"question": ""})
    assert empty.status_code == 400


def test_an_infeasible_request_shows_its_conflicts(priced_book, django_capture_on_commit_callbacks):
    interaction = ask_for(priced_book, "don't sell BND")
    owner = login(priced_book.owner)
    page = owner.get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        post(
            owner,
            reverse("agent_confirm", args=[priced_book.household.pk, interaction.pk]),
            {"token": confirm_token(page.content.decode())},
        )
    run = OptimizationRun.objects.get(scenario="custom")
    assert run.status == RunStatus.INFEASIBLE
    body = owner.get(reverse("agent_run", args=[run.pk])).content.decode()
    assert "The request cannot be met" in body
    assert "schwab-87654321 must hold $145.00 in cash (has $0.00)" in body
    assert "the no-sell restriction on BND" in body


# -- with a model configured --------------------------------------------------------------------
@pytest.fixture
def model(settings) -> Iterator[Stub]:
    with running_stub() as stub:
        settings.OPENAI_BASE_URL = stub.base_url
        settings.OPENAI_API_KEY = "sk-test-secret-key"
        settings.AGENT_MODEL = "stub-model"
        settings.AGENT_TIMEOUT_SECONDS = 5.0
        yield stub


def test_the_whole_flow_with_a_model(priced_book, model, django_capture_on_commit_callbacks):
    args = {
        "scenario": "custom", "max_net_gains": "2000", "max_short_term_gains": None,
        "no_short_term_gains": True, "no_sell": ["VTI"], "no_buy": [], "must_sell": [],
        "raise_cash": None, "invest_cash": None, "max_tracking_error": None,
        "completion_target": None, "max_trades": None, "max_turnover": None,
        "harvest_losses": None, "notes": "",
    }  # fmt: skip
    model.script(tool_call(args))
    interaction = ask_for(priced_book)
    assert (interaction.source, interaction.model) == ("model", "stub-model")
    owner = login(priced_book.owner)
    page = owner.get(reverse("agent_parse", args=[priced_book.household.pk, interaction.pk]))
    assert "read by the model stub-model" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        post(
            owner,
            reverse("agent_confirm", args=[priced_book.household.pk, interaction.pk]),
            {"token": confirm_token(page.content.decode())},
        )
    run = OptimizationRun.objects.get(scenario="custom")
    grounded = "Tracking error falls from 0.4% to 0.3%; VTI stays because you restricted it."
    model.script(text(grounded), text("Your portfolio moves closer to its target mix."))
    body = owner.get(reverse("agent_run", args=[run.pk])).content.decode()
    assert grounded in body and "Written by the model stub-model" in body
    assert "Your portfolio moves closer to its target mix." in body
    model.script(text("Because the $9,999 gain cap binds."))
    post(owner, reverse("agent_ask", args=[run.pk]), {"question": "Why is TE 0.3%?"})
    row = AgentInteraction.objects.get(kind="answer")
    assert (row.outcome, row.reason) == ("rejected", "number check: '$9,999' matches no fact")
    body = owner.get(reverse("agent_run", args=[run.pk])).content.decode()
    assert "Model text rejected by the number check; deterministic answer." in body
    assert "$9,999" not in body
    assert len(model.requests) == 4


# -- the explanation on other pages (e.g. the proposal page) ------------------------------------
def _render_tag(user, run) -> str:
    from django.template import Context, Template

    return Template("{% load agent_tags %}{% agent_run_explanation run %}").render(
        Context({"user": user, "run": run})
    )


@pytest.mark.parametrize("role", ("owner", *READERS))
def test_the_explanation_tag_shows_the_rationale_to_firm_staff(priced_book, agent_run, role):
    html = _render_tag(getattr(priced_book, role), agent_run)
    assert "Why these trades" in html
    assert "The no-sell restriction on VTI (adviser request) forced a deviation" in html
    assert reverse("agent_run", args=[agent_run.pk]) in html
    assert not AgentInteraction.objects.filter(kind="explain").exists()  # read-only


@pytest.mark.parametrize("role", HIDDEN)
def test_the_explanation_tag_shows_nothing_to_clients_and_outsiders(priced_book, agent_run, role):
    assert "Why these trades" not in _render_tag(getattr(priced_book, role), agent_run)
