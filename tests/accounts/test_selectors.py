from __future__ import annotations

import datetime as dt
from decimal import Decimal

from accounts.selectors import household_valuation, latest_prices
from tests.factories import price

D = Decimal


def test_latest_price_on_or_before_the_day(book, today):
    price(book.vti, today - dt.timedelta(days=10), "240.00")
    price(book.vti, today + dt.timedelta(days=0), "255.00")
    points = latest_prices([book.vti.pk, book.bnd.pk], as_of=today - dt.timedelta(days=1))
    assert points[book.vti.pk].close == D("250.00")
    assert points[book.bnd.pk].close == D("72.50")
    assert latest_prices([book.vti.pk], as_of=today)[book.vti.pk].close == D("255.00")


def test_household_valuation_by_asset_class_and_drift(book, today):
    v = household_valuation(book.household, as_of=today)
    # VTI 100 x 250 = 25,000; BND 200 x 72.50 = 14,500; cash 1,000 -> 40,500
    assert v.total == D("40500.00")
    rows = {row.asset_class.code: row for row in v.classes}
    assert rows["us_large"].value == D("25000.00")
    assert rows["us_large"].weight == D("0.617284")
    assert rows["us_bond"].weight == D("0.358025")
    assert rows["cash"].weight == D("0.024691")
    assert rows["us_large"].drift == D("0.017284")
    assert v.max_drift == D("0.025309")  # cash: 2.4691% against 5%
    assert v.out_of_band == []
    lots = {lv.lot.lot_ref: lv for a in v.accounts for lv in a.lots}
    assert lots["L1"].gain == D("5000.00") and lots["L1"].is_long_term
    assert lots["L2"].gain == D("-1500.00") and not lots["L2"].is_long_term
    start = today - dt.timedelta(days=340)
    first_long_day = dt.date(start.year + 1, start.month, start.day) + dt.timedelta(days=1)
    assert lots["L2"].days_to_long_term == (first_long_day - today).days
    assert [lv.lot.lot_ref for lv in v.lots_near_long_term] == ["L2"]


def test_valuation_reports_missing_and_stale_prices(book, today):
    v = household_valuation(book.household, as_of=today + dt.timedelta(days=10))
    assert v.stale_prices == ["BND", "VTI"]
    v_past = household_valuation(book.household, as_of=today - dt.timedelta(days=5))
    assert v_past.missing_prices == ["BND", "VTI"]
