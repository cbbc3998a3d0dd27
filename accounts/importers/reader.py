"""The reader every format shares: find the header, split off preamble and trailer, turn each
data row into a normalized row and check it. A format (``schwab``, ``fidelity``, ``generic``)
only says how its columns are named, how it writes numbers, dates and actions, where its
as-of date is, and what its trailer lines look like.

Pure parsing, no database: what needs the book (does the account exist, is the symbol known,
is there enough to sell) is checked by ``accounts.importing``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar

from accounts.importers.base import (
    CASH_IN,
    CASH_OUT,
    MONEY_PLACES,
    PRICE_PLACES,
    QUANTITY_PLACES,
    TRADES,
    AccountRef,
    Action,
    DateParser,
    Kind,
    Layout,
    LotRow,
    Numbers,
    ParsedFile,
    PositionRow,
    Row,
    Table,
    TransactionRow,
    account_ref,
    derived_id,
    find_header,
    money_text,
    never_trailer,
    parse_iso_date,
    read_rows,
    split_table,
)
from optimizer.core.taxlots import Problem

ZERO = Decimal("0")
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class CsvFormat(ABC):
    """A custodian's CSV layout. Subclasses set the class attributes and override the hooks."""

    name: ClassVar[str]
    label: ClassVar[str]
    custodian_code: ClassVar[str | None] = None
    """Accounts are matched at this custodian; None means any custodian of the firm."""
    numbers: ClassVar[Numbers] = Numbers.CUSTODIAN
    allow_masked: ClassVar[bool] = False
    layouts: ClassVar[dict[Kind, Layout]]

    # -- hooks -------------------------------------------------------------------------------

    def parse_date(self, text: str) -> tuple[dt.date | None, str]:
        return parse_iso_date(text)

    def is_trailer(self, cells: list[str]) -> bool:
        return never_trailer(cells)

    def file_as_of(self, table: Table) -> tuple[dt.date | None, int | None, str]:
        """The as-of date written above or below the table: ``(date, line, problem)``."""
        return None, None, ""

    def is_cash(self, row: Row) -> bool:
        """Is this positions row the account's cash balance?"""
        return False

    cash_field: ClassVar[str] = "market_value"
    """The column holding a cash row's balance."""

    def cash_amount(self, row: Row) -> Decimal | None:
        """The cash balance of a cash row, in dollars."""
        return row.number(self.cash_field, places=MONEY_PLACES, required=True)

    @abstractmethod
    def action(self, row: Row) -> tuple[Action | None, str]:
        """The normalized action of a transactions row (None after reporting a problem)."""

    def trade_date(self, row: Row) -> dt.date | None:
        return row.date("trade_date", self.parse_date, required=True)

    def shares(self, row: Row, action: Action) -> Decimal | None:
        """Positive shares of a buy, sell or transfer (None after reporting a problem)."""
        quantity = row.number("quantity", places=QUANTITY_PLACES, required=True)
        if quantity is not None and quantity <= ZERO:
            row.bad("quantity", f"must be positive, got {row.text('quantity')}")
            return None
        return quantity

    def fees(self, row: Row) -> Decimal:
        fee = row.number("fee", places=MONEY_PLACES)
        if fee is None:
            return Decimal("0.00")
        if fee < ZERO:
            row.bad("fee", f"must not be negative, got {row.text('fee')}")
        return abs(fee)

    def check_trailer(self, table: Table, kind: Kind, parsed: ParsedFile) -> list[Problem]:
        return []

    # -- the driver --------------------------------------------------------------------------

    def detect_kind(self, rows: Sequence[tuple[int, list[str]]]) -> list[Kind]:
        return [
            kind for kind, layout in self.layouts.items() if find_header(rows, layout) is not None
        ]

    def parse(self, text: str, *, source: str, kind: Kind | None, today: dt.date) -> ParsedFile:
        """Read one file. Problems are returned in ``ParsedFile.problems``, never raised."""
        rows, problems = read_rows(text, source)
        if problems:
            return ParsedFile(
                fmt=self.name,
                kind=kind or Kind.POSITIONS,
                source=source,
                rows_read=0,
                problems=tuple(problems),
            )
        if kind is None:
            kinds = self.detect_kind(rows)
            if len(kinds) != 1:
                reason = (
                    "cannot tell which kind of file this is: no header of a "
                    f"{self.label} positions, lots or transactions file"
                    if not kinds
                    else f"the header fits more than one kind ({', '.join(kinds)})"
                )
                return ParsedFile(
                    fmt=self.name,
                    kind=Kind.POSITIONS,
                    source=source,
                    rows_read=0,
                    problems=(Problem(source, None, "kind", reason + "; name the kind"),),
                )
            kind = kinds[0]
        layout = self.layouts[kind]
        header_at = find_header(rows, layout)
        if header_at is None:
            names = ", ".join(repr(layout.columns[n]) for n in sorted(layout.required))
            return ParsedFile(
                fmt=self.name,
                kind=kind,
                source=source,
                rows_read=0,
                problems=(
                    Problem(
                        source,
                        rows[0][0] if rows else 1,
                        "header",
                        f"no header row of a {self.label} {kind} file (needs the columns {names})",
                    ),
                ),
            )
        table, problems = split_table(
            rows, header_at, layout, source=source, is_trailer=self.is_trailer
        )
        builders = {
            Kind.POSITIONS: self._positions,
            Kind.LOTS: self._lots,
            Kind.TRANSACTIONS: self._transactions,
        }
        parsed = builders[kind](table, layout, today, problems)
        if not parsed.problems:
            trailer = self.check_trailer(table, kind, parsed)
            if trailer:
                parsed = _with_problems(parsed, trailer)
        if not table.data and not parsed.problems:
            parsed = _with_problems(
                parsed,
                [Problem(source, table.header_line, "file", "no data rows below the header")],
            )
        return _with_problems(parsed, [])

    def _row(self, table: Table, layout: Layout, line: int, cells: list[str]) -> Row:
        return Row(table, layout, line, cells, self.numbers)

    def _account(self, row: Row) -> tuple[str, AccountRef | None]:
        text = row.required_text("account")
        if not text:
            return "", None
        custodian = row.text("custodian").lower()
        ref, reason = account_ref(text, allow_masked=self.allow_masked, custodian=custodian)
        if reason:
            row.bad("account", reason)
        return text, ref

    def _not_future(self, row: Row, name: str, day: dt.date | None, today: dt.date) -> None:
        if day is not None and day > today:
            row.bad(name, f"{day} is in the future (today is {today})")

    # -- positions ---------------------------------------------------------------------------

    def _positions(
        self, table: Table, layout: Layout, today: dt.date, problems: list[Problem]
    ) -> ParsedFile:
        as_of, as_of_line, reason = self.file_as_of(table)
        if reason:
            problems.append(Problem(table.source, as_of_line, "as of", reason))
        elif as_of is not None and as_of > today:
            problems.append(
                Problem(
                    table.source,
                    as_of_line,
                    "as of",
                    f"{as_of} is in the future (today is {today})",
                )
            )
        out: list[PositionRow] = []
        seen: dict[tuple[str, str], int] = {}
        first_day: tuple[dt.date, int] | None = None
        for line, cells in table.data:
            row = self._row(table, layout, line, cells)
            text, ref = self._account(row)
            if "as_of" in layout.columns:
                day = row.date("as_of", self.parse_date, required=True)
                self._not_future(row, "as_of", day, today)
                if day is not None:
                    if first_day is None:
                        first_day = (day, line)
                        as_of = day
                    elif day != first_day[0]:
                        row.bad(
                            "as_of",
                            f"{day} differs from {first_day[0]} on line {first_day[1]}: "
                            "a positions file is one day",
                        )
            cash = self.is_cash(row)
            symbol = "" if cash else row.symbol()
            price: Decimal | None = None
            value: Decimal | None = None
            if cash:
                quantity = self.cash_amount(row)
                if quantity is not None and quantity < ZERO:
                    row.bad(self.cash_field, "a negative cash balance (margin) is not supported")
            else:
                quantity = row.number("quantity", places=QUANTITY_PLACES, required=True)
                if quantity is not None and quantity <= ZERO:
                    row.bad("quantity", f"must be positive, got {row.text('quantity')}")
                price = row.number(
                    "price", places=PRICE_PLACES, required=True, missing="missing price"
                )
                if price is not None and price <= ZERO:
                    row.bad("price", f"must be positive, got {row.text('price')}")
                if "market_value" in table.index:
                    value = row.number("market_value", places=MONEY_PLACES)
            if text and (symbol or cash):
                first_line = seen.setdefault((text.upper(), symbol), line)
                if first_line != line:
                    what = "the cash balance" if cash else symbol
                    row.bad(
                        "account" if cash else "symbol",
                        f"{what} of account {text} is listed twice (also on line {first_line})",
                    )
            if row.problems or ref is None or quantity is None:
                problems.extend(row.problems)
                continue
            out.append(
                PositionRow(
                    line=line,
                    account=ref,
                    symbol=symbol,
                    quantity=quantity,
                    price=price,
                    market_value=value,
                )
            )
        if as_of is None and table.data and not any(p.field == "as of" for p in problems):
            problems.append(
                Problem(
                    table.source,
                    table.header_line,
                    "as of",
                    "the file gives no as-of date for its positions",
                )
            )
        return ParsedFile(
            fmt=self.name,
            kind=Kind.POSITIONS,
            source=table.source,
            rows_read=len(table.data),
            problems=tuple(problems),
            as_of=as_of,
            positions=tuple(out),
        )

    # -- lots --------------------------------------------------------------------------------

    def _lots(
        self, table: Table, layout: Layout, today: dt.date, problems: list[Problem]
    ) -> ParsedFile:
        out: list[LotRow] = []
        seen: dict[tuple[str, str], int] = {}
        for line, cells in table.data:
            row = self._row(table, layout, line, cells)
            text, ref = self._account(row)
            symbol = row.symbol()
            lot_id = row.required_text("lot_id")
            if lot_id and len(lot_id) > 60:
                row.bad("lot_id", "is longer than 60 characters")
            quantity = row.number("quantity", places=QUANTITY_PLACES, required=True)
            if quantity is not None and quantity <= ZERO:
                row.bad("quantity", f"must be positive, got {row.text('quantity')}")
            basis = row.number("cost_basis", places=MONEY_PLACES, required=True)
            if basis is not None and basis < ZERO:
                row.bad("cost_basis", f"must not be negative, got {row.text('cost_basis')}")
            acquired = row.date("acquired", self.parse_date, required=True)
            self._not_future(row, "acquired", acquired, today)
            start = row.date("holding_period_start", self.parse_date)
            if start is not None and acquired is not None and start > acquired:
                row.bad("holding_period_start", f"{start} is after the acquisition date {acquired}")
            adjustment = row.number("wash_sale_adjustment", places=MONEY_PLACES)
            if adjustment is not None and adjustment < ZERO:
                row.bad(
                    "wash_sale_adjustment",
                    f"must not be negative, got {row.text('wash_sale_adjustment')}",
                )
            elif adjustment is not None and basis is not None and adjustment > basis:
                row.bad("wash_sale_adjustment", f"{adjustment} is more than the cost basis {basis}")
            if text and lot_id:
                first_line = seen.setdefault((text.upper(), lot_id), line)
                if first_line != line:
                    row.bad(
                        "lot_id",
                        f"duplicate lot id {lot_id!r} for account {text} (also on line {first_line})",
                    )
            if row.problems or ref is None or quantity is None or basis is None:
                problems.extend(row.problems)
                continue
            assert acquired is not None  # required: a missing date is a problem above
            out.append(
                LotRow(
                    line=line,
                    account=ref,
                    symbol=symbol,
                    lot_id=lot_id,
                    quantity=quantity,
                    cost_basis=basis,
                    acquired=acquired,
                    holding_period_start=start or acquired,
                    wash_sale_adjustment=adjustment or Decimal("0.00"),
                )
            )
        return ParsedFile(
            fmt=self.name,
            kind=Kind.LOTS,
            source=table.source,
            rows_read=len(table.data),
            problems=tuple(problems),
            lots=tuple(out),
        )

    # -- transactions ------------------------------------------------------------------------

    def _transactions(
        self, table: Table, layout: Layout, today: dt.date, problems: list[Problem]
    ) -> ParsedFile:
        out: list[TransactionRow] = []
        ids: dict[tuple[str, str], int] = {}
        occurrences: Counter[tuple[object, ...]] = Counter()
        for line, cells in table.data:
            row = self._row(table, layout, line, cells)
            text, ref = self._account(row)
            trade_date = self.trade_date(row)
            self._not_future(row, "trade_date", trade_date, today)
            settle = None
            if "settle_date" in layout.columns:
                settle = row.date("settle_date", self.parse_date)
            if settle is not None and trade_date is not None and settle < trade_date:
                row.bad("settle_date", f"{settle} is before the trade date {trade_date}")
            action, source_action = self.action(row)
            amount = row.number("amount", places=MONEY_PLACES)
            symbol = row.symbol(required=False)
            fee = self.fees(row)
            movement = (
                self._movement(row, action, symbol, amount, fee, trade_date) if action else None
            )
            external = row.text("external_id")
            if len(external) > 80:
                row.bad("external_id", "is longer than 80 characters")
            if text and external:
                first_line = ids.setdefault((text.upper(), external), line)
                if first_line != line:
                    row.bad(
                        "external_id",
                        f"duplicate transaction id {external!r} for account {text}"
                        f" (also on line {first_line})",
                    )
            lot_id = row.text("lot_id")
            if len(lot_id) > 60:
                row.bad("lot_id", "is longer than 60 characters")
            if row.problems or movement is None or trade_date is None or ref is None:
                problems.extend(row.problems)
                continue
            if not external:
                key = (
                    text.upper(),
                    trade_date,
                    source_action.upper(),
                    symbol,
                    movement.quantity,
                    movement.price,
                    movement.amount,
                )
                occurrences[key] += 1
                external = derived_id(self.name, key, occurrences[key])
            description = row.text("description") or source_action
            out.append(
                TransactionRow(
                    line=line,
                    account=ref,
                    action=movement.action,
                    trade_date=trade_date,
                    settle_date=settle,
                    amount=movement.amount,
                    external_id=external,
                    source_action=source_action,
                    symbol=symbol,
                    quantity=movement.quantity,
                    price=movement.price,
                    fee=fee,
                    lot_id=lot_id,
                    cost_basis=movement.cost_basis,
                    acquired=movement.acquired,
                    holding_period_start=movement.holding_period_start,
                    description=description[:200],
                )
            )
        return ParsedFile(
            fmt=self.name,
            kind=Kind.TRANSACTIONS,
            source=table.source,
            rows_read=len(table.data),
            problems=tuple(problems),
            transactions=tuple(out),
        )

    def _movement(
        self,
        row: Row,
        action: Action,
        symbol: str,
        amount: Decimal | None,
        fee: Decimal,
        trade_date: dt.date | None,
    ) -> _Movement | None:
        """Check a row's values against its action; None after reporting a problem."""
        if action in TRADES:
            return self._trade(row, action, symbol, amount, fee)
        if action in (Action.TRANSFER_IN, Action.TRANSFER_OUT) and symbol:
            return self._security_transfer(row, action, amount, trade_date)
        if action == Action.TRANSFER_IN:
            # A cash journal: the book records it as a deposit (a Transaction of kind
            # transfer_in/transfer_out always names a security).
            action = Action.DEPOSIT
        elif action == Action.TRANSFER_OUT:
            action = Action.WITHDRAWAL
        if action == Action.DIVIDEND and not row.text("symbol"):
            row.bad("symbol", "a dividend names the security that paid it")
        if amount is None:
            if not row.text("amount"):  # else: unparsable, reported already
                row.bad("amount", "missing value")
            return None
        if action in CASH_IN and amount <= ZERO:
            row.bad(
                "amount",
                f"a {action} brings cash in: the amount must be positive, got {row.text('amount')}",
            )
        if action in CASH_OUT and amount >= ZERO:
            row.bad(
                "amount",
                f"a {action} takes cash out: the amount must be negative, got {row.text('amount')}",
            )
        if row.problems:
            return None
        return _Movement(action=action, amount=amount)

    def _trade(
        self, row: Row, action: Action, symbol: str, amount: Decimal | None, fee: Decimal
    ) -> _Movement | None:
        if not row.text("symbol"):
            row.bad("symbol", f"a {action} names a security")
        quantity = self.shares(row, action)
        price = row.number("price", places=PRICE_PLACES, required=True, missing="missing price")
        if price is not None and price <= ZERO:
            row.bad("price", f"must be positive, got {row.text('price')}")
            price = None
        if quantity is None or price is None:
            return None
        gross = quantity * price
        expected = -cents(gross + fee) if action == Action.BUY else cents(gross - fee)
        if amount is None:
            amount = expected
        elif abs(amount - expected) > CENT:
            sign = "+" if action == Action.BUY else "-"
            row.bad(
                "amount",
                f"{money_text(amount)} does not match quantity x price {sign} fees"
                f" = {money_text(expected)}",
            )
            return None
        return _Movement(action=action, amount=amount, quantity=quantity, price=price)

    def _security_transfer(
        self, row: Row, action: Action, amount: Decimal | None, trade_date: dt.date | None
    ) -> _Movement | None:
        if action == Action.TRANSFER_OUT:
            row.bad(
                "action",
                "a transfer of securities out cannot be imported: the lots leave with their "
                "basis; close them with the receiving custodian's lots file",
            )
            return None
        if "cost_basis" not in row.layout.columns:
            row.bad(
                "action",
                f"a transfer of securities in carries no cost basis in the {self.label} format:"
                " import its lots with a lots file",
            )
            return None
        quantity = self.shares(row, action)
        basis = row.number("cost_basis", places=MONEY_PLACES, required=True)
        if basis is not None and basis < ZERO:
            row.bad("cost_basis", f"must not be negative, got {row.text('cost_basis')}")
        acquired = row.date("acquired", self.parse_date, required=True)
        if acquired is not None and trade_date is not None and acquired > trade_date:
            row.bad("acquired", f"{acquired} is after the transfer date {trade_date}")
        start = row.date("holding_period_start", self.parse_date)
        if start is not None and acquired is not None and start > acquired:
            row.bad("holding_period_start", f"{start} is after the acquisition date {acquired}")
        if amount is not None and amount != ZERO:
            row.bad("amount", "a transfer of securities moves no cash: leave it empty or 0")
        if quantity is None or basis is None or acquired is None or row.problems:
            return None
        return _Movement(
            action=action,
            amount=Decimal("0.00"),
            quantity=quantity,
            cost_basis=basis,
            acquired=acquired,
            holding_period_start=start or acquired,
        )


@dataclass(frozen=True, kw_only=True)
class _Movement:
    """What a checked transactions row records."""

    action: Action
    amount: Decimal
    quantity: Decimal | None = None
    price: Decimal | None = None
    cost_basis: Decimal | None = None
    acquired: dt.date | None = None
    holding_period_start: dt.date | None = None


def _with_problems(parsed: ParsedFile, extra: list[Problem]) -> ParsedFile:
    return ParsedFile(
        fmt=parsed.fmt,
        kind=parsed.kind,
        source=parsed.source,
        rows_read=parsed.rows_read,
        problems=tuple(sorted((*parsed.problems, *extra), key=lambda p: p.line or 0)),
        as_of=parsed.as_of,
        positions=parsed.positions,
        lots=parsed.lots,
        transactions=parsed.transactions,
    )


__all__ = ["CsvFormat", "DateParser", "cents"]
