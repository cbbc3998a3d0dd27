"""Reconstruction of one optimization run: everything an examiner asks about it, in one place.

``run_reconstruction(run)`` gathers the stored input snapshot (exact bytes, and whether they
still hash to the recorded SHA-256), the IPS version in force (the run's IPS as it stood when
the run read the book, from history, and any later change to it), the restrictions, prices,
lots and accounts the optimizer saw (from the snapshot), the request (text and overrides), the
result, library versions, timings, the run record's own history and every audit event touching
the run, each with who and when.

Other apps add sections (proposal edits, approvals, exports, agent interactions) without
touching this module: ``register_reconstruction_section(key, provider, order=...)`` where
``provider(run)`` returns a :class:`ReconstructionSection` (or ``None`` when it has nothing for
this run). A section can name more audit objects (``audit_objects``) whose events then join the
run's timeline. See docs/audit.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from accounts.models import InvestmentPolicy, IPSTarget
from audit.asof import NotOnRecord, VersionRow, record_as_of, record_history
from audit.canonical import sha256_hex
from audit.models import AuditEvent
from optimizer.models import OptimizationRun

RUN_LABEL = "optimizer.OptimizationRun"


@dataclass(frozen=True)
class SectionLink:
    """A table cell that links somewhere (``href`` is a URL the provider resolved)."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


@dataclass
class ReconstructionSection:
    """One block of the reconstruction page.

    Either a table (``columns`` and ``rows``; cells are text or :class:`SectionLink`) or a
    template of the provider's own (``template``, rendered with ``section`` and ``run`` and the
    ``context`` mapping). ``audit_objects`` are ``(object_type label, object_id)`` pairs whose
    audit events belong on the run's timeline (e.g. ``("portal.Proposal", "12")``).
    """

    key: str
    title: str
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()
    note: str = ""
    empty: str = "Nothing recorded."
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    audit_objects: Sequence[tuple[str, str]] = ()


SectionProvider = Callable[[OptimizationRun], ReconstructionSection | None]

_SECTIONS: dict[str, tuple[int, SectionProvider]] = {}


def register_reconstruction_section(
    key: str, provider: SectionProvider, *, order: int = 100
) -> None:
    """Add (or replace) a section provider. Sections render in ``order``, then ``key``; the
    built-in ones use 10-90, so 100 and up come after them."""
    _SECTIONS[key] = (order, provider)


def unregister_reconstruction_section(key: str) -> None:
    _SECTIONS.pop(key, None)


def reconstruction_sections(run: OptimizationRun) -> list[ReconstructionSection]:
    out = []
    for _order, key in sorted((order, key) for key, (order, _p) in _SECTIONS.items()):
        section = _SECTIONS[key][1](run)
        if section is not None:
            out.append(section)
    return out


# --------------------------------------------------------------------------- the run itself


@dataclass
class Reconstruction:
    run: OptimizationRun
    snapshot_text: str | None
    snapshot: dict[str, Any] | None
    snapshot_sha256_stored: str
    result_text: str | None
    result: dict[str, Any] | None
    result_sha256_stored: str
    ips: InvestmentPolicy | None  # as it stood when the run read the book
    ips_targets: list[IPSTarget]
    ips_history: list[VersionRow]
    ips_changed_after: list[Any]  # historical IPS records written after the run read it
    events: list[AuditEvent]
    sections: list[ReconstructionSection]

    @property
    def snapshot_intact(self) -> bool:
        return self.snapshot_text is not None and (
            self.snapshot_sha256_stored == self.run.snapshot_sha256
        )

    @property
    def result_intact(self) -> bool:
        return self.result_text is not None and (
            self.result_sha256_stored == self.run.result_sha256
        )

    @property
    def read_at(self) -> Any:
        """When the run read the book (the snapshot was frozen right after)."""
        return self.run.started_at or self.run.created_at

    def event_data(self) -> list[tuple[AuditEvent, dict[str, Any]]]:
        return [(event, json.loads(event.payload).get("data", {})) for event in self.events]

    def replays(self) -> list[tuple[AuditEvent, dict[str, Any]]]:
        return [(e, d) for e, d in self.event_data() if e.event_type == "optimizer.run_replayed"]


