"""The generic transactions CSV reader: every bad row reported at once, never a traceback."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from accounts.taxlot_file import TransactionFileError, parse_transactions, read_transactions
from optimizer.core.taxlots import apply_transactions

DATA = Path(__file__).resolve().parent.parent / "data" / "taxlots"
HEADER = "trade_date,account,account_type,owner,action,symbol,quantity,price\n"


def parse(text: str, today: dt.date | None = None) -> list:
    return parse_transactions(text.splitlines(keepends=True), source="t.csv", today=today)


def problems_of(text: str, today: dt.date | None = None) -> list[tuple[int | None, str, str]]:
    with pytest.raises(TransactionFileError) as info:
        parse(text, today)
    return [(p.line, p.field, p.reason) for p in info.value.problems]


def test_reads_the_sample_household() -> None:
    transactions = read_transactions(DATA / "household.csv")
    assert len(transactions) == 9
    first = transactions[0]
    assert (first.trade_date, first.account, first.account_type, first.owner) == (
        dt.date(2023, 1, 10),
        "JOINT-1",
        "taxable",
        "Alex",
    )
    assert (first.quantity, first.price, first.line, first.source) == (
        Decimal("100"),
        Decimal("200.00"),
        2,
        str(DATA / "household.csv"),
    )
    transfer = transactions[2]
    assert (transfer.action, transfer.cost_basis, transfer.acquired, transfer.lot_id) == (
        "TRANSFER_IN",
        Decimal("2100.00"),
        dt.date(2019, 5, 20),
        "AAPL-OLD",
    )
    fund = transactions[6]
    assert (fund.symbol, fund.identical_group, fund.group) == ("ITOT", "VTI", "VTI")
    assert transactions[1].fee == Decimal("4.95")


def test_sample_household_through_the_engine() -> None:
    result = apply_transactions(read_transactions(DATA / "household.csv"))
    loss = result.realized[1]
    assert (loss.gain, loss.wash_sale_disallowed, loss.wash_sale_permanent) == (
        Decimal("-1500.00"),
        Decimal("900.00"),
        Decimal("600.00"),
    )
    assert result.realized[0].term == "short"  # sold on the first anniversary


def test_minimal_columns_case_insensitive_header_and_extra_columns() -> None:
    text = (
        " Trade_Date ,ACCOUNT,account_type,owner,action,symbol,quantity,price,comment\n"
        "2024-01-02,A,Taxable,Pat,buy,xyz,10,9.5,anything\n"
        "\n"
        "2024-02-02,A,taxable,Pat,Sell,XYZ,4,11,\n"
    )
    first, second = parse(text)
    assert (first.action, first.account_type, first.symbol, first.line) == (
        "BUY",
        "taxable",
        "XYZ",
        2,
    )
    assert (second.action, second.line, second.lot_id, second.identical_group) == (
        "SELL",
        4,
        None,
        None,
    )


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(
        ("\ufeff" + HEADER + "2024-01-02,A,taxable,Pat,BUY,XYZ,1,1\n")
        .replace("\n", "\r\n")
        .encode()
    )
    (only,) = read_transactions(path)
    assert only.trade_date == dt.date(2024, 1, 2)


def test_every_bad_row_is_listed() -> None:
    with pytest.raises(TransactionFileError) as info:
        read_transactions(DATA / "bad_rows.csv")
    found = [(p.line, p.field) for p in info.value.problems]
    assert found == [
        (3, "trade_date"),
        (4, "trade_date"),
        (5, "quantity"),
        (6, "quantity"),
        (7, "quantity"),
        (8, "action"),
        (9, "account_type"),
        (10, "price"),
        (11, "account"),
        (12, "account_type"),
        (13, "cost_basis"),
        (13, "acquired"),
        (14, "quantity"),
        (15, "row"),
        (16, "symbol"),
        (16, "price"),
    ]
    assert all(p.source == str(DATA / "bad_rows.csv") for p in info.value.problems)
    message = str(info.value)
    assert message.startswith("16 problems:")
    assert "bad_rows.csv:8: action: unknown action 'HOLD'" in message


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("2024-02-30,A,taxable,Pat,BUY,XYZ,1,1", "trade_date", "'2024-02-30' is not a valid date"),
        ("2024-1-2,A,taxable,Pat,BUY,XYZ,1,1", "trade_date", "not a date in YYYY-MM-DD form"),
        ("2024-01-02,A,taxable,Pat,BUY,XYZ,1.1234567,1", "quantity", "more than 6 decimal places"),
        ("2024-01-02,A,taxable,Pat,BUY,XYZ,Infinity,1", "quantity", "not a finite number"),
        ("2024-01-02,A,taxable,Pat,BUY,XYZ,1,-2", "price", "must not be negative, got -2"),
        ("2024-01-02,A,taxable,Pat,BUY,XYZ,1,$5", "price", "'$5' is not a number"),
        ("2024-01-02,A,taxable,,BUY,XYZ,1,1", "owner", "missing value"),
        ("2024-01-02,A,,Pat,BUY,XYZ,1,1", "account_type", "missing value"),
        ("2024-01-02,A,taxable,Pat,,XYZ,1,1", "action", "missing value"),
        ("2024-01-02,A,taxable,Pat,BUY,XYZ,,1", "quantity", "missing value"),
        (",A,taxable,Pat,BUY,XYZ,1,1", "trade_date", "missing value"),
        ("2024-01-02,A,taxable,Pat,BUY,XYZ", "quantity", "missing value"),
    ],
)
def test_row_problems(row: str, field: str, reason: str) -> None:
    found = problems_of(HEADER + row + "\n")
    assert any(f == field and reason in r for _, f, r in found), found
    assert all(line == 2 for line, _, _ in found)


def test_future_trade_date_refused_when_today_is_given() -> None:
    text = HEADER + "2024-06-02,A,taxable,Pat,BUY,XYZ,1,1\n"
    assert problems_of(text, today=dt.date(2024, 6, 1)) == [
        (2, "trade_date", "2024-06-02 is in the future (today is 2024-06-01)")
    ]
    assert len(parse(text, today=dt.date(2024, 6, 2))) == 1


def test_fee_and_transfer_columns() -> None:
    header = HEADER.strip() + ",fee,cost_basis,acquired,holding_period_start,lot_id\n"
    rows = (
        "2024-01-02,A,taxable,Pat,BUY,XYZ,1,1,0.125,,,,\n"
        "2024-01-02,A,taxable,Pat,TRANSFER_IN,XYZ,1,,,12.345,2023-01-01,2023-02-01,T\n"
        "2024-01-02,A,taxable,Pat,TRANSFER_IN,XYZ,1,,,10,2023-13-01,,T2\n"
    )
    assert problems_of(header + rows) == [
        (2, "fee", "'0.125' has more than 2 decimal places"),
        (3, "cost_basis", "'12.345' has more than 2 decimal places"),
        (4, "acquired", "'2023-13-01' is not a valid date"),
    ]


def test_engine_checks_are_reported_with_the_file_problems() -> None:
    text = (
        HEADER.strip()
        + ",lot_id\n"
        + "2024-01-02,A,taxable,Pat,BUY,XYZ,1,1,L1\n"
        + "2024-01-03,A,ira,Pat,BUY,XYZ,1,1,L1\n"
        + "2024-01-04,A,taxable,Pat,BUY,XYZ,x,1,\n"
    )
    assert [(line, field) for line, field, _ in problems_of(text)] == [
        (3, "lot_id"),
        (3, "account_type"),
        (4, "quantity"),
    ]


def test_missing_columns_are_all_listed() -> None:
    with pytest.raises(TransactionFileError) as info:
        read_transactions(DATA / "missing_columns.csv")
    assert [(p.line, p.field, p.reason) for p in info.value.problems] == [
        (1, "account_type", "missing column"),
        (1, "quantity", "missing column"),
    ]


def test_duplicate_column() -> None:
    assert problems_of(HEADER.strip() + ",price\n") == [
        (1, "price", "column appears more than once")
    ]


def test_empty_file_and_no_rows() -> None:
    assert problems_of("") == [(1, "header", "the file has no header row")]
    assert parse(HEADER) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "no such file"), (b"\xff\xfe\x00bad", "not UTF-8 text")],
)
def test_unreadable_files(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TransactionFileError) as info:
        read_transactions(path)
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("file", None)
    assert reason in problem.reason
    assert str(problem).startswith(f"{path}: file: ")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TransactionFileError, match="is a directory"):
        read_transactions(tmp_path)
