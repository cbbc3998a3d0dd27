"""The append-only, hash-chained audit log.

Each firm has its own chain (``chain`` = firm slug; ``system`` for events with no firm), so a
firm's exam package verifies on its own. For event *n* of a chain::

    payload_n = canonical_json({chain, seq, created_at, actor, actor_label, event_type,
                                firm, object_type, object_id, data})
    hash_n    = sha256(hash_{n-1} + payload_n)          (hash_0 = 64 zeros)

The application never updates or deletes an event (``save`` on an existing row and ``delete``
raise); ``audit_verify`` detects any change made behind its back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64


class AuditLogIsAppendOnly(Exception):
    pass


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditLogIsAppendOnly("audit events are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("audit events are never deleted")


class AuditEvent(models.Model):
    chain = models.CharField(max_length=60)
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    event_type = models.CharField(max_length=80)
    firm = models.ForeignKey(
        "accounts.Firm", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=80, blank=True)
    payload = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["chain", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_unique_seq")]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["firm", "created_at"]),
            models.Index(fields=["event_type"]),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly(f"audit event {self.pk} cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly(f"audit event {self.pk} cannot be deleted")

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq} {self.event_type}"


class AuditChainHead(models.Model):
    """The last event of each chain, locked while appending so concurrent writers serialize."""

    chain = models.CharField(max_length=60, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.chain} @ {self.seq}"


class VerificationTrigger(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled (Celery beat)"
    ON_DEMAND = "on_demand", "On demand (compliance page)"
    COMMAND = "command", "Command line"


class VerificationRun(models.Model):
    """One walk of the audit chains and what it found. Written once, never changed.

    ``chains`` holds one entry per chain verified: ``{chain, events, head_hash, ok, problem,
    broken_event_id, broken_seq}``; ``scope`` is empty when every chain was verified, otherwise
    the comma-separated chain names.
    """

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    trigger = models.CharField(max_length=20, choices=VerificationTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope = models.CharField(max_length=200, blank=True)
    ok = models.BooleanField()
    events_checked = models.PositiveBigIntegerField(default=0)
    chains = models.JSONField(default=list, blank=True)
    first_broken_chain = models.CharField(max_length=60, blank=True)
    first_broken_seq = models.PositiveBigIntegerField(null=True, blank=True)
    first_broken_event_id = models.PositiveBigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [models.Index(fields=["trigger", "-finished_at"])]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly(f"verification run {self.pk} cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly(f"verification run {self.pk} cannot be deleted")

    def chain_entry(self, chain: str) -> dict[str, Any] | None:
        """The result for one chain (a firm's slug), or None when it was not verified."""
        for entry in self.chains:
            if entry.get("chain") == chain:
                return dict(entry)
        return None

    def __str__(self) -> str:
        return f"verification {self.pk} {'ok' if self.ok else 'BROKEN'} ({self.trigger})"
