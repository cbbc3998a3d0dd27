from __future__ import annotations

import itertools
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit.canonical import canonical_json, sha256_hex
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, AuditLogIsAppendOnly
from audit.services import AuditOutsideTransaction, audit_record
from audit.verify import verify_chains


def _events(chain: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(chain=chain).order_by("seq"))


def test_services_write_a_linked_chain_per_firm(book):
    events = _events("alpha")
    assert len(events) > 10
    assert events[0].seq == 1 and events[0].prev_hash == GENESIS_HASH
    for previous, event in itertools.pairwise(events):
        assert event.seq == previous.seq + 1
        assert event.prev_hash == previous.hash
        assert event.hash == sha256_hex(previous.hash + event.payload)
    head = AuditChainHead.objects.get(chain="alpha")
    assert (head.seq, head.hash) == (events[-1].seq, events[-1].hash)
    # the other firm's events are on their own chain
    assert {e.chain for e in AuditEvent.objects.filter(firm=book.outsider.firm)} == {"beta"}


def test_event_payload_is_canonical_and_names_actor_and_object(book):
    event = AuditEvent.objects.get(event_type="ips.version_created")
    payload = json.loads(event.payload)
    assert canonical_json(payload) == event.payload
    assert payload["actor"] == book.owner.pk
    assert payload["object_type"] == "accounts.InvestmentPolicy"
    assert payload["object_id"] == str(book.ips.pk)
    assert payload["data"]["targets"][0] == {
        "asset_class": "us_large",
        "security": None,
        "weight": "0.60",
        "band": None,
    }


def test_audit_record_refuses_outside_a_transaction(transactional_db):
    with pytest.raises(AuditOutsideTransaction):
        audit_record(actor=None, event_type="x", firm=None)
    assert AuditEvent.objects.count() == 0


def test_events_are_append_only(book):
    event = AuditEvent.objects.filter(chain="alpha").first()
    event.event_type = "rewritten"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(event_type="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_a_failed_write_leaves_no_event(book):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=book.owner, event_type="doomed", firm=book.firm)
        raise RuntimeError("rollback")
    assert AuditEvent.objects.count() == before
    assert verify_chains().ok


def test_verify_command_passes_on_an_intact_chain(book, capsys):
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "audit chain intact" in out
    assert "alpha:" in out and "beta:" in out


def _raw(sql: str, params: list[object]) -> None:
    """Tamper as someone with direct database access would. On PostgreSQL that person must
    first disable the append-only trigger (the test transaction rolls the change back)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")


def test_the_database_refuses_update_and_delete_of_audit_events_on_postgresql(book):
    """PostgreSQL: a trigger refuses raw UPDATE/DELETE. SQLite has no such trigger; there the
    application's refusal (test_events_are_append_only) and audit_verify are the guard."""
    from django.db import DatabaseError

    event = AuditEvent.objects.filter(chain="alpha").first()
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
            assert cursor.fetchone()[0] == 0
        return
    for sql in (
        "UPDATE audit_auditevent SET event_type = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).event_type == event.event_type


def test_verify_names_an_event_whose_payload_was_changed(book):
    victim = _events("alpha")[4]
    tampered = victim.payload.replace('"data":{', '"data":{"injected":1,', 1)
    _raw("UPDATE audit_auditevent SET payload = %s WHERE id = %s", [tampered, victim.pk])
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify")
    message = str(excinfo.value)
    assert f"event #{victim.pk} (chain alpha, seq {victim.seq})" in message
    assert "payload altered" in message


def test_verify_names_the_event_after_a_deleted_one(book):
    events = _events("alpha")
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [events[3].pk])
    report = verify_chains(["alpha"])
    assert not report.ok
    broken = report.chains[0]
    assert broken.broken_event_id == events[4].pk
    assert "expected seq 4" in (broken.problem or "")


def test_verify_detects_a_deleted_last_event_through_the_head(book):
    events = _events("alpha")
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])
    report = verify_chains(["alpha"])
    assert not report.ok
    assert "were deleted" in (report.chains[0].problem or "")


def test_verify_detects_reordered_events(book):
    events = _events("alpha")
    a, b = events[5], events[6]
    _raw("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [10**9, a.pk])
    _raw("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [a.seq, b.pk])
    _raw("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b.seq, a.pk])
    report = verify_chains(["alpha"])
    assert not report.ok
    assert report.chains[0].broken_event_id == b.pk


def test_verify_detects_a_column_changed_without_the_payload(book):
    victim = _events("alpha")[2]
    _raw("UPDATE audit_auditevent SET event_type = %s WHERE id = %s", ["innocent", victim.pk])
    report = verify_chains(["alpha"])
    assert report.chains[0].broken_event_id == victim.pk
    assert "column event_type" in (report.chains[0].problem or "")
