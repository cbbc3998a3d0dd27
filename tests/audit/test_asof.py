"""Point in time: records change over time; the as-of view shows exactly the old values, and
any two versions of a record diff field by field. No clock faking: moments are captured between
changes (the clock is made to tick past each capture) or history dates are set explicitly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import services as svc
from accounts.models import Account, Household, InvestmentPolicy, Restriction, TaxLot
from audit.asof import (
    NotOnRecord,
    diff_versions,
    household_as_of,
    parse_moment,
    record_as_of,
    record_history,
    record_versions,
)
from audit.history import acting_as

D = Decimal


def between() -> dt.datetime:
    """A moment strictly after everything written so far and strictly before the next write."""
    moment = timezone.now()
    while timezone.now() <= moment:
        pass
    return moment


@pytest.fixture
def timeline(book, today):
    """Three moments of the Smith household: t0 as built, t1 after a first round of changes,
    t2 after a second."""
    t0 = between()
    svc.account_set_cash(
        account=book.taxable, cash=D("2500.00"), actor=book.colleague, reason="deposit"
    )
    restriction = svc.restriction_create(
        household=book.household,
        security=book.vti,
        kind="no_sell",
        reason="client_request",
        actor=book.owner,
        start_date=today - dt.timedelta(days=3),
    )
    ips2 = svc.ips_create_version(
        household=book.household,
        targets=[
            svc.TargetInput(weight=D("0.50"), asset_class=book.equity),
            svc.TargetInput(weight=D("0.45"), asset_class=book.bonds),
            svc.TargetInput(weight=D("0.05"), asset_class=book.cash),
        ],
        effective_date=today - dt.timedelta(days=2),
        annual_gain_budget=D("10000"),
        actor=book.owner,
    )
    lot = TaxLot.objects.get(pk=book.lot_vti.pk)
    lot.quantity = D("60")
    lot.cost_basis = D("12000.00")
    with acting_as(book.owner):
        lot.save()
    household = Household.objects.get(pk=book.household.pk)
    with acting_as(book.owner):
        household.advisers.add(book.colleague)
    t1 = between()
    svc.restriction_end(
        restriction=restriction, end_date=today - dt.timedelta(days=1), actor=book.owner
    )
    svc.account_set_cash(
        account=book.taxable, cash=D("3000.00"), actor=book.owner, reason="sale proceeds"
    )
    lot = TaxLot.objects.get(pk=book.lot_vti.pk)
    lot.quantity = D("0")
    lot.closed_on = today
    with acting_as(book.owner):
        lot.save()
    t2 = between()
    return {"t0": t0, "t1": t1, "t2": t2, "restriction": restriction, "ips2": ips2}


def _account(view, pk):
    return next(a for a in view.accounts if a.account.pk == pk)


def test_as_of_t0_shows_the_book_as_built(book, timeline):
    view = household_as_of(book.household.pk, timeline["t0"])
    taxable = _account(view, book.taxable.pk)
    assert taxable.account.cash == D("1000.00")
    assert [(lot.lot_ref, lot.quantity, lot.cost_basis) for lot in taxable.lots] == [
        ("L1", D("100.000000"), D("20000.00"))
    ]
    assert view.ips is not None and view.ips.version == 1
    assert [(t.asset_class_id, t.weight) for t in view.ips_targets] == [
        (book.equity.pk, D("0.600000")),
        (book.bonds.pk, D("0.350000")),
        (book.cash.pk, D("0.050000")),
    ]
    assert view.ips.annual_gain_budget == D("25000.00")
    assert view.restrictions == []
    assert [u.username for u in view.advisers] == ["owner"]
    assert [c.full_name for c in view.clients] == ["Pat Smith", "Sam Smith"]


def test_as_of_t1_shows_the_first_changes_exactly(book, timeline, today):
    view = household_as_of(book.household.pk, timeline["t1"])
    taxable = _account(view, book.taxable.pk)
    assert taxable.account.cash == D("2500.00")
    assert [(lot.quantity, lot.cost_basis) for lot in taxable.lots] == [
        (D("60.000000"), D("12000.00"))
    ]
    assert view.ips is not None and view.ips.version == 2
    assert view.ips.annual_gain_budget == D("10000.00")
    assert [t.weight for t in view.ips_targets] == [D("0.500000"), D("0.450000"), D("0.050000")]
    assert [p.version for p in view.policies] == [2, 1]
    (restriction,) = view.restrictions
    assert (restriction.kind, restriction.end_date) == ("no_sell", None)
    assert view.restrictions_in_force() == [restriction]
    assert view.symbol(restriction.security_id) == "VTI"
    assert [u.username for u in view.advisers] == ["colleague", "owner"]


def test_as_of_t2_shows_the_second_changes(book, timeline, today):
    view = household_as_of(book.household.pk, timeline["t2"])
    taxable = _account(view, book.taxable.pk)
    assert taxable.account.cash == D("3000.00")
    assert taxable.lots == []
    assert [(lot.lot_ref, lot.closed_on) for lot in taxable.closed_lots] == [("L1", today)]
    (restriction,) = view.restrictions
    assert restriction.end_date == today - dt.timedelta(days=1)
    assert view.restrictions_in_force() == []
    # today's rows agree with the latest as-of view
    assert Account.objects.get(pk=book.taxable.pk).cash == taxable.account.cash


def test_before_the_household_existed_there_is_nothing_on_record(book):
    first = Household.history.filter(id=book.household.pk).earliest("history_date")  # type: ignore[attr-defined]
    with pytest.raises(NotOnRecord, match="had not been created"):
        household_as_of(book.household.pk, first.history_date - dt.timedelta(microseconds=1))


def test_an_explicit_history_date_places_a_correction_in_the_past(book):
    """A correction recorded with its effective moment (simple-history's _history_date)."""
    lot = TaxLot.objects.get(pk=book.lot_bnd.pk)
    created = lot.history.earliest("history_date").history_date  # type: ignore[attr-defined]
    corrected_at = created + dt.timedelta(seconds=30)
    lot.cost_basis = D("15950.00")
    lot._history_date = corrected_at  # type: ignore[attr-defined]
    with acting_as(book.compliance):
        lot.save()
    before = record_as_of(TaxLot, lot.pk, corrected_at - dt.timedelta(microseconds=1))
    after = record_as_of(TaxLot, lot.pk, corrected_at)
    assert before.cost_basis == D("16000.00")  # type: ignore[attr-defined]
    assert after.cost_basis == D("15950.00")  # type: ignore[attr-defined]


def test_diff_between_any_two_versions_is_field_by_field(book, timeline):
    versions = record_versions(Account, book.taxable.pk)
    assert [v.cash for v in versions] == [D("1000.00"), D("2500.00"), D("3000.00")]
    assert [v.history_user for v in versions] == [book.owner, book.colleague, book.owner]
    first_last = diff_versions(versions[0], versions[2])
    assert [(c.field, c.old, c.new) for c in first_last.changes] == [("cash", "1000.00", "3000.00")]
    # the order of the arguments does not matter: the older version is always "before"
    reverse = diff_versions(versions[2], versions[0])
    assert reverse.older == versions[0] and reverse.newer == versions[2]
    lot_versions = record_versions(TaxLot, book.lot_vti.pk)
    lot_diff = diff_versions(lot_versions[0], lot_versions[-1])
    assert {(c.field, c.old, c.new) for c in lot_diff.changes} == {
        ("quantity", "100.000000", "0.000000"),
        ("cost_basis", "20000.00", "12000.00"),
        ("closed_on", "—", timezone.localdate().isoformat()),
    }


def test_history_rows_carry_the_diff_from_the_previous_version(book, timeline, today):
    rows = record_history(Restriction, timeline["restriction"].pk)
    assert [row.record.history_type for row in rows] == ["+", "~"]
    assert rows[0].diff is None
    assert [(c.field, c.old, c.new) for c in rows[1].diff.changes] == [
        ("end_date", "—", (today - dt.timedelta(days=1)).isoformat())
    ]
    household_rows = record_history(Household, book.household.pk)
    last = household_rows[-1].diff
    assert last is not None
    (change,) = last.changes
    assert change.field == "advisers"
    assert change.old == f"owner (#{book.owner.pk})"
    assert change.new == f"owner (#{book.owner.pk}), colleague (#{book.colleague.pk})"


def test_versions_of_different_rows_or_models_are_not_diffed(book):
    a = record_versions(Account, book.taxable.pk)[0]
    b = record_versions(Account, book.ira.pk)[0]
    with pytest.raises(ValueError, match="different rows"):
        diff_versions(a, b)
    ips = record_versions(InvestmentPolicy, book.ips.pk)[0]
    with pytest.raises(TypeError):
        diff_versions(a, ips)


def test_parse_moment_reads_days_and_date_times_in_the_portal_zone():
    end_of_day = parse_moment("2026-03-05")
    assert timezone.localtime(end_of_day).replace(tzinfo=None) == dt.datetime(
        2026, 3, 5, 23, 59, 59, 999999
    )
    noon = parse_moment("2026-03-05T12:00")
    assert timezone.localtime(noon).hour == 12
    utc = parse_moment("2026-03-05T12:00:00+00:00")
    assert utc == dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="not a date"):
        parse_moment("yesterday")
