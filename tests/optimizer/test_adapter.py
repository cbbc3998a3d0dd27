from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts import services as svc
from optimizer.adapter import DataNotReady, build_snapshot
from optimizer.core.snapshot import snapshot_from_dict
from tests.factories import price

D = Decimal


def test_snapshot_from_the_book(priced_book, today):
    book = priced_book
    build = build_snapshot(book.household, as_of=today, scenario="moderate")
    snap = build.snapshot
    assert snap["as_of"] == today.isoformat()
    assert snap["mode"] == "rebalance"
    assert [a["id"] for a in snap["accounts"]] == ["schwab-12345678", "schwab-87654321"]
    assert snap["accounts"][0] == {
        "id": "schwab-12345678",
        "tax_treatment": "taxable",
        "cash": "1000.00",
        "allows_fractional": False,
        "owner": str(book.client.pk),
        "cash_floor_weight": "0.010000",
    }
    assert {s["symbol"]: s["price"] for s in snap["securities"]} == {
        "BND": "72.500000",
        "VTI": "250.000000",
    }
    lots = {lot["lot_id"]: lot for lot in snap["lots"]}
    assert lots["L1"]["quantity"] == "100.000000" and lots["L1"]["cost_basis"] == "20000.00"
    # the IPS: 60% equity, 35% bonds, 5% cash of which the 1% floor is account cash
    assert snap["targets"]["securities"] == {"BND": "0.350000", "VTI": "0.600000"}
    classes = snap["targets"]["asset_classes"]
    assert classes["us_large"]["target"] == "0.600000"
    assert classes["cash"]["target"] == "0.050000"  # no cash-equivalent fund: all of it is cash
    assert snap["tax"] == {"short_term_rate": "0.370000", "long_term_rate": "0.200000"}
    assert snap["budgets"]["max_net_realized_gain"] == "25000.00"
    assert snap["risk_model"]["labels"] == ["BND", "VTI"]
    assert snap["costs"] == {"bps": "2.000", "ticket_fee": "4.95", "min_trade_value": "250.00"}
    assert build.account_ids["schwab-12345678"] == book.taxable.pk
    # the core accepts it
    parsed = snapshot_from_dict(snap)
    assert len(parsed.lots) == 2


def test_snapshot_is_identical_for_the_same_data(priced_book, today):
    first = build_snapshot(priced_book.household, as_of=today).snapshot
    second = build_snapshot(priced_book.household, as_of=today).snapshot
    assert first == second


def test_stale_price_blocks_the_snapshot(priced_book, today):
    with pytest.raises(DataNotReady) as excinfo:
        build_snapshot(priced_book.household, as_of=today + dt.timedelta(days=9))
    assert any("stale feed" in p and "VTI" in p for p in excinfo.value.problems)


def test_missing_ips_blocks_the_snapshot(priced_book, today):
    with pytest.raises(DataNotReady) as excinfo:
        build_snapshot(priced_book.household, as_of=today - dt.timedelta(days=60))
    assert "has no IPS in force" in excinfo.value.problems[0]


def test_short_price_history_blocks_the_snapshot(book, today):
    with pytest.raises(DataNotReady) as excinfo:
        build_snapshot(book.household, as_of=today)
    assert "days of complete price history" in excinfo.value.problems[0]


def test_restrictions_and_wash_windows_enter_the_snapshot(priced_book, today):
    book = priced_book
    svc.restriction_create(
        household=book.household,
        security=book.vti,
        kind="no_sell",
        reason="employer_stock",
        actor=book.owner,
    )
    svc.lot_create(
        account=book.ira,
        security=book.vti,
        lot_ref="L3",
        quantity=D("5"),
        cost_basis=D("1250"),
        acquired=today - dt.timedelta(days=3),
        actor=book.owner,
    )
    svc.transaction_record(
        account=book.taxable,
        kind="sell",
        trade_date=today - dt.timedelta(days=10),
        security=book.bnd,
        quantity=D("10"),
        price=D("70"),
        amount=D("700"),
        realized_gain=D("-50.00"),
        actor=book.owner,
    )
    price(book.vti, today, "251.00")
    snap = build_snapshot(book.household, as_of=today).snapshot
    assert snap["restrictions"] == [{"symbol": "VTI", "no_sell": True, "reason": "Employer stock"}]
    assert snap["wash_sale"]["recent_buys"] == [
        {
            "account": "schwab-87654321",
            "symbol": "VTI",
            "date": (today - dt.timedelta(days=3)).isoformat(),
            "identical_group": "VTI",
        }
    ]
    assert snap["wash_sale"]["recent_loss_sales"][0]["symbol"] == "BND"
    assert {s["symbol"]: s["price"] for s in snap["securities"]}["VTI"] == "251.000000"


