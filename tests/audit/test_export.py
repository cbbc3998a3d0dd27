"""The exam package: contents, determinism, the command, and offline verification that names
what a tampered package got wrong."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.canonical import sha256_hex
from audit.export import (
    ExportFile,
    deterministic_zip,
    exam_package_build,
    json_bytes,
    register_exporter,
    table_files,
    unregister_exporter,
    verify_package,
)
from audit.models import AuditChainHead, AuditEvent


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def _rehash(entries: dict[str, bytes], *paths: str) -> None:
    """What a careful forger does: update the manifest's hashes of the files they changed."""
    manifest = json.loads(entries["manifest.json"])
    for path in paths:
        manifest["files"][path]["sha256"] = sha256_hex(entries[path])
        manifest["files"][path]["bytes"] = len(entries[path])
    entries["manifest.json"] = json_bytes(manifest)


@pytest.fixture
def package(finished_run, today):
    return exam_package_build(firm=finished_run.household.firm, date_from=today, date_to=today)


def test_the_package_holds_records_history_events_and_runs(package, finished_run, book, today):
    entries = _entries(package.data)
    manifest = json.loads(entries["manifest.json"])
    run = finished_run
    assert manifest["format"] == "ria-portal-exam-package"
    assert manifest["firm"] == {"id": book.firm.pk, "slug": "alpha", "name": "Alpha Advisers"}
    assert manifest["range"]["from"] == today.isoformat() == manifest["range"]["to"]
    # every file but the manifest is listed with its exact hash
    assert set(manifest["files"]) == set(entries) - {"manifest.json"}
    for path, meta in manifest["files"].items():
        assert meta["sha256"] == sha256_hex(entries[path]), path
        assert meta["bytes"] == len(entries[path])
    # records as they stood at the range's end
    lots = _csv(entries["records/lots.csv"])
    assert [(r["lot_ref"], r["quantity"], r["cost_basis"], r["closed_on"]) for r in lots] == [
        ("L1", "100.000000", "20000.00", ""),
        ("L2", "200.000000", "16000.00", ""),
    ]
    households = json.loads(entries["records/households.json"])
    assert [(h["name"], h["advisers"]) for h in households] == [
        ("Smith Household", [book.owner.pk])
    ]
    assert "Jones" not in entries["records/households.csv"].decode()  # the other firm's
    users = _csv(entries["records/users.csv"])
    assert {u["username"] for u in users} == {"owner", "colleague", "compliance", "client"}
    assert "password" not in users[0]
    ips = _csv(entries["records/ips_targets.csv"])
    assert sorted(r["weight"] for r in ips) == ["0.050000", "0.350000", "0.600000"]
    # history: every version written in the range, with who
    account_history = _csv(entries["history/accounts.csv"])
    assert [(r["history_type"], r["number"], r["history_user_id"]) for r in account_history] == [
        ("+", "12345678", str(book.owner.pk)),
        ("+", "87654321", str(book.owner.pk)),
    ]
    run_history = _csv(entries["history/runs.csv"])
    assert [r["status"] for r in run_history] == ["queued", "running", "succeeded"]
    # the run with its exact stored bytes
    assert entries[f"runs/{run.pk}/snapshot.json"] == run.snapshot.text.encode("utf-8")
    assert entries[f"runs/{run.pk}/result.json"] == run.result.text.encode("utf-8")
    meta = json.loads(entries[f"runs/{run.pk}/run.json"])
    assert meta["snapshot_sha256"] == run.snapshot_sha256
    assert meta["request_text"] == "rebalance, keep taxes low"
    # audit: the range's events and the whole chain up to the head
    head = AuditChainHead.objects.get(chain="alpha")
    assert manifest["chain"] == {"name": "alpha", "head_seq": head.seq, "head_hash": head.hash}
    events = json.loads(entries["audit/events.json"])
    chain = list(AuditEvent.objects.filter(chain="alpha").order_by("seq"))
    assert [e["seq"] for e in events] == [e.seq for e in chain]
    assert events[-1]["hash"] == head.hash
    assert manifest["range_events"] == {
        "count": len(chain),
        "first_seq": 1,
        "first_prev_hash": "0" * 64,
        "first_hash": chain[0].hash,
        "last_seq": chain[-1].seq,
        "last_hash": chain[-1].hash,
    }
    lines = entries["audit/chain.jsonl"].decode().splitlines()
    assert len(lines) == head.seq
    assert json.loads(lines[0])["payload"] == chain[0].payload


