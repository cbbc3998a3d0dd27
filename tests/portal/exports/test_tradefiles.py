"""Custodian trade files: blocks, validation, golden file contents and control totals.

Pure tests (no database): the order sets are built by hand. The book: two Schwab accounts
(whole shares), one Fidelity Roth IRA (fractional shares) and one Pershing trust; sells with
several lots; BND bought in both Schwab accounts (one block, two allocations).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Sequence
from decimal import Decimal as D
from typing import Any

import pytest

from portal.exports.documents import ExportRefused, LotInstruction, Order, OrderSet, RenderedFile
from portal.exports.tradefiles import (
    CUSTODIAN_RULES,
    DEFAULT_RULES,
    assign_blocks,
    control_totals,
    decimal_places,
    format_money,
    format_price,
    format_shares,
    recount,
    rules_for,
    validate,
    write_trade_files,
)

PID = 12
AS_OF = dt.date(2025, 6, 13)
ENTERED_AT = dt.datetime(2025, 6, 16, 14, 30, tzinfo=dt.UTC)

ACCOUNTS: dict[str, dict[str, Any]] = {
    "12345678": {
        "custodian": "schwab",
        "custodian_name": "Charles Schwab",
        "account_name": "Pat Individual",
        "registration": "individual",
        "tax_treatment": "taxable",
        "allows_fractional": False,
    },
    "87654321": {
        "custodian": "schwab",
        "custodian_name": "Charles Schwab",
        "account_name": "Pat & Sam Joint",
        "registration": "joint",
        "tax_treatment": "taxable",
        "allows_fractional": False,
    },
    "Z12-345678": {
        "custodian": "fidelity",
        "custodian_name": "Fidelity",
        "account_name": "Pat Roth IRA",
        "registration": "roth_ira",
        "tax_treatment": "exempt",
        "allows_fractional": True,
    },
    "4AB-123456": {
        "custodian": "pershing",
        "custodian_name": "Pershing",
        "account_name": "Smith Family Trust, 2019",
        "registration": "trust",
        "tax_treatment": "taxable",
        "allows_fractional": False,
    },
}

NAMES = {
    "VTI": "Vanguard Total Stock Market ETF",
    "BND": "Vanguard Total Bond Market ETF",
    "VXUS": "Vanguard Total International Stock ETF",
    "AGG": "iShares Core U.S. Aggregate Bond ETF",
    "IEFA": "iShares Core MSCI EAFE ETF",
}


def lot(
    ref: str,
    acquired: dt.date,
    shares: str,
    lot_shares: str,
    unit_cost: str,
    price: str,
    term: str = "long",
) -> LotInstruction:
    basis = D(shares) * D(unit_cost)
    proceeds = D(shares) * D(price)
    return LotInstruction(
        lot_ref=ref,
        acquired=acquired,
        shares=D(shares),
        lot_shares=D(lot_shares),
        cost_basis=basis,
        proceeds=proceeds,
        realized_gain=proceeds - basis,
        term=term,  # type: ignore[arg-type]
    )


def order(
    n: int,
    account: str,
    side: str,
    symbol: str,
    quantity: str,
    price: str,
    lots: Sequence[LotInstruction] = (),
    **extra: Any,
) -> Order:
    return Order(
        order_id=f"P{PID}-{n:03d}",
        block_id="",
        account_number=account,
        side=side,  # type: ignore[arg-type]
        symbol=symbol,
        security_name=NAMES.get(symbol, symbol),
        quantity=D(quantity),
        price=D(price),
        estimated_value=D(quantity) * D(price),
        lots=tuple(lots),
        **{**ACCOUNTS[account], **extra},
    )


def sample_orders() -> list[Order]:
    return [
        order(
            1,
            "12345678",
            "sell",
            "VTI",
            "30",
            "250.00",
            lots=[
                lot("L-A1", dt.date(2020, 3, 2), "20", "50", "150.00", "250.00"),
                lot("L-A2", dt.date(2023, 7, 10), "10", "10", "230.00", "250.00"),
            ],
        ),
        order(2, "12345678", "buy", "BND", "40", "72.50"),
        order(3, "87654321", "buy", "BND", "25", "72.50"),
        order(
            4,
            "87654321",
            "sell",
            "VXUS",
            "15",
            "61.20",
            lots=[lot("L-B1", dt.date(2024, 11, 1), "15", "40", "52.00", "61.20", "short")],
            order_type="limit",
            time_in_force="gtc",
            limit_price=D("61.25"),
        ),
        order(5, "Z12-345678", "buy", "VTI", "3.125", "250.00"),
        order(
            6,
            "Z12-345678",
            "sell",
            "AGG",
            "12.5",
            "98.40",
            lots=[lot("F-1", dt.date(2019, 1, 15), "12.5", "12.5", "100.00", "98.40")],
        ),
        order(
            7,
            "4AB-123456",
            "sell",
            "IEFA",
            "100",
            "75.10",
            lots=[
                lot("PX-10", dt.date(2022, 8, 19), "40", "100", "70.00", "75.10"),
                lot("PX-9", dt.date(2021, 5, 5), "60", "60", "60.00", "75.10"),
            ],
        ),
        order(8, "4AB-123456", "buy", "VTI", "24", "250.00"),
    ]


def make_set(orders: Sequence[Order], *, blocks: bool = True) -> OrderSet:
    """An order set; with ``blocks`` the orders go through ``assign_blocks`` first."""
    if blocks:
        assigned, block_tuple = assign_blocks(PID, orders)
    else:
        assigned, block_tuple = tuple(orders), ()
    return OrderSet(
        proposal_id=PID,
        household="Smith household",
        as_of=AS_OF,
        entered_at=ENTERED_AT,
        orders=assigned,
        blocks=block_tuple,
    )


def changed(orders: list[Order], n: int, **changes: Any) -> list[Order]:
    """The orders with order ``n`` changed."""
    order_id = f"P{PID}-{n:03d}"
    return [dataclasses.replace(o, **changes) if o.order_id == order_id else o for o in orders]


def files_by_kind(order_set: OrderSet) -> dict[str, RenderedFile]:
    return {f.kind: f for f in write_trade_files(order_set)}


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


# --------------------------------------------------------------------------- blocks


def test_assign_blocks_groups_by_custodian_side_symbol_with_stable_ids() -> None:
    orders, blocks = assign_blocks(PID, sample_orders())

    assert [(b.block_id, b.custodian, b.side, b.symbol, b.quantity) for b in blocks] == [
        ("P12-B01", "fidelity", "sell", "AGG", D("12.5")),
        ("P12-B02", "fidelity", "buy", "VTI", D("3.125")),
        ("P12-B03", "pershing", "sell", "IEFA", D("100")),
        ("P12-B04", "pershing", "buy", "VTI", D("24")),
        ("P12-B05", "schwab", "sell", "VTI", D("30")),
        ("P12-B06", "schwab", "sell", "VXUS", D("15")),
        ("P12-B07", "schwab", "buy", "BND", D("65")),
    ]
    bnd = blocks[-1]
    assert [(a.order_id, a.account_number, a.quantity) for a in bnd.allocations] == [
        ("P12-002", "12345678", D("40")),
        ("P12-003", "87654321", D("25")),
    ]
    # Orders come back with their block id, in block order.
    assert [(o.order_id, o.block_id) for o in orders] == [
        ("P12-006", "P12-B01"),
        ("P12-005", "P12-B02"),
        ("P12-007", "P12-B03"),
        ("P12-008", "P12-B04"),
        ("P12-001", "P12-B05"),
        ("P12-004", "P12-B06"),
        ("P12-002", "P12-B07"),
        ("P12-003", "P12-B07"),
    ]
    # The allocations are the returned orders themselves.
    assert tuple(a for b in blocks for a in b.allocations) == orders
    assert sum((b.quantity for b in blocks), D(0)) == sum((o.quantity for o in orders), D(0))


def test_assign_blocks_is_independent_of_input_order() -> None:
    expected = assign_blocks(PID, sample_orders())
    shuffled = sample_orders()
    random.Random(7).shuffle(shuffled)
    assert assign_blocks(PID, shuffled) == expected


def test_block_total_is_an_exact_decimal_sum() -> None:
    orders = [
        order(1, "Z12-345678", "buy", "VTI", "0.1", "250.00"),
        dataclasses.replace(
            order(2, "Z12-345678", "buy", "VTI", "0.2", "250.00"), account_number="Y98-765432"
        ),
    ]
    _, blocks = assign_blocks(PID, orders)
    assert len(blocks) == 1
    assert blocks[0].quantity == D("0.3")
    assert format_shares(blocks[0].quantity) == "0.3"


# --------------------------------------------------------------------------- golden files


def test_write_trade_files_returns_the_files_in_a_fixed_order() -> None:
    files = write_trade_files(make_set(sample_orders()))
    assert [(f.kind, f.name) for f in files] == [
        ("schwab_trades", "proposal-12-schwab-trades.csv"),
        ("schwab_lots", "proposal-12-schwab-lots.csv"),
        ("fidelity_orders", "proposal-12-fidelity-orders.csv"),
        ("generic_orders", "proposal-12-orders.csv"),
        ("generic_lots", "proposal-12-lots.csv"),
        ("blocks", "proposal-12-blocks.csv"),
    ]
    for f in files:
        assert f.content_type == "text/csv"
        assert not f.content.startswith(b"\xef\xbb\xbf")
        assert f.content.endswith(b"\r\n")
        assert b"\n" not in f.content.replace(b"\r\n", b"")


def test_schwab_trade_file_golden() -> None:
    f = files_by_kind(make_set(sample_orders()))["schwab_trades"]
    assert f.content == crlf(
        "Order ID,Block ID,Account Number,Action,Quantity,Symbol,Order Type,Time in Force,"
        "Limit Price,Lot Relief Method",
        "P12-001,P12-B05,12345678,Sell,30,VTI,Market,Day,,Specific Lot",
        "P12-004,P12-B06,87654321,Sell,15,VXUS,Limit,GTC,61.25,Specific Lot",
        "P12-002,P12-B07,12345678,Buy,40,BND,Market,Day,,",
        "P12-003,P12-B07,87654321,Buy,25,BND,Market,Day,,",
        "TRAILER,4,110",
    )
    assert (f.order_count, f.total_shares) == (4, D("110"))


def test_schwab_lot_file_golden_and_total_equals_the_sells() -> None:
    files = files_by_kind(make_set(sample_orders()))
    f = files["schwab_lots"]
    assert f.content == crlf(
        "Order ID,Account Number,Symbol,Lot ID,Acquired Date,Shares,Cost Basis",
        "P12-001,12345678,VTI,L-A1,03/02/2020,20,3000.00",
        "P12-001,12345678,VTI,L-A2,07/10/2023,10,2300.00",
        "P12-004,87654321,VXUS,L-B1,11/01/2024,15,780.00",
        "TRAILER,3,45",
    )
    assert (f.order_count, f.total_shares) == (3, D("45"))
    schwab_sells = [o for o in make_set(sample_orders()).orders if o.custodian == "schwab"]
    assert f.total_shares == sum((o.quantity for o in schwab_sells if o.side == "sell"), D(0))


def test_fidelity_file_golden_with_exact_columns() -> None:
    f = files_by_kind(make_set(sample_orders()))["fidelity_orders"]
    lines = f.content.decode("utf-8").split("\r\n")
    assert lines[0] == (
        "Account Number,Account Type,Action,Quantity,Symbol,Price Type,Time in Force,Limit Price"
    )
    assert f.content == crlf(
        "Account Number,Account Type,Action,Quantity,Symbol,Price Type,Time in Force,Limit Price",
        "Z12-345678,1,Sell,12.5,AGG,Market,Day,",
        "Z12-345678,1,Buy,3.125,VTI,Market,Day,",
    )
    assert (f.order_count, f.total_shares) == (2, D("15.625"))


def test_generic_orders_file_golden() -> None:
    f = files_by_kind(make_set(sample_orders()))["generic_orders"]
    assert f.content == crlf(
        "proposal_id,order_id,block_id,custodian,account_number,account_name,registration,side,"
        "symbol,security_name,quantity,order_type,time_in_force,limit_price,estimated_price,"
        "estimated_value,lots",
        "12,P12-006,P12-B01,fidelity,Z12-345678,Pat Roth IRA,roth_ira,sell,AGG,"
        "iShares Core U.S. Aggregate Bond ETF,12.5,market,day,,98.40,1230.00,1",
        "12,P12-005,P12-B02,fidelity,Z12-345678,Pat Roth IRA,roth_ira,buy,VTI,"
        "Vanguard Total Stock Market ETF,3.125,market,day,,250.00,781.25,0",
        '12,P12-007,P12-B03,pershing,4AB-123456,"Smith Family Trust, 2019",trust,sell,IEFA,'
        "iShares Core MSCI EAFE ETF,100,market,day,,75.10,7510.00,2",
        '12,P12-008,P12-B04,pershing,4AB-123456,"Smith Family Trust, 2019",trust,buy,VTI,'
        "Vanguard Total Stock Market ETF,24,market,day,,250.00,6000.00,0",
        "12,P12-001,P12-B05,schwab,12345678,Pat Individual,individual,sell,VTI,"
        "Vanguard Total Stock Market ETF,30,market,day,,250.00,7500.00,2",
        "12,P12-004,P12-B06,schwab,87654321,Pat & Sam Joint,joint,sell,VXUS,"
        "Vanguard Total International Stock ETF,15,limit,gtc,61.25,61.20,918.00,1",
        "12,P12-002,P12-B07,schwab,12345678,Pat Individual,individual,buy,BND,"
        "Vanguard Total Bond Market ETF,40,market,day,,72.50,2900.00,0",
        "12,P12-003,P12-B07,schwab,87654321,Pat & Sam Joint,joint,buy,BND,"
        "Vanguard Total Bond Market ETF,25,market,day,,72.50,1812.50,0",
    )
    assert (f.order_count, f.total_shares) == (8, D("249.625"))


def test_generic_lots_file_golden() -> None:
    f = files_by_kind(make_set(sample_orders()))["generic_lots"]
    assert f.content == crlf(
        "proposal_id,order_id,block_id,custodian,account_number,symbol,lot_ref,acquired,term,"
        "shares,lot_shares,cost_basis,proceeds,realized_gain",
        "12,P12-006,P12-B01,fidelity,Z12-345678,AGG,F-1,2019-01-15,long,12.5,12.5,1250.00,"
        "1230.00,-20.00",
        "12,P12-007,P12-B03,pershing,4AB-123456,IEFA,PX-9,2021-05-05,long,60,60,3600.00,"
        "4506.00,906.00",
        "12,P12-007,P12-B03,pershing,4AB-123456,IEFA,PX-10,2022-08-19,long,40,100,2800.00,"
        "3004.00,204.00",
        "12,P12-001,P12-B05,schwab,12345678,VTI,L-A1,2020-03-02,long,20,50,3000.00,5000.00,2000.00",
        "12,P12-001,P12-B05,schwab,12345678,VTI,L-A2,2023-07-10,long,10,10,2300.00,2500.00,200.00",
        "12,P12-004,P12-B06,schwab,87654321,VXUS,L-B1,2024-11-01,short,15,40,780.00,918.00,138.00",
    )
    assert (f.order_count, f.total_shares) == (6, D("157.5"))


def test_blocks_file_golden() -> None:
    f = files_by_kind(make_set(sample_orders()))["blocks"]
    assert f.content == crlf(
        "record,block_id,custodian,side,symbol,quantity,allocations,order_id,account_number",
        "block,P12-B01,fidelity,sell,AGG,12.5,1,,",
        "allocation,P12-B01,fidelity,sell,AGG,12.5,,P12-006,Z12-345678",
        "block,P12-B02,fidelity,buy,VTI,3.125,1,,",
        "allocation,P12-B02,fidelity,buy,VTI,3.125,,P12-005,Z12-345678",
        "block,P12-B03,pershing,sell,IEFA,100,1,,",
        "allocation,P12-B03,pershing,sell,IEFA,100,,P12-007,4AB-123456",
        "block,P12-B04,pershing,buy,VTI,24,1,,",
        "allocation,P12-B04,pershing,buy,VTI,24,,P12-008,4AB-123456",
        "block,P12-B05,schwab,sell,VTI,30,1,,",
        "allocation,P12-B05,schwab,sell,VTI,30,,P12-001,12345678",
        "block,P12-B06,schwab,sell,VXUS,15,1,,",
        "allocation,P12-B06,schwab,sell,VXUS,15,,P12-004,87654321",
        "block,P12-B07,schwab,buy,BND,65,2,,",
        "allocation,P12-B07,schwab,buy,BND,40,,P12-002,12345678",
        "allocation,P12-B07,schwab,buy,BND,25,,P12-003,87654321",
    )
    assert (f.order_count, f.total_shares) == (8, D("249.625"))


def test_files_are_byte_identical_whatever_the_input_order() -> None:
    first = write_trade_files(make_set(sample_orders()))
    for seed in range(5):
        shuffled = sample_orders()
        random.Random(seed).shuffle(shuffled)
        shuffled = [dataclasses.replace(o, lots=tuple(reversed(o.lots))) for o in shuffled]
        again = make_set(shuffled)
        again = dataclasses.replace(
            again, orders=tuple(reversed(again.orders)), blocks=tuple(reversed(again.blocks))
        )
        assert write_trade_files(again) == first


def test_control_totals_agree_with_the_bytes() -> None:
    files = write_trade_files(make_set(sample_orders()))
    for f in files:
        assert recount(f) == (f.order_count, f.total_shares), f.name
    assert [control_totals(f) for f in files] == [
        {
            "kind": "schwab_trades",
            "name": "proposal-12-schwab-trades.csv",
            "order_count": 4,
            "total_shares": "110",
        },
        {
            "kind": "schwab_lots",
            "name": "proposal-12-schwab-lots.csv",
            "order_count": 3,
            "total_shares": "45",
        },
        {
            "kind": "fidelity_orders",
            "name": "proposal-12-fidelity-orders.csv",
            "order_count": 2,
            "total_shares": "15.625",
        },
        {
            "kind": "generic_orders",
            "name": "proposal-12-orders.csv",
            "order_count": 8,
            "total_shares": "249.625",
        },
        {
            "kind": "generic_lots",
            "name": "proposal-12-lots.csv",
            "order_count": 6,
            "total_shares": "157.5",
        },
        {
            "kind": "blocks",
            "name": "proposal-12-blocks.csv",
            "order_count": 8,
            "total_shares": "249.625",
        },
    ]


def test_recount_refuses_a_trailer_that_disagrees() -> None:
    f = files_by_kind(make_set(sample_orders()))["schwab_trades"]
    tampered = dataclasses.replace(f, content=f.content.replace(b"TRAILER,4,110", b"TRAILER,4,111"))
    with pytest.raises(ValueError, match="trailer"):
        recount(tampered)


def test_custodian_files_only_when_the_custodian_has_orders() -> None:
    buys_only = [o for o in sample_orders() if o.custodian == "schwab" and o.side == "buy"]
    files = write_trade_files(make_set(buys_only))
    assert [f.kind for f in files] == ["schwab_trades", "generic_orders", "generic_lots", "blocks"]
    lots = files[2]
    assert lots.content == crlf(
        "proposal_id,order_id,block_id,custodian,account_number,symbol,lot_ref,acquired,term,"
        "shares,lot_shares,cost_basis,proceeds,realized_gain"
    )
    assert (lots.order_count, lots.total_shares) == (0, D(0))

    pershing = [o for o in sample_orders() if o.custodian == "pershing"]
    assert [f.kind for f in write_trade_files(make_set(pershing))] == [
        "generic_orders",
        "generic_lots",
        "blocks",
    ]


def test_limit_prices_below_a_dollar_keep_up_to_four_decimals() -> None:
    orders = [
        order(
            1,
            "Z12-345678",
            "buy",
            "PENNY",
            "1000",
            "0.4567",
            order_type="limit",
            limit_price=D("0.455"),
        )
    ]
    f = files_by_kind(make_set(orders))["fidelity_orders"]
    assert f.content.decode().split("\r\n")[1] == "Z12-345678,1,Buy,1000,PENNY,Limit,Day,0.455"


# --------------------------------------------------------------------------- number formats


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1E+2"), "100"),
        (D("100"), "100"),
        (D("100.000"), "100"),
        (D("10.50"), "10.5"),
        (D("0.125"), "0.125"),
        (D("0.000001"), "0.000001"),
        (D("0.00"), "0"),
        (D("-0"), "0"),
        (D("1234567.5"), "1234567.5"),
    ],
)
def test_format_shares(value: D, text: str) -> None:
    assert format_shares(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1230"), "1230.00"),
        (D("1E+3"), "1000.00"),
        (D("0.005"), "0.01"),
        (D("-20"), "-20.00"),
        (D("-0.001"), "0.00"),
        (D("781.245"), "781.25"),
    ],
)
def test_format_money(value: D, text: str) -> None:
    assert format_money(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("61.2"), "61.20"),
        (D("1"), "1.00"),
        (D("0.5"), "0.50"),
        (D("0.455"), "0.455"),
        (D("0.1234"), "0.1234"),
        (D("0.12345"), "0.1235"),
        (D("0.99999"), "1.00"),
    ],
)
def test_format_price(value: D, text: str) -> None:
    assert format_price(value) == text


def test_decimal_places() -> None:
    assert decimal_places(D("10.50")) == 1
    assert decimal_places(D("1E+2")) == 0
    assert decimal_places(D("3.1250")) == 3


# --------------------------------------------------------------------------- custodian rules


def test_custodian_rules() -> None:
    schwab, fidelity, pershing = (CUSTODIAN_RULES[c] for c in ("schwab", "fidelity", "pershing"))
    assert rules_for("altruist") is DEFAULT_RULES
    assert schwab.symbol_ok("BRK.B") and schwab.symbol_ok("BRK/B") and schwab.symbol_ok("ABCDEFGH")
    assert not schwab.symbol_ok("ABCDEFGHI")
    assert not schwab.symbol_ok("brk.b")
    assert not schwab.symbol_ok("")
    assert fidelity.symbol_ok("ABCDEFGHI") and not fidelity.symbol_ok("ABCDEFGHIJ")
    assert DEFAULT_RULES.symbol_ok("ABCDEFGHIJKL") and not DEFAULT_RULES.symbol_ok("ABCDEFGHIJKLM")
    assert schwab.account_ok("12345678")
    assert not schwab.account_ok("1234567") and not schwab.account_ok("12345678\n")
    assert fidelity.account_ok("Z12-345678") and not fidelity.account_ok("Z12345678")
    assert pershing.account_ok("4AB-123456") and not pershing.account_ok("4ab-123456")
    assert DEFAULT_RULES.account_ok("ab-12") and not DEFAULT_RULES.account_ok("abc")
    assert not DEFAULT_RULES.account_ok("a" * 21)
    assert schwab.quantity_decimals(False) == 0 and fidelity.quantity_decimals(True) == 3
    assert DEFAULT_RULES.quantity_decimals(True) == 6


# --------------------------------------------------------------------------- validation


def test_the_sample_is_valid() -> None:
    assert validate(make_set(sample_orders())) == []


def problems_after(n: int, **changes: Any) -> list[str]:
    return validate(make_set(changed(sample_orders(), n, **changes)))


def test_whole_shares_at_schwab() -> None:
    assert problems_after(2, quantity=D("10.5")) == [
        "P12-002 (account 12345678, BND): quantity 10.5 has 1 decimal place; "
        "Charles Schwab takes whole shares for this account"
    ]


def test_whole_shares_for_an_account_without_fractions_anywhere() -> None:
    assert problems_after(5, quantity=D("3.125"), allows_fractional=False) == [
        "P12-005 (account Z12-345678, VTI): quantity 3.125 has 3 decimal places; "
        "Fidelity takes whole shares for this account"
    ]


def test_at_most_three_decimals_at_fidelity() -> None:
    assert problems_after(5, quantity=D("3.1255")) == [
        "P12-005 (account Z12-345678, VTI): quantity 3.1255 has 4 decimal places; "
        "Fidelity takes at most 3 for fractional shares"
    ]
    # trailing zeros are not decimal places
    assert problems_after(5, quantity=D("3.1250")) == []


def test_quantity_must_be_positive() -> None:
    assert problems_after(8, quantity=D("0")) == [
        "P12-008 (account 4AB-123456, VTI): quantity 0 must be greater than zero"
    ]


def test_symbol_too_long_and_bad_characters() -> None:
    assert problems_after(2, symbol="ABCDEFGHI") == [
        "P12-002 (account 12345678, ABCDEFGHI): symbol 'ABCDEFGHI' has 9 characters; "
        "Charles Schwab takes 1 to 8 characters of A-Z 0-9 . /"
    ]
    assert problems_after(5, symbol="VT I") == [
        "P12-005 (account Z12-345678, VT I): symbol 'VT I' has characters other than "
        "A-Z 0-9 . /; Fidelity takes 1 to 9 characters of A-Z 0-9 . /"
    ]


def test_bad_account_numbers() -> None:
    assert problems_after(2, account_number="1234-5678") == [
        "P12-002 (account 1234-5678, BND): account number '1234-5678' does not match "
        "Charles Schwab's account number format (8 digits)"
    ]
    assert problems_after(5, account_number="Z12345678") == [
        "P12-005 (account Z12345678, VTI): account number 'Z12345678' does not match "
        "Fidelity's account number format (a letter, 2 digits, a hyphen and 6 digits, "
        "e.g. Z12-345678)"
    ]
    assert problems_after(8, account_number="4ab-123456") == [
        "P12-008 (account 4ab-123456, VTI): account number '4ab-123456' does not match "
        "Pershing's account number format (3 digits or capital letters, a hyphen and 6 digits, "
        "e.g. 4AB-123456)"
    ]
    # a custodian without rules of its own gets the generic ones
    other = order(
        1,
        "4AB-123456",
        "buy",
        "VTI",
        "5",
        "250.00",
        custodian="altruist",
        custodian_name="Altruist",
    )
    assert validate(make_set([dataclasses.replace(other, account_number="ab-12")])) == []
    assert validate(make_set([dataclasses.replace(other, account_number="A 1")])) == [
        "P12-001 (account A 1, VTI): account number 'A 1' does not match Altruist's account "
        "number format (4 to 20 characters of A-Z a-z 0-9 -)"
    ]


def sell_with(lots: Sequence[LotInstruction], quantity: str = "30") -> list[str]:
    return problems_after(1, lots=tuple(lots), quantity=D(quantity))


def test_sell_beyond_a_lots_shares_names_the_lot() -> None:
    assert sell_with(
        [
            lot("L-A1", dt.date(2020, 3, 2), "25", "50", "150.00", "250.00"),
            lot("L-A2", dt.date(2023, 7, 10), "5", "4", "230.00", "250.00"),
        ]
    ) == ["P12-001 (account 12345678, VTI): lot L-A2 sells 5 shares but holds only 4"]


def test_a_sell_that_closes_whole_lots_keeps_the_lots_precision() -> None:
    # at Schwab (whole shares) a lot of 10.25 shares from reinvested dividends is sold whole
    whole = [lot("L-DRIP", dt.date(2020, 3, 2), "10.25", "10.25", "150.00", "250.00")]
    assert sell_with(whole, "10.25") == []
    # a part of it is still whole shares only
    part = [lot("L-DRIP", dt.date(2020, 3, 2), "5.25", "10.25", "150.00", "250.00")]
    assert sell_with(part, "5.25") == [
        "P12-001 (account 12345678, VTI): quantity 5.25 has 2 decimal places; "
        "Charles Schwab takes whole shares for this account"
    ]


def test_lots_must_sum_to_the_quantity() -> None:
    assert sell_with(
        [
            lot("L-A1", dt.date(2020, 3, 2), "20", "50", "150.00", "250.00"),
            lot("L-A2", dt.date(2023, 7, 10), "9", "10", "230.00", "250.00"),
        ]
    ) == [
        "P12-001 (account 12345678, VTI): lots sum to 29 shares but the quantity is 30; "
        "they must match exactly"
    ]


def test_a_sell_without_lots() -> None:
    assert sell_with([]) == [
        "P12-001 (account 12345678, VTI): lots are missing; a sell must name the lots it relieves"
    ]


def test_the_same_lot_twice() -> None:
    same = lot("L-A1", dt.date(2020, 3, 2), "15", "50", "150.00", "250.00")
    assert sell_with([same, same]) == [
        "P12-001 (account 12345678, VTI): lot L-A1 appears 2 times; each lot at most once per order"
    ]


def test_a_buy_carries_no_lots() -> None:
    a_lot = lot("X", dt.date(2020, 3, 2), "40", "40", "1", "1")
    assert problems_after(2, lots=(a_lot,)) == [
        "P12-002 (account 12345678, BND): lots: a buy relieves no lots, but 1 is given"
    ]


def test_limit_price_rules() -> None:
    assert problems_after(2, order_type="limit") == [
        "P12-002 (account 12345678, BND): limit price is missing; a limit order needs one"
    ]
    assert problems_after(2, limit_price=D("72.00")) == [
        "P12-002 (account 12345678, BND): limit price 72 is set on a market order; "
        "only limit orders carry one"
    ]
    assert problems_after(4, limit_price=D("61.255")) == [
        "P12-004 (account 87654321, VXUS): limit price 61.255 has 3 decimal places; "
        "Charles Schwab takes at most 2 for prices of $1 or more"
    ]
    assert problems_after(4, limit_price=D("0.12345")) == [
        "P12-004 (account 87654321, VXUS): limit price 0.12345 has 5 decimal places; "
        "Charles Schwab takes at most 4 for prices below $1"
    ]
    assert problems_after(4, limit_price=D("0")) == [
        "P12-004 (account 87654321, VXUS): limit price 0 must be a number greater than zero"
    ]


def test_order_ids_unique_and_one_order_per_account_symbol_side() -> None:
    orders = sample_orders()
    orders.append(dataclasses.replace(orders[1], quantity=D("1"), estimated_value=D("72.50")))
    orders.append(
        order(9, "87654321", "buy", "BND", "5", "72.50"),
    )
    assert validate(make_set(orders)) == [
        "P12-002 (account 12345678, BND): order id is used by 2 orders; order ids must be unique",
        "P12-002 (account 12345678, BND): side buy repeats order P12-002; "
        "one order per account, symbol and side",
        "P12-009 (account 87654321, BND): side buy repeats order P12-003; "
        "one order per account, symbol and side",
        "block P12-B07 (schwab buy BND): allocation P12-002 appears 2 times",
        "block P12-B07 (schwab buy BND): allocation P12-002 differs from the order of that id",
    ]


def test_blocks_must_exist_and_add_up() -> None:
    good = make_set(sample_orders())
    missing = dataclasses.replace(good, blocks=good.blocks[:-1])
    assert validate(missing) == [
        "P12-002 (account 12345678, BND): block id 'P12-B07' is not among the proposal's blocks",
        "P12-003 (account 87654321, BND): block id 'P12-B07' is not among the proposal's blocks",
    ]
    bnd = good.blocks[-1]
    off = dataclasses.replace(
        good, blocks=(*good.blocks[:-1], dataclasses.replace(bnd, quantity=D("66")))
    )
    assert validate(off) == [
        "block P12-B07 (schwab buy BND): quantity 66 but its allocations sum to 65; "
        "they must match exactly"
    ]
    assert validate(make_set(sample_orders(), blocks=False))[0] == (
        "P12-001 (account 12345678, VTI): block id '' is not among the proposal's blocks"
    )


def test_an_empty_order_set_is_refused() -> None:
    assert validate(make_set([])) == ["Proposal 12 has no orders to export"]


def test_one_call_reports_every_violation() -> None:
    orders = sample_orders()
    orders = changed(orders, 2, quantity=D("10.5"))  # whole shares at Schwab
    orders = changed(orders, 5, quantity=D("3.1255"))  # 4 decimals at Fidelity
    orders = changed(orders, 3, symbol="ABCDEFGHI")  # too long at Schwab
    orders = changed(orders, 8, account_number="4AB123456")  # Pershing format
    orders = changed(  # beyond a lot's shares, and not summing to the quantity
        orders,
        7,
        lots=(
            lot("PX-9", dt.date(2021, 5, 5), "70", "60", "60.00", "75.10"),
            lot("PX-10", dt.date(2022, 8, 19), "20", "100", "70.00", "75.10"),
        ),
    )
    orders = changed(orders, 6, lots=())  # a sell without lots
    orders = changed(orders, 4, limit_price=None)  # a limit order without a price
    problems = validate(make_set(orders))
    assert problems == [
        "P12-002 (account 12345678, BND): quantity 10.5 has 1 decimal place; "
        "Charles Schwab takes whole shares for this account",
        "P12-003 (account 87654321, ABCDEFGHI): symbol 'ABCDEFGHI' has 9 characters; "
        "Charles Schwab takes 1 to 8 characters of A-Z 0-9 . /",
        "P12-004 (account 87654321, VXUS): limit price is missing; a limit order needs one",
        "P12-005 (account Z12-345678, VTI): quantity 3.1255 has 4 decimal places; "
        "Fidelity takes at most 3 for fractional shares",
        "P12-006 (account Z12-345678, AGG): lots are missing; a sell must name the lots it relieves",
        "P12-007 (account 4AB-123456, IEFA): lot PX-9 sells 70 shares but holds only 60",
        "P12-007 (account 4AB-123456, IEFA): lots sum to 90 shares but the quantity is 100; "
        "they must match exactly",
        "P12-008 (account 4AB123456, VTI): account number '4AB123456' does not match Pershing's "
        "account number format (3 digits or capital letters, a hyphen and 6 digits, "
        "e.g. 4AB-123456)",
    ]


def test_write_trade_files_refuses_with_every_problem() -> None:
    orders = changed(sample_orders(), 2, quantity=D("10.5"))
    orders = changed(orders, 4, limit_price=None)
    with pytest.raises(ExportRefused) as refused:
        write_trade_files(make_set(orders))
    assert refused.value.message == "Proposal 12 cannot be exported: 2 problems"
    assert refused.value.problems == [
        "P12-002 (account 12345678, BND): quantity 10.5 has 1 decimal place; "
        "Charles Schwab takes whole shares for this account",
        "P12-004 (account 87654321, VXUS): limit price is missing; a limit order needs one",
    ]
    assert str(refused.value).splitlines()[1:] == [f"- {p}" for p in refused.value.problems]

    with pytest.raises(ExportRefused, match=r"cannot be exported: 1 problem\n- P12-002"):
        write_trade_files(make_set(changed(sample_orders(), 2, quantity=D("10.5"))))


def test_text_with_line_breaks_is_refused() -> None:
    assert problems_after(2, account_name="Pat\nIndividual") == [
        "P12-002 (account 12345678, BND): account name contains a line break or control character"
    ]


def test_names_that_would_be_spreadsheet_formulas_are_written_as_text() -> None:
    from portal.exports.tradefiles import text_cell

    assert text_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert text_cell("+1") == "'+1" and text_cell("-2") == "'-2" and text_cell("@SUM") == "'@SUM"
    assert text_cell("Pat Individual") == "Pat Individual"
    orders = changed(sample_orders(), 1, account_name="=1+1", security_name="@cmd")
    generic = files_by_kind(make_set(orders))["generic_orders"].content.decode()
    assert ",'=1+1," in generic and ",'@cmd," in generic
