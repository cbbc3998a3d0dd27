"""Scheduled chain verification: the beat entry, the task, the stored status."""

from __future__ import annotations

import json

import pytest
from celery.beat import ScheduleEntry
from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command

from audit.models import (
    AuditChainHead,
    AuditEvent,
    AuditLogIsAppendOnly,
    VerificationRun,
    VerificationTrigger,
)
from audit.tasks import verify_audit_chains
from audit.verification import latest_verification, verification_run
from portal.celery import app
from tests.audit.test_chain import _raw


def test_beat_schedules_the_verification_task_nightly():
    entry = settings.CELERY_BEAT_SCHEDULE["audit-verify-chains"]
    assert entry["task"] == "audit.tasks.verify_audit_chains"
    assert isinstance(entry["schedule"], crontab)
    assert entry["task"] in app.tasks
    assert app.conf.beat_schedule["audit-verify-chains"]["task"] == entry["task"]
    scheduled = ScheduleEntry(name="audit-verify-chains", app=app, **entry)
    _due, next_in = scheduled.is_due()
    assert 0 < next_in <= 24 * 3600


def test_the_task_verifies_every_chain_and_records_the_status(book):
    heads = {h.chain: (h.seq, h.hash) for h in AuditChainHead.objects.all()}
    events_before = AuditEvent.objects.count()
    summary = verify_audit_chains.delay().get()
    run = VerificationRun.objects.get(pk=summary["verification_run"])
    assert summary == {
        "verification_run": run.pk,
        "ok": True,
        "events_checked": events_before,
        "problem": "",
    }
    assert run.trigger == VerificationTrigger.SCHEDULED and run.requested_by is None
    assert run.ok and run.scope == "" and run.first_broken_event_id is None
    assert {e["chain"]: (e["events"], e["head_hash"]) for e in run.chains} == heads
    assert run.chain_entry("alpha") == {
        "chain": "alpha",
        "events": heads["alpha"][0],
        "head_hash": heads["alpha"][1],
        "ok": True,
        "problem": "",
        "broken_event_id": None,
        "broken_seq": None,
    }
    event = AuditEvent.objects.get(event_type="audit.chain_verified")
    assert event.chain == "system" and event.object_id == str(run.pk)
    assert json.loads(event.payload)["data"]["events_checked"] == events_before
    assert latest_verification(trigger=VerificationTrigger.SCHEDULED) == run


def test_the_task_records_the_first_broken_event(book):
    victim = AuditEvent.objects.filter(chain="alpha").order_by("seq")[3]
    tampered = victim.payload.replace('"data":{', '"data":{"injected":1,', 1)
    _raw("UPDATE audit_auditevent SET payload = %s WHERE id = %s", [tampered, victim.pk])
    summary = verify_audit_chains.delay().get()
    run = VerificationRun.objects.get(pk=summary["verification_run"])
    assert not run.ok and summary["ok"] is False
    assert run.first_broken_chain == "alpha"
    assert run.first_broken_event_id == victim.pk
    assert run.first_broken_seq == victim.seq
    assert f"event #{victim.pk} (chain alpha, seq {victim.seq})" in run.problem
    assert "payload altered" in run.problem
    assert run.chain_entry("beta")["ok"] is True


def test_a_firm_scoped_run_verifies_only_that_chain(book):
    run = verification_run(
        actor=book.compliance, trigger=VerificationTrigger.ON_DEMAND, firm=book.firm
    )
    assert run.scope == "alpha"
    assert [e["chain"] for e in run.chains] == ["alpha"]
    event = AuditEvent.objects.get(event_type="audit.chain_verified")
    assert event.chain == "alpha" and event.actor == book.compliance


def test_the_command_can_record_its_result(book, capsys):
    call_command("audit_verify", "--record")
    assert "audit chain intact" in capsys.readouterr().out
    run = VerificationRun.objects.get()
    assert run.trigger == VerificationTrigger.COMMAND and run.ok


def test_verification_runs_are_never_changed(book):
    run = verification_run(actor=None, trigger=VerificationTrigger.SCHEDULED)
    run.ok = False
    with pytest.raises(AuditLogIsAppendOnly):
        run.save()
    with pytest.raises(AuditLogIsAppendOnly):
        run.delete()
    assert VerificationRun.objects.get(pk=run.pk).ok
