"""Read the generic transactions CSV into the tax-lot engine's ``Transaction`` dataclasses.

Pure parsing: no Django, no database. The format is described in ``docs/taxlots.md``:

* required columns: ``trade_date`` (YYYY-MM-DD), ``account``, ``account_type`` (``taxable``,
  ``ira`` or ``roth_ira``), ``owner``, ``action`` (``BUY``, ``SELL`` or ``TRANSFER_IN``),
  ``symbol``, ``quantity`` (shares, > 0, at most 6 decimals), ``price`` (dollars per share,
  >= 0, at most 6 decimals; may be empty on a TRANSFER_IN);
* optional columns: ``lot_id`` (names the lot on a BUY/TRANSFER_IN, asks for that lot on a
  SELL), ``identical_group`` (wash-sale group, default the symbol), ``fee`` (dollars),
  ``cost_basis`` and ``acquired`` (required on a TRANSFER_IN), ``holding_period_start``;
* any other column is ignored. Header names are matched case-insensitively; values are
  stripped; actions and account types are case-insensitive; symbols and groups are upper-cased.

Every bad row is reported at once (``TransactionFileError.problems``: file, line, field,
reason), together with the engine's own checks (one type and owner per account, unique lot ids).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from optimizer.core.taxlots import (
    ACCOUNT_TYPES,
    ACTIONS,
    FIFO,
    TRANSFER_IN,
    Problem,
    TaxLotInputError,
    Transaction,
    validate_transactions,
)

REQUIRED_COLUMNS = (
    "trade_date",
    "account",
    "account_type",
    "owner",
    "action",
    "symbol",
    "quantity",
    "price",
)
OPTIONAL_COLUMNS = (
    "lot_id",
    "identical_group",
    "fee",
    "cost_basis",
    "acquired",
    "holding_period_start",
)

QUANTITY_PLACES = 6
"""Shares are exact to a millionth (fractional shares)."""
PRICE_PLACES = 6
MONEY_PLACES = 2

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class TransactionFileError(TaxLotInputError):
    """A transactions file that cannot be read; ``problems`` lists every bad row and field."""


def _decimal(text: str, *, places: int) -> tuple[Decimal | None, str]:
    """Parse a plain decimal number; returns ``(value, "")`` or ``(None, reason)``."""
    if "," in text:
        return None, f"{text!r} is not a plain number (no thousands separators)"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, f"{text!r} is not a number"
    if not value.is_finite():
        return None, f"{text!r} is not a finite number"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return None, f"{text!r} has more than {places} decimal places"
    return value, ""


def _date(text: str) -> tuple[dt.date | None, str]:
    """Parse an ISO date ``YYYY-MM-DD``; returns ``(value, "")`` or ``(None, reason)``."""
    if not _ISO_DATE.fullmatch(text):
        return None, f"{text!r} is not a date in YYYY-MM-DD form"
    try:
        return dt.date.fromisoformat(text), ""
    except ValueError:
        return None, f"{text!r} is not a valid date"


def parse_transactions(
    lines: Iterable[str], *, source: str, today: dt.date | None = None
) -> list[Transaction]:
    """Parse CSV text (an iterable of lines, header first) into transactions, in file order.

    ``source`` names the file in problems. When ``today`` is given, a trade date after it is
    refused. Raises ``TransactionFileError`` listing every problem found.
    """
    problems: list[Problem] = []
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise TransactionFileError(
            [Problem(source, 1, "header", f"unreadable CSV: {exc}")]
        ) from None
    if header is None or not any(cell.strip() for cell in header):
        raise TransactionFileError([Problem(source, 1, "header", "the file has no header row")])
    names = [cell.strip().lower() for cell in header]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            problems.append(Problem(source, 1, name, "column appears more than once"))
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            problems.append(Problem(source, 1, name, "missing column"))
    if problems:
        raise TransactionFileError(problems)
    index = {name: position for position, name in reversed(list(enumerate(names))) if name}

    transactions: list[Transaction] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(source, reader.line_num, "row", f"unreadable CSV: {exc}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        row_problems: list[Problem] = []

        def bad(
            field: str, reason: str, line: int = line, into: list[Problem] = row_problems
        ) -> None:
            into.append(Problem(source, line, field, reason))

        if any(cell.strip() for cell in cells[len(names) :]):
            bad("row", f"has {len(cells)} values but the header has {len(names)} columns")

        def value(name: str, cells: list[str] = cells) -> str:
            position = index.get(name)
            if position is None or position >= len(cells):
                return ""
            return cells[position].strip()

        for name in ("account", "owner", "symbol"):
            if not value(name):
                bad(name, "missing value")
        action = value("action").upper()
        if not action:
            bad("action", "missing value")
        elif action not in ACTIONS:
            bad("action", f"unknown action {value('action')!r} (expected {', '.join(ACTIONS)})")
        account_type = value("account_type").lower()
        if not account_type:
            bad("account_type", "missing value")
        elif account_type not in ACCOUNT_TYPES:
            bad(
                "account_type",
                f"unknown account type {value('account_type')!r}"
                f" (expected {', '.join(ACCOUNT_TYPES)})",
            )

        trade_date: dt.date | None = None
        if not value("trade_date"):
            bad("trade_date", "missing value")
        else:
            trade_date, reason = _date(value("trade_date"))
            if reason:
                bad("trade_date", reason)
            elif today is not None and trade_date is not None and trade_date > today:
                bad("trade_date", f"{trade_date} is in the future (today is {today})")

        quantity: Decimal | None = None
        if not value("quantity"):
            bad("quantity", "missing value")
        else:
            quantity, reason = _decimal(value("quantity"), places=QUANTITY_PLACES)
            if reason:
                bad("quantity", reason)
            elif quantity is not None and quantity <= 0:
                bad("quantity", f"must be positive, got {value('quantity')}")

        price: Decimal | None = None
        if not value("price"):
            if action != TRANSFER_IN:
                bad("price", "missing value")
        else:
            price, reason = _decimal(value("price"), places=PRICE_PLACES)
            if reason:
                bad("price", reason)
            elif price is not None and price < 0:
                bad("price", f"must not be negative, got {value('price')}")

        fee: Decimal | None = None
        if value("fee"):
            fee, reason = _decimal(value("fee"), places=MONEY_PLACES)
            if reason:
                bad("fee", reason)
            elif fee is not None and fee < 0:
                bad("fee", f"must not be negative, got {value('fee')}")

        cost_basis: Decimal | None = None
        acquired: dt.date | None = None
        holding_period_start: dt.date | None = None
        if action == TRANSFER_IN:
            if not value("cost_basis"):
                bad("cost_basis", "missing value (required for TRANSFER_IN)")
            else:
                cost_basis, reason = _decimal(value("cost_basis"), places=MONEY_PLACES)
                if reason:
                    bad("cost_basis", reason)
                elif cost_basis is not None and cost_basis < 0:
                    bad("cost_basis", f"must not be negative, got {value('cost_basis')}")
            if not value("acquired"):
                bad("acquired", "missing value (required for TRANSFER_IN)")
            else:
                acquired, reason = _date(value("acquired"))
                if reason:
                    bad("acquired", reason)
            if value("holding_period_start"):
                holding_period_start, reason = _date(value("holding_period_start"))
                if reason:
                    bad("holding_period_start", reason)

        if row_problems:
            problems.extend(row_problems)
            continue
        assert trade_date is not None and quantity is not None  # no problems: both parsed
        transactions.append(
            Transaction(
                trade_date=trade_date,
                account=value("account"),
                account_type=account_type,
                owner=value("owner"),
                action=action,
                symbol=value("symbol").upper(),
                quantity=quantity,
                price=price if price is not None else Decimal("0"),
                fee=fee if fee is not None else Decimal("0"),
                lot_id=value("lot_id") or None,
                identical_group=value("identical_group").upper() or None,
                cost_basis=cost_basis,
                acquired=acquired,
                holding_period_start=holding_period_start,
                line=line,
                source=source,
            )
        )
    problems.extend(validate_transactions(transactions, method=FIFO))
    if problems:
        raise TransactionFileError(sorted(problems, key=lambda p: p.line or 0))
    return transactions


def read_transactions(path: str | Path, *, today: dt.date | None = None) -> list[Transaction]:
    """Read a generic transactions CSV file (UTF-8, an optional BOM) into transactions.

    Raises ``TransactionFileError`` for a missing or undecodable file and for every bad row.
    """
    source = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise TransactionFileError([Problem(source, None, "file", "no such file")]) from None
    except IsADirectoryError:
        raise TransactionFileError([Problem(source, None, "file", "is a directory")]) from None
    except UnicodeDecodeError as exc:
        raise TransactionFileError(
            [Problem(source, None, "file", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise TransactionFileError(
            [Problem(source, None, "file", exc.strerror or str(exc))]
        ) from None
    return parse_transactions(text.splitlines(keepends=True), source=source, today=today)
