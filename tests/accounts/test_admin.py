"""Django admin for staff: validation, history with the acting user, audit events."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import IPSTarget, TaxLot, User
from audit.models import AuditEvent


@pytest.fixture
def staff(book) -> HttpClient:
    admin = User.objects.create_superuser("root", "root@example.com", "root-password-123")
    client = HttpClient()
    client.force_login(admin)
    return client


def _lot_form(book, **overrides) -> dict[str, str]:
    lot = book.lot_vti
    data = {
        "account": str(lot.account_id),
        "security": str(lot.security_id),
        "lot_ref": lot.lot_ref,
        "quantity": "100",
        "cost_basis": "20000.00",
        "acquired": lot.acquired.isoformat(),
        "holding_period_start": lot.holding_period_start.isoformat(),
        "wash_sale_adjustment": "0",
        "closed_on": "",
    }
    data.update(overrides)
    return data


def test_admin_refuses_a_negative_lot_quantity(book, staff):
    url = reverse("admin:accounts_taxlot_change", args=[book.lot_vti.pk])
    response = staff.post(url, _lot_form(book, quantity="-3"))
    assert response.status_code == 200
    assert "The quantity cannot be negative." in response.content.decode()
    assert TaxLot.objects.get(pk=book.lot_vti.pk).quantity == Decimal("100")


def test_admin_change_records_history_user_and_an_audit_event(book, staff):
    url = reverse("admin:accounts_taxlot_change", args=[book.lot_vti.pk])
    response = staff.post(url, _lot_form(book, quantity="90"))
    assert response.status_code == 302
    lot = TaxLot.objects.get(pk=book.lot_vti.pk)
    assert lot.quantity == Decimal("90")
    assert lot.history.latest().history_user.username == "root"
    event = AuditEvent.objects.get(event_type="admin.taxlot.changed")
    assert event.firm == book.firm and event.object_id == str(lot.pk)


def test_admin_ips_targets_must_sum_to_100(book, staff):
    ips = book.ips
    targets = list(ips.targets.order_by("pk"))
    data = {
        "household": str(ips.household_id),
        "version": "1",
        "effective_date": ips.effective_date.isoformat(),
        "cash_floor": "0.01",
        "default_band": "0.05",
        "st_rate": "0.37",
        "lt_rate": "0.20",
        "annual_gain_budget": "25000",
        "model_portfolio": "",
        "objectives": "",
        "created_by": str(book.owner.pk),
        "targets-TOTAL_FORMS": str(len(targets)),
        "targets-INITIAL_FORMS": str(len(targets)),
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "1000",
    }
    for i, target in enumerate(targets):
        data.update(
            {
                f"targets-{i}-id": str(target.pk),
                f"targets-{i}-ips": str(ips.pk),
                f"targets-{i}-asset_class": str(target.asset_class_id),
                f"targets-{i}-security": "",
                f"targets-{i}-weight": "0.5" if i == 0 else str(target.weight),
                f"targets-{i}-band": "",
            }
        )
    url = reverse("admin:accounts_investmentpolicy_change", args=[ips.pk])
    response = staff.post(url, data)
    assert response.status_code == 200
    assert "they must sum to exactly 100%" in response.content.decode()
    assert IPSTarget.objects.get(pk=targets[0].pk).weight == Decimal("0.600000")


def test_admin_is_closed_to_non_staff(book):
    client = HttpClient()
    client.force_login(book.owner)
    response = client.get(reverse("admin:accounts_taxlot_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_audit_events_are_read_only_in_admin(book, staff):
    event = AuditEvent.objects.first()
    url = reverse("admin:audit_auditevent_change", args=[event.pk])
    assert staff.get(url).status_code == 200
    assert staff.post(url, {"event_type": "x"}).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 403
