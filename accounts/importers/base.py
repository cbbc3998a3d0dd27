"""Shared machinery of the custodian file readers: normalized rows, value parsers, the table
reader (preamble, header, data, trailer or footer) and the per-row problem collector.

Pure parsing: no Django, no database. A reader turns the text of one file into normalized rows
(``PositionRow``, ``LotRow``, ``TransactionRow``) plus every problem it found, each with file,
line, field and reason (``optimizer.core.taxlots.Problem``). Nothing here raises on a bad row:
problems are collected so that the caller can add its own (unknown account, oversell...) and
refuse the whole file at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from optimizer.core.taxlots import Problem, TaxLotInputError

QUANTITY_PLACES = 6
PRICE_PLACES = 6
MONEY_PLACES = 2
HEADER_SEARCH_ROWS = 25
"""The header must appear within this many rows (after any preamble)."""


class Kind(enum.StrEnum):
    POSITIONS = "positions"
    LOTS = "lots"
    TRANSACTIONS = "transactions"


class Action(enum.StrEnum):
    """Normalized transaction actions (the file's own wording is kept as ``source_action``)."""

    BUY = "buy"
    SELL = "sell"
    DIVIDEND = "dividend"
    INTEREST = "interest"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    FEE = "fee"


TRADES = frozenset({Action.BUY, Action.SELL})
CASH_IN = frozenset({Action.DIVIDEND, Action.INTEREST, Action.DEPOSIT})
CASH_OUT = frozenset({Action.WITHDRAWAL, Action.FEE})


class ImportFileError(TaxLotInputError):
    """A file refused as a whole; ``problems`` lists every problem (file, line, field, reason)."""


# --------------------------------------------------------------------------- normalized rows


@dataclass(frozen=True, kw_only=True)
class AccountRef:
    """An account number as written in the file.

    ``masked`` numbers hide their middle (``XXXX-1234``, ``Z12-***456``): they match the account
    whose number, without hyphens or spaces, starts with ``prefix`` and ends with ``suffix``.
    ``custodian`` is a custodian code named by the row (generic format) or empty.
    """

    text: str
    masked: bool = False
    prefix: str = ""
    suffix: str = ""
    custodian: str = ""


@dataclass(frozen=True, kw_only=True)
class PositionRow:
    """Shares (or, for the cash row, dollars) the custodian reports for one account."""

    line: int
    account: AccountRef
    symbol: str
    """Upper-case ticker; empty for the cash row."""
    quantity: Decimal
    """Shares; for the cash row, dollars."""
    price: Decimal | None = None
    market_value: Decimal | None = None

    @property
    def is_cash(self) -> bool:
        return self.symbol == ""


@dataclass(frozen=True, kw_only=True)
class LotRow:
    """One open tax lot as the custodian reports it (dollars, shares)."""

    line: int
    account: AccountRef
    symbol: str
    lot_id: str
    quantity: Decimal
    cost_basis: Decimal
    acquired: dt.date
    holding_period_start: dt.date
    wash_sale_adjustment: Decimal = Decimal("0.00")


@dataclass(frozen=True, kw_only=True)
class TransactionRow:
    """One cash or security movement. ``amount`` is the signed cash effect (in +, out -)."""

    line: int
    account: AccountRef
    action: Action
    trade_date: dt.date
    amount: Decimal
    external_id: str
    source_action: str
    settle_date: dt.date | None = None
    symbol: str = ""
    quantity: Decimal | None = None
    """Shares, always positive here (whatever sign convention the file uses)."""
    price: Decimal | None = None
    fee: Decimal = Decimal("0.00")
    lot_id: str = ""
    cost_basis: Decimal | None = None
    acquired: dt.date | None = None
    holding_period_start: dt.date | None = None
    description: str = ""

    @property
    def moves_shares(self) -> bool:
        """Buys, sells and transfers of securities change lots; everything else only cash."""
        return self.action in TRADES or (
            self.action in (Action.TRANSFER_IN, Action.TRANSFER_OUT) and bool(self.symbol)
        )


@dataclass(frozen=True, kw_only=True)
class ParsedFile:
    """What a reader found in one file: rows of one kind, the as-of date, every problem."""

    fmt: str
    kind: Kind
    source: str
    rows_read: int
    problems: tuple[Problem, ...]
    as_of: dt.date | None = None
    positions: tuple[PositionRow, ...] = ()
    lots: tuple[LotRow, ...] = ()
    transactions: tuple[TransactionRow, ...] = ()


# --------------------------------------------------------------------------- value parsers


class Numbers(enum.Enum):
    """How a format writes numbers."""

    PLAIN = "plain"
    """``-1234.5``: digits, one ``.``, a leading ``-``; no ``$``, no thousands separators."""
    CUSTODIAN = "custodian"
    """``$1,234.50``, ``-$1,234.50``, ``(1,234.50)``, ``($12.00)``; ``--`` means empty."""


_PLAIN = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)")
_GROUPED = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+")
EMPTY_MARKERS = frozenset({"", "--", "n/a", "N/A"})


