"""The real path: a Redis broker and a `celery worker` process on loopback run a batch.

Redis comes from the project's scripts (.ci/system-deps.sh installs redis-server); the worker
opens the same test database as this process (SQLite file or PostgreSQL), so the test commits
its data (transactional_db) and polls for the worker's results.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from accounts import services as svc
from audit.models import AuditEvent
from optimizer.models import OptimizationRun, RunStatus
from optimizer.services import batch_request
from optimizer.tasks import execute_run
from portal.celery import app
from tests.factories import add_price_history, make_book

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run `make system-deps` (bash .ci/system-deps.sh)"
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker(redis_url: str, tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_ENV="development",
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="false",
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}@localhost",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield redis_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(log, artifacts / f"celery-worker-{connection.vendor}.log")


def _reconfigure(**conf: object) -> None:
    """Point this process's Celery app at another broker: drop the cached connection and
    producer pools (as Celery does after a fork) so the next send uses the new URL."""
    app.conf.update(**conf)
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


def _wait(run_ids: list[int], timeout: float = 300) -> list[OptimizationRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(OptimizationRun.objects.filter(pk__in=run_ids).order_by("pk"))
        if all(r.is_finished for r in runs):
            return runs
        time.sleep(0.3)
    pytest.fail(f"runs not finished by the worker: {[(r.pk, r.status) for r in runs]}")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_batch_through_redis(worker, today):
    book = make_book(today)
    add_price_history([book.vti, book.bnd], today - dt.timedelta(days=1))
    second = svc.household_create(
        firm=book.firm, name="Second Household", advisers=[book.owner], actor=book.owner
    )
    owner = svc.client_create(
        household=second, first_name="Al", last_name="Second", actor=book.owner
    )
    account = svc.account_create(
        household=second,
        owner=owner,
        custodian=book.custodian,
        number="55556666",
        name="Al Individual",
        registration="individual",
        tax_treatment="taxable",
        cash=Decimal("50000.00"),
        actor=book.owner,
    )
    svc.ips_create_version(
        household=second,
        targets=[svc.TargetInput(weight=Decimal("1"), asset_class=book.equity)],
        effective_date=today - dt.timedelta(days=5),
        actor=book.owner,
    )
    assert account.pk

    saved = {k: app.conf[k] for k in ("task_always_eager", "broker_url")}
    _reconfigure(task_always_eager=False, broker_url=worker)
    try:
        batch = batch_request(
            firm=book.firm, scenario="moderate", actor=book.owner, idempotency_key="worker-batch"
        )
        run_ids = sorted(batch.runs.values_list("pk", flat=True))
        runs = _wait(run_ids)
        assert [r.status for r in runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED], [
            r.error for r in runs
        ]
        for run in runs:
            assert run.snapshot_sha256 and run.result_sha256
            assert run.attempts == 1
            assert run.history.latest().history_user == book.owner
        # a redelivered message does not create a second execution or a second record
        events = AuditEvent.objects.count()
        execute_run.delay(run_ids[0])
        time.sleep(3)
        again = OptimizationRun.objects.get(pk=run_ids[0])
        assert again.attempts == 1 and again.result_sha256 == runs[0].result_sha256
        assert AuditEvent.objects.count() == events
    finally:
        _reconfigure(**saved)
