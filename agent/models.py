"""What the agent did, every time: one ``AgentInteraction`` per parse, explanation or answer.

A row records the input (the adviser's request or question, the run), what was shown (the
parsed outcome or the text), how it was produced (``source``: the model or the deterministic
path; ``outcome``: ``ok``, ``fallback`` when the model failed, ``rejected`` when its text failed
the number check, with the ``reason``) and, when a model was called, the call itself: model,
server host (never the key), messages, tools, raw response, tokens, latency and the SHA-256 of
request and response.

Rows are append-only (``save`` refuses changes, ``delete`` refuses); history is kept with
django-simple-history like every model of record, and each row has an audit event written in
the same transaction. ``cache_key`` (unique) makes the same input give the same answer: see
``agent.services``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords


class InteractionKind(models.TextChoices):
    PARSE = "parse", "Request parsed"
    EXPLAIN = "explain", "Explanation"
    ANSWER = "answer", "Answer to a question"


class InteractionOutcome(models.TextChoices):
    OK = "ok", "OK"
    FALLBACK = "fallback", "Model failed; deterministic path used"
    REJECTED = "rejected", "Model text rejected by the number check; deterministic text used"


class InteractionSource(models.TextChoices):
    MODEL = "model", "Model"
    DETERMINISTIC = "deterministic", "Deterministic"


class AgentInteraction(models.Model):
    kind = models.CharField(max_length=20, choices=InteractionKind.choices)
    household = models.ForeignKey(
        "accounts.Household", on_delete=models.PROTECT, related_name="agent_interactions"
    )
    run = models.ForeignKey(
        "optimizer.OptimizationRun",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="agent_interactions",
    )
    # A generic link for later records (e.g. "proposal:12"); empty when there is none.
    subject = models.CharField(max_length=200, blank=True)
    audience = models.CharField(max_length=20, blank=True)  # explanations: adviser | client
    request_text = models.TextField(blank=True)  # the adviser's request or question
    output = models.JSONField(default=dict, blank=True)  # what was shown, structured
    text = models.TextField(blank=True)  # explanations and answers: the text shown
    source = models.CharField(max_length=20, choices=InteractionSource.choices)
    outcome = models.CharField(max_length=20, choices=InteractionOutcome.choices)
    reason = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)  # empty: no model configured
    base_url_host = models.CharField(max_length=255, blank=True)
    messages = models.JSONField(default=list, blank=True)
    tools = models.JSONField(default=list, blank=True)
    response = models.JSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    request_sha256 = models.CharField(max_length=64, blank=True)  # the model request
    response_sha256 = models.CharField(max_length=64, blank=True)  # the model response
    output_sha256 = models.CharField(max_length=64)  # what was shown
    basis_sha256 = models.CharField(max_length=64, blank=True)  # the result explained
    cache_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["household", "kind", "-created_at"]),
            models.Index(fields=["run", "kind"]),
            models.Index(fields=["basis_sha256", "kind"]),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError("An agent interaction is a record: it is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError("An agent interaction is kept for the retention period.")

    @property
    def used_model(self) -> bool:
        return self.source == InteractionSource.MODEL

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.outcome})"
