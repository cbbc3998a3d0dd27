from __future__ import annotations

from decimal import Decimal

from django.apps import apps

from accounts import services as svc
from accounts.models import TaxLot
from audit.registry import HISTORY_EXEMPT


def _is_history_model(model: type) -> bool:
    return model.__name__.startswith("Historical") or model._meta.app_label == "simple_history"


def test_every_model_is_tracked_or_exempt_with_a_reason():
    untracked = []
    for model in apps.get_models():
        if _is_history_model(model):
            continue
        label = model._meta.label
        tracked = hasattr(model, "history") and model._meta.label != "audit.AuditEvent"
        if label in HISTORY_EXEMPT:
            assert len(HISTORY_EXEMPT[label]) > 20, f"{label} is exempt without a real reason"
            assert not hasattr(model, "history"), f"{label} is both tracked and exempt"
            continue
        if not tracked:
            untracked.append(label)
    assert untracked == [], f"models neither tracked nor exempt: {untracked}"


def test_exemptions_name_existing_models():
    labels = {model._meta.label for model in apps.get_models()}
    assert set(HISTORY_EXEMPT) <= labels


def test_history_records_the_acting_user_for_service_writes(book):
    lot = TaxLot.objects.get(pk=book.lot_vti.pk)
    record = lot.history.earliest()
    assert record.history_type == "+"
    assert record.history_user == book.owner


def test_history_keeps_every_version(book):
    svc.account_set_cash(
        account=book.taxable, cash=Decimal("2500.00"), actor=book.colleague, reason="deposit"
    )
    versions = list(
        book.taxable.history.order_by("history_date").values_list("cash", "history_user")
    )
    assert versions == [
        (Decimal("1000.00"), book.owner.pk),
        (Decimal("2500.00"), book.colleague.pk),
    ]
