"""Requesting and executing optimization runs.

``run_request`` records what was asked (atomic, audited) and enqueues the Celery task on commit;
``run_execute`` (called by the task) freezes the snapshot, runs the pure core and records the
outcome. Execution is idempotent: a redelivered task finds the run finished and does nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import platform
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Firm, Household, User
from audit.canonical import sha256_hex
from audit.history import acting_as
from audit.services import audit_record
from optimizer.adapter import DataNotReady, build_snapshot
from optimizer.core.engine import solve
from optimizer.core.errors import InfeasibleProblem, OptimizerError
from optimizer.core.scenarios import PRESET_NAMES
from optimizer.core.snapshot import snapshot_from_dict
from optimizer.models import OptimizationRun, RunBatch, RunStatus, StoredDocument

SCENARIOS = (*PRESET_NAMES, "custom")
_PACKAGES = ("cvxpy", "clarabel", "scs", "numpy", "scipy", "pandas", "ria-portal")


def library_versions() -> dict[str, str]:
    """Versions of what computes a result: Python, the numerical libraries, the project, and
    ``optimizer_code`` (a fingerprint of the optimizer core's source, so a replay can tell a code
    change from a library change)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    out["optimizer_code"] = optimizer_code_fingerprint()
    return out


@functools.cache
def optimizer_code_fingerprint() -> str:
    """SHA-256 (first 16 hex digits) of the optimizer core's Python source files (path and
    text, in path order): what turns a snapshot into a result."""
    core = Path(__file__).resolve().parent / "core"
    h = hashlib.sha256()
    for path in sorted(core.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def canonical_snapshot_text(snapshot_dict: dict[str, Any]) -> str:
    """The exact text whose SHA-256 identifies a snapshot (the core's canonical form)."""
    return json.dumps(snapshot_dict, sort_keys=True, separators=(",", ":"))


def _document(kind: str, text: str) -> StoredDocument:
    digest = sha256_hex(text)
    existing = StoredDocument.objects.filter(sha256=digest).first()
    if existing is not None:
        return existing
    doc = StoredDocument(sha256=digest, kind=kind, text=text)
    doc.save()
    return doc


def _enqueue(run_ids: Iterable[int]) -> Callable[[], None]:
    from optimizer.tasks import execute_run

    ids = list(run_ids)

    def send() -> None:
        for run_id in ids:
            execute_run.delay(run_id)

    return send


def _new_run(
    *,
    household: Household,
    scenario: str,
    actor: User | None,
    key: str,
    as_of: dt.date,
    overrides: dict[str, Any],
    request_text: str,
    solver: str,
    batch: RunBatch | None,
) -> OptimizationRun:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    run = OptimizationRun(
        household=household,
        batch=batch,
        scenario=scenario,
        overrides=overrides,
        request_text=request_text,
        as_of=as_of,
        idempotency_key=key,
        requested_by=actor,
        solver=solver,
    )
    with acting_as(actor):
        run.save()
    audit_record(
        actor=actor,
        event_type="optimizer.run_requested",
        firm=household.firm,
        obj=run,
        data={
            "household": household.pk,
            "scenario": scenario,
            "as_of": as_of,
            "overrides": overrides,
            "request_text": request_text,
            "solver": solver,
            "batch": batch.pk if batch else None,
        },
    )
    return run


def run_request(
    *,
    household: Household,
    scenario: str,
    actor: User | None,
    idempotency_key: str | None = None,
    as_of: dt.date | None = None,
    overrides: dict[str, Any] | None = None,
    request_text: str = "",
    solver: str = "CLARABEL",
) -> OptimizationRun:
    """Record a run and enqueue it when the transaction commits. The same idempotency key
    returns the run already recorded (a double click never starts two runs)."""
    key = idempotency_key or f"run-{uuid.uuid4()}"
    existing = OptimizationRun.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            run = _new_run(
                household=household,
                scenario=scenario,
                actor=actor,
                key=key,
                as_of=as_of or timezone.localdate(),
                overrides=overrides or {},
                request_text=request_text,
                solver=solver,
                batch=None,
            )
            transaction.on_commit(_enqueue([run.pk]))
    except IntegrityError:
        return OptimizationRun.objects.get(idempotency_key=key)
    return run


def batch_request(
    *,
    firm: Firm,
    scenario: str,
    actor: User | None,
    idempotency_key: str | None = None,
    as_of: dt.date | None = None,
) -> RunBatch:
    """One run per active household of the firm, enqueued together on commit."""
    key = idempotency_key or f"batch-{uuid.uuid4()}"
    existing = RunBatch.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    day = as_of or timezone.localdate()
    with transaction.atomic():
        batch = RunBatch(firm=firm, scenario=scenario, requested_by=actor, idempotency_key=key)
        with acting_as(actor):
            batch.save()
        runs = [
            _new_run(
                household=household,
                scenario=scenario,
                actor=actor,
                key=f"{key}:{household.pk}",
                as_of=day,
                overrides={},
                request_text="",
                solver="CLARABEL",
                batch=batch,
            )
            for household in firm.households.filter(is_active=True).order_by("pk")
        ]
        audit_record(
            actor=actor,
            event_type="optimizer.batch_requested",
            firm=firm,
            obj=batch,
            data={"scenario": scenario, "runs": [r.pk for r in runs], "as_of": day},
        )
        transaction.on_commit(_enqueue(r.pk for r in runs))
    return batch


def _claim(run_id: int) -> OptimizationRun | None:
    with transaction.atomic():
        run = (
            OptimizationRun.objects.select_for_update()
            .select_related("household__firm")
            .get(pk=run_id)
        )
        if run.is_finished:
            return None
        run.status = RunStatus.RUNNING
        run.started_at = timezone.now()
        run.attempts += 1
        with acting_as(run.requested_by):
            run.save(update_fields=["status", "started_at", "attempts"])
    return run


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    before, after = result["metrics"]["before"], result["metrics"]["after"]
    return {
        "trades": len(result["trades"]),
        "realized_net": after["realized"]["net"],
        "estimated_tax": after["estimated_tax"],
        "tracking_error_before": before["tracking_error"],
        "tracking_error_after": after["tracking_error"],
        "max_drift_before": before["max_abs_drift"],
        "max_drift_after": after["max_abs_drift"],
        "turnover": after["turnover"],
        "trading_cost": after["trading_cost"],
        "binding": [b.get("constraint") for b in result["binding_constraints"]],
    }


def run_execute(*, run_id: int) -> OptimizationRun:
    """Freeze the snapshot, solve, record. Returns the finished run (idempotent)."""
    run = _claim(run_id)
    if run is None:
        return OptimizationRun.objects.get(pk=run_id)
    t0 = time.perf_counter()
    snapshot_text = result_text = ""
    ips_id = None
    summary: dict[str, Any] = {}
    error = ""
    timings: dict[str, float] = {}
    try:
        build = build_snapshot(
            run.household,
            as_of=run.as_of,
            scenario=run.scenario if run.scenario in PRESET_NAMES else None,
            budgets=run.overrides.get("budgets"),
            restrictions_extra=run.overrides.get("restrictions"),
            cash_to_raise=run.overrides.get("cash_to_raise"),
            solver=run.solver,
        )
        ips_id = build.ips.pk
        snapshot = snapshot_from_dict(build.snapshot)
        snapshot_text = snapshot.canonical_json()  # = canonical_snapshot_text(snapshot_to_dict())
        timings["adapter_s"] = round(time.perf_counter() - t0, 6)
        result = solve(snapshot, overrides=run.overrides.get("knobs") or None)
        result_text = result.to_json()
        timings["solver_s"] = round(result.solver.solve_time_s, 6)
        timings["core_s"] = round(result.solver.core_time_s, 6)
        # the forecast years' solves (inside core_s) and cvxpy compilation (inside core_s)
        timings["forecast_solver_s"] = round(result.solver.forecast_solve_time_s, 6)
        timings["compile_s"] = round(result.solver.compile_time_s, 6)
        summary = _summary(json.loads(result_text))
        status = RunStatus.SUCCEEDED
    except DataNotReady as exc:
        status, error, summary = RunStatus.BLOCKED, str(exc), {"problems": exc.problems}
    except InfeasibleProblem as exc:
        status, error, summary = RunStatus.INFEASIBLE, str(exc), exc.as_dict()
    except OptimizerError as exc:
        status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
    timings["total_s"] = round(time.perf_counter() - t0, 6)
    with transaction.atomic():
        run = (
            OptimizationRun.objects.select_for_update()
            .select_related("household__firm")
            .get(pk=run_id)
        )
        if run.is_finished:  # a duplicate delivery finished first; keep its record
            return run
        if snapshot_text:
            run.snapshot = _document("snapshot", snapshot_text)
            run.snapshot_sha256 = run.snapshot.sha256
        if result_text:
            run.result = _document("result", result_text)
            run.result_sha256 = run.result.sha256
        run.ips_id = ips_id
        run.status = status
        run.error = error
        run.summary = summary
        run.timings = timings
        run.versions = library_versions()
        run.finished_at = timezone.now()
        with acting_as(run.requested_by):
            run.save()
        audit_record(
            actor=run.requested_by,
            event_type="optimizer.run_finished",
            firm=run.household.firm,
            obj=run,
            data={
                "status": status,
                "snapshot_sha256": run.snapshot_sha256,
                "result_sha256": run.result_sha256,
                "ips": ips_id,
                "summary": summary,
                "error": error,
                "versions": run.versions,
            },
        )
    return run


def run_result(run: OptimizationRun) -> dict[str, Any] | None:
    return None if run.result is None else json.loads(run.result.text)


def realized_from_summary(run: OptimizationRun) -> Decimal:
    return Decimal(str(run.summary.get("realized_net", "0")))
