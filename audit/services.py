"""Writing to the audit chain. Called by every write service inside its own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.utils import timezone

from audit.canonical import canonical_json, sha256_hex
from audit.models import AuditChainHead, AuditEvent

if TYPE_CHECKING:
    from accounts.models import Firm, User

SYSTEM_CHAIN = "system"


class AuditOutsideTransaction(RuntimeError):
    pass


def chain_for(firm: Firm | None) -> str:
    return firm.slug if firm is not None else SYSTEM_CHAIN


def actor_label(actor: User | None) -> str:
    if actor is None:
        return "system"
    return f"{actor.username} (#{actor.pk}, {actor.role or 'staff'})"


def audit_record(
    *,
    actor: User | None,
    event_type: str,
    firm: Firm | None,
    obj: models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the firm's chain. Must run inside the caller's transaction so the
    event and the change it records commit (or roll back) together."""
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(
            f"{event_type}: audit events are written inside a transaction"
        )
    chain = chain_for(firm)
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(chain=chain)
    seq = head.seq + 1
    created_at = timezone.now()
    object_type = obj._meta.label if obj is not None else ""
    object_id = str(obj.pk) if obj is not None else ""
    payload = canonical_json(
        {
            "chain": chain,
            "seq": seq,
            "created_at": created_at,
            "actor": actor.pk if actor is not None else None,
            "actor_label": actor_label(actor),
            "event_type": event_type,
            "firm": firm.pk if firm is not None else None,
            "object_type": object_type,
            "object_id": object_id,
            "data": data or {},
        }
    )
    digest = sha256_hex(head.hash + payload)
    event = AuditEvent(
        chain=chain,
        seq=seq,
        created_at=created_at,
        actor=actor,
        actor_label=actor_label(actor),
        event_type=event_type,
        firm=firm,
        object_type=object_type,
        object_id=object_id,
        payload=payload,
        prev_hash=head.hash,
        hash=digest,
    )
    event.save()
    head.seq = seq
    head.hash = digest
    head.save(update_fields=["seq", "hash"])
    return event


@transaction.atomic
def audit_record_atomic(**kwargs: Any) -> AuditEvent:
    """For callers with nothing else to write (e.g. a login, an export download)."""
    return audit_record(**kwargs)
