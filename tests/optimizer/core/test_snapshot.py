"""Date rules of the snapshot module: the long-term cut-off day agrees with each lot's own
long-term date, leap days included, and the problem data's long-term flags follow it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from optimizer.core.model import build_problem_data
from optimizer.core.scenarios import resolve_settings
from optimizer.core.snapshot import (
    days_to_long_term,
    is_long_term,
    last_long_term_start,
    long_term_date,
)
from optimizer.core.synthetic import synthetic_snapshot


def test_last_long_term_start_splits_the_starts_as_long_term_date_does() -> None:
    days = [
        dt.date(2024, 2, 28),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 1),
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 1),
        dt.date(2025, 3, 2),
        dt.date(2028, 2, 29),
        dt.date(2028, 3, 1),
        dt.date(2026, 11, 21),
        dt.date(2026, 1, 1),
        dt.date(2025, 12, 31),
    ]
    for as_of in days:
        cut = last_long_term_start(as_of)
        for back in range(300, 420):
            start = as_of - dt.timedelta(days=back)
            assert (start <= cut) == (as_of >= long_term_date(start)), (as_of, start)
        # the day itself is long term and the next one is not
        assert long_term_date(cut) <= as_of < long_term_date(cut + dt.timedelta(days=1))
    # a lot started on 29 February 2024 is long term from 1 March 2025
    assert last_long_term_start(dt.date(2025, 2, 28)) == dt.date(2024, 2, 27)
    assert last_long_term_start(dt.date(2025, 3, 1)) == dt.date(2024, 2, 29)


def test_problem_data_long_term_flags_are_each_lots_own() -> None:
    snap = synthetic_snapshot(n_stocks=10, n_lots=40, seed=3)
    # move the lots' starts around the one-year boundary of the snapshot's day
    lots = tuple(
        dataclasses.replace(
            lot,
            acquired=snap.as_of - dt.timedelta(days=355 + j % 20),
            holding_period_start=snap.as_of - dt.timedelta(days=355 + j % 20),
            cost_basis=lot.cost_basis + Decimal(j),
        )
        for j, lot in enumerate(snap.lots)
    )
    snap = dataclasses.replace(snap, lots=lots)
    pd = build_problem_data(snap, resolve_settings(snap))
    want = [is_long_term(lot, snap.as_of) for lot in snap.lots]
    assert pd.lot_lt.tolist() == want
    assert 0 < sum(want) < len(want)  # both sides of the boundary
    # the lots held back as near long term: short-term gains within the days of the policy
    near = snap.holding.near_long_term_days
    taxable = {a.id: a.taxable for a in snap.accounts}
    price = {x.symbol: x.price for x in snap.securities}
    held_back = [
        j
        for j, lot in enumerate(snap.lots)
        if taxable[lot.account]
        and lot.quantity * price[lot.symbol] > lot.cost_basis
        and 0 < days_to_long_term(lot, snap.as_of) <= near
    ]
    got = sorted(j for j, why in pd.sell_block.items() if "near_long_term" in why)
    assert snap.holding.hold_back_near_long_term and got == held_back and held_back
