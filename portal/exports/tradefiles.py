"""Custodian trade files: block assignment, validation and the CSV writers.

Pure code (no Django, no database, no clock): every function reads an ``OrderSet`` (or orders)
and returns values, so the same input gives byte-identical files. The formats are documented
in ``docs/exports.md`` (section *Custodian trade files*).

- ``assign_blocks``: group orders by (custodian, side, symbol) into blocks with stable ids;
- ``CUSTODIAN_RULES`` / ``rules_for``: what each custodian accepts;
- ``validate``: every violation of an order set, each naming order, account, symbol and field;
- ``write_trade_files``: validate, then render the Schwab-style trade and lot files, the
  Fidelity-style import file, and the generic orders, lots and blocks files;
- ``control_totals`` / ``recount``: a file's control totals, and the same recomputed from its
  bytes (checking the trailer where the format has one).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType

from portal.exports.documents import (
    Block,
    ExportRefused,
    LotInstruction,
    Order,
    OrderSet,
    RenderedFile,
)

__all__ = [
    "CUSTODIAN_RULES",
    "DEFAULT_RULES",
    "FILE_KINDS",
    "CustodianRules",
    "assign_blocks",
    "control_totals",
    "decimal_places",
    "format_money",
    "format_price",
    "format_shares",
    "order_sort_key",
    "recount",
    "rules_for",
    "validate",
    "write_trade_files",
]

CONTENT_TYPE = "text/csv"
LINE_END = "\r\n"
TRAILER = "TRAILER"
MAX_QUANTITY_DECIMALS = 6  # the book's share precision (quantity_field)

# The kinds of file ``write_trade_files`` returns, in the order it returns them.
FILE_KINDS: tuple[str, ...] = (
    "schwab_trades",
    "schwab_lots",
    "fidelity_orders",
    "generic_orders",
    "generic_lots",
    "blocks",
)

_SIDE_RANK = {"sell": 0, "buy": 1}  # sells first: they raise the cash the buys spend
_SIDES = ("buy", "sell")
_ORDER_TYPES = ("market", "limit")
_TIMES_IN_FORCE = ("day", "gtc")
_TERMS = ("short", "long")

_CENT = Decimal("0.01")
_HUNDREDTH_CENT = Decimal("0.0001")


# --------------------------------------------------------------------------- custodian rules


@dataclass(frozen=True)
class CustodianRules:
    """What one custodian accepts in an order.

    ``fractional_decimals`` is the most decimal places a quantity may have when the order's
    account allows fractional shares; without ``allows_fractional`` every custodian takes whole
    shares only. Symbols are 1 to ``symbol_max`` characters of ``symbol_chars``; account numbers
    match ``account_pattern`` in full. A limit price of $1 or more has at most
    ``price_decimals`` decimals (cents); below $1, at most ``sub_dollar_price_decimals``.
    """

    code: str
    name: str
    fractional_decimals: int
    symbol_max: int
    symbol_chars: str  # a regex character class body, e.g. "A-Z0-9./"
    symbol_chars_label: str  # the same for people: "A-Z 0-9 . /"
    account_pattern: str
    account_format: str  # the account pattern for people
    price_decimals: int = 2
    sub_dollar_price_decimals: int = 4

    def symbol_ok(self, symbol: str) -> bool:
        return re.fullmatch(f"[{self.symbol_chars}]{{1,{self.symbol_max}}}", symbol) is not None

    def account_ok(self, account_number: str) -> bool:
        return re.fullmatch(self.account_pattern, account_number) is not None

    def quantity_decimals(self, allows_fractional: bool) -> int:
        return self.fractional_decimals if allows_fractional else 0


CUSTODIAN_RULES: Mapping[str, CustodianRules] = MappingProxyType(
    {
        "schwab": CustodianRules(
            code="schwab",
            name="Charles Schwab",
            fractional_decimals=3,
            symbol_max=8,
            symbol_chars="A-Z0-9./",
            symbol_chars_label="A-Z 0-9 . /",
            account_pattern=r"^[0-9]{8}$",
            account_format="8 digits",
        ),
        "fidelity": CustodianRules(
            code="fidelity",
            name="Fidelity",
            fractional_decimals=3,
            symbol_max=9,
            symbol_chars="A-Z0-9./",
            symbol_chars_label="A-Z 0-9 . /",
            account_pattern=r"^[A-Z][0-9]{2}-[0-9]{6}$",
            account_format="a letter, 2 digits, a hyphen and 6 digits, e.g. Z12-345678",
        ),
        "pershing": CustodianRules(
            code="pershing",
            name="Pershing",
            fractional_decimals=6,
            symbol_max=12,
            symbol_chars="A-Z0-9./-",
            symbol_chars_label="A-Z 0-9 . / -",
            account_pattern=r"^[0-9A-Z]{3}-[0-9]{6}$",
            account_format="3 digits or capital letters, a hyphen and 6 digits, e.g. 4AB-123456",
        ),
    }
)

DEFAULT_RULES = CustodianRules(
    code="",
    name="the custodian",
    fractional_decimals=6,
    symbol_max=12,
    symbol_chars="A-Z0-9./-",
    symbol_chars_label="A-Z 0-9 . / -",
    account_pattern=r"^[A-Za-z0-9-]{4,20}$",
    account_format="4 to 20 characters of A-Z a-z 0-9 -",
)


def rules_for(custodian: str) -> CustodianRules:
    """The rules of a custodian code; ``DEFAULT_RULES`` (generic) for codes not listed."""
    return CUSTODIAN_RULES.get(custodian, DEFAULT_RULES)


# --------------------------------------------------------------------------- number formats


def decimal_places(value: Decimal) -> int:
    """Significant decimal places: 10.50 -> 1, 100 -> 0, 1E+2 -> 0."""
    exponent = value.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # NaN, Infinity
        return 0
    return max(0, -exponent)


def format_shares(value: Decimal) -> str:
    """Fixed notation, no exponent, no trailing zeros: 100, 10.5, 0.125."""
    if value.is_zero():
        return "0"
    return format(value.normalize(), "f")


def format_money(value: Decimal) -> str:
    """Exactly two decimals, half up, no separators or currency sign: 1234.50, -12.00."""
    quantized = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    if quantized.is_zero():
        quantized = quantized.copy_abs()
    return format(quantized, "f")


def format_price(value: Decimal) -> str:
    """Two decimals at $1 or more (half up); below $1, four decimals with trailing zeros
    dropped down to two: 12.30, 0.50, 0.1234, 0.125."""
    if value.copy_abs() >= 1:
        return format_money(value)
    quantized = value.quantize(_HUNDREDTH_CENT, rounding=ROUND_HALF_UP)
    if quantized.is_zero():
        quantized = quantized.copy_abs()
    text = format(quantized, "f")
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return text


def _shown(value: object) -> str:
    """A value in a message: shares notation for finite Decimals, str otherwise."""
    if isinstance(value, Decimal) and value.is_finite():
        return format_shares(value)
    return str(value)


def _places_phrase(n: int) -> str:
    return f"{n} decimal place" if n == 1 else f"{n} decimal places"


# --------------------------------------------------------------------------- blocks


def order_sort_key(order: Order) -> tuple[str, int, str, str, str, str]:
    """The one order of every file: custodian, sells before buys, symbol, account, order id."""
    return (
        order.custodian,
        _SIDE_RANK.get(order.side, len(_SIDE_RANK)),
        order.side,
        order.symbol,
        order.account_number,
        order.order_id,
    )


def _lot_sort_key(lot: LotInstruction) -> tuple[str, str]:
    return (lot.acquired.isoformat(), lot.lot_ref)


def _block_sort_key(block: Block) -> tuple[str, int, str, str, str]:
    return (
        block.custodian,
        _SIDE_RANK.get(block.side, len(_SIDE_RANK)),
        block.side,
        block.symbol,
        block.block_id,
    )


def assign_blocks(
    proposal_id: int, orders: Sequence[Order]
) -> tuple[tuple[Order, ...], tuple[Block, ...]]:
    """Group orders by (custodian, side, symbol); every group is a block, even of one.

    Blocks are numbered from 1 in the order custodian, sells before buys, symbol, with ids
    ``P{proposal_id}-B{n:02d}``. Returns the orders with ``block_id`` set, sorted by
    ``order_sort_key`` (so by block, then account number, then order id), and the blocks with
    their allocations (the same order values, in that order) and exact total quantity.
    """
    groups: dict[tuple[str, int, str, str], list[Order]] = defaultdict(list)
    for order in orders:
        rank = _SIDE_RANK.get(order.side, len(_SIDE_RANK))
        groups[(order.custodian, rank, order.side, order.symbol)].append(order)

    out_orders: list[Order] = []
    blocks: list[Block] = []
    for n, group in enumerate(sorted(groups), start=1):
        block_id = f"P{proposal_id}-B{n:02d}"
        members = sorted(groups[group], key=order_sort_key)
        allocations = tuple(dataclasses.replace(o, block_id=block_id) for o in members)
        first = allocations[0]
        blocks.append(
            Block(
                block_id=block_id,
                custodian=first.custodian,
                side=first.side,
                symbol=first.symbol,
                quantity=sum((o.quantity for o in allocations), Decimal(0)),
                allocations=allocations,
            )
        )
        out_orders.extend(allocations)
    return tuple(out_orders), tuple(blocks)


# --------------------------------------------------------------------------- validation


def _is_number(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


FORMULA_STARTS = ("=", "+", "-", "@")


def text_cell(text: str) -> str:
    """Free text (account and security names) as written to a file a person may open in a
    spreadsheet: a leading ``= + - @`` would make the cell a formula, so it gets a leading
    apostrophe (OWASP's CSV-injection advice). Identifiers (symbols, account numbers) are
    validated against the custodians' formats and never need it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def _order_label(order: Order) -> str:
    return f"{order.order_id} (account {order.account_number}, {order.symbol or 'no symbol'})"


def _order_problems(order: Order, proposal_id: int) -> list[str]:
    """The violations of one order on its own (set-wide rules are in ``validate``)."""
    rules = rules_for(order.custodian)
    custodian = order.custodian_name or rules.name
    found: list[str] = []

    def add(reason: str) -> None:
        found.append(f"{_order_label(order)}: {reason}")

    # identity and enumerations
    if not order.order_id.startswith(f"P{proposal_id}-"):
        add(
            f"order id '{order.order_id}' does not belong to proposal {proposal_id} (P{proposal_id}-...)"
        )
    if not order.custodian:
        add("custodian is empty; every order goes to one custodian")
    if order.side not in _SIDES:
        add(f"side '{order.side}' is neither buy nor sell")
    if order.order_type not in _ORDER_TYPES:
        add(f"order type '{order.order_type}' is neither market nor limit")
    if order.time_in_force not in _TIMES_IN_FORCE:
        add(f"time in force '{order.time_in_force}' is neither day nor gtc")

    # account number and symbol
    if not rules.account_ok(order.account_number):
        add(
            f"account number '{order.account_number}' does not match {custodian}'s "
            f"account number format ({rules.account_format})"
        )
    if not rules.symbol_ok(order.symbol):
        takes = (
            f"{custodian} takes 1 to {rules.symbol_max} characters of {rules.symbol_chars_label}"
        )
        if not order.symbol:
            add(f"symbol is empty; {takes}")
        elif len(order.symbol) > rules.symbol_max:
            add(f"symbol '{order.symbol}' has {len(order.symbol)} characters; {takes}")
        else:
            add(
                f"symbol '{order.symbol}' has characters other than {rules.symbol_chars_label}; {takes}"
            )

    # text written to the files
    for field_label, text in (
        ("account name", order.account_name),
        ("security name", order.security_name),
    ):
        if _has_control_chars(text):
            add(f"{field_label} contains a line break or control character")

    # quantity
    quantity = order.quantity
    if not _is_number(quantity):
        add(f"quantity {quantity!s} is not a number")
    else:
        if quantity <= 0:
            add(f"quantity {_shown(quantity)} must be greater than zero")
        places = decimal_places(quantity)
        allowed = rules.quantity_decimals(order.allows_fractional)
        # a sell that closes whole lots carries the lots' own precision (the custodian holds it)
        closes_lots = (
            order.side == "sell"
            and bool(order.lots)
            and all(lot.shares == lot.lot_shares for lot in order.lots)
            and places <= MAX_QUANTITY_DECIMALS
        )
        if places > allowed and not closes_lots:
            if allowed == 0:
                add(
                    f"quantity {_shown(quantity)} has {_places_phrase(places)}; "
                    f"{custodian} takes whole shares for this account"
                )
            else:
                add(
                    f"quantity {_shown(quantity)} has {_places_phrase(places)}; "
                    f"{custodian} takes at most {allowed} for fractional shares"
                )

    # the estimate the proposal used
    if not _is_number(order.price) or order.price <= 0:
        add(f"price {_shown(order.price)} must be a number greater than zero (the estimate)")
    if not _is_number(order.estimated_value):
        add(f"estimated value {order.estimated_value!s} is not a number")

    # limit price: required iff the order is a limit order, on the tick
    limit = order.limit_price
    if order.order_type == "limit":
        if limit is None:
            add("limit price is missing; a limit order needs one")
        elif not _is_number(limit) or limit <= 0:
            add(f"limit price {_shown(limit)} must be a number greater than zero")
        else:
            tick = rules.price_decimals if limit >= 1 else rules.sub_dollar_price_decimals
            places = decimal_places(limit)
            if places > tick:
                where = "of $1 or more" if limit >= 1 else "below $1"
                add(
                    f"limit price {_shown(limit)} has {_places_phrase(places)}; "
                    f"{custodian} takes at most {tick} for prices {where}"
                )
    elif limit is not None:
        add(f"limit price {_shown(limit)} is set on a market order; only limit orders carry one")

    # lots
    if order.side == "buy" and order.lots:
        n = len(order.lots)
        add(f"lots: a buy relieves no lots, but {n} {'is' if n == 1 else 'are'} given")
    elif order.side == "sell":
        found.extend(_lot_problems(order))
    return found


def _lot_problems(order: Order) -> list[str]:
    label = _order_label(order)
    if not order.lots:
        return [f"{label}: lots are missing; a sell must name the lots it relieves"]
    found: list[str] = []
    counts = Counter(lot.lot_ref for lot in order.lots)
    for ref, n in sorted(counts.items()):
        if n > 1:
            found.append(f"{label}: lot {ref} appears {n} times; each lot at most once per order")
    total = Decimal(0)
    all_numbers = True
    for lot in order.lots:
        ref = lot.lot_ref
        if not ref.strip() or _has_control_chars(ref):
            found.append(f"{label}: lot ref '{ref}' is empty or has a control character")
        if not _is_number(lot.shares):
            found.append(f"{label}: lot {ref} shares {lot.shares!s} is not a number")
            all_numbers = False
            continue
        total += lot.shares
        if lot.shares <= 0:
            found.append(
                f"{label}: lot {ref} shares {_shown(lot.shares)} must be greater than zero"
            )
        if not _is_number(lot.lot_shares):
            found.append(f"{label}: lot {ref} lot shares {lot.lot_shares!s} is not a number")
        elif lot.shares > lot.lot_shares:
            found.append(
                f"{label}: lot {ref} sells {_shown(lot.shares)} shares but holds only "
                f"{_shown(lot.lot_shares)}"
            )
        if not _is_number(lot.cost_basis) or lot.cost_basis < 0:
            found.append(
                f"{label}: lot {ref} cost basis {_shown(lot.cost_basis)} must be a number "
                "of zero or more"
            )
        for field_label, value in (
            ("proceeds", lot.proceeds),
            ("realized gain", lot.realized_gain),
        ):
            if not _is_number(value):
                found.append(f"{label}: lot {ref} {field_label} {value!s} is not a number")
        if lot.term not in _TERMS:
            found.append(f"{label}: lot {ref} term '{lot.term}' is neither short nor long")
    if all_numbers and _is_number(order.quantity) and total != order.quantity:
        found.append(
            f"{label}: lots sum to {_shown(total)} shares but the quantity is "
            f"{_shown(order.quantity)}; they must match exactly"
        )
    return found


def _block_label(block: Block) -> str:
    return f"block {block.block_id} ({block.custodian} {block.side} {block.symbol})"


def _block_problems(order_set: OrderSet, orders_by_id: Mapping[str, Order]) -> list[str]:
    found: list[str] = []
    pid = order_set.proposal_id
    id_counts = Counter(block.block_id for block in order_set.blocks)
    reported: set[str] = set()
    for block in order_set.blocks:
        label = _block_label(block)
        if id_counts[block.block_id] > 1 and block.block_id not in reported:
            reported.add(block.block_id)
            found.append(
                f"{label}: block id appears {id_counts[block.block_id]} times; block ids must be unique"
            )
        if not block.block_id.startswith(f"P{pid}-B"):
            found.append(f"{label}: block id does not belong to proposal {pid} (P{pid}-B..)")
        if not block.allocations:
            found.append(f"{label}: the block has no allocations")
            continue
        alloc_counts = Counter(a.order_id for a in block.allocations)
        for order_id, n in sorted(alloc_counts.items()):
            if n > 1:
                found.append(f"{label}: allocation {order_id} appears {n} times")
        numbers = [a.quantity for a in block.allocations]
        if all(_is_number(q) for q in numbers) and _is_number(block.quantity):
            total = sum(numbers, Decimal(0))
            if total != block.quantity:
                found.append(
                    f"{label}: quantity {_shown(block.quantity)} but its allocations sum to "
                    f"{_shown(total)}; they must match exactly"
                )
        else:
            found.append(f"{label}: quantity {block.quantity!s} or an allocation's is not a number")
        for alloc in block.allocations:
            order = orders_by_id.get(alloc.order_id)
            if order is None:
                found.append(
                    f"{label}: allocation {alloc.order_id} is not one of the proposal's orders"
                )
                continue
            if (alloc.custodian, alloc.side, alloc.symbol) != (
                block.custodian,
                block.side,
                block.symbol,
            ):
                found.append(
                    f"{label}: allocation {alloc.order_id} is a {alloc.side} of {alloc.symbol} "
                    f"at {alloc.custodian}; a block holds one custodian, side and symbol"
                )
            if alloc.block_id != block.block_id:
                found.append(
                    f"{label}: allocation {alloc.order_id} carries block id '{alloc.block_id}'"
                )
            if alloc != order:
                found.append(
                    f"{label}: allocation {alloc.order_id} differs from the order of that id"
                )
    return found


def validate(order_set: OrderSet) -> list[str]:
    """Every violation of the order set: the orders' by order id (P12-002 before P12-010),
    then the blocks'.

    Each message names the order id, account number and symbol (or the block), the field and
    what is wrong. An empty list means the set can be written.
    """
    pid = order_set.proposal_id
    problems: list[str] = []
    if not order_set.orders:
        problems.append(f"Proposal {pid} has no orders to export")

    id_counts = Counter(order.order_id for order in order_set.orders)
    orders_by_id: dict[str, Order] = {}
    first_of_key: dict[tuple[str, str, str, str], str] = {}
    blocks_by_id: dict[str, Block] = {}
    for block in order_set.blocks:
        blocks_by_id.setdefault(block.block_id, block)

    for order in sorted(order_set.orders, key=lambda o: (len(o.order_id), o.order_id)):
        label = _order_label(order)
        problems.extend(_order_problems(order, pid))

        if order.order_id in orders_by_id:
            problems.append(
                f"{label}: order id is used by {id_counts[order.order_id]} orders; "
                "order ids must be unique"
            )
        else:
            orders_by_id[order.order_id] = order

        key = (order.custodian, order.account_number, order.symbol, order.side)
        if key in first_of_key:
            problems.append(
                f"{label}: side {order.side} repeats order {first_of_key[key]}; "
                "one order per account, symbol and side"
            )
        else:
            first_of_key[key] = order.order_id

        own_block = blocks_by_id.get(order.block_id)
        if own_block is None:
            problems.append(
                f"{label}: block id '{order.block_id}' is not among the proposal's blocks"
            )
        elif all(a.order_id != order.order_id for a in own_block.allocations):
            problems.append(
                f"{label}: block id '{order.block_id}' names a block whose allocations "
                "do not include this order"
            )

    problems.extend(_block_problems(order_set, orders_by_id))
    return problems


# --------------------------------------------------------------------------- writers


def _csv_bytes(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=LINE_END, quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _total(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _limit(order: Order) -> str:
    return format_price(order.limit_price) if order.limit_price is not None else ""


_ACTION = {"buy": "Buy", "sell": "Sell"}
_ORDER_TYPE = {"market": "Market", "limit": "Limit"}
_TIF = {"day": "Day", "gtc": "GTC"}

SCHWAB_TRADES_HEADER = (
    "Order ID",
    "Block ID",
    "Account Number",
    "Action",
    "Quantity",
    "Symbol",
    "Order Type",
    "Time in Force",
    "Limit Price",
    "Lot Relief Method",
)
SCHWAB_LOTS_HEADER = (
    "Order ID",
    "Account Number",
    "Symbol",
    "Lot ID",
    "Acquired Date",
    "Shares",
    "Cost Basis",
)
FIDELITY_HEADER = (
    "Account Number",
    "Account Type",
    "Action",
    "Quantity",
    "Symbol",
    "Price Type",
    "Time in Force",
    "Limit Price",
)
FIDELITY_CASH_ACCOUNT_TYPE = "1"
GENERIC_ORDERS_HEADER = (
    "proposal_id",
    "order_id",
    "block_id",
    "custodian",
    "account_number",
    "account_name",
    "registration",
    "side",
    "symbol",
    "security_name",
    "quantity",
    "order_type",
    "time_in_force",
    "limit_price",
    "estimated_price",
    "estimated_value",
    "lots",
)
GENERIC_LOTS_HEADER = (
    "proposal_id",
    "order_id",
    "block_id",
    "custodian",
    "account_number",
    "symbol",
    "lot_ref",
    "acquired",
    "term",
    "shares",
    "lot_shares",
    "cost_basis",
    "proceeds",
    "realized_gain",
)
BLOCKS_HEADER = (
    "record",
    "block_id",
    "custodian",
    "side",
    "symbol",
    "quantity",
    "allocations",
    "order_id",
    "account_number",
)


def _schwab_trades(pid: int, orders: Sequence[Order]) -> RenderedFile:
    rows: list[Sequence[str]] = [SCHWAB_TRADES_HEADER]
    for o in orders:
        rows.append(
            (
                o.order_id,
                o.block_id,
                o.account_number,
                _ACTION[o.side],
                format_shares(o.quantity),
                o.symbol,
                _ORDER_TYPE[o.order_type],
                _TIF[o.time_in_force],
                _limit(o),
                "Specific Lot" if o.side == "sell" else "",
            )
        )
    total = _total(o.quantity for o in orders)
    rows.append((TRAILER, str(len(orders)), format_shares(total)))
    return RenderedFile(
        kind="schwab_trades",
        name=f"proposal-{pid}-schwab-trades.csv",
        content=_csv_bytes(rows),
        content_type=CONTENT_TYPE,
        order_count=len(orders),
        total_shares=total,
    )


def _lot_rows(orders: Sequence[Order]) -> list[tuple[Order, LotInstruction]]:
    return [
        (o, lot) for o in orders if o.side == "sell" for lot in sorted(o.lots, key=_lot_sort_key)
    ]


def _schwab_lots(pid: int, orders: Sequence[Order]) -> RenderedFile:
    lots = _lot_rows(orders)
    rows: list[Sequence[str]] = [SCHWAB_LOTS_HEADER]
    for o, lot in lots:
        rows.append(
            (
                o.order_id,
                o.account_number,
                o.symbol,
                lot.lot_ref,
                lot.acquired.strftime("%m/%d/%Y"),
                format_shares(lot.shares),
                format_money(lot.cost_basis),
            )
        )
    total = _total(lot.shares for _, lot in lots)
    rows.append((TRAILER, str(len(lots)), format_shares(total)))
    return RenderedFile(
        kind="schwab_lots",
        name=f"proposal-{pid}-schwab-lots.csv",
        content=_csv_bytes(rows),
        content_type=CONTENT_TYPE,
        order_count=len(lots),
        total_shares=total,
    )


def _fidelity_orders(pid: int, orders: Sequence[Order]) -> RenderedFile:
    rows: list[Sequence[str]] = [FIDELITY_HEADER]
    for o in orders:
        rows.append(
            (
                o.account_number,
                FIDELITY_CASH_ACCOUNT_TYPE,
                _ACTION[o.side],
                format_shares(o.quantity),
                o.symbol,
                _ORDER_TYPE[o.order_type],
                _TIF[o.time_in_force],
                _limit(o),
            )
        )
    return RenderedFile(
        kind="fidelity_orders",
        name=f"proposal-{pid}-fidelity-orders.csv",
        content=_csv_bytes(rows),
        content_type=CONTENT_TYPE,
        order_count=len(orders),
        total_shares=_total(o.quantity for o in orders),
    )


def _generic_orders(pid: int, orders: Sequence[Order]) -> RenderedFile:
    rows: list[Sequence[str]] = [GENERIC_ORDERS_HEADER]
    for o in orders:
        rows.append(
            (
                str(pid),
                o.order_id,
                o.block_id,
                o.custodian,
                o.account_number,
                text_cell(o.account_name),
                o.registration,
                o.side,
                o.symbol,
                text_cell(o.security_name),
                format_shares(o.quantity),
                o.order_type,
                o.time_in_force,
                _limit(o),
                format_price(o.price),
                format_money(o.estimated_value),
                str(len(o.lots)),
            )
        )
    return RenderedFile(
        kind="generic_orders",
        name=f"proposal-{pid}-orders.csv",
        content=_csv_bytes(rows),
        content_type=CONTENT_TYPE,
        order_count=len(orders),
        total_shares=_total(o.quantity for o in orders),
    )


def _generic_lots(pid: int, orders: Sequence[Order]) -> RenderedFile:
    lots = _lot_rows(orders)
    rows: list[Sequence[str]] = [GENERIC_LOTS_HEADER]
    for o, lot in lots:
        rows.append(
            (
                str(pid),
                o.order_id,
                o.block_id,
                o.custodian,
                o.account_number,
                o.symbol,
                lot.lot_ref,
                lot.acquired.isoformat(),
                lot.term,
                format_shares(lot.shares),
                format_shares(lot.lot_shares),
                format_money(lot.cost_basis),
                format_money(lot.proceeds),
                format_money(lot.realized_gain),
            )
        )
    return RenderedFile(
        kind="generic_lots",
        name=f"proposal-{pid}-lots.csv",
        content=_csv_bytes(rows),
        content_type=CONTENT_TYPE,
        order_count=len(lots),
        total_shares=_total(lot.shares for _, lot in lots),
    )


def _blocks(pid: int, blocks: Sequence[Block]) -> RenderedFile:
    rows: list[Sequence[str]] = [BLOCKS_HEADER]
    count = 0
    total = Decimal(0)
    for b in sorted(blocks, key=_block_sort_key):
        allocations = sorted(b.allocations, key=order_sort_key)
        rows.append(
            (
                "block",
                b.block_id,
                b.custodian,
                b.side,
                b.symbol,
                format_shares(b.quantity),
                str(len(allocations)),
                "",
                "",
            )
        )
        for a in allocations:
            rows.append(
                (
                    "allocation",
                    b.block_id,
                    b.custodian,
                    b.side,
                    b.symbol,
                    format_shares(a.quantity),
                    "",
                    a.order_id,
                    a.account_number,
                )
            )
            count += 1
            total += a.quantity
    return RenderedFile(
        kind="blocks",
        name=f"proposal-{pid}-blocks.csv",
        content=_csv_bytes(rows),
        content_type=CONTENT_TYPE,
        order_count=count,
        total_shares=total,
    )


def write_trade_files(order_set: OrderSet) -> list[RenderedFile]:
    """Validate, then render every trade file of the order set, in ``FILE_KINDS`` order.

    Raises ``ExportRefused`` naming every problem when ``validate`` finds any. The Schwab
    trade file is written when there are Schwab orders, the Schwab lot file when there are
    Schwab sells, the Fidelity file when there are Fidelity orders; the generic orders, lots
    and blocks files always.
    """
    problems = validate(order_set)
    if problems:
        n = len(problems)
        raise ExportRefused(
            f"Proposal {order_set.proposal_id} cannot be exported: "
            f"{n} problem{'' if n == 1 else 's'}",
            problems,
        )
    pid = order_set.proposal_id
    orders = sorted(order_set.orders, key=order_sort_key)
    schwab = [o for o in orders if o.custodian == "schwab"]
    fidelity = [o for o in orders if o.custodian == "fidelity"]

    files: list[RenderedFile] = []
    if schwab:
        files.append(_schwab_trades(pid, schwab))
    if any(o.side == "sell" for o in schwab):
        files.append(_schwab_lots(pid, schwab))
    if fidelity:
        files.append(_fidelity_orders(pid, fidelity))
    files.append(_generic_orders(pid, orders))
    files.append(_generic_lots(pid, orders))
    files.append(_blocks(pid, order_set.blocks))
    return files


# --------------------------------------------------------------------------- control totals


def control_totals(file: RenderedFile) -> dict[str, str | int]:
    """A file's control totals as a manifest entry (JSON-ready: shares as a string)."""
    return {
        "kind": file.kind,
        "name": file.name,
        "order_count": file.order_count,
        "total_shares": format_shares(file.total_shares),
    }


_SHARES_COLUMN = {
    "schwab_trades": "Quantity",
    "schwab_lots": "Shares",
    "fidelity_orders": "Quantity",
    "generic_orders": "quantity",
    "generic_lots": "shares",
    "blocks": "quantity",
}


def recount(file: RenderedFile) -> tuple[int, Decimal]:
    """Count the rows and add up the shares of a trade file from its bytes.

    Data rows are every row after the header except a ``TRAILER`` row and, in the blocks file,
    the ``block`` rows (allocations are counted). A trailer that disagrees with the rows raises
    ``ValueError``; so does a kind this module does not write.
    """
    column = _SHARES_COLUMN.get(file.kind)
    if column is None:
        raise ValueError(f"{file.name}: not a trade file ({file.kind})")
    rows = list(csv.reader(io.StringIO(file.content.decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    index = header.index(column)
    trailer = None
    if body and body[-1] and body[-1][0] == TRAILER:
        trailer, body = body[-1], body[:-1]
    if file.kind == "blocks":
        body = [row for row in body if row[0] == "allocation"]
    try:
        total = _total(Decimal(row[index]) for row in body)
    except (InvalidOperation, IndexError) as exc:
        raise ValueError(f"{file.name}: unreadable {column} column") from exc
    if trailer is not None:
        expected = (str(len(body)), format_shares(total))
        if tuple(trailer[1:3]) != expected:
            raise ValueError(
                f"{file.name}: trailer says {trailer[1:3]} but the rows give {list(expected)}"
            )
    return len(body), total
