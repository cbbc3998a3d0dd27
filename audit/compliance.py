"""Read side of the compliance pages: the event log with its filters, recent changes across the
firm's records, and the four-eyes approvals waiting for a second approver.

Pending approvals come from providers other apps register (the proposal workflow owns the
four-eyes rule): ``register_pending_approvals(key, provider)`` with
``provider(firm, user) -> Iterable[PendingApproval]``. See docs/audit.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Firm, Household, User
from audit.asof import history_models, household_record_ids
from audit.models import AuditEvent

# --------------------------------------------------------------------------- four-eyes


@dataclass(frozen=True)
class PendingApproval:
    """One item waiting for a second approver."""

    title: str
    household: str
    requested_by: str
    requested_at: dt.datetime
    reason: str
    href: str = ""


PendingApprovalsProvider = Callable[[Firm, User], Iterable[PendingApproval]]

_PENDING: dict[str, PendingApprovalsProvider] = {}


def register_pending_approvals(key: str, provider: PendingApprovalsProvider) -> None:
    """Add (or replace) a source of pending four-eyes approvals for the compliance page."""
    _PENDING[key] = provider


def unregister_pending_approvals(key: str) -> None:
    _PENDING.pop(key, None)


def pending_approvals_registered() -> bool:
    return bool(_PENDING)


def pending_approvals(firm: Firm, user: User) -> list[PendingApproval]:
    items = [item for key in sorted(_PENDING) for item in _PENDING[key](firm, user)]
    return sorted(items, key=lambda item: (item.requested_at, item.title))


# --------------------------------------------------------------------------- event log


@dataclass(frozen=True)
class EventFilters:
    actor_id: int | None = None
    event_type: str = ""  # exact type, or a prefix ending in "." (e.g. "optimizer.")
    household_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive

    def as_query(self) -> dict[str, str]:
        out = {}
        if self.actor_id is not None:
            out["actor"] = str(self.actor_id)
        if self.event_type:
            out["type"] = self.event_type
        if self.household_id is not None:
            out["household"] = str(self.household_id)
        if self.date_from is not None:
            out["from"] = self.date_from.isoformat()
        if self.date_to is not None:
            out["to"] = self.date_to.isoformat()
        return out


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in the portal's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def household_event_condition(household_id: int) -> Q:
    """Events about the household or any record that ever belonged to it."""
    condition = Q(pk__in=[])
    for label, ids in household_record_ids(household_id).items():
        if ids:
            condition |= Q(object_type=label, object_id__in=ids)
    return condition


def firm_events(firm: Firm, filters: EventFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(chain=firm.slug, firm=firm).select_related("actor")
    if filters.actor_id is not None:
        events = events.filter(actor_id=filters.actor_id)
    if filters.event_type:
        if filters.event_type.endswith("."):
            events = events.filter(event_type__startswith=filters.event_type)
        else:
            events = events.filter(event_type=filters.event_type)
    if filters.household_id is not None:
        events = events.filter(household_event_condition(filters.household_id))
    if filters.date_from is not None:
        events = events.filter(created_at__gte=day_start(filters.date_from))
    if filters.date_to is not None:
        events = events.filter(created_at__lt=day_start(filters.date_to + dt.timedelta(days=1)))
    return events.order_by("-seq")


def firm_event_types(firm: Firm) -> list[str]:
    return sorted(
        set(AuditEvent.objects.filter(chain=firm.slug).values_list("event_type", flat=True))
    )


def firm_actors(firm: Firm) -> list[User]:
    return list(User.objects.filter(firm=firm).order_by("username"))


def firm_households(firm: Firm) -> list[Household]:
    return list(Household.objects.filter(firm=firm).order_by("name"))


# --------------------------------------------------------------------------- recent changes


@dataclass(frozen=True)
class ChangeRow:
    label: str
    verbose_name: str
    object_id: int
    record: Any  # the historical record
    when: dt.datetime
    who: str
    kind: str
    fields: tuple[str, ...] = ()


_KINDS = {"+": "created", "~": "changed", "-": "deleted"}


def recent_changes(
    firm: Firm, *, since: dt.datetime | None = None, limit: int = 100
) -> list[ChangeRow]:
    """The latest history records of the firm's registered records, newest first, leaving out
    saves that changed no tracked field."""
    rows: list[ChangeRow] = []
    for entry in history_models():
        history = entry.history_model._default_manager
        records = history.filter(**{entry.firm_lookup: firm.pk}).select_related("history_user")
        if since is not None:
            records = records.filter(history_date__gte=since)
        pk_name = entry.model._meta.pk.attname if entry.model._meta.pk is not None else "id"
        for record in records.order_by("-history_date", "-pk")[:limit]:
            rows.append(
                ChangeRow(
                    label=entry.label,
                    verbose_name=str(entry.model._meta.verbose_name),
                    object_id=getattr(record, pk_name),
                    record=record,
                    when=record.history_date,
                    who=str(record.history_user or "system"),
                    kind=_KINDS.get(record.history_type, record.history_type),
                )
            )
    rows.sort(key=lambda row: (row.when, row.label, row.record.pk), reverse=True)
    out: list[ChangeRow] = []
    for row in rows:
        if len(out) == limit:
            break
        previous = row.record.prev_record if row.record.history_type == "~" else None
        fields = tuple(row.record.diff_against(previous).changed_fields) if previous else ()
        if previous is not None and not fields:
            continue  # a save that changed no tracked field (e.g. a login's last_login)
        out.append(replace(row, fields=fields))
    return out
