"""The demo book: realistic, idempotent, deterministic."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from accounts.demo import business_days, cusip_check_digit, simulate_closes
from accounts.models import (
    Account,
    Custodian,
    Household,
    InvestmentPolicy,
    Price,
    Restriction,
    Security,
    TaxLot,
    Transaction,
    User,
)
from accounts.selectors import household_valuation
from audit.models import AuditEvent
from audit.verify import verify_chains

AS_OF = dt.date(2026, 11, 20)


def test_cusip_check_digit_matches_published_cusips():
    assert cusip_check_digit("03783310") == "0"  # Apple 037833100
    assert cusip_check_digit("59491810") == "4"  # Microsoft 594918104


def test_price_paths_are_deterministic_for_a_seed():
    specs = [("VTI", "etf", "us_large"), ("AAPL", "stock", "us_large"), ("BND", "etf", "us_bond")]

    def closes(seed: int) -> dict[str, list[Decimal]]:
        return simulate_closes(specs, 300, random.Random(seed))

    first = closes(7)
    assert first == closes(7)
    assert first != closes(8)
    assert first["VTI"][0] == Decimal("240")  # the published start price
    assert all(len(path) == 300 and min(path) > 0 for path in first.values())
    days = business_days(AS_OF, 730)
    assert days[-1] == AS_OF and all(d.weekday() < 5 for d in days)


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_builds_a_realistic_book_once(capsys):
    call_command("demo", "--as-of", AS_OF.isoformat())
    out = capsys.readouterr().out
    for username in ("alice", "bob", "carol", "margaret"):
        assert username in out
    firm_households = Household.objects.filter(firm__slug="harbor-point")
    assert firm_households.count() >= 25
    accounts = Account.objects.filter(household__firm__slug="harbor-point")
    assert accounts.count() >= 60
    assert set(accounts.values_list("registration", flat=True)) == {
        "individual",
        "joint",
        "trust",
        "traditional_ira",
        "roth_ira",
    }
    assert Custodian.objects.annotate(n=Count("accounts")).filter(n__gt=0).count() == 3
    assert Security.objects.filter(kind__in=["etf", "mutual_fund"]).count() >= 40
    assert Security.objects.filter(kind="stock").count() >= 100
    assert {u.role for u in User.objects.filter(firm__slug="harbor-point")} == {
        "adviser",
        "compliance",
        "client",
    }
    assert User.objects.get(username="margaret").household.name == "Abbott Household"
    # two years of daily prices
    first, last = Price.objects.order_by("date").first(), Price.objects.order_by("-date").first()
    assert (last.date - first.date).days >= 729
    # every household has an IPS; some have a revised version
    assert (
        InvestmentPolicy.objects.filter(household__in=firm_households)
        .values("household")
        .distinct()
        .count()
        == firm_households.count()
    )
    assert InvestmentPolicy.objects.filter(version=2).exists()
    assert Restriction.objects.filter(reason="employer_stock", kind="no_sell").count() >= 2
    # lots at a loss and lots days from long-term, valued as of the demo date
    losses = near = 0
    for household in firm_households:
        valuation = household_valuation(household, as_of=AS_OF)
        assert valuation.missing_prices == []
        losses += sum(
            1 for a in valuation.accounts for lv in a.lots if lv.gain is not None and lv.gain < 0
        )
        near += len(valuation.lots_near_long_term)
    assert losses >= 50
    assert near >= 10
    # recent trades that open wash-sale windows (within 30 days)
    recent = Transaction.objects.filter(trade_date__gte=AS_OF - dt.timedelta(days=30))
    assert recent.filter(kind="sell").exists() and recent.filter(kind="buy").count() >= 3
    assert verify_chains().ok
    # idempotent: a second run changes nothing
    snapshot = (
        TaxLot.objects.count(),
        TaxLot.objects.aggregate(s=Sum("cost_basis"))["s"],
        AuditEvent.objects.count(),
        Price.objects.count(),
    )
    call_command("demo", "--as-of", AS_OF.isoformat())
    assert "already present" in capsys.readouterr().out
    assert snapshot == (
        TaxLot.objects.count(),
        TaxLot.objects.aggregate(s=Sum("cost_basis"))["s"],
        AuditEvent.objects.count(),
        Price.objects.count(),
    )