def test_the_zip_is_deterministic(package, finished_run, today):
    again = exam_package_build(firm=finished_run.household.firm, date_from=today, date_to=today)
    assert again.data == package.data
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_records_are_as_of_the_end_of_the_range(book, today):
    """A range that ended before the book was built holds no records and no events."""
    yesterday = today - dt.timedelta(days=1)
    package = exam_package_build(
        firm=book.firm, date_from=today - dt.timedelta(days=30), date_to=yesterday
    )
    entries = _entries(package.data)
    assert entries["records/households.csv"].decode().splitlines() == [
        "id,firm_id,name,notes,is_active,created_at,advisers"
    ]
    assert json.loads(entries["audit/events.json"]) == []
    assert package.manifest["range_events"] == {"count": 0}
    assert verify_package(package.data).ok  # the chain still verifies up to the head


def test_an_intact_package_verifies(package):
    report = verify_package(package.data, expected_manifest_sha256=package.manifest_sha256)
    assert report.ok, report.problems
    assert report.files_checked == len(package.manifest["files"])
    assert report.events_checked == package.manifest["chain"]["head_seq"]
    assert report.head_hash == package.manifest["chain"]["head_hash"]


def test_command_writes_verifies_and_records_the_export(
    finished_run, book, today, tmp_path, capsys
):
    out = tmp_path / "exam.zip"
    day = today.isoformat()
    call_command(
        "audit_export",
        "--firm",
        "alpha",
        "--from",
        day,
        "--to",
        day,
        "--as",
        "compliance",
        str(out),
    )
    printed = capsys.readouterr().out
    data = out.read_bytes()
    assert f"package sha256  {sha256_hex(data)}" in printed
    event = AuditEvent.objects.filter(event_type="audit.exported").get()
    recorded = json.loads(event.payload)["data"]
    assert event.actor == book.compliance
    assert recorded["package_sha256"] == sha256_hex(data)
    assert recorded["manifest_sha256"] == sha256_hex(_entries(data)["manifest.json"])
    call_command(
        "audit_export", "--verify", str(out), "--manifest-sha256", recorded["manifest_sha256"]
    )
    assert "package verifies" in capsys.readouterr().out


def test_command_refuses_bad_arguments(book, tmp_path):
    with pytest.raises(CommandError, match="missing --firm, --from, --to"):
        call_command("audit_export", str(tmp_path / "x.zip"))
    with pytest.raises(CommandError, match="no firm"):
        call_command(
            "audit_export",
            "--firm",
            "nope",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
            str(tmp_path / "x.zip"),
        )
    with pytest.raises(CommandError, match="ends"):
        call_command(
            "audit_export",
            "--firm",
            "alpha",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
            str(tmp_path / "x.zip"),
        )
    with pytest.raises(CommandError, match="no such file"):
        call_command("audit_export", "--verify", str(tmp_path / "missing.zip"))


def _verify_fails(tmp_path, entries: dict[str, bytes], *expected: str) -> str:
    path = tmp_path / "tampered.zip"
    path.write_bytes(deterministic_zip(entries))
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_export", "--verify", str(path))
    message = str(excinfo.value)
    assert "package does NOT verify" in message
    for text in expected:
        assert text in message, message
    return message


def test_a_changed_file_is_named(package, tmp_path):
    entries = _entries(package.data)
    entries["records/lots.csv"] = entries["records/lots.csv"].replace(b"100.000000", b"999.000000")
    expected = package.manifest["files"]["records/lots.csv"]["sha256"]
    _verify_fails(
        tmp_path,
        entries,
        f"records/lots.csv: SHA-256 {sha256_hex(entries['records/lots.csv'])} does not match "
        f"the manifest's {expected}",
    )