def parse_number(text: str, *, style: Numbers, places: int) -> tuple[Decimal | None, str]:
    """``(value, "")`` or ``(None, reason)``; never a float."""
    raw = text.strip()
    if style is Numbers.PLAIN:
        if not _PLAIN.fullmatch(raw):
            return None, f"{raw!r} is not a plain number (digits, '.', a leading '-')"
        digits, negative = raw, False
    else:
        body, negative = raw, False
        if body.startswith("(") and body.endswith(")"):
            body, negative = body[1:-1].strip(), True
        if body.startswith("-") and not negative:
            body, negative = body[1:], True
        if body.startswith("$"):
            body = body[1:]
        if body.startswith("-") and not negative:
            body, negative = body[1:], True
        if not _GROUPED.fullmatch(body):
            return None, f"{raw!r} is not a number"
        digits = ("-" if negative else "") + body.replace(",", "")
    try:
        value = Decimal(digits)
    except InvalidOperation:  # pragma: no cover - the patterns only let numbers through
        return None, f"{raw!r} is not a number"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return None, f"{raw!r} has more than {places} decimal places"
    return value, ""


_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_US = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def parse_iso_date(text: str) -> tuple[dt.date | None, str]:
    match = _ISO.fullmatch(text.strip())
    if not match:
        return None, f"{text.strip()!r} is not a date in YYYY-MM-DD form"
    return _make_date(text, int(match[1]), int(match[2]), int(match[3]))


def parse_us_date(text: str) -> tuple[dt.date | None, str]:
    match = _US.fullmatch(text.strip())
    if not match:
        return None, f"{text.strip()!r} is not a date in MM/DD/YYYY form"
    return _make_date(text, int(match[3]), int(match[1]), int(match[2]))


def _make_date(text: str, year: int, month: int, day: int) -> tuple[dt.date | None, str]:
    try:
        return dt.date(year, month, day), ""
    except ValueError:
        return None, f"{text.strip()!r} is not a valid date"


DateParser = Callable[[str], tuple[dt.date | None, str]]

_MASKED = re.compile(r"(?P<prefix>[A-Z0-9 -]*?)(?P<mask>\*+|X{3,})(?P<suffix>[A-Z0-9 -]*)")


def normalize_number(text: str) -> str:
    """An account number without hyphens and spaces, upper-case (``z12-341234`` -> ``Z12341234``)."""
    return re.sub(r"[\s-]", "", text).upper()


def account_ref(text: str, *, allow_masked: bool, custodian: str = "") -> tuple[AccountRef, str]:
    """``(ref, "")`` or ``(ref, reason)`` for a masked number that shows too little."""
    raw = text.strip()
    match = _MASKED.fullmatch(raw.upper()) if allow_masked else None
    if match is None:
        return AccountRef(text=raw, custodian=custodian), ""
    prefix = normalize_number(match["prefix"])
    suffix = normalize_number(match["suffix"])
    ref = AccountRef(text=raw, masked=True, prefix=prefix, suffix=suffix, custodian=custodian)
    if len(suffix) < 3:
        return ref, (
            f"masked account number {raw!r} shows fewer than 3 characters after the mask; "
            "cannot match it"
        )
    return ref, ""


SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,11}")


def derived_id(fmt: str, parts: Sequence[object], occurrence: int) -> str:
    """A stable id for a transaction row that carries none: a hash of its values and of how many
    identical rows came before it in the same file (so two identical rows stay two)."""
    text = "|".join([fmt, *(str(p) for p in parts), str(occurrence)])
    return "auto-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# --------------------------------------------------------------------------- the table reader


@dataclass(frozen=True)
class Layout:
    """One format's columns for one kind: canonical field -> the file's header text."""

    columns: dict[str, str]
    required: frozenset[str]
    not_with: frozenset[str] = frozenset()
    """Header names (as written) that tell a file of another kind, for kind detection."""

    def header_of(self, name: str) -> str:
        return self.columns[name]


def norm_header(text: str) -> str:
    return " ".join(text.strip().lower().split())


@dataclass
class Table:
    """The parts of a CSV file: preamble rows, header, data rows and what follows them."""

    source: str
    header_line: int = 0
    index: dict[str, int] = field(default_factory=dict)
    """Canonical field -> column position, for the columns present."""
    preamble: list[tuple[int, list[str]]] = field(default_factory=list)
    data: list[tuple[int, list[str]]] = field(default_factory=list)
    trailer: list[tuple[int, list[str]]] = field(default_factory=list)
    width: int = 0


