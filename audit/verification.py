"""Verifying the audit chains and keeping the result (scheduled, on demand, from the command)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from audit.models import VerificationRun, VerificationTrigger
from audit.services import audit_record
from audit.verify import verify_chains

if TYPE_CHECKING:
    from accounts.models import Firm, User


def verification_run(
    *,
    actor: User | None,
    trigger: VerificationTrigger,
    firm: Firm | None = None,
    chains: Iterable[str] | None = None,
) -> VerificationRun:
    """Walk the chains (every chain, or ``chains``; a firm's own chain when ``firm`` is given),
    store a :class:`VerificationRun` and append an ``audit.chain_verified`` event, on the firm's
    chain for a firm-scoped run and on the system chain otherwise."""
    if firm is not None:
        names: list[str] | None = [firm.slug]
    else:
        names = sorted(set(chains)) if chains is not None else None
    started = timezone.now()
    report = verify_chains(names)
    finished = timezone.now()
    entries = [
        {
            "chain": chain.chain,
            "events": chain.events,
            "head_hash": chain.head_hash,
            "ok": chain.ok,
            "problem": chain.problem or "",
            "broken_event_id": chain.broken_event_id,
            "broken_seq": chain.broken_seq,
        }
        for chain in report.chains
    ]
    broken = next((chain for chain in report.chains if not chain.ok), None)
    with transaction.atomic():
        run = VerificationRun(
            started_at=started,
            finished_at=finished,
            trigger=trigger,
            requested_by=actor,
            scope=",".join(names) if names is not None else "",
            ok=report.ok,
            events_checked=report.events,
            chains=entries,
            first_broken_chain=broken.chain if broken else "",
            first_broken_seq=broken.broken_seq if broken else None,
            first_broken_event_id=broken.broken_event_id if broken else None,
            problem="; ".join(c.problem or "" for c in report.chains if not c.ok),
        )
        run.save()
        audit_record(
            actor=actor,
            event_type="audit.chain_verified",
            firm=firm,
            obj=run,
            data={
                "trigger": str(trigger),
                "ok": report.ok,
                "events_checked": report.events,
                "chains": [
                    {"chain": e["chain"], "events": e["events"], "head_hash": e["head_hash"]}
                    for e in entries
                ],
                "problem": run.problem,
            },
        )
    return run


def latest_verification(
    *, trigger: VerificationTrigger, scope: str | None = None
) -> VerificationRun | None:
    runs = VerificationRun.objects.filter(trigger=trigger)
    if scope is not None:
        runs = runs.filter(scope=scope)
    return runs.order_by("-finished_at", "-id").first()