def test_a_removed_event_breaks_the_chain_even_with_the_manifest_rehashed(package, tmp_path):
    entries = _entries(package.data)
    lines = entries["audit/chain.jsonl"].decode().splitlines(keepends=True)
    del lines[4]  # seq 5
    entries["audit/chain.jsonl"] = "".join(lines).encode()
    events = [e for e in json.loads(entries["audit/events.json"]) if e["seq"] != 5]
    entries["audit/events.json"] = json_bytes(events)
    _rehash(entries, "audit/chain.jsonl", "audit/events.json")
    _verify_fails(tmp_path, entries, "audit/chain.jsonl line 5: expected seq 5, found seq 6")


def test_a_rewritten_event_payload_is_named(package, tmp_path):
    entries = _entries(package.data)
    lines = entries["audit/chain.jsonl"].decode().splitlines(keepends=True)
    entry = json.loads(lines[2])
    entry["payload"] = entry["payload"].replace('"data":{', '"data":{"injected":1,', 1)
    lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    entries["audit/chain.jsonl"] = "".join(lines).encode()
    _rehash(entries, "audit/chain.jsonl")
    _verify_fails(
        tmp_path, entries, "line 3 (seq 3): hash does not match sha256(prev_hash + payload)"
    )


def test_an_event_changed_only_in_events_json_is_named(package, tmp_path):
    entries = _entries(package.data)
    events = json.loads(entries["audit/events.json"])
    events[1]["data"] = {"rewritten": True}
    entries["audit/events.json"] = json_bytes(events)
    _rehash(entries, "audit/events.json")
    _verify_fails(
        tmp_path, entries, "audit/events.json: event seq 2: data differs from the hashed payload"
    )


def test_a_changed_manifest_is_named(package, tmp_path):
    entries = _entries(package.data)
    manifest = json.loads(entries["manifest.json"])
    real_head = manifest["chain"]["head_hash"]
    manifest["chain"]["head_hash"] = "f" * 64
    manifest["range_events"]["first_hash"] = "e" * 64
    entries["manifest.json"] = json_bytes(manifest)
    message = _verify_fails(
        tmp_path,
        entries,
        f"but the manifest's head is seq {manifest['chain']['head_seq']} hash {'f' * 64}",
    )
    assert real_head in message
    assert "range_events first_hash" in message
    # and with the manifest hash recorded at export, any change at all is caught
    report = verify_package(
        deterministic_zip(entries), expected_manifest_sha256=package.manifest_sha256
    )
    assert any("the manifest was changed" in p for p in report.problems)


def test_a_file_slipped_in_or_taken_out_is_named(package, tmp_path):
    entries = _entries(package.data)
    entries["records/extra.csv"] = b"id\n1\n"
    del entries["records/clients.json"]
    _verify_fails(
        tmp_path,
        entries,
        "records/clients.json: listed in the manifest but missing",
        "records/extra.csv: in the package but not in the manifest",
    )


def test_not_a_zip_is_refused(tmp_path):
    report = verify_package(b"not a zip")
    assert not report.ok and "not a readable zip file" in report.problems[0]


def test_other_apps_register_exporters(finished_run, today):
    def widgets(ctx):
        rows = [{"id": 7, "firm": ctx.firm.slug, "status": "approved"}]
        return table_files("records/test_widgets", ["id", "firm", "status"], rows)

    register_exporter("test_widgets", widgets)
    try:
        package = exam_package_build(
            firm=finished_run.household.firm, date_from=today, date_to=today
        )
        entries = _entries(package.data)
        assert entries["records/test_widgets.csv"] == b"id,firm,status\n7,alpha,approved\n"
        assert json.loads(entries["records/test_widgets.json"]) == [
            {"firm": "alpha", "id": 7, "status": "approved"}
        ]
        assert "test_widgets" in package.manifest["exporters"]
        assert package.manifest["files"]["records/test_widgets.csv"]["rows"] == 1
        assert verify_package(package.data).ok
        register_exporter("clash", lambda ctx: [ExportFile("records/lots.csv", b"x")])
        with pytest.raises(ValueError, match=r"records/lots\.csv, which is already taken"):
            exam_package_build(firm=finished_run.household.firm, date_from=today, date_to=today)
    finally:
        unregister_exporter("test_widgets")
        unregister_exporter("clash")
