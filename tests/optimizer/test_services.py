from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from optimizer.models import OptimizationRun, RunStatus, StoredDocument
from optimizer.services import batch_request, canonical_snapshot_text, run_execute, run_request


def test_a_run_is_recorded_executed_and_audited(
    priced_book, today, django_capture_on_commit_callbacks
):
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=book.household, scenario="moderate", actor=book.owner, idempotency_key="k1"
        )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.requested_by == book.owner and run.attempts == 1
    assert run.ips == book.ips
    # the stored snapshot is the exact text of the hash
    doc = StoredDocument.objects.get(pk=run.snapshot_id)
    assert doc.sha256 == run.snapshot_sha256
    from audit.canonical import sha256_hex

    assert sha256_hex(doc.text) == run.snapshot_sha256
    result = json.loads(run.result.text)
    assert result["input_sha256"] == run.snapshot_sha256
    assert run.summary["trades"] == len(result["trades"])
    assert {"cvxpy", "clarabel", "python"} <= set(run.versions)
    events = list(
        AuditEvent.objects.filter(
            object_type="optimizer.OptimizationRun", object_id=str(run.pk)
        ).order_by("seq")
    )
    assert [e.event_type for e in events] == ["optimizer.run_requested", "optimizer.run_finished"]
    assert json.loads(events[1].payload)["data"]["snapshot_sha256"] == run.snapshot_sha256
    assert run.history.filter(status=RunStatus.RUNNING).exists()
    assert run.history.latest().history_user == book.owner


def test_same_idempotency_key_never_creates_a_second_run(
    priced_book, django_capture_on_commit_callbacks
):
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        first = run_request(
            household=book.household, scenario="moderate", actor=book.owner, idempotency_key="dbl"
        )
        second = run_request(
            household=book.household, scenario="moderate", actor=book.owner, idempotency_key="dbl"
        )
    assert first.pk == second.pk
    assert OptimizationRun.objects.filter(idempotency_key="dbl").count() == 1


def test_redelivered_execution_does_nothing(priced_book, django_capture_on_commit_callbacks):
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(household=book.household, scenario="moderate", actor=book.owner)
    events = AuditEvent.objects.count()
    again = run_execute(run_id=run.pk)
    assert (
        again.attempts == 1
        and again.result_sha256 == OptimizationRun.objects.get(pk=run.pk).result_sha256
    )
    assert AuditEvent.objects.count() == events


def test_repeatable_same_snapshot_same_result(
    priced_book, today, django_capture_on_commit_callbacks
):
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        a = run_request(household=book.household, scenario="conservative", actor=book.owner)
        b = run_request(household=book.household, scenario="conservative", actor=book.owner)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.pk != b.pk
    assert a.snapshot_sha256 == b.snapshot_sha256
    assert a.result_sha256 == b.result_sha256
    assert a.result_id == b.result_id  # stored once


def test_stale_data_blocks_the_run_with_the_reason(
    priced_book, today, django_capture_on_commit_callbacks
):
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=book.household,
            scenario="moderate",
            actor=book.owner,
            as_of=today + dt.timedelta(days=10),
        )
    run.refresh_from_db()
    assert run.status == RunStatus.BLOCKED
    assert "stale feed" in run.error
    assert run.snapshot is None and run.result is None


def test_infeasible_request_reports_the_conflict_in_words(
    priced_book, django_capture_on_commit_callbacks
):
    book = priced_book
    overrides = {"restrictions": [{"symbol": "VTI", "max_weight": "0.10", "no_sell": True}]}
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=book.household, scenario="moderate", actor=book.owner, overrides=overrides
        )
    run.refresh_from_db()
    assert run.status == RunStatus.INFEASIBLE
    assert "VTI" in run.error
    assert run.summary["conflicts"]


def test_batch_runs_every_household_of_the_firm(priced_book, django_capture_on_commit_callbacks):
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_request(
            firm=book.firm, scenario="moderate", actor=book.compliance, idempotency_key="b1"
        )
    runs = list(batch.runs.all())
    assert [r.household for r in runs] == [book.household]
    assert runs[0].status == RunStatus.SUCCEEDED
    assert (
        batch_request(firm=book.firm, scenario="moderate", actor=None, idempotency_key="b1").pk
        == batch.pk
    )
    assert (
        AuditEvent.objects.filter(
            event_type="optimizer.batch_requested", object_id=str(batch.pk)
        ).count()
        == 1
    )


def test_canonical_snapshot_text_is_sorted_and_compact():
    assert canonical_snapshot_text({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


@pytest.mark.django_db(transaction=True)
def test_propose_command_prints_json(priced_book, capsys):
    call_command(
        "propose",
        "--household",
        str(priced_book.household.pk),
        "--scenario",
        "moderate",
        "--json",
        "--as",
        "owner",
    )
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded"
    assert out["result"]["scenario"] == "moderate"
    run = OptimizationRun.objects.get(pk=out["run"])
    assert run.requested_by == priced_book.owner


@pytest.mark.django_db(transaction=True)
def test_rebalance_book_command(priced_book, capsys):
    call_command("rebalance_book", "--firm", "alpha", "--scenario", "conservative")
    out = capsys.readouterr().out
    assert "1 runs" in out and "1 succeeded" in out


def test_a_raise_beyond_the_cash_band_runs_through_the_service(
    priced_book, django_capture_on_commit_callbacks
):
    """A custom run with cash to raise far above the IPS cash band succeeds (it was refused as
    infeasible while the raised cash counted as cash held against the band)."""
    book = priced_book
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=book.household,
            scenario="custom",
            actor=book.owner,
            overrides={"cash_to_raise": {"schwab-12345678": "5000.00"}},
        )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    result = json.loads(run.result.text)
    assert result["metrics"]["after"]["cash_raised"]["total"] == "5000.00"
    snapshot = json.loads(run.snapshot.text)
    assert snapshot["accounts"][0]["cash_to_raise"] == "5000.00"
