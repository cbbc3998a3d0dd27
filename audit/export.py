"""The exam package: a firm's records, their history, its audit events and its runs for a date
range, in one deterministic zip that an examiner can verify offline.

Layout (every path is listed with its SHA-256 in ``manifest.json``)::

    manifest.json                 what is inside, file hashes, chain head, range event hashes
    README.txt                    how to read and verify the package
    records/<name>.csv|.json      each record as it stood at the end of the range (from history)
    history/<name>.csv|.json      every historical version written during the range
    audit/events.csv|.json        the firm's audit events created during the range
    audit/chain.jsonl             the firm's whole chain up to the head (seq, prev_hash, hash,
                                  payload), so the chain can be recomputed from genesis
    runs/<id>/run.json            each optimization run created during the range ...
    runs/<id>/snapshot.json       ... its input snapshot, exact stored bytes
    runs/<id>/result.json         ... and its result, exact stored bytes

The range is ``[from 00:00, to+1 00:00)`` in the portal's time zone. The same data gives the
same bytes: rows are ordered, JSON keys sorted, zip entries sorted with a fixed timestamp.

Exporters are a registry: ``register_exporter(name, exporter)`` where ``exporter(ctx)`` yields
:class:`ExportFile` objects; ``model_exporter(label, name=..., firm_lookup=...)`` builds the
records + history exporter of any history-tracked model, and ``table_files`` writes one table as
CSV and JSON. Proposals, approvals, exports and agent interactions register themselves from
their apps (see docs/audit.md).

``verify_package`` checks a package without the database: file hashes against the manifest,
the chain recomputed from its payloads up to the manifest's head, and the range's events
against the chain and the manifest.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Firm, User
from audit.asof import history_model_for
from audit.canonical import canonical_json, sha256_hex
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from audit.services import audit_record

FORMAT = "ria-portal-exam-package"
FORMAT_VERSION = 1
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MANIFEST = "manifest.json"
CHAIN_FILE = "audit/chain.jsonl"
EVENTS_FILE = "audit/events.json"
HISTORY_META = (
    "history_id",
    "history_date",
    "history_type",
    "history_user_id",
    "history_change_reason",
)
NEVER_EXPORTED = frozenset({"password", "last_login"})


@dataclass(frozen=True)
class ExportContext:
    firm: Firm
    date_from: dt.date
    date_to: dt.date  # inclusive
    start: dt.datetime  # aware, inclusive
    end: dt.datetime  # aware, exclusive

    @property
    def records_as_of(self) -> dt.datetime:
        return self.end - dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class ExportFile:
    path: str
    data: bytes
    rows: int | None = None


Exporter = Callable[[ExportContext], Iterable[ExportFile]]

_EXPORTERS: dict[str, Exporter] = {}


def register_exporter(name: str, exporter: Exporter) -> None:
    """Add (or replace) an exporter. Its files' paths must not collide with another's."""
    _EXPORTERS[name] = exporter


def unregister_exporter(name: str) -> None:
    _EXPORTERS.pop(name, None)


def exporter_names() -> list[str]:
    return sorted(_EXPORTERS)


# --------------------------------------------------------------------------- serialization


def json_value(value: Any) -> Any:
    """A value as plain JSON: Decimals and UUIDs as strings, datetimes in UTC with Z."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            raise ValueError("naive datetimes are not exported")
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def csv_cell(value: Any) -> str:
    plain = json_value(value)
    if plain is None:
        return ""
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, dict | list):
        return canonical_json(plain)
    return str(plain)


def json_bytes(value: Any) -> bytes:
    text = json.dumps(json_value(value), ensure_ascii=False, indent=1, sort_keys=True)
    return (text + "\n").encode("utf-8")