def _run_events(run: OptimizationRun, extra: Sequence[tuple[str, str]]) -> list[AuditEvent]:
    objects = [(RUN_LABEL, str(run.pk))]
    if run.batch_id is not None:
        objects.append(("optimizer.RunBatch", str(run.batch_id)))
    objects.extend((str(label), str(pk)) for label, pk in extra)
    condition = Q()
    for label, pk in sorted(set(objects)):
        condition |= Q(object_type=label, object_id=pk)
    return list(
        AuditEvent.objects.filter(condition, firm_id=run.household.firm_id)
        .select_related("actor")
        .order_by("created_at", "chain", "seq")
    )


def run_reconstruction(run: OptimizationRun) -> Reconstruction:
    snapshot_text = run.snapshot.text if run.snapshot is not None else None
    result_text = run.result.text if run.result is not None else None
    moment = run.started_at or run.created_at
    ips: InvestmentPolicy | None = None
    targets: list[IPSTarget] = []
    ips_history: list[VersionRow] = []
    changed_after: list[Any] = []
    if run.ips_id is not None:
        try:
            found = record_as_of(InvestmentPolicy, run.ips_id, moment)
            assert isinstance(found, InvestmentPolicy)
            ips = found
        except NotOnRecord:
            ips = run.ips
        targets = list(IPSTarget.history.as_of(moment).filter(ips_id=run.ips_id).order_by("id"))
        ips_history = record_history(InvestmentPolicy, run.ips_id)
        changed_after = [row.record for row in ips_history if row.record.history_date > moment]
    sections = reconstruction_sections(run)
    extra = [pair for section in sections for pair in section.audit_objects]
    return Reconstruction(
        run=run,
        snapshot_text=snapshot_text,
        snapshot=json.loads(snapshot_text) if snapshot_text is not None else None,
        snapshot_sha256_stored=sha256_hex(snapshot_text) if snapshot_text is not None else "",
        result_text=result_text,
        result=json.loads(result_text) if result_text is not None else None,
        result_sha256_stored=sha256_hex(result_text) if result_text is not None else "",
        ips=ips,
        ips_targets=targets,
        ips_history=ips_history,
        ips_changed_after=changed_after,
        events=_run_events(run, extra),
        sections=sections,
    )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run_record_history(run: OptimizationRun) -> ReconstructionSection:
    rows = []
    for row in record_history(OptimizationRun, run.pk):
        record = row.record
        changed = "; ".join(
            f"{c.label}: {_short(c.old)} → {_short(c.new)}"
            for c in (row.diff.changes if row.diff else [])
        )
        rows.append(
            [
                record.history_date.isoformat(),
                str(record.history_user or "system"),
                {"+": "created", "~": "changed", "-": "deleted"}.get(record.history_type, ""),
                changed or f"status {record.status}",
            ]
        )
    return ReconstructionSection(
        key="run_history",
        title="Run record history",
        columns=("When", "Who", "What", "Changes"),
        rows=rows,
        note="Every version of the run record (django-simple-history), oldest first.",
    )


register_reconstruction_section("run_history", _run_record_history, order=90)


def snapshot_tables(snapshot: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a snapshot the page shows as tables (restrictions, prices, lots, ...)."""
    if not snapshot:
        return {}
    targets = snapshot.get("targets") or {}
    parameters = []
    for group in ("tax", "budgets", "costs", "holding", "objective", "solver", "wash_sale"):
        value = snapshot.get(group)
        if isinstance(value, Mapping):
            for key in sorted(value):
                item = value[key]
                text = json.dumps(item, sort_keys=True) if isinstance(item, dict | list) else item
                parameters.append((group, key, text))
    return {
        "accounts": list(snapshot.get("accounts") or []),
        "securities": sorted(snapshot.get("securities") or [], key=lambda s: s.get("symbol", "")),
        "lots": list(snapshot.get("lots") or []),
        "restrictions": list(snapshot.get("restrictions") or []),
        "class_targets": list(targets.get("asset_classes") or []),
        "security_targets": sorted((targets.get("securities") or {}).items()),
        "parameters": parameters,
    }
