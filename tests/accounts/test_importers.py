"""The custodian file readers, without a database: sample files, formats, every bad row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.importers import Action, Kind, ParsedFile, parse_file
from accounts.importers.base import (
    Numbers,
    account_ref,
    derived_id,
    parse_iso_date,
    parse_number,
    parse_us_date,
)
from tests.imports_support import DATA

D = Decimal
TODAY = dt.date(2025, 6, 20)


def read(fmt: str, name: str, kind: Kind | None = None) -> ParsedFile:
    text = (DATA / name).read_text(encoding="utf-8")
    return parse_file(fmt, text, source=name, today=TODAY, kind=kind)


def parse(fmt: str, text: str, kind: Kind | None = None) -> ParsedFile:
    return parse_file(fmt, text, source="f.csv", today=TODAY, kind=kind)


def problems(parsed: ParsedFile) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.field, p.reason) for p in parsed.problems]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,234.56", D("1234.56")),
        ("$1,234.56", D("1234.56")),
        ("-$1,234.56", D("-1234.56")),
        ("$-12.00", D("-12.00")),
        ("(1,234.50)", D("-1234.50")),
        ("($12.00)", D("-12.00")),
        ("1234567", D("1234567")),
        (".5", D("0.5")),
    ],
)
def test_custodian_numbers(text, value):
    assert parse_number(text, style=Numbers.CUSTODIAN, places=2) == (value, "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,23", "'1,23' is not a number"),
        ("12,3456", "'12,3456' is not a number"),
        ("1O", "'1O' is not a number"),
        ("-(5)", "'-(5)' is not a number"),
        ("1.234", "'1.234' has more than 2 decimal places"),
    ],
)
def test_bad_custodian_numbers(text, reason):
    assert parse_number(text, style=Numbers.CUSTODIAN, places=2) == (None, reason)


def test_plain_numbers_refuse_separators_and_dollars():
    assert parse_number("-12.5", style=Numbers.PLAIN, places=6) == (D("-12.5"), "")
    for text in ("1,000", "$5", "(5)", "1e3"):
        value, reason = parse_number(text, style=Numbers.PLAIN, places=6)
        assert value is None and "not a plain number" in reason


def test_dates():
    assert parse_us_date("3/7/2025") == (dt.date(2025, 3, 7), "")
    assert parse_us_date("02/30/2025") == (None, "'02/30/2025' is not a valid date")
    assert parse_us_date("2025-03-07") == (None, "'2025-03-07' is not a date in MM/DD/YYYY form")
    assert parse_iso_date("2025-03-07") == (dt.date(2025, 3, 7), "")
    assert parse_iso_date("03/07/2025") == (None, "'03/07/2025' is not a date in YYYY-MM-DD form")


def test_masked_account_numbers():
    ref, reason = account_ref("XXXX-1234", allow_masked=True)
    assert (ref.masked, ref.prefix, ref.suffix, reason) == (True, "", "1234", "")
    ref, reason = account_ref("Z12-***456", allow_masked=True)
    assert (ref.masked, ref.prefix, ref.suffix, reason) == (True, "Z12", "456", "")
    ref, _ = account_ref("X12-345678", allow_masked=True)  # a real number starting with X
    assert not ref.masked
    ref, _ = account_ref("Z12-***456", allow_masked=False)
    assert not ref.masked
    _, reason = account_ref("XXXX-12", allow_masked=True)
    assert "shows fewer than 3 characters" in reason


def test_derived_ids_are_stable_and_count_identical_rows():
    key = ("Z12", dt.date(2025, 3, 3), "DEPOSIT", "", None, None, D("10"))
    first, second = derived_id("fidelity", key, 1), derived_id("fidelity", key, 2)
    assert first == derived_id("fidelity", key, 1)
    assert first != second and first.startswith("auto-") and len(first) == 29


# --------------------------------------------------------------------------- the samples


def test_schwab_positions_sample():
    parsed = read("schwab", "schwab_positions.csv")
    assert parsed.kind == Kind.POSITIONS and parsed.problems == ()
    assert parsed.as_of == dt.date(2025, 6, 13)
    assert parsed.rows_read == 4
    assert [(p.line, p.account.text, p.symbol, p.quantity, p.price) for p in parsed.positions] == [
        (5, "12345678", "VTI", D("100"), D("250.00")),
        (6, "12345678", "", D("1000.00"), None),
        (7, "87654321", "BND", D("200"), D("72.50")),
        (8, "87654321", "", D("0.00"), None),
    ]
    assert parsed.positions[0].market_value == D("25000.00")
    assert parsed.positions[1].is_cash


def test_schwab_lots_sample():
    parsed = read("schwab", "schwab_lots.csv")
    assert parsed.kind == Kind.LOTS and parsed.problems == ()
    first, second, third = parsed.lots
    assert (first.lot_id, first.quantity, first.cost_basis, first.acquired) == (
        "SW-1001",
        D("40"),
        D("7930.00"),
        dt.date(2021, 3, 15),
    )
    assert (second.wash_sale_adjustment, second.holding_period_start) == (
        D("120.00"),
        dt.date(2025, 2, 3),
    )
    assert (third.account.text, third.symbol, third.quantity) == ("87654321", "BND", D("1250"))


def test_schwab_transactions_sample():
    parsed = read("schwab", "schwab_transactions.csv")
    assert parsed.kind == Kind.TRANSACTIONS and parsed.problems == ()
    rows = parsed.transactions
    assert [(t.line, t.action, t.amount) for t in rows] == [
        (3, Action.DEPOSIT, D("5000.00")),
        (4, Action.BUY, D("-5600.00")),
        (5, Action.DIVIDEND, D("18.40")),
        (6, Action.SELL, D("1495.05")),
        (7, Action.INTEREST, D("1.23")),
        (8, Action.FEE, D("-25.00")),
        (9, Action.DEPOSIT, D("500.00")),
        (10, Action.WITHDRAWAL, D("-500.00")),
    ]
    dividend = rows[2]
    assert dividend.trade_date == dt.date(2025, 3, 27)  # "03/28/2025 as of 03/27/2025"
    sell = rows[3]
    assert (sell.symbol, sell.quantity, sell.price, sell.fee, sell.external_id) == (
        "VTI",
        D("5"),
        D("300.00"),
        D("4.95"),
        "SCH-1004",
    )
    assert rows[6].source_action == "Journal" and rows[6].description == "JOURNAL FRM ...5678"


def test_fidelity_positions_sample():
    parsed = read("fidelity", "fidelity_positions.csv")
    assert parsed.problems == () and parsed.kind == Kind.POSITIONS
    assert parsed.as_of == dt.date(2025, 6, 13)  # from "Date downloaded" below the data
    rows = parsed.positions
    assert [(p.line, p.account.suffix, p.symbol, p.quantity) for p in rows] == [
        (4, "1234", "VTI", D("50.000")),
        (5, "1234", "", D("500.00")),
        (6, "456", "BND", D("1000.500")),
        (7, "456", "", D("0.00")),
    ]
    assert rows[2].account.prefix == "Z12" and rows[2].market_value == D("72536.25")


def test_fidelity_lots_sample():
    parsed = read("fidelity", "fidelity_lots.csv")
    assert parsed.problems == ()
    first, second = parsed.lots
    assert (first.lot_id, first.quantity, first.cost_basis, first.acquired) == (
        "F-88001",
        D("1200.250"),
        D("288180.03"),
        dt.date(2023, 1, 10),
    )
    assert second.wash_sale_adjustment == D("12.40")


def test_fidelity_transactions_sample():
    parsed = read("fidelity", "fidelity_transactions.csv")
    assert parsed.problems == ()
    rows = parsed.transactions
    assert [(t.line, t.action, t.quantity, t.amount) for t in rows] == [
        (4, Action.DEPOSIT, None, D("2000.00")),
        (5, Action.BUY, D("5.5"), D("-1551.00")),
        (6, Action.DIVIDEND, None, D("45.10")),
        (7, Action.BUY, D("0.16"), D("-45.10")),
        (8, Action.SELL, D("10.000"), D("2899.95")),  # "(10.000)": a sale is negative
        (9, Action.INTEREST, None, D("2.10")),
        (10, Action.FEE, None, D("-12.50")),
    ]
    sell = rows[4]
    assert (sell.fee, sell.settle_date) == (D("0.05"), dt.date(2025, 4, 16))
    assert len({t.external_id for t in rows}) == 7  # derived, one per row


def test_generic_samples():
    positions = read("generic", "generic_positions.csv")
    assert positions.problems == () and positions.as_of == dt.date(2025, 6, 13)
    assert [(p.symbol, p.quantity, p.account.custodian) for p in positions.positions] == [
        ("VTI", D("100"), "schwab"),
        ("", D("1000.00"), "schwab"),
        ("BND", D("200.00005"), "schwab"),
    ]
    lots = read("generic", "generic_lots.csv")
    assert lots.problems == () and lots.lots[1].holding_period_start == dt.date(2024, 11, 20)
    transactions = read("generic", "generic_transactions.csv")
    assert transactions.problems == ()
    actions = [t.action for t in transactions.transactions]
    assert actions.count(Action.BUY) == 3 and actions.count(Action.TRANSFER_IN) == 1
    # cash journals become deposits and withdrawals; the securities transfer stays
    journal_out, journal_in = transactions.transactions[1:3]
    assert (journal_out.action, journal_out.source_action) == (Action.WITHDRAWAL, "TRANSFER_OUT")
    assert (journal_in.action, journal_in.amount) == (Action.DEPOSIT, D("3000.00"))
    transfer = transactions.transactions[4]
    assert (transfer.action, transfer.cost_basis, transfer.acquired, transfer.amount) == (
        Action.TRANSFER_IN,
        D("2250.00"),
        dt.date(2019, 5, 20),
        D("0.00"),
    )


@pytest.mark.parametrize(
    ("fmt", "name", "kind"),
    [
        ("schwab", "schwab_positions.csv", Kind.POSITIONS),
        ("schwab", "schwab_lots.csv", Kind.LOTS),
        ("schwab", "schwab_transactions.csv", Kind.TRANSACTIONS),
        ("fidelity", "fidelity_positions.csv", Kind.POSITIONS),
        ("fidelity", "fidelity_lots.csv", Kind.LOTS),
        ("fidelity", "fidelity_transactions.csv", Kind.TRANSACTIONS),
        ("generic", "generic_positions.csv", Kind.POSITIONS),
        ("generic", "generic_lots.csv", Kind.LOTS),
        ("generic", "generic_transactions.csv", Kind.TRANSACTIONS),
    ],
)
def test_kind_is_told_by_the_header(fmt, name, kind):
    assert read(fmt, name).kind == kind
    assert read(fmt, name, kind=kind).problems == ()


def test_a_file_of_another_kind_has_no_header_of_the_kind_asked():
    parsed = read("schwab", "schwab_lots.csv", kind=Kind.POSITIONS)
    assert problems(parsed) == [
        (
            1,
            "header",
            "no header row of a Schwab-style positions file (needs the columns 'Account Number',"
            " 'Market Value', 'Price', 'Quantity', 'Symbol')",
        )
    ]


def test_unknown_kind_and_empty_file():
    assert problems(parse("generic", "a,b\n1,2\n")) == [
        (
            None,
            "kind",
            "cannot tell which kind of file this is: no header of a generic positions, lots or"
            " transactions file; name the kind",
        )
    ]
    assert problems(parse("generic", "account,symbol,lot_id,quantity,cost_basis,acquired\n")) == [
        (1, "file", "no data rows below the header")
    ]


def test_the_taxlots_command_file_reads_as_generic_transactions():
    text = (DATA.parent / "taxlots" / "household.csv").read_text(encoding="utf-8")
    parsed = parse_file("generic", text, source="household.csv", today=TODAY)
    assert parsed.kind == Kind.TRANSACTIONS and parsed.problems == ()
    assert len(parsed.transactions) == 9


# --------------------------------------------------------------------------- bad rows


def test_every_bad_generic_transaction_row_is_reported_at_once():
    parsed = read("generic", "generic_transactions_bad.csv")
    assert len(parsed.transactions) == 5  # rows whose problems only the book can tell
    assert problems(parsed) == [
        (3, "quantity", "'1O' is not a plain number (digits, '.', a leading '-')"),
        (4, "trade_date", "'2025-13-01' is not a valid date"),
        (5, "quantity", "must be positive, got -5"),
        (6, "quantity", "must be positive, got 0"),
        (7, "trade_date", "2099-01-02 is in the future (today is 2025-06-20)"),
        (8, "price", "missing price"),
        (
            9,
            "amount",
            "-$1,000.00 does not match quantity x price + fees = -$2,500.00",
        ),
        (
            10,
            "action",
            "unknown action 'SPLIT' (expected BUY, SELL, DIVIDEND, INTEREST, DEPOSIT,"
            " WITHDRAWAL, TRANSFER_IN, TRANSFER_OUT, FEE)",
        ),
        (11, "amount", "a withdrawal takes cash out: the amount must be negative, got 200.00"),
        (
            12,
            "action",
            "a transfer of securities out cannot be imported: the lots leave with their basis;"
            " close them with the receiving custodian's lots file",
        ),
        (13, "cost_basis", "missing value"),
        (14, "symbol", "'BRK B' is not a ticker symbol"),
        (
            15,
            "external_id",
            "duplicate transaction id 'G-B01' for account 12345678 (also on line 2)",
        ),
        (16, "settle_date", "2025-03-01 is before the trade date 2025-03-03"),
    ]


def test_bad_lots_rows():
    parsed = read("generic", "generic_lots_bad.csv")
    assert problems(parsed) == [
        (3, "lot_id", "duplicate lot id 'G-9' for account 12345678 (also on line 2)"),
        (4, "quantity", "must be positive, got -1"),
        (5, "cost_basis", "'12,00.00' is not a plain number (digits, '.', a leading '-')"),
        (6, "acquired", "2099-01-01 is in the future (today is 2025-06-20)"),
        (7, "holding_period_start", "2024-02-01 is after the acquisition date 2024-01-01"),
        (8, "wash_sale_adjustment", "50.00 is more than the cost basis 10.00"),
        (9, "lot_id", "missing value"),
    ]


def test_bad_positions_rows():
    parsed = read("generic", "generic_positions_bad.csv")
    assert problems(parsed) == [
        (3, "price", "missing price"),
        (4, "quantity", "must be positive, got 0"),
        (5, "symbol", "VTI of account 12345678 is listed twice (also on line 2)"),
        (6, "as_of", "2025-06-12 differs from 2025-06-13 on line 2: a positions file is one day"),
        (7, "quantity", "a negative cash balance (margin) is not supported"),
    ]


def test_schwab_totals_line_must_match_the_rows():
    text = (DATA / "schwab_transactions.csv").read_text().replace('"$889.68"', '"$899.68"')
    assert problems(parse("schwab", text)) == [
        (
            11,
            "Amount",
            "the totals line says 899.68 but the rows add up to 889.68: is the file complete?",
        )
    ]


def test_schwab_bad_rows_name_the_file_columns():
    parsed = read("schwab", "schwab_transactions_bad.csv")
    assert problems(parsed) == [
        (3, "Action", "unknown action 'Stock Split'"),
        (
            4,
            "Action",
            "a transfer of securities in carries no cost basis in the Schwab-style format:"
            " import its lots with a lots file",
        ),
        (5, "Date", "'13/01/2025' is not a valid date"),
        (6, "Price", "missing price"),
        (7, "Quantity", "'ten' is not a number"),
    ]


def test_fidelity_bad_rows():
    parsed = read("fidelity", "fidelity_transactions_bad.csv")
    assert problems(parsed) == [
        (4, "Quantity", "a sale's quantity is negative in this format, got 10.000"),
        (5, "Quantity", "must be positive for a buy, got (5.000)"),
        (
            6,
            "Account Number",
            "masked account number 'XXXX-12' shows fewer than 3 characters after the mask;"
            " cannot match it",
        ),
        (7, "Run Date", "'2025-03-07' is not a date in MM/DD/YYYY form"),
        (8, "Action", "unknown action 'JOURNALED SPP'"),
        (11, "row", "data row below the totals or footer lines"),
    ]


def test_fidelity_positions_need_the_date_downloaded_line():
    text = (DATA / "fidelity_positions.csv").read_text()
    text = text.replace('"Date downloaded 06/13/2025 4:05 PM ET"\n', "")
    assert problems(parse("fidelity", text)) == [
        (3, "as of", "the file gives no as-of date for its positions")
    ]


def test_header_problems():
    text = "as_of,account,symbol,quantity,price,price\n2025-06-13,1,VTI,1,1\n"
    assert problems(parse("generic", text)) == [(1, "price", "column appears more than once")]
    text = "as_of,account,symbol,quantity,price\n2025-06-13,1,VTI,1,1,9\n"
    assert problems(parse("generic", text)) == [
        (2, "row", "has 6 values but the header has 5 columns")
    ]


def test_unreadable_csv_is_a_problem_not_a_traceback():
    text = 'as_of,account,symbol,quantity,price\n2025-06-13,"1\x00,VTI,1,1\n'
    parsed = parse("generic", text, kind=Kind.POSITIONS)
    assert [(p.line, p.field) for p in parsed.problems] == [(2, "row")]
    assert "unreadable CSV" in parsed.problems[0].reason