def table_files(
    stem: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[ExportFile]:
    """One table as ``<stem>.csv`` (header + rows) and ``<stem>.json`` (a list of objects)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    objects = [{column: row.get(column) for column in columns} for row in rows]
    return [
        ExportFile(f"{stem}.csv", buffer.getvalue().encode("utf-8"), rows=len(rows)),
        ExportFile(f"{stem}.json", json_bytes(objects), rows=len(rows)),
    ]


# --------------------------------------------------------------------------- model exporters


def model_exporter(
    label: str,
    *,
    name: str,
    firm_lookup: str | None,
    extra_columns: Sequence[str] = (),
    extra: Callable[[Any], Mapping[str, Any]] | None = None,
) -> Exporter:
    """Records (as of the range's end) and history (written during the range) of a tracked
    model. ``firm_lookup`` is the path from a row to its firm id (``None`` for reference data
    shared by every firm); ``extra(historical_record)`` fills ``extra_columns`` (e.g. m2m
    members as they were in that version)."""

    def export(ctx: ExportContext) -> list[ExportFile]:
        model = apps.get_model(label)
        history_model: Any = history_model_for(model)
        manager: Any = getattr(model, model._meta.simple_history_manager_attribute)
        tracked = [f for f in history_model.tracked_fields if f.name not in NEVER_EXPORTED]
        columns = [f.attname for f in tracked] + list(extra_columns)
        pk_name = model._meta.pk.attname if model._meta.pk is not None else "id"
        current = manager.filter(history_date__lte=ctx.records_as_of)
        changes = manager.filter(history_date__gte=ctx.start, history_date__lt=ctx.end)
        if firm_lookup is not None:
            current = current.filter(**{firm_lookup: ctx.firm.pk})
            changes = changes.filter(**{firm_lookup: ctx.firm.pk})
        records = current.latest_of_each().exclude(history_type="-").order_by(pk_name, "history_id")
        versions = changes.order_by("history_date", "history_id")

        def row(record: Any, meta: bool) -> dict[str, Any]:
            out = {f.attname: getattr(record, f.attname) for f in tracked}
            if meta:
                out.update({m: getattr(record, m) for m in HISTORY_META})
            if extra is not None:
                added = dict(extra(record))
                out.update({column: added.get(column) for column in extra_columns})
            return out

        return [
            *table_files(f"records/{name}", columns, [row(r, meta=False) for r in records]),
            *table_files(
                f"history/{name}", [*HISTORY_META, *columns], [row(r, meta=True) for r in versions]
            ),
        ]

    return export


def _household_advisers(record: Any) -> dict[str, Any]:
    return {"advisers": sorted(row.user_id for row in record.advisers.all())}


register_exporter(
    "households",
    model_exporter(
        "accounts.Household",
        name="households",
        firm_lookup="firm_id",
        extra_columns=("advisers",),
        extra=_household_advisers,
    ),
)
for _name, _label, _lookup in (
    ("firm", "accounts.Firm", "id"),
    ("users", "accounts.User", "firm_id"),
    ("clients", "accounts.Client", "household__firm_id"),
    ("accounts", "accounts.Account", "household__firm_id"),
    ("lots", "accounts.TaxLot", "account__household__firm_id"),
    ("transactions", "accounts.Transaction", "account__household__firm_id"),
    ("ips", "accounts.InvestmentPolicy", "household__firm_id"),
    ("ips_targets", "accounts.IPSTarget", "ips__household__firm_id"),
    ("restrictions", "accounts.Restriction", "household__firm_id"),
    ("model_portfolios", "accounts.ModelPortfolio", "firm_id"),
    ("model_portfolio_targets", "accounts.ModelPortfolioTarget", "model__firm_id"),
    ("import_batches", "accounts.ImportBatch", "firm_id"),
    ("reconciliation_breaks", "accounts.ReconciliationBreak", "batch__firm_id"),
    ("runs", "optimizer.OptimizationRun", "household__firm_id"),
    ("run_batches", "optimizer.RunBatch", "firm_id"),
    ("securities", "accounts.Security", None),
    ("asset_classes", "accounts.AssetClass", None),
    ("custodians", "accounts.Custodian", None),
):
    register_exporter(_name, model_exporter(_label, name=_name, firm_lookup=_lookup))


def _run_documents(ctx: ExportContext) -> list[ExportFile]:
    from optimizer.models import OptimizationRun

    runs = (
        OptimizationRun.objects.filter(
            household__firm=ctx.firm, created_at__gte=ctx.start, created_at__lt=ctx.end
        )
        .select_related("snapshot", "result", "requested_by")
        .order_by("pk")
    )
    files = []
    for run in runs:
        meta = {
            "id": run.pk,
            "household": run.household_id,
            "batch": run.batch_id,
            "scenario": run.scenario,
            "mode": run.mode,
            "status": run.status,
            "as_of": run.as_of,
            "request_text": run.request_text,
            "overrides": run.overrides,
            "requested_by": run.requested_by_id,
            "ips": run.ips_id,
            "solver": run.solver,
            "snapshot_sha256": run.snapshot_sha256,
            "result_sha256": run.result_sha256,
            "versions": run.versions,
            "timings": run.timings,
            "summary": run.summary,
            "error": run.error,
            "attempts": run.attempts,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
        }
        files.append(ExportFile(f"runs/{run.pk}/run.json", json_bytes(meta)))
        if run.snapshot is not None:
            files.append(
                ExportFile(f"runs/{run.pk}/snapshot.json", run.snapshot.text.encode("utf-8"))
            )
        if run.result is not None:
            files.append(ExportFile(f"runs/{run.pk}/result.json", run.result.text.encode("utf-8")))
    return files


register_exporter("run_documents", _run_documents)


# --------------------------------------------------------------------------- the package

EVENT_COLUMNS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "event_type",
    "object_type",
    "object_id",
    "data",
    "prev_hash",
    "hash",
    "payload",
)


@dataclass
class ExportPackage:
    data: bytes
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    @property
    def manifest_sha256(self) -> str:
        return sha256_hex(json_bytes(self.manifest))


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    return start, end


def _audit_files(ctx: ExportContext, head_seq: int) -> tuple[list[ExportFile], dict[str, Any], int]:
    events = list(AuditEvent.objects.filter(chain=ctx.firm.slug, seq__lte=head_seq).order_by("seq"))
    chain_lines = "".join(
        canonical_json(
            {"seq": e.seq, "prev_hash": e.prev_hash, "hash": e.hash, "payload": e.payload}
        )
        + "\n"
        for e in events
    )
    in_range = [e for e in events if ctx.start <= e.created_at < ctx.end]
    rows = [
        {
            "seq": e.seq,
            "created_at": e.created_at,
            "actor_id": e.actor_id,
            "actor_label": e.actor_label,
            "event_type": e.event_type,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "data": json.loads(e.payload).get("data", {}),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
            "payload": e.payload,
        }
        for e in in_range
    ]
    summary: dict[str, Any] = {"count": len(in_range)}
    if in_range:
        summary.update(
            first_seq=in_range[0].seq,
            first_prev_hash=in_range[0].prev_hash,
            first_hash=in_range[0].hash,
            last_seq=in_range[-1].seq,
            last_hash=in_range[-1].hash,
        )
    files = [
        ExportFile(CHAIN_FILE, chain_lines.encode("utf-8"), rows=len(events)),
        *table_files("audit/events", EVENT_COLUMNS, rows),
    ]
    return files, summary, len(events)


README = """Exam package: {firm_name} ({firm_slug}), {date_from} to {date_to}

records/   each record as it stood at the end of the range, CSV and JSON
history/   every historical version written during the range (history_type + created,
           ~ changed, - deleted; history_user_id is who)
audit/     events.csv/json: the audit events of the range; chain.jsonl: the firm's whole
           hash chain up to the head named in manifest.json
runs/      optimization runs of the range: run.json, snapshot.json and result.json (exact bytes)

Verify: python manage.py audit_export --verify THIS.zip
By hand: the SHA-256 of every file must equal manifest.json "files"; for each line of
audit/chain.jsonl, hash = sha256(prev_hash + payload) with the first prev_hash = 64 zeros, each
prev_hash equal to the previous line's hash, and the last line equal to manifest.json "chain".
"""


def exam_package_build(*, firm: Firm, date_from: dt.date, date_to: dt.date) -> ExportPackage:
    """Build the package (reads only). The chain head is read first; the chain is exported up
    to it, so events appended meanwhile are simply not in this package."""
    if date_to < date_from:
        raise ValueError(f"the range ends ({date_to}) before it starts ({date_from})")
    start, end = day_bounds(date_from, date_to)
    ctx = ExportContext(firm=firm, date_from=date_from, date_to=date_to, start=start, end=end)
    head = AuditChainHead.objects.filter(chain=firm.slug).first()
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    files: dict[str, ExportFile] = {}

    def add(item: ExportFile, source: str) -> None:
        if item.path in files or item.path in (MANIFEST, "README.txt"):
            raise ValueError(f"exporter {source!r} writes {item.path}, which is already taken")
        files[item.path] = item

    audit_files, range_events, _ = _audit_files(ctx, head_seq)
    for item in audit_files:
        add(item, "audit")
    for name in exporter_names():
        for item in _EXPORTERS[name](ctx):
            add(item, name)
    readme = README.format(
        firm_name=firm.name, firm_slug=firm.slug, date_from=date_from, date_to=date_to
    )
    files["README.txt"] = ExportFile("README.txt", readme.encode("utf-8"))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "firm": {"id": firm.pk, "slug": firm.slug, "name": firm.name},
        "range": {
            "from": date_from,
            "to": date_to,
            "start": start,
            "end": end,
            "time_zone": settings.TIME_ZONE,
        },
        "records_as_of": ctx.records_as_of,
        "chain": {"name": firm.slug, "head_seq": head_seq, "head_hash": head_hash},
        "range_events": range_events,
        "exporters": exporter_names(),
        "files": {
            path: {
                "sha256": sha256_hex(item.data),
                "bytes": len(item.data),
                **({"rows": item.rows} if item.rows is not None else {}),
            }
            for path, item in sorted(files.items())
        },
    }
    contents = {path: item.data for path, item in files.items()}
    contents[MANIFEST] = json_bytes(manifest)
    return ExportPackage(data=deterministic_zip(contents), manifest=json_value(manifest))


def deterministic_zip(contents: Mapping[str, bytes]) -> bytes:
    """Entries sorted by path, fixed timestamp and permissions: same contents, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(contents):
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, contents[path], compresslevel=9)
    return buffer.getvalue()


def exam_package_export(
    *, firm: Firm, date_from: dt.date, date_to: dt.date, actor: User | None
) -> ExportPackage:
    """Build the package and record an ``audit.exported`` event (with the package's and the
    manifest's SHA-256) on the firm's chain."""
    package = exam_package_build(firm=firm, date_from=date_from, date_to=date_to)
    with transaction.atomic():
        audit_record(
            actor=actor,
            event_type="audit.exported",
            firm=firm,
            data={
                "from": date_from,
                "to": date_to,
                "package_sha256": package.sha256,
                "manifest_sha256": package.manifest_sha256,
                "files": len(package.manifest["files"]),
                "chain_head": package.manifest["chain"],
                "range_events": package.manifest["range_events"],
            },
        )
    return package


# --------------------------------------------------------------------------- offline verification


@dataclass
class PackageReport:
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    events_checked: int = 0
    head_hash: str = ""
    manifest_sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _parse_instant(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _verify_chain(
    chain_text: str, manifest: Mapping[str, Any], report: PackageReport
) -> list[dict[str, Any]]:
    """Recompute the chain from genesis; returns the events (parsed) up to the first break."""
    chain_meta = manifest.get("chain") or {}
    name = chain_meta.get("name")
    prev_hash = GENESIS_HASH
    expected = 1
    events: list[dict[str, Any]] = []
    for number, line in enumerate(chain_text.splitlines(), start=1):
        where = f"{CHAIN_FILE} line {number}"
        try:
            entry = json.loads(line)
            seq, payload = entry["seq"], entry["payload"]
            body = json.loads(payload)
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"{where}: not a chain entry (seq, prev_hash, hash, payload)")
            return events
        if seq != expected:
            report.problems.append(
                f"{where}: expected seq {expected}, found seq {seq}: events are missing or "
                "out of order"
            )
            return events
        if entry.get("prev_hash") != prev_hash:
            report.problems.append(
                f"{where} (seq {seq}): prev_hash does not match the previous event's hash"
            )
            return events
        if sha256_hex(prev_hash + payload) != entry.get("hash"):
            report.problems.append(
                f"{where} (seq {seq}): hash does not match sha256(prev_hash + payload): "
                "payload altered"
            )
            return events
        if canonical_json(body) != payload:
            report.problems.append(f"{where} (seq {seq}): payload is not in canonical form")
            return events
        if body.get("chain") != name or body.get("seq") != seq:
            report.problems.append(
                f"{where} (seq {seq}): payload names chain {body.get('chain')!r} seq "
                f"{body.get('seq')}, not chain {name!r} seq {seq}"
            )
            return events
        events.append(
            {
                "seq": seq,
                "prev_hash": prev_hash,
                "hash": entry["hash"],
                "payload": payload,
                "body": body,
            }
        )
        prev_hash = entry["hash"]
        expected += 1
    head_seq, head_hash = chain_meta.get("head_seq"), chain_meta.get("head_hash")
    if (expected - 1, prev_hash) != (head_seq, head_hash):
        report.problems.append(
            f"{CHAIN_FILE}: the chain ends at seq {expected - 1} hash {prev_hash}, but the "
            f"manifest's head is seq {head_seq} hash {head_hash}"
        )
    report.head_hash = prev_hash
    report.events_checked = len(events)
    return events


def _verify_range(
    events_text: str,
    chain: list[dict[str, Any]],
    manifest: Mapping[str, Any],
    report: PackageReport,
) -> None:
    try:
        listed = json.loads(events_text)
    except ValueError:
        report.problems.append(f"{EVENTS_FILE}: not valid JSON")
        return
    by_seq = {event["seq"]: event for event in chain}
    range_meta = manifest.get("range") or {}
    start = _parse_instant(range_meta.get("start"))
    end = _parse_instant(range_meta.get("end"))
    if start is None or end is None:
        report.problems.append(f"{MANIFEST}: range start/end are missing or not instants")
        return
    expected = [
        event["seq"]
        for event in chain
        if (moment := _parse_instant(event["body"].get("created_at"))) is not None
        and start <= moment < end
    ]
    seen = []
    for item in listed:
        seq = item.get("seq")
        source = by_seq.get(seq)
        if source is None:
            report.problems.append(f"{EVENTS_FILE}: event seq {seq} is not in the chain")
            continue
        if item.get("hash") != source["hash"] or item.get("payload") != source["payload"]:
            report.problems.append(f"{EVENTS_FILE}: event seq {seq} differs from the chain")
            continue
        body = source["body"]
        for column in ("event_type", "object_type", "object_id", "actor_label"):
            if item.get(column) != body.get(column):
                report.problems.append(
                    f"{EVENTS_FILE}: event seq {seq}: {column} {item.get(column)!r} differs "
                    f"from the hashed payload ({body.get(column)!r})"
                )
        if item.get("data") != body.get("data"):
            report.problems.append(
                f"{EVENTS_FILE}: event seq {seq}: data differs from the hashed payload"
            )
        seen.append(seq)
    if chain and report.head_hash and seen != expected:
        missing = sorted(set(expected) - set(seen))
        extra = sorted(set(seen) - set(expected))
        report.problems.append(
            f"{EVENTS_FILE}: the range's events are not those of the chain"
            + (f"; missing seq {missing}" if missing else "")
            + (f"; outside the range seq {extra}" if extra else "")
        )
    summary = manifest.get("range_events") or {}
    if summary.get("count") != len(listed):
        report.problems.append(
            f"{MANIFEST}: range_events count {summary.get('count')} but {EVENTS_FILE} holds "
            f"{len(listed)} events"
        )
    if listed and seen == [item.get("seq") for item in listed]:
        first, last = by_seq.get(listed[0].get("seq")), by_seq.get(listed[-1].get("seq"))
        if first is not None and last is not None:
            checks = (
                ("first_seq", first["seq"]),
                ("first_hash", first["hash"]),
                ("first_prev_hash", first["prev_hash"]),
                ("last_seq", last["seq"]),
                ("last_hash", last["hash"]),
            )
            for key, value in checks:
                if summary.get(key) != value:
                    report.problems.append(
                        f"{MANIFEST}: range_events {key} is {summary.get(key)!r}, the chain "
                        f"says {value!r}"
                    )


def verify_package(
    source: bytes | str | Path, *, expected_manifest_sha256: str | None = None
) -> PackageReport:
    """Check a package offline; ``report.problems`` names every file or event that is wrong."""
    report = PackageReport()
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
    except (OSError, zipfile.BadZipFile) as exc:
        report.problems.append(f"not a readable zip file: {exc}")
        return report
    with archive:
        names = sorted(archive.namelist())
        if MANIFEST not in names:
            report.problems.append(f"{MANIFEST} is missing")
            return report
        manifest_bytes = archive.read(MANIFEST)
        report.manifest_sha256 = sha256_hex(manifest_bytes)
        if expected_manifest_sha256 and report.manifest_sha256 != expected_manifest_sha256:
            report.problems.append(
                f"{MANIFEST}: SHA-256 {report.manifest_sha256} is not the recorded "
                f"{expected_manifest_sha256}: the manifest was changed"
            )
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            report.problems.append(f"{MANIFEST} is not valid JSON")
            return report
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            report.problems.append(f"{MANIFEST}: not a {FORMAT} v{FORMAT_VERSION} manifest")
            return report
        listed = manifest.get("files") or {}
        for path in sorted(listed):
            if path not in names:
                report.problems.append(f"{path}: listed in the manifest but missing")
                continue
            digest = sha256_hex(archive.read(path))
            if digest != listed[path].get("sha256"):
                report.problems.append(
                    f"{path}: SHA-256 {digest} does not match the manifest's "
                    f"{listed[path].get('sha256')}"
                )
            report.files_checked += 1
        for path in names:
            if path != MANIFEST and path not in listed:
                report.problems.append(f"{path}: in the package but not in the manifest")
        if CHAIN_FILE not in names or EVENTS_FILE not in names:
            report.problems.append(f"{CHAIN_FILE} or {EVENTS_FILE} is missing")
            return report
        chain = _verify_chain(archive.read(CHAIN_FILE).decode("utf-8"), manifest, report)
        _verify_range(archive.read(EVENTS_FILE).decode("utf-8"), chain, manifest, report)
    return report
