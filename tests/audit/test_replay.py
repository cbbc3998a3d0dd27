"""Replay: the stored snapshot solved again gives the byte-identical result, or the report says
exactly what differs (trades, metrics, other fields, library versions)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.canonical import sha256_hex
from audit.models import AuditEvent
from audit.verify import verify_chains
from optimizer import replay as replay_module
from optimizer.core.engine import solve
from optimizer.core.snapshot import snapshot_from_dict
from optimizer.models import OptimizationRun, RunStatus, StoredDocument
from optimizer.replay import ReplayNotPossible, diff_results, replay_compare, run_replay


def _replay_events(run: OptimizationRun) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            event_type="optimizer.run_replayed",
            object_type="optimizer.OptimizationRun",
            object_id=str(run.pk),
        ).order_by("seq")
    )


def _ira_cash_raised(snapshot_text: str) -> str:
    """The snapshot with the IRA's cash raised from $0 to $1,000: its cash floor no longer
    forces the $362.50 sale of BND."""
    snapshot = json.loads(snapshot_text)
    ira = next(a for a in snapshot["accounts"] if a["tax_treatment"] == "deferred")
    assert ira["cash"] == "0.00"
    ira["cash"] = "1000.00"
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"))


def test_the_stored_result_is_what_the_core_returns_for_the_stored_snapshot(finished_run):
    run = finished_run
    again = solve(snapshot_from_dict(json.loads(run.snapshot.text))).to_json()
    assert again == run.result.text
    assert sha256_hex(again) == run.result_sha256


def test_replay_is_byte_identical_and_recorded(finished_run, book):
    run = finished_run
    report = run_replay(run_id=run.pk, actor=book.compliance)
    assert report.identical
    assert report.snapshot_intact
    assert report.result_sha256_replayed == run.result_sha256
    assert report.replayed_text.encode() == run.result.text.encode()
    assert report.diff.empty and report.lines() == []
    (event,) = _replay_events(run)
    assert event.actor == book.compliance and event.firm == book.firm
    data = json.loads(event.payload)["data"]
    assert data["identical"] is True
    assert data["result_sha256_replayed"] == run.result_sha256
    assert data["replayed_result_document"] == ""
    assert data["versions_then"] == run.versions
    assert StoredDocument.objects.filter(kind="replay_result").count() == 0
    assert verify_chains([book.firm.slug]).ok


def test_replay_command_confirms_byte_identical(finished_run, capsys):
    call_command("replay_run", str(finished_run.pk), "--as", "compliance")
    out = capsys.readouterr().out
    assert f"run {finished_run.pk}: replay byte-identical" in out
    assert finished_run.result_sha256 in out
    (event,) = _replay_events(finished_run)
    assert event.actor_label.startswith("compliance ")


def test_a_changed_snapshot_reports_the_removed_trade_and_metrics(finished_run):
    run = finished_run
    changed = _ira_cash_raised(run.snapshot.text)
    report = replay_compare(
        snapshot_text=changed,
        knobs=None,
        snapshot_sha256_recorded=run.snapshot_sha256,
        result_text_then=run.result.text,
        result_sha256_recorded=run.result_sha256,
        outcome_then=RunStatus.SUCCEEDED,
        versions_then=run.versions,
        run_id=run.pk,
    )
    then_trades = json.loads(run.result.text)["trades"]
    now = json.loads(report.replayed_text)
    assert not report.identical
    assert not report.snapshot_intact
    assert report.snapshot_sha256_stored == sha256_hex(changed)
    assert now["trades"] == []
    assert report.diff.trades_removed == then_trades
    assert report.diff.trades_added == [] and report.diff.trades_changed == []
    metrics = {m.path: (m.then, m.now) for m in report.diff.metrics}
    assert metrics["metrics.after.tickets"] == (1, 0)
    assert metrics["metrics.after.sales"] == ("362.50", "0.00")
    assert metrics["metrics.before.cash.total"] == ("1000.00", "2000.00")
    other = {o.path: (o.then, o.now) for o in report.diff.other}
    assert other["input_sha256"] == (run.snapshot_sha256, sha256_hex(changed))
    assert other["binding_constraints[0].constraint"] == ("cash_floor:schwab-87654321", None)
    assert "binding_constraints" not in other  # the emptied list is reported by its members
    lines = report.lines()
    assert lines[0].startswith("stored snapshot does not match its recorded SHA-256")
    assert (
        "trade removed: sell 5 BND in schwab-87654321 at 72.500000 (estimated value 362.50)"
        in lines
    )
    assert "metric metrics.after.tickets: 1 -> 0" in lines


def test_a_changed_price_reports_the_changed_trade_field_by_field(finished_run):
    run = finished_run
    snapshot = json.loads(run.snapshot.text)
    vti = next(s for s in snapshot["securities"] if s["symbol"] == "VTI")
    vti["price"] = "260.000000"
    report = replay_compare(
        snapshot_text=json.dumps(snapshot),
        knobs=None,
        snapshot_sha256_recorded=run.snapshot_sha256,
        result_text_then=run.result.text,
        result_sha256_recorded=run.result_sha256,
        outcome_then=RunStatus.SUCCEEDED,
    )
    (changed,) = report.diff.trades_changed
    assert changed.key == "sell BND in schwab-87654321"
    fields = {c.path: (c.then, c.now) for c in changed.changes}
    assert fields["shares"] == ("5", "4")
    assert fields["lots[L2].shares"] == ("5", "4")
    assert fields["estimated_value"] == ("362.50", "290.00")


def test_tampered_stored_snapshot_is_replayed_reported_and_kept(finished_run, book, capsys):
    """Someone edits the stored snapshot in the database: the replay names the hash mismatch
    and exactly what the altered input changed, exits non-zero, and keeps the new result."""
    run = finished_run
    changed = _ira_cash_raised(run.snapshot.text)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE optimizer_storeddocument SET text = %s WHERE id = %s",
            [changed, run.snapshot_id],
        )
    with pytest.raises(CommandError, match=f"run {run.pk}: replay differs"):
        call_command("replay_run", str(run.pk))
    out = capsys.readouterr().out
    assert "stored snapshot does not match its recorded SHA-256" in out
    assert "trade removed: sell 5 BND in schwab-87654321" in out
    (event,) = _replay_events(run)
    data = json.loads(event.payload)["data"]
    assert data["identical"] is False and data["snapshot_intact"] is False
    assert len(data["differences"]["trades_removed"]) == 1
    kept = StoredDocument.objects.get(sha256=data["replayed_result_document"])
    assert kept.kind == "replay_result"
    assert json.loads(kept.text)["trades"] == []


def test_library_versions_then_and_now_are_reported(finished_run, book, monkeypatch):
    run = finished_run
    upgraded = {**run.versions, "clarabel": "99.0.0"}
    monkeypatch.setattr(replay_module, "library_versions", lambda: upgraded)
    report = run_replay(run_id=run.pk, actor=None)
    assert report.identical  # same bytes despite the (pretend) upgrade
    assert [(v.path, v.then, v.now) for v in report.version_changes] == [
        ("clarabel", run.versions["clarabel"], "99.0.0")
    ]
    assert f"library clarabel: {run.versions['clarabel']} then, 99.0.0 now" in report.lines()


def test_an_infeasible_run_replays_to_the_same_refusal(
    priced_book, django_capture_on_commit_callbacks
):
    from optimizer.services import run_request

    book = priced_book
    overrides = {"restrictions": [{"symbol": "VTI", "max_weight": "0.10", "no_sell": True}]}
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=book.household, scenario="moderate", actor=book.owner, overrides=overrides
        )
    run.refresh_from_db()
    assert run.status == RunStatus.INFEASIBLE and run.snapshot is not None
    report = run_replay(run_id=run.pk, actor=book.owner)
    assert report.identical
    assert report.outcome_now == RunStatus.INFEASIBLE
    assert report.error_now == run.error


def test_a_blocked_run_has_nothing_to_replay(
    priced_book, today, django_capture_on_commit_callbacks
):
    import datetime as dt

    from optimizer.services import run_request

    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=priced_book.household,
            scenario="moderate",
            actor=priced_book.owner,
            as_of=today + dt.timedelta(days=10),
        )
    run.refresh_from_db()
    assert run.status == RunStatus.BLOCKED
    with pytest.raises(ReplayNotPossible, match="no stored input snapshot"):
        run_replay(run_id=run.pk, actor=None)
    with pytest.raises(CommandError, match="no stored input snapshot"):
        call_command("replay_run", str(run.pk))
    assert _replay_events(run) == []


def test_diff_results_keys_trades_and_reports_added_ones():
    then = {"trades": [], "metrics": {"after": {"tickets": 0}}, "status": "nothing_to_do"}
    trade = {"account": "A-1", "symbol": "VTI", "side": "buy", "shares": "3", "price": "10"}
    now = {"trades": [trade], "metrics": {"after": {"tickets": 1}}, "status": "optimal"}
    diff = diff_results(then, now)
    assert diff.trades_added == [trade]
    assert [(m.path, m.then, m.now) for m in diff.metrics] == [("metrics.after.tickets", 0, 1)]
    assert [(o.path, o.then, o.now) for o in diff.other] == [("status", "nothing_to_do", "optimal")]
    assert diff.lines()[0] == ("trade added: buy 3 VTI in A-1 at 10 (estimated value None)")


def test_a_library_upgrade_that_moves_a_trade_is_named_as_the_likely_cause(
    finished_run, monkeypatch
):
    """Pretend the solver upgrade made the BND sale one share smaller: the report gives the
    changed trade field by field and names the upgrade as the likely cause."""
    import dataclasses
    from decimal import Decimal

    run = finished_run
    real_solve = replay_module.solve

    def upgraded_solve(snapshot, **kwargs):  # type: ignore[no-untyped-def]
        res = real_solve(snapshot, **kwargs)
        sale = res.trades[0]
        lot = dataclasses.replace(
            sale.lots[0],
            shares=sale.lots[0].shares - 1,
            proceeds=sale.lots[0].proceeds - sale.price,
        )
        smaller = dataclasses.replace(
            sale, shares=sale.shares - 1, value=sale.value - sale.price, lots=(lot,)
        )
        return dataclasses.replace(res, trades=[smaller, *res.trades[1:]])

    monkeypatch.setattr(replay_module, "solve", upgraded_solve)
    monkeypatch.setattr(
        replay_module, "library_versions", lambda: {**run.versions, "clarabel": "99.0.0"}
    )
    report = run_replay(run_id=run.pk, actor=None)
    assert not report.identical and report.snapshot_intact
    (changed,) = report.diff.trades_changed
    assert changed.key == "sell BND in schwab-87654321"
    fields = {c.path: (c.then, c.now) for c in changed.changes}
    assert fields["shares"] == ("5", "4")
    assert fields["lots[L2].shares"] == ("5", "4")
    assert fields["lots[L2].proceeds"] == ("362.50", "290.00")
    assert report.diff.trades_added == [] and report.diff.trades_removed == []
    (cause,) = report.likely_causes
    assert cause.startswith(f"a library upgrade: clarabel {run.versions['clarabel']} -> 99.0.0")
    lines = report.lines()
    assert "trade changed: sell BND in schwab-87654321: " in lines[1]
    assert lines[-1] == f"likely cause: {cause}"
    data = report.as_dict()
    assert data["likely_causes"] == [cause]
    assert data["differences"]["trades_changed"][0]["trade"] == "sell BND in schwab-87654321"
    assert Decimal(fields["estimated_value"][0]) - Decimal(fields["estimated_value"][1]) == (
        Decimal("72.50")
    )


def test_solver_versions_recorded_in_the_result_are_compared(finished_run):
    """A run stored before run.versions existed: the solver version written in the result
    itself differs from the one that replays it, and is named."""
    run = finished_run
    then = json.loads(run.result.text)
    then["solver"]["solver_version"] = "0.0.1"
    text_then = json.dumps(then, sort_keys=True, indent=2) + "\n"
    report = replay_compare(
        snapshot_text=run.snapshot.text,
        knobs=None,
        snapshot_sha256_recorded=run.snapshot_sha256,
        result_text_then=text_then,
        result_sha256_recorded=sha256_hex(text_then),
        outcome_then=RunStatus.SUCCEEDED,
        versions_then={},
        run_id=run.pk,
    )
    assert not report.identical
    assert report.diff.trades_changed == [] and report.diff.metrics == []
    now_version = json.loads(report.replayed_text)["solver"]["solver_version"]
    assert [(v.path, v.then, v.now) for v in report.result_version_changes] == [
        ("solver.solver_version", "0.0.1", now_version)
    ]
    causes = report.likely_causes
    assert causes[0].startswith("a library upgrade: ")
    assert f"solver 0.0.1 -> {now_version}" in causes[0]
    # versions_then is empty (not recorded): the code fingerprint is reported as unknown then
    assert any("optimizer code (fingerprint not recorded ->" in c for c in causes)


def test_a_code_change_without_a_library_change_is_named(finished_run, monkeypatch):
    run = finished_run
    monkeypatch.setattr(
        replay_module,
        "library_versions",
        lambda: {**run.versions, "optimizer_code": "0123456789abcdef"},
    )
    changed = _ira_cash_raised(run.snapshot.text)  # any different result will do
    report = replay_compare(
        snapshot_text=changed,
        knobs=None,
        snapshot_sha256_recorded=sha256_hex(changed),
        result_text_then=run.result.text,
        result_sha256_recorded=run.result_sha256,
        outcome_then=RunStatus.SUCCEEDED,
        versions_then=run.versions,
        run_id=run.pk,
    )
    assert report.snapshot_intact and not report.identical
    assert report.likely_causes == [
        f"a change of the optimizer code (fingerprint {run.versions['optimizer_code']} -> "
        "0123456789abcdef)"
    ]


def test_runs_record_the_optimizer_code_fingerprint(finished_run):
    from optimizer.services import optimizer_code_fingerprint

    fingerprint = finished_run.versions["optimizer_code"]
    assert fingerprint == optimizer_code_fingerprint()
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
