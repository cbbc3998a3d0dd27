"""Celery tasks of the audit app. ``verify_audit_chains`` runs on the beat schedule
(``CELERY_BEAT_SCHEDULE`` in portal/settings.py); see docs/audit.md."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from audit.models import VerificationTrigger
from audit.verification import verification_run


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def verify_audit_chains(self: Any) -> dict[str, Any]:
    """Verify every chain and record the outcome; returns a small summary for the result log."""
    run = verification_run(actor=None, trigger=VerificationTrigger.SCHEDULED)
    return {
        "verification_run": run.pk,
        "ok": run.ok,
        "events_checked": run.events_checked,
        "problem": run.problem,
    }
