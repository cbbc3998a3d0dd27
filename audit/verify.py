"""Walks the audit chains and reports the first broken event of each."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from audit.canonical import canonical_json, sha256_hex
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainReport:
    chain: str
    events: int
    head_hash: str
    problem: str | None = None
    broken_event_id: int | None = None
    broken_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class VerifyReport:
    chains: list[ChainReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(chain.ok for chain in self.chains)

    @property
    def events(self) -> int:
        return sum(chain.events for chain in self.chains)


_COLUMN_FIELDS = (
    "chain",
    "seq",
    "actor",
    "actor_label",
    "event_type",
    "firm",
    "object_type",
    "object_id",
)


def _columns(event: AuditEvent) -> dict[str, object]:
    return {
        "chain": event.chain,
        "seq": event.seq,
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "event_type": event.event_type,
        "firm": event.firm_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
    }


def verify_events(
    chain: str, events: Iterable[AuditEvent], head: AuditChainHead | None
) -> ChainReport:
    """Check one chain in ``seq`` order: contiguous sequence, linked hashes, hashes that match the
    payload, payloads that match the columns, and a head that points at the last event."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0

    def broken(event: AuditEvent, problem: str) -> ChainReport:
        return ChainReport(
            chain=chain,
            events=count,
            head_hash=prev_hash,
            problem=f"event #{event.pk} (chain {chain}, seq {event.seq}): {problem}",
            broken_event_id=event.pk,
            broken_seq=event.seq,
        )

    for event in events:
        if event.seq != expected_seq:
            return broken(
                event,
                f"expected seq {expected_seq}; events are missing or out of order",
            )
        if event.prev_hash != prev_hash:
            return broken(event, "prev_hash does not match the previous event's hash")
        if sha256_hex(prev_hash + event.payload) != event.hash:
            return broken(event, "hash does not match sha256(prev_hash + payload): payload altered")
        try:
            payload = json.loads(event.payload)
        except json.JSONDecodeError:
            return broken(event, "payload is not valid JSON")
        if canonical_json(payload) != event.payload:
            return broken(event, "payload is not in canonical form")
        columns = _columns(event)
        for name in _COLUMN_FIELDS:
            if payload.get(name) != columns[name]:
                return broken(
                    event, f"column {name}={columns[name]!r} differs from the hashed payload"
                )
        prev_hash = event.hash
        expected_seq += 1
        count += 1
    if head is not None and (head.seq != count or head.hash != prev_hash):
        return ChainReport(
            chain=chain,
            events=count,
            head_hash=prev_hash,
            problem=(
                f"chain {chain}: the head records seq {head.seq} but the chain ends at seq {count}; "
                "events after it were deleted"
            ),
            broken_seq=count + 1,
        )
    return ChainReport(chain=chain, events=count, head_hash=prev_hash)


def _iter_chain(chain: str) -> Iterator[AuditEvent]:
    return AuditEvent.objects.filter(chain=chain).order_by("seq", "id").iterator(chunk_size=2000)


def verify_chains(chains: Iterable[str] | None = None) -> VerifyReport:
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    names = set(heads) | set(AuditEvent.objects.values_list("chain", flat=True).distinct())
    if chains is not None:
        names &= set(chains)
    report = VerifyReport()
    for name in sorted(names):
        report.chains.append(verify_events(name, _iter_chain(name), heads.get(name)))
    return report
