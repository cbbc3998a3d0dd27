"""Point in time: the book of record as it stood at any past moment, and field-by-field diffs
between any two versions of a record, both read from django-simple-history.

``household_as_of(household_id, when)`` rebuilds a household (clients, advisers, accounts,
open lots, every IPS version on record, the version in force and its targets, restrictions) from
the historical tables with ``Model.history.as_of(when)``: each row is the latest version saved on
or before ``when`` (rows deleted by then are left out). ``diff_versions`` compares two historical
records of one row with simple-history's ``diff_against``.

Which models have record pages (``/audit/history/<label>/<pk>/``) and how a row finds its
household (for access) is the registry below: ``register_history_model``. Other apps add their
models (proposals, agent interactions) from their ``AppConfig.ready``; see docs/audit.md.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from simple_history.models import HistoricalChanges

from accounts.models import (
    Account,
    Client,
    Household,
    InvestmentPolicy,
    IPSTarget,
    Restriction,
    Security,
    TaxLot,
    User,
)


class NotOnRecord(LookupError):
    """The record did not exist (yet, or any more) at the moment asked for."""


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class HistoryModel:
    """A model with record-history pages. ``firm_lookup`` is the path from a row to its firm id
    and ``household_lookup`` the path to its household id (both valid on the model and on its
    historical model, e.g. ``account__household_id``). Rows without a household (firm-level
    records) are shown to compliance only."""

    label: str
    firm_lookup: str
    household_lookup: str | None = None

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.label)

    @property
    def history_model(self) -> Any:
        return history_model_for(self.model)


_HISTORY_MODELS: dict[str, HistoryModel] = {}


def register_history_model(
    label: str, *, firm_lookup: str, household_lookup: str | None = None
) -> None:
    """Give ``label`` (``app_label.ModelName``, a history-tracked model) record-history pages,
    a place in "recent changes" and, with ``household_lookup``, in the event log's household
    filter. Registering a label again replaces it (safe to call from ``AppConfig.ready``)."""
    _HISTORY_MODELS[label] = HistoryModel(
        label=label, firm_lookup=firm_lookup, household_lookup=household_lookup
    )


def history_models() -> list[HistoryModel]:
    return [_HISTORY_MODELS[label] for label in sorted(_HISTORY_MODELS)]


def history_model_entry(label: str) -> HistoryModel | None:
    return _HISTORY_MODELS.get(label)


for _label, _household in (
    ("accounts.Household", "id"),
    ("accounts.Client", "household_id"),
    ("accounts.Account", "household_id"),
    ("accounts.TaxLot", "account__household_id"),
    ("accounts.Transaction", "account__household_id"),
    ("accounts.InvestmentPolicy", "household_id"),
    ("accounts.IPSTarget", "ips__household_id"),
    ("accounts.Restriction", "household_id"),
    ("optimizer.OptimizationRun", "household_id"),
):
    _firm = "firm_id" if _household == "id" else _household.removesuffix("_id") + "__firm_id"
    register_history_model(_label, firm_lookup=_firm, household_lookup=_household)
for _label, _firm in (
    ("accounts.Firm", "id"),
    ("accounts.User", "firm_id"),
    ("accounts.ImportBatch", "firm_id"),
    ("accounts.ReconciliationBreak", "batch__firm_id"),
    ("optimizer.RunBatch", "firm_id"),
):
    register_history_model(_label, firm_lookup=_firm)


def history_model_for(model: type[models.Model]) -> Any:
    """The historical model of a tracked model (typed ``Any``: its fields are generated)."""
    manager_name = getattr(model._meta, "simple_history_manager_attribute", None)
    if not manager_name:
        raise LookupError(f"{model._meta.label} keeps no history")
    return getattr(model, manager_name).model


def _pk_attname(model: type[models.Model]) -> str:
    pk = model._meta.pk
    return pk.attname if pk is not None else "id"


def record_owner(entry: HistoryModel, pk: int) -> tuple[int | None, int | None]:
    """``(household_id, firm_id)`` of a row, read from its latest historical record (so rows
    deleted since are found too). ``(None, None)`` when the row was never recorded."""
    records = entry.history_model._default_manager.filter(**{_pk_attname(entry.model): pk})
    lookups = [entry.firm_lookup] + ([entry.household_lookup] if entry.household_lookup else [])
    row = records.order_by("-history_date", "-pk").values_list(*lookups).first()
    if row is None:
        return None, None
    firm_id = row[0]
    household_id = row[1] if entry.household_lookup else None
    return (
        int(household_id) if household_id is not None else None,
        int(firm_id) if firm_id is not None else None,
    )


def household_record_ids(household_id: int) -> dict[str, list[str]]:
    """For the event log's household filter: every registered household-scoped label and the ids
    of its rows that ever belonged to the household (from history, so deleted rows count)."""
    out: dict[str, list[str]] = {}
    for entry in history_models():
        if entry.household_lookup is None:
            continue
        pk_name = _pk_attname(entry.model)
        ids = (
            entry.history_model._default_manager.filter(**{entry.household_lookup: household_id})
            .values_list(pk_name, flat=True)
            .distinct()
        )
        out[entry.label] = sorted({str(pk) for pk in ids})
    return out


# --------------------------------------------------------------------------- moments


def parse_moment(text: str) -> dt.datetime:
    """``YYYY-MM-DD`` (the end of that day in the portal's time zone), or an ISO date-time
    (naive means the portal's time zone). Raises ``ValueError`` naming the text."""
    value = text.strip()
    try:
        day = parse_date(value)
        moment = dt.datetime.combine(day, dt.time.max) if day else parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or a date-time")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


# --------------------------------------------------------------------------- as of


@dataclass
class AccountAsOf:
    account: Account
    lots: list[TaxLot]  # open at the moment
    closed_lots: list[TaxLot]


@dataclass
class HouseholdAsOf:
    when: dt.datetime
    household: Household
    advisers: list[User]
    clients: list[Client]
    accounts: list[AccountAsOf]
    policies: list[InvestmentPolicy]
    ips: InvestmentPolicy | None
    ips_targets: list[IPSTarget]
    restrictions: list[Restriction]
    securities: dict[int, Security] = field(default_factory=dict)

    @property
    def day(self) -> dt.date:
        return timezone.localdate(self.when)

    def symbol(self, security_id: int | None) -> str:
        if security_id is None:
            return ""
        security = self.securities.get(security_id)
        return security.symbol if security is not None else f"#{security_id}"

    def restrictions_in_force(self) -> list[Restriction]:
        return [r for r in self.restrictions if r.in_force(self.day)]


def historical_record(instance: models.Model) -> HistoricalChanges | None:
    """The historical record an ``as_of`` instance was rebuilt from."""
    record = getattr(instance, "_history", None)
    return record if isinstance(record, HistoricalChanges) else None


def record_as_of(model: type[models.Model], pk: int, when: dt.datetime) -> models.Model:
    """One row as it stood at ``when``; :class:`NotOnRecord` when it did not exist then."""
    history = history_model_for(model)
    record = (
        history._default_manager.filter(**{_pk_attname(model): pk, "history_date__lte": when})
        .order_by("-history_date", "-pk")
        .first()
    )
    if record is None:
        raise NotOnRecord(f"{model._meta.label} #{pk} had not been created at {when.isoformat()}")
    if record.history_type == "-":
        raise NotOnRecord(f"{model._meta.label} #{pk} had been deleted by {when.isoformat()}")
    instance: models.Model = record.instance
    instance._history = record  # type: ignore[attr-defined]
    return instance


def _as_of(model: Any, when: dt.datetime, **filters: Any) -> list[Any]:
    return list(model.history.as_of(when).filter(**filters).order_by(_pk_attname(model)))


def household_as_of(household_id: int, when: dt.datetime) -> HouseholdAsOf:
    """The household and its book as they stood at ``when`` (see the module docstring)."""
    household = record_as_of(Household, household_id, when)
    assert isinstance(household, Household)
    record = historical_record(household)
    adviser_ids: list[int] = []
    if record is not None:
        adviser_ids = sorted(row.user_id for row in record.advisers.all())
    advisers = sorted(
        _as_of(User, when, id__in=adviser_ids) if adviser_ids else [],
        key=lambda u: (u.username, u.pk),
    )
    clients = sorted(
        _as_of(Client, when, household_id=household_id),
        key=lambda c: (c.last_name, c.first_name, c.pk),
    )
    accounts = _as_of(Account, when, household_id=household_id)
    lots = _as_of(TaxLot, when, account_id__in=[a.pk for a in accounts])
    day = timezone.localdate(when)
    views = []
    for account in accounts:
        own = sorted(
            (lot for lot in lots if lot.account_id == account.pk),
            key=lambda lot: (lot.security_id, lot.acquired, lot.lot_ref),
        )
        open_lots = [
            lot
            for lot in own
            if lot.quantity > 0 and (lot.closed_on is None or lot.closed_on > day)
        ]
        closed = [lot for lot in own if lot not in open_lots]
        views.append(AccountAsOf(account=account, lots=open_lots, closed_lots=closed))
    policies = sorted(
        _as_of(InvestmentPolicy, when, household_id=household_id),
        key=lambda p: (-p.version, p.pk),
    )
    in_force = [p for p in policies if p.effective_date <= day]
    in_force.sort(key=lambda p: (p.effective_date, p.version), reverse=True)
    ips = in_force[0] if in_force else None
    targets = _as_of(IPSTarget, when, ips_id=ips.pk) if ips is not None else []
    restrictions = sorted(
        _as_of(Restriction, when, household_id=household_id),
        key=lambda r: (r.security_id, r.start_date, r.pk),
    )
    security_ids = {lot.security_id for lot in lots}
    security_ids |= {r.security_id for r in restrictions}
    security_ids |= {t.security_id for t in targets if t.security_id is not None}
    securities = {s.pk: s for s in _as_of(Security, when, id__in=sorted(security_ids))}
    for missing in security_ids - set(securities):  # created without history: use today's row
        current = Security.objects.filter(pk=missing).first()
        if current is not None:
            securities[missing] = current
    return HouseholdAsOf(
        when=when,
        household=household,
        advisers=advisers,
        clients=clients,
        accounts=views,
        policies=policies,
        ips=ips,
        ips_targets=sorted(targets, key=lambda t: (t.asset_class_id or 0, t.security_id or 0)),
        restrictions=restrictions,
        securities=securities,
    )


# --------------------------------------------------------------------------- versions and diffs


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class VersionDiff:
    older: Any  # historical records of one row, older first
    newer: Any
    changes: Sequence[FieldChange]

    @property
    def changed_fields(self) -> list[str]:
        return [change.field for change in self.changes]


def record_versions(model: type[models.Model], pk: int) -> list[Any]:
    """Every historical record of one row, oldest first."""
    history = history_model_for(model)
    return list(
        history._default_manager.filter(**{_pk_attname(model): pk})
        .select_related("history_user")
        .order_by("history_date", "pk")
    )


def display_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _related_label(model: type[models.Model], pk: Any) -> str:
    obj = model._default_manager.filter(pk=pk).first()
    return f"{obj} (#{pk})" if obj is not None else f"#{pk} (deleted)"


def _m2m_label(rows: Iterable[dict[str, Any]], target: type[models.Model], name: str) -> str:
    ids = sorted(int(row[name]) for row in rows if row.get(name) is not None)
    if not ids:
        return "—"
    return ", ".join(_related_label(target, pk) for pk in ids)


def diff_versions(first: Any, second: Any) -> VersionDiff:
    """Field-by-field differences between two versions of one row (in time order, whichever
    order they are given in), from simple-history's ``diff_against``."""
    if type(first) is not type(second):
        raise TypeError("versions of different models cannot be diffed")
    pk_name = _pk_attname(first.instance_type)
    if getattr(first, pk_name) != getattr(second, pk_name):
        raise ValueError("versions of different rows cannot be diffed")
    older, newer = sorted((first, second), key=lambda r: (r.history_date, r.pk))
    delta = newer.diff_against(older)
    model = newer.instance_type
    changes = []
    for change in delta.changes:
        field_obj = model._meta.get_field(change.field)
        label = str(getattr(field_obj, "verbose_name", change.field))
        if field_obj.many_to_many:
            remote = field_obj.related_model
            target_name = remote._meta.model_name
            old = _m2m_label(change.old, remote, target_name)
            new = _m2m_label(change.new, remote, target_name)
        elif field_obj.is_relation and field_obj.related_model is not None:
            remote = field_obj.related_model
            old = "—" if change.old is None else _related_label(remote, change.old)
            new = "—" if change.new is None else _related_label(remote, change.new)
        else:
            old, new = display_value(change.old), display_value(change.new)
        changes.append(FieldChange(field=change.field, label=label, old=old, new=new))
    return VersionDiff(older=older, newer=newer, changes=changes)


@dataclass(frozen=True)
class VersionRow:
    record: Any
    diff: VersionDiff | None  # against the previous version; None for the first


def record_history(model: type[models.Model], pk: int) -> list[VersionRow]:
    """Every version of a row with what changed from the one before, oldest first."""
    versions = record_versions(model, pk)
    rows = []
    for index, record in enumerate(versions):
        diff = diff_versions(versions[index - 1], record) if index else None
        rows.append(VersionRow(record=record, diff=diff))
    return rows


def version_fields(record: Any) -> list[tuple[str, str]]:
    """``(label, value)`` of every tracked field of one historical record."""
    model = record.instance_type
    out = []
    for tracked in record.tracked_fields:
        if not tracked.editable and tracked.name != "id":
            continue
        value = getattr(record, tracked.attname)
        if tracked.is_relation and tracked.related_model is not None and value is not None:
            text = _related_label(tracked.related_model, value)
        else:
            text = display_value(value)
        label = str(getattr(model._meta.get_field(tracked.name), "verbose_name", tracked.name))
        out.append((label, text))
    return out
