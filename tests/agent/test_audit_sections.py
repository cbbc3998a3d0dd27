"""Agent interactions in the audit tools: the exam package, the run reconstruction page (with
their events on the run's timeline) and the record-history pages."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from django.test import Client as HttpClient
from django.urls import reverse

from agent import services
from agent.audit_sections import agent_section
from agent.models import AgentInteraction
from audit.export import exam_package_build

REQUEST = "max $2K gains, don't sell VTI, no short-term gains"


def _run(book, capture):
    interaction = services.agent_parse(household=book.household, text=REQUEST, actor=book.owner)
    with capture(execute=True):
        run = services.agent_confirm(interaction=interaction, actor=book.owner, token="a" * 32)
    run.refresh_from_db()
    services.agent_explain(run=run, audience="adviser", actor=book.owner)
    services.agent_answer(run=run, question="Why is tracking error still there?", actor=book.owner)
    return run


def test_the_reconstruction_section_lists_the_request_explanation_and_answer(
    priced_book, django_capture_on_commit_callbacks
):
    run = _run(priced_book, django_capture_on_commit_callbacks)
    section = agent_section(run)
    assert section is not None
    kinds = [str(row[1]) for row in section.rows]
    assert kinds == ["Request parsed", "Explanation (adviser)", "Answer to a question (adviser)"]
    parse = AgentInteraction.objects.get(kind="parse")
    assert section.rows[0][1].href == reverse(
        "agent_parse", args=[priced_book.household.pk, parse.pk]
    )
    assert section.rows[0][-1] == REQUEST and section.rows[0][6] == "none (offline)"
    assert section.audit_objects == [
        ("agent.AgentInteraction", str(i.pk)) for i in AgentInteraction.objects.order_by("pk")
    ]
    client = HttpClient()
    client.force_login(priced_book.compliance)
    page = client.get(reverse("run_reconstruction", args=[run.pk])).content.decode()
    assert "Agent: the request, explanations and answers" in page
    assert "agent.answer" in page and "agent.spec_confirmed" in page  # on the run's timeline


def test_a_run_without_the_agent_has_no_section(priced_book, django_capture_on_commit_callbacks):
    from optimizer.services import run_request

    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(household=priced_book.household, scenario="moderate", actor=None)
    assert agent_section(run) is None


def test_the_exam_package_holds_the_interactions(
    priced_book, django_capture_on_commit_callbacks, today
):
    _run(priced_book, django_capture_on_commit_callbacks)
    package = exam_package_build(firm=priced_book.firm, date_from=today, date_to=today)
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        records = list(
            csv.DictReader(io.StringIO(archive.read("records/agent_interactions.csv").decode()))
        )
        history = json.loads(archive.read("history/agent_interactions.json"))
    assert [r["kind"] for r in records] == ["parse", "explain", "answer"]
    assert records[0]["request_text"] == REQUEST and records[0]["outcome"] == "ok"
    assert len(history) == 3 and {h["history_type"] for h in history} == {"+"}
    assert "sk-" not in json.dumps(history)


def test_record_history_page_of_an_interaction(priced_book):
    row = services.agent_parse(
        household=priced_book.household, text=REQUEST, actor=priced_book.owner
    )
    client = HttpClient()
    client.force_login(priced_book.compliance)
    url = reverse("record_history", args=["agent.AgentInteraction", row.pk])
    response = client.get(url)
    assert response.status_code == 200
    client.force_login(priced_book.outsider)
    assert client.get(url).status_code == 404
