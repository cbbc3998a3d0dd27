from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts import services as svc
from accounts.models import InvestmentPolicy, IPSTarget
from accounts.selectors import ips_in_force
from audit.models import AuditEvent

D = Decimal


def test_ips_targets_must_sum_to_100_percent(book, today):
    before = (
        InvestmentPolicy.objects.count(),
        IPSTarget.objects.count(),
        AuditEvent.objects.count(),
    )
    with pytest.raises(ValidationError) as excinfo:
        svc.ips_create_version(
            household=book.household,
            targets=[
                svc.TargetInput(weight=D("0.60"), asset_class=book.equity),
                svc.TargetInput(weight=D("0.35"), asset_class=book.bonds),
            ],
            effective_date=today,
            actor=book.owner,
        )
    assert excinfo.value.message_dict["targets"] == [
        "Target weights sum to 95.0000%; they must sum to exactly 100%."
    ]
    after = (
        InvestmentPolicy.objects.count(),
        IPSTarget.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before


def test_new_ips_version_keeps_the_old_one_and_takes_effect_on_its_date(book, today):
    v2 = svc.ips_create_version(
        household=book.household,
        targets=[
            svc.TargetInput(weight=D("0.70"), asset_class=book.equity),
            svc.TargetInput(weight=D("0.30"), asset_class=book.bonds),
        ],
        effective_date=today + dt.timedelta(days=10),
        actor=book.owner,
    )
    assert v2.version == 2
    assert ips_in_force(book.household, today) == book.ips
    assert ips_in_force(book.household, today + dt.timedelta(days=10)) == v2
    old = InvestmentPolicy.objects.get(pk=book.ips.pk)
    assert sorted(old.targets.values_list("weight", flat=True)) == [D("0.05"), D("0.35"), D("0.60")]
    event = AuditEvent.objects.filter(event_type="ips.version_created").latest("id")
    assert event.actor == book.owner and event.object_id == str(v2.pk)


def test_ips_version_cannot_predate_the_current_one(book, today):
    with pytest.raises(ValidationError) as excinfo:
        svc.ips_create_version(
            household=book.household,
            targets=[svc.TargetInput(weight=D("1"), asset_class=book.equity)],
            effective_date=today - dt.timedelta(days=365),
            actor=book.owner,
        )
    assert "effective_date" in excinfo.value.message_dict


def test_duplicate_target_is_refused(book, today):
    with pytest.raises(ValidationError) as excinfo:
        svc.ips_create_version(
            household=book.household,
            targets=[
                svc.TargetInput(weight=D("0.5"), asset_class=book.equity),
                svc.TargetInput(weight=D("0.5"), asset_class=book.equity),
            ],
            effective_date=today,
            actor=book.owner,
        )
    assert excinfo.value.message_dict["targets"] == ["Target 2 repeats an earlier target."]


def test_household_advisers_must_be_advisers_of_the_firm(book):
    with pytest.raises(ValidationError) as excinfo:
        svc.household_create(firm=book.firm, name="X", advisers=[book.outsider], actor=book.owner)
    assert (
        "outsider is not an adviser of Alpha Advisers" in excinfo.value.message_dict["advisers"][0]
    )


def test_spouse_link_is_symmetric(book):
    book.client.refresh_from_db()
    assert book.client.spouse == book.spouse
    assert book.spouse.spouse == book.client
