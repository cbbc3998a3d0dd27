"""Replay: run the optimizer again on a run's stored input snapshot and compare.

The core is deterministic: the same snapshot gives byte-identical result JSON. A replay reads the
stored snapshot text (checking it still hashes to the recorded SHA-256), solves it exactly as
``optimizer.services.run_execute`` did (same knobs), and compares the new result JSON with the
stored one byte for byte. When they differ the report says exactly what: trades added, removed
and changed (field by field, lots by lot id), metrics, every other field of the result, the
library versions then and now (``run.versions``, which include a fingerprint of the optimizer
core's source, and the solver and cvxpy versions the result records), and the likely cause: an
altered snapshot, a library upgrade, a change of the optimizer code, or none of these.

``replay_compare`` is the pure comparison (no database); ``run_replay`` is the service used by
``manage.py replay_run`` and the reconstruction page's button: it records an
``optimizer.run_replayed`` audit event with the whole report, and keeps a differing result as a
``StoredDocument`` (kind ``replay_result``) so it can be examined later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from audit.canonical import sha256_hex
from audit.services import audit_record
from optimizer.core.engine import solve
from optimizer.core.errors import InfeasibleProblem, InvalidSnapshot, OptimizerError
from optimizer.core.snapshot import snapshot_from_dict
from optimizer.models import OptimizationRun, RunStatus, StoredDocument
from optimizer.services import library_versions

if TYPE_CHECKING:
    from accounts.models import User


class ReplayNotPossible(Exception):
    """The run has nothing to replay (no stored snapshot)."""


@dataclass(frozen=True)
class ValueChange:
    path: str
    then: Any
    now: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "then": self.then, "now": self.now}

    def line(self) -> str:
        return f"{self.path}: {_text(self.then)} -> {_text(self.now)}"


@dataclass(frozen=True)
class TradeChange:
    key: str
    changes: tuple[ValueChange, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"trade": self.key, "changes": [c.as_dict() for c in self.changes]}


@dataclass
class ResultDiff:
    trades_added: list[dict[str, Any]] = field(default_factory=list)
    trades_removed: list[dict[str, Any]] = field(default_factory=list)
    trades_changed: list[TradeChange] = field(default_factory=list)
    metrics: list[ValueChange] = field(default_factory=list)
    other: list[ValueChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.trades_added
            or self.trades_removed
            or self.trades_changed
            or self.metrics
            or self.other
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "trades_added": self.trades_added,
            "trades_removed": self.trades_removed,
            "trades_changed": [t.as_dict() for t in self.trades_changed],
            "metrics": [m.as_dict() for m in self.metrics],
            "other": [o.as_dict() for o in self.other],
        }

    def lines(self) -> list[str]:
        out = [f"trade added: {_trade_words(t)}" for t in self.trades_added]
        out += [f"trade removed: {_trade_words(t)}" for t in self.trades_removed]
        for changed in self.trades_changed:
            parts = "; ".join(c.line() for c in changed.changes)
            out.append(f"trade changed: {changed.key}: {parts}")
        out += [f"metric {m.line()}" for m in self.metrics]
        out += [f"result {o.line()}" for o in self.other]
        return out


@dataclass
class ReplayReport:
    run_id: int | None
    snapshot_sha256_recorded: str
    snapshot_sha256_stored: str
    result_sha256_recorded: str
    result_sha256_replayed: str
    outcome_then: str
    outcome_now: str
    error_then: str
    error_now: str
    diff: ResultDiff
    versions_then: dict[str, str]
    versions_now: dict[str, str]
    replayed_text: str = ""

    @property
    def snapshot_intact(self) -> bool:
        return self.snapshot_sha256_recorded == self.snapshot_sha256_stored

    @property
    def identical(self) -> bool:
        """Byte-identical result (or, for a run that found no solution, the same refusal)."""
        if self.outcome_then != self.outcome_now:
            return False
        if self.outcome_now == RunStatus.SUCCEEDED:
            return bool(self.result_sha256_replayed) and (
                self.result_sha256_replayed == self.result_sha256_recorded
            )
        return self.error_then == self.error_now

    @property
    def version_changes(self) -> list[ValueChange]:
        """Library (and optimizer code) versions recorded with the run that differ now."""
        names = sorted(set(self.versions_then) | set(self.versions_now))
        return [
            ValueChange(name, self.versions_then.get(name), self.versions_now.get(name))
            for name in names
            if self.versions_then.get(name) != self.versions_now.get(name)
        ]

    @property
    def result_version_changes(self) -> list[ValueChange]:
        """Solver and cvxpy versions written in the result documents that differ."""
        return [o for o in self.diff.other if o.path in _RESULT_VERSION_PATHS]

    @property
    def likely_causes(self) -> list[str]:
        """Why the replay differs, most likely first (empty when it is identical)."""
        if self.identical:
            return []
        out: list[str] = []
        if not self.snapshot_intact:
            out.append(
                "the stored input snapshot was altered after the run (it no longer hashes to "
                "the recorded SHA-256)"
            )
        changed = {v.path: v for v in self.version_changes}
        for v in self.result_version_changes:
            # the solver and cvxpy versions the result records (unless run.versions says it)
            if any((c.then, c.now) == (v.then, v.now) for c in changed.values()):
                continue
            name = _RESULT_VERSION_PATHS[v.path]
            changed.setdefault(name, ValueChange(name, v.then, v.now))
        code = changed.pop("optimizer_code", None)
        libraries = [v for name, v in sorted(changed.items()) if name != "ria-portal"]
        if libraries:
            out.append(
                "a library upgrade: "
                + ", ".join(f"{v.path} {_text(v.then)} -> {_text(v.now)}" for v in libraries)
                + " (a solver or linear-algebra change moves solutions in the last digits, "
                "which can change a rounding or a dropped order)"
            )
        if code is not None:
            then = "not recorded" if code.then is None else code.then
            out.append(f"a change of the optimizer code (fingerprint {then} -> {code.now})")
        if not out:
            out.append(
                "no input, library or code version differs: the platform (CPU, BLAS build) "
                "or a non-deterministic step"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "identical": self.identical,
            "snapshot_intact": self.snapshot_intact,
            "snapshot_sha256_recorded": self.snapshot_sha256_recorded,
            "snapshot_sha256_stored": self.snapshot_sha256_stored,
            "result_sha256_recorded": self.result_sha256_recorded,
            "result_sha256_replayed": self.result_sha256_replayed,
            "outcome_then": self.outcome_then,
            "outcome_now": self.outcome_now,
            "error_then": self.error_then,
            "error_now": self.error_now,
            "differences": self.diff.as_dict(),
            "versions_then": self.versions_then,
            "versions_now": self.versions_now,
            "version_changes": [v.as_dict() for v in self.version_changes],
            "result_version_changes": [v.as_dict() for v in self.result_version_changes],
            "likely_causes": self.likely_causes,
        }

    def lines(self) -> list[str]:
        out = []
        if not self.snapshot_intact:
            out.append(
                "stored snapshot does not match its recorded SHA-256: recorded "
                f"{self.snapshot_sha256_recorded}, stored text hashes to "
                f"{self.snapshot_sha256_stored}"
            )
        if self.outcome_then != self.outcome_now:
            out.append(f"outcome: {self.outcome_then} then, {self.outcome_now} now")
        if self.error_then != self.error_now:
            out.append(f"error then: {self.error_then or '(none)'}")
            out.append(f"error now: {self.error_now or '(none)'}")
        if self.result_sha256_recorded != self.result_sha256_replayed:
            out.append(
                f"result sha256: {self.result_sha256_recorded or '(none)'} then, "
                f"{self.result_sha256_replayed or '(none)'} now"
            )
        out += self.diff.lines()
        out += [f"library {v.path}: {v.then} then, {v.now} now" for v in self.version_changes]
        out += [f"likely cause: {cause}" for cause in self.likely_causes]
        return out


# --------------------------------------------------------------------------- comparison

# versions the result document itself records -> the library they name
_RESULT_VERSION_PATHS = {"solver.solver_version": "solver", "solver.cvxpy_version": "cvxpy"}


def _text(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _trade_key(trade: Mapping[str, Any]) -> str:
    return f"{trade.get('side')} {trade.get('symbol')} in {trade.get('account')}"


def _trade_words(trade: Mapping[str, Any]) -> str:
    return (
        f"{trade.get('side')} {trade.get('shares')} {trade.get('symbol')} in "
        f"{trade.get('account')} at {trade.get('price')} "
        f"(estimated value {trade.get('estimated_value')})"
    )


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a JSON value: ``a.b``, ``list[0]``, and ``lots[<lot_id>]`` for lists of
    lots, so a reordered or inserted lot does not shift every later path."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        if not value and prefix:
            out[prefix] = []
        for index, item in enumerate(value):
            label = str(index)
            if isinstance(item, dict) and "lot_id" in item:
                label = str(item["lot_id"])
            out.update(flatten(item, f"{prefix}[{label}]"))
    else:
        out[prefix] = value
    return out


def _compare(then: Any, now: Any, prefix: str = "") -> list[ValueChange]:
    a, b = flatten(then, prefix), flatten(now, prefix)
    paths = sorted(set(a) | set(b))

    def emptied(path: str) -> bool:
        """An empty list/dict on one side whose members on the other side are listed already."""
        value = a.get(path) if path in a else b.get(path)
        if value not in ([], {}) or (path in a and path in b):
            return False
        return any(p.startswith((path + "[", path + ".")) for p in paths)

    return [
        ValueChange(path, a.get(path), b.get(path))
        for path in paths
        if a.get(path) != b.get(path) and not emptied(path)
    ]


def _keyed_trades(trades: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for trade in trades:
        key = _trade_key(trade)
        suffix = 2
        while key in out:  # one ticket per account, security and side; defensive
            key = f"{_trade_key(trade)} #{suffix}"
            suffix += 1
        out[key] = trade
    return out


def diff_results(then: Mapping[str, Any] | None, now: Mapping[str, Any] | None) -> ResultDiff:
    """What differs between two result documents (either may be missing)."""
    then = dict(then or {})
    now = dict(now or {})
    diff = ResultDiff()
    old_trades = _keyed_trades(list(then.pop("trades", []) or []))
    new_trades = _keyed_trades(list(now.pop("trades", []) or []))
    diff.trades_removed = [old_trades[k] for k in sorted(set(old_trades) - set(new_trades))]
    diff.trades_added = [new_trades[k] for k in sorted(set(new_trades) - set(old_trades))]
    for key in sorted(set(old_trades) & set(new_trades)):
        changes = _compare(old_trades[key], new_trades[key])
        if changes:
            diff.trades_changed.append(TradeChange(key=key, changes=tuple(changes)))
    diff.metrics = _compare(then.pop("metrics", None), now.pop("metrics", None), "metrics")
    diff.other = _compare(then, now)
    return diff


def _error_text(exc: OptimizerError) -> str:
    """As ``run_execute`` records it."""
    if isinstance(exc, InfeasibleProblem):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _outcome(exc: OptimizerError) -> str:
    return str(RunStatus.INFEASIBLE if isinstance(exc, InfeasibleProblem) else RunStatus.FAILED)


def replay_compare(
    *,
    snapshot_text: str,
    knobs: Mapping[str, Any] | None,
    snapshot_sha256_recorded: str,
    result_text_then: str | None,
    result_sha256_recorded: str,
    outcome_then: str,
    error_then: str = "",
    versions_then: Mapping[str, str] | None = None,
    run_id: int | None = None,
) -> ReplayReport:
    """Solve ``snapshot_text`` as ``run_execute`` does and compare with what was recorded."""
    replayed_text = ""
    error_now = ""
    outcome_now = str(RunStatus.SUCCEEDED)
    try:
        snapshot = snapshot_from_dict(json.loads(snapshot_text))
        replayed_text = solve(snapshot, overrides=dict(knobs) if knobs else None).to_json()
    except InvalidSnapshot as exc:
        outcome_now, error_now = str(RunStatus.FAILED), _error_text(exc)
    except OptimizerError as exc:
        outcome_now, error_now = _outcome(exc), _error_text(exc)
    except json.JSONDecodeError as exc:
        outcome_now, error_now = str(RunStatus.FAILED), f"snapshot is not JSON: {exc}"
    then_doc = json.loads(result_text_then) if result_text_then else None
    now_doc = json.loads(replayed_text) if replayed_text else None
    return ReplayReport(
        run_id=run_id,
        snapshot_sha256_recorded=snapshot_sha256_recorded,
        snapshot_sha256_stored=sha256_hex(snapshot_text),
        result_sha256_recorded=result_sha256_recorded,
        result_sha256_replayed=sha256_hex(replayed_text) if replayed_text else "",
        outcome_then=outcome_then,
        outcome_now=outcome_now,
        error_then=error_then,
        error_now=error_now,
        diff=diff_results(then_doc, now_doc),
        versions_then=dict(versions_then or {}),
        versions_now=library_versions(),
        replayed_text=replayed_text,
    )


def run_replay(*, run_id: int, actor: User | None) -> ReplayReport:
    """Replay one run and record the outcome as an ``optimizer.run_replayed`` audit event."""
    run = (
        OptimizationRun.objects.select_related("household__firm", "snapshot", "result")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise ReplayNotPossible(f"run {run_id} does not exist")
    if run.snapshot is None:
        raise ReplayNotPossible(
            f"run {run.pk} has no stored input snapshot (status {run.status}): "
            "there is nothing to replay"
        )
    report = replay_compare(
        snapshot_text=run.snapshot.text,
        knobs=(run.overrides or {}).get("knobs"),
        snapshot_sha256_recorded=run.snapshot_sha256,
        result_text_then=run.result.text if run.result is not None else None,
        result_sha256_recorded=run.result_sha256,
        outcome_then=str(run.status),
        error_then=run.error,
        versions_then=run.versions,
        run_id=run.pk,
    )
    with transaction.atomic():
        kept = ""
        if report.replayed_text and not report.identical:
            digest = report.result_sha256_replayed
            if not StoredDocument.objects.filter(sha256=digest).exists():
                StoredDocument(
                    sha256=digest, kind="replay_result", text=report.replayed_text
                ).save()
            kept = digest
        audit_record(
            actor=actor,
            event_type="optimizer.run_replayed",
            firm=run.household.firm,
            obj=run,
            data={**report.as_dict(), "replayed_result_document": kept},
        )
    return report
