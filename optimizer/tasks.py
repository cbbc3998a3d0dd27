"""Celery tasks: take ids, load, call one service. Late acknowledgement so a worker that dies
mid-run leaves the message to be redelivered; the service makes redelivery harmless."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from optimizer.services import run_execute


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def execute_run(self: Any, run_id: int) -> str:
    return str(run_execute(run_id=run_id).status)
