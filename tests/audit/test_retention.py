"""Retention: records of the firm are kept five years from the end of the fiscal year of their
last entry. Neither the admin nor the ORM deletes one before that."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models.signals import pre_delete
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import (
    Account,
    AssetClass,
    Household,
    InvestmentPolicy,
    IPSTarget,
    Restriction,
    TaxLot,
    User,
)
from audit.retention import (
    RecordUnderRetention,
    ensure_deletable,
    fiscal_year_end_for,
    is_record_model,
    is_under_retention,
    record_models,
    retention_end,
    retention_status,
)


@pytest.fixture
def staff(book) -> HttpClient:
    admin = User.objects.create_superuser("root", "root@example.com", "root-password-123")
    client = HttpClient()
    client.force_login(admin)
    return client


def test_retention_runs_five_years_from_the_end_of_the_fiscal_year():
    assert fiscal_year_end_for(dt.date(2026, 11, 21)) == dt.date(2026, 12, 31)
    assert retention_end(dt.date(2026, 11, 21)) == dt.date(2031, 12, 31)
    assert retention_end(dt.date(2026, 1, 1)) == dt.date(2031, 12, 31)
    assert retention_end(dt.date(2026, 12, 31)) == dt.date(2031, 12, 31)


def test_a_june_fiscal_year(settings):
    settings.PORTAL_FISCAL_YEAR_END = "06-30"
    assert fiscal_year_end_for(dt.date(2026, 6, 30)) == dt.date(2026, 6, 30)
    assert fiscal_year_end_for(dt.date(2026, 7, 1)) == dt.date(2027, 6, 30)
    assert retention_end(dt.date(2026, 11, 21)) == dt.date(2032, 6, 30)


@pytest.mark.parametrize("value", ["12/31", "13-01", "02-30", "02-29", "end"])
def test_a_bad_fiscal_year_end_fails_loudly(settings, value):
    settings.PORTAL_FISCAL_YEAR_END = value
    with pytest.raises(ImproperlyConfigured, match="PORTAL_FISCAL_YEAR_END"):
        fiscal_year_end_for(dt.date(2026, 1, 1))


def test_every_model_of_record_is_guarded():
    guarded = {model._meta.label for model in record_models()}
    for model in apps.get_models():
        if getattr(model._meta, "simple_history_manager_attribute", None):
            assert model._meta.label in guarded
            assert pre_delete.has_listeners(model), model._meta.label
    assert {
        "accounts.TaxLot",
        "accounts.HistoricalTaxLot",
        "accounts.Household",
        "accounts.Price",
        "optimizer.OptimizationRun",
        "optimizer.StoredDocument",
        "audit.VerificationRun",
    } <= guarded
    assert not is_record_model(apps.get_model("sessions.Session"))


def test_a_fresh_record_is_retained_until_the_end_of_its_fifth_fiscal_year(book, today):
    status = retention_status(book.lot_vti)
    assert status.last_entry == today
    assert status.retained_until == dt.date(today.year + 5, 12, 31)
    assert status.retained
    assert not retention_status(
        book.lot_vti, on=status.retained_until + dt.timedelta(days=1)
    ).retained
    ensure_deletable(book.lot_vti, on=status.retained_until + dt.timedelta(days=1))


@pytest.mark.parametrize(
    "get",
    [
        lambda book: TaxLot.objects.get(pk=book.lot_vti.pk),
        lambda book: Restriction.objects.create(
            household=book.household, security=book.vti, kind="no_buy", reason="esg"
        ),
        lambda book: IPSTarget.objects.filter(ips=book.ips).first(),
        lambda book: InvestmentPolicy.objects.get(pk=book.ips.pk),
    ],
    ids=["lot", "restriction", "ips-target", "ips"],
)
def test_orm_delete_of_a_retained_record_raises(book, get):
    obj = get(book)
    model = type(obj)
    with pytest.raises(RecordUnderRetention, match="under retention until"), transaction.atomic():
        obj.delete()
    assert model.objects.filter(pk=obj.pk).exists()


def test_queryset_delete_and_history_delete_are_refused_too(book):
    with pytest.raises(RecordUnderRetention), transaction.atomic():
        TaxLot.objects.filter(account__household=book.household).delete()
    assert TaxLot.objects.filter(account__household=book.household).count() == 2
    history = TaxLot.history.filter(id=book.lot_vti.pk)  # type: ignore[attr-defined]
    with pytest.raises(RecordUnderRetention), transaction.atomic():
        history.delete()
    assert history.count() == 1


def test_a_record_past_retention_can_be_deleted(db):
    """Written (by history date) in 2015: kept until 2020-12-31, deletable now."""
    old = AssetClass(code="legacy", name="Legacy sleeve", sort_order=9)
    old._history_date = dt.datetime(2015, 3, 2, 15, 0, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    old.save()
    status = retention_status(old)
    assert status.last_entry == dt.date(2015, 3, 2)
    assert status.retained_until == dt.date(2020, 12, 31)
    assert not is_under_retention(old)
    old.delete()
    assert not AssetClass.objects.filter(code="legacy").exists()
    kinds = AssetClass.history.filter(code="legacy").order_by("history_id")  # type: ignore[attr-defined]
    assert [h.history_type for h in kinds] == ["+", "-"]


@pytest.mark.parametrize(
    "model_name,get",
    [
        ("taxlot", lambda book: book.lot_vti),
        ("household", lambda book: book.household),
        ("account", lambda book: book.taxable),
        ("investmentpolicy", lambda book: book.ips),
    ],
)
def test_admin_delete_of_a_retained_record_is_403(book, staff, model_name, get):
    obj = get(book)
    url = reverse(f"admin:accounts_{model_name}_delete", args=[obj.pk])
    assert staff.get(url).status_code == 403
    assert staff.post(url, {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()
    change = staff.get(reverse(f"admin:accounts_{model_name}_change", args=[obj.pk]))
    assert change.status_code == 200
    assert url.encode() not in change.content  # no delete link offered


def test_admin_bulk_delete_action_is_not_offered(book, staff):
    url = reverse("admin:accounts_taxlot_changelist")
    page = staff.get(url)
    assert page.status_code == 200
    assert b'value="delete_selected"' not in page.content
    response = staff.post(
        url,
        {"action": "delete_selected", "_selected_action": [book.lot_vti.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert TaxLot.objects.filter(pk=book.lot_vti.pk).exists()


def test_admin_inline_targets_have_no_delete_box(book, staff):
    page = staff.get(reverse("admin:accounts_investmentpolicy_change", args=[book.ips.pk]))
    assert page.status_code == 200
    assert b"targets-0-DELETE" not in page.content


def test_admin_may_delete_a_record_past_retention(db, staff):
    old = AssetClass(code="legacy", name="Legacy sleeve", sort_order=9)
    old._history_date = dt.datetime(2015, 3, 2, 15, 0, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    old.save()
    url = reverse("admin:accounts_assetclass_delete", args=[old.pk])
    assert staff.get(url).status_code == 200
    assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not AssetClass.objects.filter(pk=old.pk).exists()


def test_protected_relations_still_apply_first(book):
    """A household with accounts is protected by its foreign keys before retention is asked
    (closing it, is_active=False, is the way out either way)."""
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError), transaction.atomic():
        Household.objects.get(pk=book.household.pk).delete()
    assert Account.objects.filter(household=book.household).count() == 2
