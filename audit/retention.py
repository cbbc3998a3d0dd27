"""Record retention (Advisers Act Rule 204-2): a record of the firm is kept for five years from
the end of the fiscal year in which its last entry was made, and cannot be deleted before.

One rule, one place, called from everywhere a delete could come from:

- the ORM: ``install_retention_guard()`` (run by ``audit.apps.AuditConfig.ready``) connects a
  ``pre_delete`` guard for every model of record, so ``Model.delete()``, ``QuerySet.delete()``
  and cascades all raise :class:`RecordUnderRetention` for a retained row. This is an invariant
  check, like the PostgreSQL trigger on audit events, not control flow: it never changes data;
- the admin: :class:`RetentionAdminMixin` (the base of ``accounts.admin.AuditedAdmin``) hides the
  delete button and action and answers 403 for a retained record;
- views and APIs: call :func:`ensure_deletable` (or :func:`is_under_retention` to decide whether
  to offer a delete at all). ``RecordUnderRetention`` is a ``PermissionDenied``, so an uncaught
  refusal is a 403.

What to do instead of deleting: close the record (``is_active=False``, ``closed_on``,
``end_date``), which is itself a tracked change.

Models of record are the models tracked by django-simple-history, their historical tables, and
the few untracked models listed in :data:`RETAINED_WITHOUT_HISTORY`. The "last entry" of a row is
its latest history record (for a historical row: its own ``history_date``; for an untracked
model: its ``finished_at``, ``created_at`` or ``date``); a row with none is treated as written
today. The ORM guard raises inside Django's delete transaction: a caller that wants to carry on
after a refusal wraps the delete in ``transaction.atomic()`` (a savepoint). The fiscal year ends
on ``settings.PORTAL_FISCAL_YEAR_END`` (``"MM-DD"``, default ``"12-31"``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import models
from django.db.models import Max
from django.db.models.signals import pre_delete
from django.http import HttpRequest
from django.utils import timezone
from simple_history.models import HistoricalChanges

RETENTION_YEARS = 5
DEFAULT_FISCAL_YEAR_END = "12-31"

RETAINED_WITHOUT_HISTORY: frozenset[str] = frozenset(
    {
        "accounts.Price",
        "audit.AuditEvent",
        "audit.VerificationRun",
        "optimizer.StoredDocument",
    }
)

_DISPATCH_UID = "audit.retention.guard"


class RecordUnderRetention(PermissionDenied):
    """A delete of a record that must still be kept."""


@dataclass(frozen=True)
class RetentionStatus:
    last_entry: dt.date
    retained_until: dt.date  # the last day of retention
    retained: bool


def fiscal_year_end_for(day: dt.date) -> dt.date:
    """The last day of the fiscal year that contains ``day``."""
    raw = str(getattr(settings, "PORTAL_FISCAL_YEAR_END", DEFAULT_FISCAL_YEAR_END))
    try:
        month_text, day_text = raw.split("-")
        month, last = int(month_text), int(day_text)
        dt.date(2001, month, last)  # a year without Feb 29: refuses 02-29 as well
    except ValueError:
        raise ImproperlyConfigured(
            f"PORTAL_FISCAL_YEAR_END must be MM-DD (e.g. 12-31 or 06-30), got {raw!r}"
        ) from None
    end = dt.date(day.year, month, last)
    return end if day <= end else dt.date(day.year + 1, month, last)


def retention_end(last_entry: dt.date) -> dt.date:
    """The last day a record whose last entry was made on ``last_entry`` must be kept."""
    fye = fiscal_year_end_for(last_entry)
    try:
        return fye.replace(year=fye.year + RETENTION_YEARS)
    except ValueError:  # a fiscal year ending on Feb 29 cannot be configured; defensive
        return fye.replace(year=fye.year + RETENTION_YEARS, day=28)


def is_record_model(model: type[models.Model]) -> bool:
    """Tracked by simple-history, a historical table, or retained without history."""
    if issubclass(model, HistoricalChanges):
        return True
    if getattr(model._meta, "simple_history_manager_attribute", None):
        return True
    return model._meta.label in RETAINED_WITHOUT_HISTORY


def record_models() -> list[type[models.Model]]:
    from django.apps import apps

    return sorted(
        (model for model in apps.get_models() if is_record_model(model)),
        key=lambda model: model._meta.label,
    )


def last_entry(obj: models.Model) -> dt.datetime | dt.date | None:
    """When the record was last written: its latest history record (a historical row: its own
    ``history_date``); for the few models without history, their own timestamp or date."""
    if isinstance(obj, HistoricalChanges):
        return getattr(obj, "history_date", None)
    manager_name = getattr(obj._meta, "simple_history_manager_attribute", None)
    if manager_name and obj.pk is not None:
        history_model = getattr(type(obj), manager_name).model
        pk_name = obj._meta.pk.attname if obj._meta.pk is not None else "id"
        latest: dt.datetime | None = history_model._default_manager.filter(
            **{pk_name: obj.pk}
        ).aggregate(last=Max("history_date"))["last"]
        if latest is not None:
            return latest
    moments: list[dt.datetime | dt.date] = []
    for name in ("finished_at", "created_at", "date"):
        value = getattr(obj, name, None)
        if isinstance(value, dt.date):
            moments.append(value)
    return max(moments, key=_as_date) if moments else None


def _as_date(moment: dt.datetime | dt.date) -> dt.date:
    if isinstance(moment, dt.datetime):
        return timezone.localdate(moment) if timezone.is_aware(moment) else moment.date()
    return moment


def retention_status(obj: models.Model, *, on: dt.date | None = None) -> RetentionStatus:
    moment = last_entry(obj)
    today = on or timezone.localdate()
    entry_day = _as_date(moment) if moment is not None else today
    until = retention_end(entry_day)
    return RetentionStatus(last_entry=entry_day, retained_until=until, retained=today <= until)


def is_under_retention(obj: models.Model, *, on: dt.date | None = None) -> bool:
    if not is_record_model(type(obj)):
        return False
    return retention_status(obj, on=on).retained


def ensure_deletable(obj: models.Model, *, on: dt.date | None = None) -> None:
    """Raise :class:`RecordUnderRetention` unless ``obj`` may be deleted now."""
    if not is_record_model(type(obj)):
        return
    status = retention_status(obj, on=on)
    if status.retained:
        raise RecordUnderRetention(
            f"{obj._meta.label} #{obj.pk} is a record under retention until "
            f"{status.retained_until.isoformat()} (last entry {status.last_entry.isoformat()}, "
            f"kept {RETENTION_YEARS} years from the end of that fiscal year): it cannot be "
            "deleted; close it instead."
        )


def _guard(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    ensure_deletable(instance)


def install_retention_guard() -> None:
    """Refuse ORM deletes of retained rows of every model of record (idempotent)."""
    for model in record_models():
        pre_delete.connect(
            _guard, sender=model, weak=False, dispatch_uid=f"{_DISPATCH_UID}:{model._meta.label}"
        )


class RetentionAdminMixin:
    """For ``ModelAdmin`` classes of models of record: no delete of a retained record, no bulk
    delete action (each row's retention is checked on its own delete page), and inlines of
    models of record without delete checkboxes."""

    model: type[models.Model]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not is_record_model(self.model):
            return bool(super().has_delete_permission(request, obj))  # type: ignore[misc]
        if obj is None or is_under_retention(obj):
            return False
        return bool(super().has_delete_permission(request, obj))  # type: ignore[misc]

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        inlines = list(super().get_inline_instances(request, obj))  # type: ignore[misc]
        for inline in inlines:
            if is_record_model(inline.model):
                inline.can_delete = False
        return inlines
