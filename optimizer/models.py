"""Optimization runs: what was asked, the frozen input snapshot, the result, and how it went.

Snapshots and results are stored once as content-addressed documents (``StoredDocument``):
immutable text keyed by its SHA-256, so a run's history rows stay small and the exact bytes
that went into and came out of the optimizer can be produced years later.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from audit.canonical import sha256_hex


class StoredDocument(models.Model):
    """Immutable text addressed by its SHA-256 (input snapshots, results)."""

    sha256 = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=40)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError("A stored document is immutable.")
        if sha256_hex(self.text) != self.sha256:
            raise ValidationError({"sha256": "does not match the text"})
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError("A stored document is kept for the retention period.")

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    INFEASIBLE = "infeasible", "Infeasible"
    BLOCKED = "blocked", "Blocked by data"
    FAILED = "failed", "Failed"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.INFEASIBLE, RunStatus.BLOCKED, RunStatus.FAILED)


class RunBatch(models.Model):
    """One request to run a scenario over many households (e.g. the firm's whole book)."""

    firm = models.ForeignKey("accounts.Firm", on_delete=models.PROTECT, related_name="run_batches")
    scenario = models.CharField(max_length=40)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"batch {self.pk} {self.scenario}"


class OptimizationRun(models.Model):
    household = models.ForeignKey(
        "accounts.Household", on_delete=models.PROTECT, related_name="runs"
    )
    batch = models.ForeignKey(
        RunBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    scenario = models.CharField(max_length=40)
    mode = models.CharField(max_length=20, default="rebalance")
    overrides = models.JSONField(default=dict, blank=True)
    request_text = models.TextField(blank=True)
    as_of = models.DateField()
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    idempotency_key = models.CharField(max_length=120, unique=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ips = models.ForeignKey(
        "accounts.InvestmentPolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    snapshot = models.ForeignKey(
        StoredDocument, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    result = models.ForeignKey(
        StoredDocument, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    result_sha256 = models.CharField(max_length=64, blank=True)
    solver = models.CharField(max_length=20, default="CLARABEL")
    versions = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["household", "-created_at"])]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def __str__(self) -> str:
        return f"run {self.pk} {self.scenario} ({self.status})"
