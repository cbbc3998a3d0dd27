from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts import services as svc
from accounts.models import Price, TaxLot
from audit.models import AuditEvent

D = Decimal


def test_negative_lot_quantity_is_refused_naming_the_field(book, today):
    before = TaxLot.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        svc.lot_create(
            account=book.taxable,
            security=book.vti,
            lot_ref="NEG",
            quantity=D("-5"),
            cost_basis=D("100"),
            acquired=today,
            actor=book.owner,
        )
    assert excinfo.value.message_dict["quantity"] == ["The quantity cannot be negative."]
    assert (TaxLot.objects.count(), AuditEvent.objects.count()) == before


def test_lot_acquired_in_the_future_is_refused(book, today):
    with pytest.raises(ValidationError) as excinfo:
        svc.lot_create(
            account=book.taxable,
            security=book.vti,
            lot_ref="FUT",
            quantity=D("5"),
            cost_basis=D("100"),
            acquired=today + dt.timedelta(days=1),
            actor=book.owner,
        )
    assert "acquired" in excinfo.value.message_dict
    assert "future" in excinfo.value.message_dict["acquired"][0]


def test_account_owner_from_another_firms_household_is_refused(book):
    stranger = svc.client_create(
        household=book.other_household, first_name="Jo", last_name="Jones", actor=book.outsider
    )
    with pytest.raises(ValidationError) as excinfo:
        svc.account_create(
            household=book.household,
            owner=stranger,
            custodian=book.custodian,
            number="11112222",
            name="Wrong",
            registration="individual",
            tax_treatment="taxable",
            actor=book.owner,
        )
    assert excinfo.value.message_dict["owner"] == [
        "The owner is not a member of this account's household."
    ]


def test_registration_and_tax_treatment_must_agree(book):
    with pytest.raises(ValidationError) as excinfo:
        svc.account_create(
            household=book.household,
            owner=book.client,
            custodian=book.custodian,
            number="22223333",
            name="Roth",
            registration="roth_ira",
            tax_treatment="taxable",
            actor=book.owner,
        )
    assert excinfo.value.message_dict["tax_treatment"] == ["A Roth IRA account is tax-exempt."]


def test_account_number_must_fit_the_custodian_format(book):
    with pytest.raises(ValidationError) as excinfo:
        svc.account_create(
            household=book.household,
            owner=book.client,
            custodian=book.custodian,
            number="ABC",
            name="Bad",
            registration="individual",
            tax_treatment="taxable",
            actor=book.owner,
        )
    assert (
        "not an account number format used by Charles Schwab"
        in excinfo.value.message_dict["number"][0]
    )


def test_client_user_must_belong_to_a_household_of_their_firm(book):
    with pytest.raises(ValidationError) as excinfo:
        svc.user_create(
            username="stray",
            password="x-long-password",
            role="client",
            firm=book.firm,
            household=book.other_household,
            actor=None,
        )
    assert excinfo.value.message_dict["household"] == ["The household belongs to another firm."]


@pytest.mark.parametrize(
    ("acquired", "sold", "long_term"),
    [
        (dt.date(2024, 3, 15), dt.date(2025, 3, 15), False),  # exactly one year: short
        (dt.date(2024, 3, 15), dt.date(2025, 3, 16), True),  # one year and a day: long
        (dt.date(2024, 2, 29), dt.date(2025, 2, 28), False),
        (dt.date(2024, 2, 29), dt.date(2025, 3, 1), True),
    ],
)
def test_long_term_is_more_than_one_year(acquired, sold, long_term):
    lot = TaxLot(acquired=acquired, holding_period_start=acquired, quantity=D(1), cost_basis=D(1))
    assert lot.is_long_term(sold) is long_term


def test_days_to_long_term(today):
    start = today - dt.timedelta(days=340)
    lot = TaxLot(acquired=start, holding_period_start=start, quantity=D(1), cost_basis=D(1))
    assert lot.days_to_long_term(today) == (lot.long_term_date - today).days
    assert 0 < lot.days_to_long_term(today) <= 27


def test_stored_price_is_immutable(book, today):
    price = Price.objects.filter(security=book.vti).first()
    price.close = D("1.00")
    with pytest.raises(ValidationError):
        price.save()


def test_restriction_max_weight_needs_its_maximum(book):
    with pytest.raises(ValidationError) as excinfo:
        svc.restriction_create(
            household=book.household,
            security=book.vti,
            kind="max_weight",
            reason="concentrated",
            actor=book.owner,
        )
    assert "max_weight" in excinfo.value.message_dict


def test_restriction_account_must_be_in_the_household(book):
    foreign = svc.client_create(
        household=book.other_household, first_name="Jo", last_name="Jones", actor=book.outsider
    )
    account = svc.account_create(
        household=book.other_household,
        owner=foreign,
        custodian=book.custodian,
        number="99998888",
        name="Jo",
        registration="individual",
        tax_treatment="taxable",
        actor=book.outsider,
    )
    with pytest.raises(ValidationError) as excinfo:
        svc.restriction_create(
            household=book.household,
            account=account,
            security=book.vti,
            kind="no_sell",
            reason="employer_stock",
            actor=book.owner,
        )
    assert excinfo.value.message_dict["account"] == ["The account belongs to another household."]