def test_cash_to_raise_beyond_the_cash_band_through_the_adapter(priced_book, today):
    """The IPS allows 0-10% cash; raising $5,000 (12.3% of the $40,500 household) from the
    taxable account is feasible: the raised cash leaves, the bands apply to what stays."""
    from optimizer.core.checker import CheckPolicy, check
    from optimizer.core.engine import solve

    book = priced_book
    build = build_snapshot(
        book.household, as_of=today, cash_to_raise={"schwab-12345678": "5000.00"}
    )
    snap = build.snapshot
    assert snap["accounts"][0]["cash_to_raise"] == "5000.00"
    assert "cash_to_raise" not in snap["accounts"][1]
    cash_band = snap["targets"]["asset_classes"]["cash"]
    assert D("5000") / D("40500") > D(cash_band["max"])  # the raise alone is outside the band
    parsed = snapshot_from_dict(snap)
    result = solve(parsed)
    after = result.metrics["after"]
    taxable_cash = D(after["cash"]["by_account"]["schwab-12345678"])
    # the floor is 1% of what stays in the account: (1,000 + 25,000 - 5,000) x 1% = $210
    assert taxable_cash >= D("5000.00") + D("210.00")
    assert after["cash_raised"] == {
        "total": "5000.00",
        "by_account": {"schwab-12345678": "5000.00"},
    }
    assert after["invested_value"] == "35500.00"
    sells = [t for t in result.trades if t.side == "sell"]
    assert any(t.symbol == "VTI" and t.account == "schwab-12345678" for t in sells)
    # the allocation after the withdrawal respects every band, measured on the $35,500
    classes = snap["targets"]["asset_classes"]
    for name, entry in after["asset_classes"].items():
        if name in classes:
            assert D(classes[name]["min"]) - D("1e-9") <= D(str(entry["weight"]))
            assert D(str(entry["weight"])) <= D(classes[name]["max"]) + D("1e-9")
    kept_cash = D(after["cash"]["total"]) - D("5000.00")
    assert after["asset_classes"]["cash"]["value"] == f"{kept_cash:.2f}"
    assert check(parsed, result.trades, CheckPolicy(no_short_term_gains=False)) == []
    assert any(f["fact"] == "cash_raised" for f in result.facts)


def test_risk_model_is_remembered_until_the_price_history_changes(priced_book, today, monkeypatch):
    from optimizer import adapter

    book = priced_book
    calls: list[int] = []
    real = adapter.estimate_covariance

    def counted(prices):  # type: ignore[no-untyped-def]
        calls.append(len(prices))
        return real(prices)

    monkeypatch.setattr(adapter, "estimate_covariance", counted)
    adapter._risk_cache.clear()
    first = build_snapshot(book.household, as_of=today).snapshot
    second = build_snapshot(book.household, as_of=today).snapshot
    assert len(calls) == 1  # the second build reads no price history
    assert second == first
    second["risk_model"]["covariance"][0][0] = -1.0  # a copy: the remembered one is intact
    assert build_snapshot(book.household, as_of=today).snapshot == first
    # a new close in the window (a Saturday the history skipped) changes the fingerprint
    saturday = next(
        today - dt.timedelta(days=d)
        for d in range(2, 30)
        if (today - dt.timedelta(days=d)).weekday() == 5
    )
    price(book.vti, saturday, "251.00")
    third = build_snapshot(book.household, as_of=today).snapshot
    assert len(calls) == 2
    assert third["risk_model"] != first["risk_model"]
    adapter._risk_cache.clear()
    assert build_snapshot(book.household, as_of=today).snapshot == third