def read_rows(text: str, source: str) -> tuple[list[tuple[int, list[str]]], list[Problem]]:
    """Every CSV row with the line it ends on; an unreadable row stops the reading."""
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    rows: list[tuple[int, list[str]]] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return rows, []
        except csv.Error as exc:
            return rows, [Problem(source, reader.line_num, "row", f"unreadable CSV: {exc}")]
        rows.append((reader.line_num, cells))


def find_header(
    rows: Sequence[tuple[int, list[str]]], layout: Layout, *, limit: int = HEADER_SEARCH_ROWS
) -> int | None:
    """Position in ``rows`` of the first row holding every required column, or None."""
    wanted = {norm_header(layout.columns[name]) for name in layout.required}
    unwanted = {norm_header(name) for name in layout.not_with}
    for position, (_, cells) in enumerate(rows[:limit]):
        present = {norm_header(cell) for cell in cells}
        if wanted <= present and not unwanted & present:
            return position
    return None


def split_table(
    rows: Sequence[tuple[int, list[str]]],
    header_at: int,
    layout: Layout,
    *,
    source: str,
    is_trailer: Callable[[list[str]], bool],
) -> tuple[Table, list[Problem]]:
    """Split rows around the header: preamble above; below, data rows until ``is_trailer``
    says a row ends the data. After the first trailer row every row must be a trailer row too
    (nothing may hide below a totals line or a disclaimer). Blank rows are skipped anywhere."""
    problems: list[Problem] = []
    header_line, header = rows[header_at]
    table = Table(source=source, header_line=header_line, preamble=list(rows[:header_at]))
    names = [norm_header(cell) for cell in header]
    table.width = len(names)
    wanted = {norm_header(text): name for name, text in layout.columns.items()}
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            problems.append(
                Problem(
                    source, header_line, header[position].strip(), "column appears more than once"
                )
            )
            continue
        seen[name] = position
        if name in wanted:
            table.index[wanted[name]] = position
    in_trailer = False
    for line, cells in rows[header_at + 1 :]:
        if not any(cell.strip() for cell in cells):
            continue
        if in_trailer or is_trailer(cells):
            if in_trailer and not is_trailer(cells):
                problems.append(
                    Problem(source, line, "row", "data row below the totals or footer lines")
                )
                continue
            in_trailer = True
            table.trailer.append((line, cells))
            continue
        table.data.append((line, cells))
    return table, problems


def never_trailer(cells: list[str]) -> bool:
    return False


def one_cell_footer(cells: list[str]) -> bool:
    """A disclaimer or "Date downloaded" line: a single non-empty cell."""
    return sum(1 for cell in cells if cell.strip()) == 1


class Row:
    """One data row: typed access to its cells by canonical field, collecting problems."""

    def __init__(
        self, table: Table, layout: Layout, line: int, cells: list[str], numbers: Numbers
    ) -> None:
        self.table = table
        self.layout = layout
        self.line = line
        self.cells = cells
        self.numbers = numbers
        self.problems: list[Problem] = []
        if any(cell.strip() for cell in cells[table.width :]):
            self.bad("row", f"has {len(cells)} values but the header has {table.width} columns")

    def label(self, name: str) -> str:
        """The column's name as the file writes it (what the user will look for)."""
        return self.layout.columns.get(name, name)

    def bad(self, name: str, reason: str) -> None:
        self.problems.append(Problem(self.table.source, self.line, self.label(name), reason))

    def text(self, name: str) -> str:
        position = self.table.index.get(name)
        if position is None or position >= len(self.cells):
            return ""
        value = self.cells[position].strip()
        return "" if self.numbers is Numbers.CUSTODIAN and value == "--" else value

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if not value:
            self.bad(name, "missing value")
        return value

    def number(
        self, name: str, *, places: int, required: bool = False, missing: str = "missing value"
    ) -> Decimal | None:
        raw = self.text(name)
        if raw in EMPTY_MARKERS:
            if required:
                self.bad(name, missing)
            return None
        value, reason = parse_number(raw, style=self.numbers, places=places)
        if reason:
            self.bad(name, reason)
        return value

    def date(self, name: str, parser: DateParser, *, required: bool = False) -> dt.date | None:
        raw = self.text(name)
        if not raw:
            if required:
                self.bad(name, "missing value")
            return None
        value, reason = parser(raw)
        if reason:
            self.bad(name, reason)
        return value

    def symbol(self, name: str = "symbol", *, required: bool = True) -> str:
        raw = self.text(name).upper()
        if not raw:
            if required:
                self.bad(name, "missing value")
            return ""
        if not SYMBOL.fullmatch(raw):
            self.bad(name, f"{raw!r} is not a ticker symbol")
            return ""
        return raw


def money_text(value: Decimal) -> str:
    """``$1,234.50``, ``-$1,234.50``."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def sum_decimals(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal("0"))
