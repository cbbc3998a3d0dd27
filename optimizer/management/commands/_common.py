from __future__ import annotations

import time

from django.core.management.base import CommandError

from accounts.models import User
from optimizer.models import OptimizationRun


def actor_for(username: str | None) -> User | None:
    if not username:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--as: no user {username!r}")
    return user


def wait_for(run_ids: list[int], timeout: float) -> list[OptimizationRun]:
    """Poll until every run is finished (runs finish inline when Celery is eager)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = list(OptimizationRun.objects.filter(pk__in=run_ids).order_by("pk"))
        if all(r.is_finished for r in runs):
            return runs
        if time.monotonic() > deadline:
            pending = [r.pk for r in runs if not r.is_finished]
            raise CommandError(
                f"runs still pending after {timeout:.0f}s: {pending} (is a worker running?)"
            )
        time.sleep(0.2)
