"""The tax-lot engine: transactions in, open lots and a realized-gains ledger out.

Pure Python (stdlib only, no Django, no I/O). Money and share quantities are ``Decimal``
(dollars and shares), dates are ``datetime.date``. Every policy choice implemented here is
written down in ``docs/taxlots.md``; the short version:

* Transactions are applied in a stable order: by trade date, then by input position.
* Lot relief: FIFO, HIFO, specific identification (``lot_id`` on a sell) or minimum tax.
* Money is rounded to the cent (``ROUND_HALF_UP``) at exactly three places: the cost of a buy,
  the proceeds of a sale, and the basis relieved from (or split off) a lot. What stays on a lot
  is always ``basis - relieved``, so no cent is ever created or lost.
* Long term means held more than one year: a sale is long-term when
  ``sale date > holding-period start + 1 calendar year`` (Feb 29 + 1 year = Feb 28).
* Wash sales (IRC §1091): a loss sale in a taxable account is washed, pro rata by shares, by
  acquisitions of the same ``identical_group`` within 30 days before or after (inclusive), in
  any account given to the engine (one call = one household). Replacement shares are matched
  first-acquired first and each replacement share absorbs at most one wash sale; a lot that is
  only partly a replacement is split so that exactly the replacement shares carry the
  adjustment. A taxable replacement gets the disallowed loss added to its basis and its holding
  period tacked; an IRA or Roth IRA replacement disallows the loss permanently.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

ZERO: Final = Decimal("0")
CENT: Final = Decimal("0.01")
NO_MONEY: Final = Decimal("0.00")

BUY: Final = "BUY"
SELL: Final = "SELL"
TRANSFER_IN: Final = "TRANSFER_IN"
ACTIONS: Final = (BUY, SELL, TRANSFER_IN)

TAXABLE: Final = "taxable"
IRA: Final = "ira"
ROTH_IRA: Final = "roth_ira"
ACCOUNT_TYPES: Final = (TAXABLE, IRA, ROTH_IRA)
TAX_ADVANTAGED: Final = frozenset({IRA, ROTH_IRA})

FIFO: Final = "fifo"
HIFO: Final = "hifo"
SPECIFIC: Final = "specific"
MINIMUM_TAX: Final = "minimum_tax"
METHODS: Final = (FIFO, HIFO, SPECIFIC, MINIMUM_TAX)

WASH_SALE_DAYS: Final = 30
"""Days before and after a loss sale (both ends inclusive) in which an acquisition washes it."""

Term = Literal["short", "long"]


def cents(amount: Decimal) -> Decimal:
    """Round dollars to the cent, half up (``2.345 -> 2.35``, ``-2.345 -> -2.35``)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _fmt(value: Decimal) -> str:
    """A Decimal as plain text, never in exponent notation (``1E+2`` -> ``100``)."""
    return format(value, "f")


def _shares(quantity: Decimal) -> str:
    """``1 share``, ``2.5 shares``."""
    return f"{_fmt(quantity)} share{'' if quantity == 1 else 's'}"


# --------------------------------------------------------------------------- holding period


def one_year_after(day: dt.date) -> dt.date:
    """The same calendar day one year later; Feb 29 maps to Feb 28 of the next year."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # Feb 29 in a leap year: the next year has no Feb 29.
        return day.replace(year=day.year + 1, day=28)


def long_term_date(holding_period_start: dt.date) -> dt.date:
    """First sale date that is long-term for shares whose holding period starts on this date.

    Long term is "held more than one year": the holding period starts the day after the
    acquisition and a full year of it ends on the anniversary, so the first long-term sale date
    is the anniversary plus one day (Jan 15, 2024 -> Jan 16, 2025; Feb 29, 2024 -> Mar 1, 2025).
    """
    return one_year_after(holding_period_start) + dt.timedelta(days=1)


def holding_term(acquired: dt.date, sold: dt.date) -> Term:
    """``"long"`` if ``sold`` is more than one year after ``acquired``, else ``"short"``.

    ``acquired`` is the holding-period start (after any wash-sale tacking). Selling exactly on
    the anniversary is still short-term; the day after is long-term.
    """
    return "long" if sold > one_year_after(acquired) else "short"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, kw_only=True)
class TaxRates:
    """Marginal rates (fractions, 0.37 = 37%) used only to order lots for ``minimum_tax``."""

    short_term: Decimal = Decimal("0.37")
    long_term: Decimal = Decimal("0.20")

    def rate(self, term: Term) -> Decimal:
        """The rate applying to a gain of this term."""
        return self.long_term if term == "long" else self.short_term


@dataclass(frozen=True, kw_only=True)
class Transaction:
    """One buy, sell or transfer-in of shares in one account.

    ``quantity`` is in shares (> 0), ``price`` and ``fee`` in dollars (price per share, fee per
    transaction, both >= 0). On a BUY or TRANSFER_IN, ``lot_id`` names the new lot (generated
    when empty); on a SELL it asks for specific identification of that lot. A TRANSFER_IN
    brings in an existing lot: ``cost_basis`` (total dollars) and ``acquired`` are required,
    ``holding_period_start`` defaults to ``acquired``, ``price`` is ignored. ``identical_group``
    names the wash-sale group ("substantially identical" securities); it defaults to the
    symbol. ``line`` and ``source`` locate the transaction in its file for error messages.
    """

    trade_date: dt.date
    account: str
    action: str
    symbol: str
    quantity: Decimal
    price: Decimal = ZERO
    account_type: str = TAXABLE
    owner: str = ""
    fee: Decimal = ZERO
    lot_id: str | None = None
    identical_group: str | None = None
    cost_basis: Decimal | None = None
    acquired: dt.date | None = None
    holding_period_start: dt.date | None = None
    line: int | None = None
    source: str | None = None

    @property
    def group(self) -> str:
        """The wash-sale group: ``identical_group`` when given, else the symbol."""
        return self.identical_group or self.symbol


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused: where (file, line or position), which field, why."""

    source: str | None
    line: int | None
    field: str
    reason: str
    transaction: int | None = None
    """1-based position of the transaction in the engine's input, when no line is known."""

    def where(self) -> str:
        """``file.csv:12``, ``line 12``, ``transaction 3`` or ``input``."""
        if self.line is not None:
            return f"{self.source}:{self.line}" if self.source else f"line {self.line}"
        if self.source:
            return self.source
        if self.transaction is not None:
            return f"transaction {self.transaction}"
        return "input"

    def __str__(self) -> str:
        return f"{self.where()}: {self.field}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
        }


class TaxLotInputError(ValueError):
    """Input the engine refuses; ``problems`` lists every problem found, in input order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class LedgerError(TaxLotInputError):
    """Transactions that cannot be applied (invalid values, oversells, unknown lots)."""


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, kw_only=True)
class OpenLot:
    """Shares still held: basis in dollars (including ``wash_sale_adjustment``), quantity in shares.

    ``origin_lot_id`` is the lot of the acquisition these shares come from: it differs from
    ``lot_id`` when a wash sale split off part of that lot as replacement shares.
    """

    lot_id: str
    origin_lot_id: str
    account: str
    account_type: str
    owner: str
    symbol: str
    identical_group: str
    quantity: Decimal
    cost_basis: Decimal
    acquired: dt.date
    holding_period_start: dt.date
    wash_sale_adjustment: Decimal

    @property
    def long_term_date(self) -> dt.date:
        """First sale date on which these shares are long-term."""
        return long_term_date(self.holding_period_start)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lot_id": self.lot_id,
            "origin_lot_id": self.origin_lot_id,
            "account": self.account,
            "account_type": self.account_type,
            "owner": self.owner,
            "symbol": self.symbol,
            "identical_group": self.identical_group,
            "quantity": _fmt(self.quantity),
            "cost_basis": _fmt(self.cost_basis),
            "acquired": self.acquired.isoformat(),
            "holding_period_start": self.holding_period_start.isoformat(),
            "long_term_date": self.long_term_date.isoformat(),
            "wash_sale_adjustment": _fmt(self.wash_sale_adjustment),
        }


@dataclass(frozen=True, kw_only=True)
class RealizedGain:
    """Shares of one lot disposed of by one sale (dollars, shares).

    ``gain = proceeds - cost_basis`` (negative for a loss). ``wash_sale_disallowed`` (>= 0) is
    the part of a loss disallowed by §1091, of which ``wash_sale_permanent`` went to IRA/Roth
    replacements and is lost for good; the rest was added to the basis of the replacement lots
    (``replaced_by``, their origin lot ids). ``allowed_gain = gain + wash_sale_disallowed`` is
    what counts on the return (Form 8949 column h). ``taxable`` is false for IRA/Roth sales.
    """

    sale_date: dt.date
    account: str
    account_type: str
    owner: str
    symbol: str
    identical_group: str
    lot_id: str
    acquired: dt.date
    holding_period_start: dt.date
    quantity: Decimal
    proceeds: Decimal
    cost_basis: Decimal
    gain: Decimal
    term: Term
    wash_sale_disallowed: Decimal = NO_MONEY
    wash_sale_permanent: Decimal = NO_MONEY
    replacement_shares: Decimal = ZERO
    replaced_by: tuple[str, ...] = ()
    taxable: bool = True
    line: int | None = None

    @property
    def allowed_gain(self) -> Decimal:
        """Gain or loss that counts for tax after the wash-sale disallowance."""
        return self.gain + self.wash_sale_disallowed

    def to_dict(self) -> dict[str, Any]:
        return {
            "sale_date": self.sale_date.isoformat(),
            "account": self.account,
            "account_type": self.account_type,
            "owner": self.owner,
            "symbol": self.symbol,
            "identical_group": self.identical_group,
            "lot_id": self.lot_id,
            "acquired": self.acquired.isoformat(),
            "holding_period_start": self.holding_period_start.isoformat(),
            "quantity": _fmt(self.quantity),
            "proceeds": _fmt(self.proceeds),
            "cost_basis": _fmt(self.cost_basis),
            "gain": _fmt(self.gain),
            "allowed_gain": _fmt(self.allowed_gain),
            "term": self.term,
            "wash_sale_disallowed": _fmt(self.wash_sale_disallowed),
            "wash_sale_permanent": _fmt(self.wash_sale_permanent),
            "replacement_shares": _fmt(self.replacement_shares),
            "replaced_by": list(self.replaced_by),
            "taxable": self.taxable,
            "line": self.line,
        }


@dataclass(frozen=True)
class LedgerResult:
    """Open lots (by account, symbol, acquisition), realized rows (in sale order), warnings."""

    open_lots: tuple[OpenLot, ...]
    realized: tuple[RealizedGain, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_lots": [lot.to_dict() for lot in self.open_lots],
            "realized": [row.to_dict() for row in self.realized],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- engine internals


@dataclass(slots=True, eq=False)
class _Lot:
    lot_id: str
    origin: str
    part: int
    seq: int
    account: str
    account_type: str
    owner: str
    symbol: str
    group: str
    quantity: Decimal
    basis: Decimal
    adjustment: Decimal
    acquired: dt.date
    hps: dt.date
    used: bool = False

    def order(self) -> tuple[dt.date, int, int]:
        """Acquisition order: acquisition date, input position of the acquisition, split part."""
        return (self.acquired, self.seq, self.part)

    def freeze(self) -> OpenLot:
        return OpenLot(
            lot_id=self.lot_id,
            origin_lot_id=self.origin,
            account=self.account,
            account_type=self.account_type,
            owner=self.owner,
            symbol=self.symbol,
            identical_group=self.group,
            quantity=self.quantity,
            cost_basis=self.basis,
            acquired=self.acquired,
            holding_period_start=self.hps,
            wash_sale_adjustment=self.adjustment,
        )


@dataclass(slots=True)
class _Claim:
    """Replacement shares of a future buy claimed by an earlier loss sale."""

    shares: Decimal
    disallowed: Decimal
    permanent: bool
    days_held: int


@dataclass(slots=True)
class _Row:
    sale_date: dt.date
    lot: _Lot
    quantity: Decimal
    proceeds: Decimal
    basis: Decimal
    acquired: dt.date
    hps: dt.date
    disallowed: Decimal = NO_MONEY
    permanent: Decimal = NO_MONEY
    replacement_shares: Decimal = ZERO
    replaced_by: list[str] = field(default_factory=list)


def _problem(txn: Transaction, seq: int, field_name: str, reason: str) -> Problem:
    return Problem(txn.source, txn.line, field_name, reason, transaction=seq + 1)


def _where(txn: Transaction, seq: int) -> str:
    return _problem(txn, seq, "", "").where()


def _not_decimal(value: object) -> bool:
    """True unless ``value`` is a finite ``Decimal`` (floats and ints are refused: money is exact)."""
    return not isinstance(value, Decimal) or not value.is_finite()


def _show(value: object) -> str:
    """A Decimal as its number, anything else as its repr (so a float shows as one)."""
    return str(value) if isinstance(value, Decimal) else repr(value)


def validate_transactions(txns: list[Transaction], *, method: str = FIFO) -> list[Problem]:
    """Every structural problem of the input, in input order.

    Checks values (positive quantity, non-negative price, fee and basis, known action and
    account type, transfer-in fields), one account type and owner per account, unique lot ids
    of acquisitions, and a lot id on every sell when ``method`` is ``specific``.
    """
    problems: list[Problem] = []
    accounts: dict[str, tuple[str, str, int]] = {}
    lot_ids: dict[str, int] = {}
    for seq, txn in enumerate(txns):

        def bad(field_name: str, reason: str, txn: Transaction = txn, seq: int = seq) -> None:
            problems.append(_problem(txn, seq, field_name, reason))

        if not txn.account:
            bad("account", "is empty")
        if not txn.symbol:
            bad("symbol", "is empty")
        if txn.action not in ACTIONS:
            bad("action", f"unknown action {txn.action!r} (expected {', '.join(ACTIONS)})")
        if txn.account_type not in ACCOUNT_TYPES:
            bad(
                "account_type",
                f"unknown account type {txn.account_type!r} (expected {', '.join(ACCOUNT_TYPES)})",
            )
        if _not_decimal(txn.quantity) or txn.quantity <= ZERO:
            bad(
                "quantity",
                f"must be a positive Decimal number of shares, got {_show(txn.quantity)}",
            )
        if _not_decimal(txn.price) or txn.price < ZERO:
            bad("price", f"must be a non-negative Decimal price, got {_show(txn.price)}")
        if _not_decimal(txn.fee) or txn.fee < ZERO:
            bad("fee", f"must be a non-negative Decimal amount, got {_show(txn.fee)}")
        if txn.action == TRANSFER_IN:
            if txn.cost_basis is None:
                bad("cost_basis", "is required for a TRANSFER_IN")
            elif _not_decimal(txn.cost_basis) or txn.cost_basis < ZERO:
                bad(
                    "cost_basis",
                    f"must be a non-negative Decimal amount, got {_show(txn.cost_basis)}",
                )
            if txn.acquired is None:
                bad("acquired", "is required for a TRANSFER_IN")
            elif txn.acquired > txn.trade_date:
                bad("acquired", f"{txn.acquired} is after the transfer date {txn.trade_date}")
            start = txn.holding_period_start
            if start is not None and txn.acquired is not None and start > txn.acquired:
                bad("holding_period_start", f"{start} is after the acquisition {txn.acquired}")
        if txn.action == SELL and method == SPECIFIC and not txn.lot_id:
            bad("lot_id", "method 'specific' needs the lot id of every sell")
        if txn.action in (BUY, TRANSFER_IN) and txn.lot_id:
            first = lot_ids.setdefault(txn.lot_id, seq)
            if first != seq:
                bad("lot_id", f"lot id {txn.lot_id!r} already used by {_where(txns[first], first)}")
        if txn.account and txn.account_type in ACCOUNT_TYPES:
            declared = accounts.setdefault(txn.account, (txn.account_type, txn.owner, seq))
            if declared[0] != txn.account_type:
                bad(
                    "account_type",
                    f"account {txn.account!r} is {declared[0]!r} at "
                    f"{_where(txns[declared[2]], declared[2])}, not {txn.account_type!r}",
                )
            if declared[1] != txn.owner:
                bad(
                    "owner",
                    f"account {txn.account!r} belongs to {declared[1]!r} at "
                    f"{_where(txns[declared[2]], declared[2])}, not {txn.owner!r}",
                )
    return problems


class _Ledger:
    """One pass over a household's transactions; see ``apply_transactions``."""

    def __init__(self, txns: list[Transaction], method: str, rates: TaxRates) -> None:
        self.txns = txns
        self.method = method
        self.rates = rates
        self.order = sorted(range(len(txns)), key=lambda i: (txns[i].trade_date, i))
        self.rank = [0] * len(txns)
        for position, seq in enumerate(self.order):
            self.rank[seq] = position
        self.positions: dict[tuple[str, str], list[_Lot]] = defaultdict(list)
        self.lots: dict[str, _Lot] = {}
        self.origin_parts: dict[str, list[_Lot]] = {}
        self.origin_disposed: dict[str, Decimal] = defaultdict(Decimal)
        self.next_part: dict[str, int] = defaultdict(lambda: 1)
        self.future_claims: dict[int, list[_Claim]] = defaultdict(list)
        self.future_claimed: dict[int, Decimal] = defaultdict(Decimal)
        self.realized: list[RealizedGain] = []
        self.warnings: list[str] = []
        self.problems: list[Problem] = []
        self.lot_ids = self._assign_lot_ids()
        self.reserved_ids = set(self.lot_ids.values())
        # Buys by wash-sale group, in processing order, with their dates for bisect.
        self.group_buys: dict[str, list[int]] = defaultdict(list)
        self.group_buy_dates: dict[str, list[dt.date]] = defaultdict(list)
        for seq in self.order:
            txn = txns[seq]
            if txn.action == BUY:
                self.group_buys[txn.group].append(seq)
                self.group_buy_dates[txn.group].append(txn.trade_date)

    def _assign_lot_ids(self) -> dict[int, str]:
        """Lot id of every acquisition: its own ``lot_id`` or ``<account>-<line or position>``."""
        taken = {t.lot_id for t in self.txns if t.action in (BUY, TRANSFER_IN) and t.lot_id}
        ids: dict[int, str] = {}
        for seq, txn in enumerate(self.txns):
            if txn.action not in (BUY, TRANSFER_IN):
                continue
            if txn.lot_id:
                ids[seq] = txn.lot_id
                continue
            base = f"{txn.account}-{txn.line if txn.line is not None else seq + 1}"
            candidate, suffix = base, 1
            while candidate in taken:
                suffix += 1
                candidate = f"{base}#{suffix}"
            taken.add(candidate)
            ids[seq] = candidate
        return ids

    # -- lots

    def _add_lot(self, lot: _Lot) -> None:
        self.lots[lot.lot_id] = lot
        self.origin_parts.setdefault(lot.origin, []).append(lot)
        bisect.insort(self.positions[(lot.account, lot.symbol)], lot, key=_Lot.order)

    def _split(self, lot: _Lot, shares: Decimal) -> _Lot:
        """Split ``shares`` off ``lot`` into a new part; basis and adjustment pro rata, cents exact."""
        part_no = self.next_part[lot.origin]
        part_id = f"{lot.origin}.{part_no}"
        while part_id in self.lots or part_id in self.reserved_ids:
            part_no += 1
            part_id = f"{lot.origin}.{part_no}"
        self.next_part[lot.origin] = part_no + 1
        basis = cents(lot.basis * shares / lot.quantity)
        adjustment = cents(lot.adjustment * shares / lot.quantity)
        part = _Lot(
            lot_id=part_id,
            origin=lot.origin,
            part=part_no,
            seq=lot.seq,
            account=lot.account,
            account_type=lot.account_type,
            owner=lot.owner,
            symbol=lot.symbol,
            group=lot.group,
            quantity=shares,
            basis=basis,
            adjustment=adjustment,
            acquired=lot.acquired,
            hps=lot.hps,
            used=lot.used,
        )
        lot.quantity -= shares
        lot.basis -= basis
        lot.adjustment -= adjustment
        self._add_lot(part)
        return part

    def _mark_replacement(self, lot: _Lot, claim: _Claim) -> None:
        """Make ``claim.shares`` of ``lot`` replacement shares, splitting the lot if needed."""
        target = lot if claim.shares == lot.quantity else self._split(lot, claim.shares)
        target.used = True
        if not claim.permanent:
            target.basis += claim.disallowed
            target.adjustment += claim.disallowed
            target.hps = target.acquired - dt.timedelta(days=claim.days_held)

    # -- transactions

    def run(self) -> LedgerResult:
        for seq in self.order:
            txn = self.txns[seq]
            if txn.action == SELL:
                self._sell(seq, txn)
            else:
                self._acquire(seq, txn)
        if self.problems:
            raise LedgerError(sorted(self.problems, key=lambda p: p.transaction or 0))
        open_lots = sorted(
            (lot for lot in self.lots.values() if lot.quantity > ZERO),
            key=lambda lot: (lot.account, lot.symbol, lot.order()),
        )
        return LedgerResult(
            open_lots=tuple(lot.freeze() for lot in open_lots),
            realized=tuple(self.realized),
            warnings=tuple(self.warnings),
        )

    def _acquire(self, seq: int, txn: Transaction) -> None:
        lot_id = self.lot_ids[seq]
        if txn.action == TRANSFER_IN:
            assert txn.cost_basis is not None and txn.acquired is not None  # validated
            basis = cents(txn.cost_basis)
            acquired = txn.acquired
            hps = txn.holding_period_start or acquired
        else:
            basis = cents(txn.quantity * txn.price + txn.fee)
            acquired = hps = txn.trade_date
        lot = _Lot(
            lot_id=lot_id,
            origin=lot_id,
            part=0,
            seq=seq,
            account=txn.account,
            account_type=txn.account_type,
            owner=txn.owner,
            symbol=txn.symbol,
            group=txn.group,
            quantity=txn.quantity,
            basis=basis,
            adjustment=NO_MONEY,
            acquired=acquired,
            hps=hps,
        )
        self._add_lot(lot)
        for claim in self.future_claims.pop(seq, []):
            self._mark_replacement(lot, claim)

    def _relief(self, seq: int, txn: Transaction, lots: list[_Lot]) -> list[tuple[_Lot, Decimal]]:
        """Lots to relieve and how many shares of each, or ``[]`` after recording a problem."""
        quantity = txn.quantity
        if txn.lot_id:
            chosen = sorted(
                (lot for lot in lots if lot.lot_id == txn.lot_id or lot.origin == txn.lot_id),
                key=_Lot.order,
            )
            if not chosen:
                known = self.lots.get(txn.lot_id)
                if known is None:
                    reason = f"unknown lot {txn.lot_id!r}"
                elif known.quantity == ZERO:
                    reason = f"lot {txn.lot_id!r} is already closed"
                else:
                    reason = (
                        f"lot {txn.lot_id!r} holds {known.symbol} in account {known.account!r},"
                        f" not {txn.symbol} in {txn.account!r}"
                    )
                self.problems.append(_problem(txn, seq, "lot_id", reason))
                return []
            held = sum((lot.quantity for lot in chosen), ZERO)
            if quantity > held:
                self.problems.append(
                    _problem(
                        txn,
                        seq,
                        "quantity",
                        f"sell of {_fmt(quantity)} {txn.symbol} from lot {txn.lot_id!r}, which "
                        f"holds {_fmt(held)}: short by {_shares(quantity - held)}",
                    )
                )
                return []
        else:
            held = sum((lot.quantity for lot in lots), ZERO)
            if quantity > held:
                self.problems.append(
                    _problem(
                        txn,
                        seq,
                        "quantity",
                        f"sell of {_fmt(quantity)} {txn.symbol} on {txn.trade_date} but account "
                        f"{txn.account!r} holds {_fmt(held)}: short by {_shares(quantity - held)}",
                    )
                )
                return []
            chosen = self._ordered(lots, txn)
        relief: list[tuple[_Lot, Decimal]] = []
        remaining = quantity
        for lot in chosen:
            if remaining == ZERO:
                break
            take = min(lot.quantity, remaining)
            relief.append((lot, take))
            remaining -= take
        return relief

    def _ordered(self, lots: list[_Lot], txn: Transaction) -> list[_Lot]:
        """Lots in relief order for the method (position lists are kept in FIFO order)."""
        if self.method == HIFO:
            return sorted(lots, key=lambda lot: (-(lot.basis / lot.quantity), lot.order()))
        if self.method == MINIMUM_TAX:
            sold = txn.trade_date
            price = txn.price
            rates = self.rates

            def tax_per_share(lot: _Lot) -> tuple[Decimal, tuple[dt.date, int, int]]:
                gain = price - lot.basis / lot.quantity
                return (gain * rates.rate(holding_term(lot.hps, sold)), lot.order())

            return sorted(lots, key=tax_per_share)
        return lots

    def _sell(self, seq: int, txn: Transaction) -> None:
        key = (txn.account, txn.symbol)
        lots = self.positions.get(key, [])
        relief = self._relief(seq, txn, lots)
        if not relief:
            return
        total_proceeds = cents(txn.quantity * txn.price - txn.fee)
        rows: list[_Row] = []
        sold_so_far = ZERO
        proceeds_so_far = ZERO
        for lot, shares in relief:
            sold_so_far += shares
            cumulative = (
                total_proceeds
                if sold_so_far == txn.quantity
                else cents(total_proceeds * sold_so_far / txn.quantity)
            )
            proceeds = cumulative - proceeds_so_far
            proceeds_so_far = cumulative
            if shares == lot.quantity:
                basis, adjustment = lot.basis, lot.adjustment
            else:
                basis = cents(lot.basis * shares / lot.quantity)
                adjustment = cents(lot.adjustment * shares / lot.quantity)
            lot.quantity -= shares
            lot.basis -= basis
            lot.adjustment -= adjustment
            rows.append(_Row(txn.trade_date, lot, shares, proceeds, basis, lot.acquired, lot.hps))
        if any(lot.quantity == ZERO for lot, _ in relief):
            self.positions[key] = [lot for lot in lots if lot.quantity > ZERO]
        taxable = txn.account_type == TAXABLE
        for row in rows:
            if taxable and row.proceeds < row.basis:
                self._wash(seq, txn, row)
        for lot, shares in relief:
            self.origin_disposed[lot.origin] += shares
        for row in rows:
            gain = row.proceeds - row.basis
            self.realized.append(
                RealizedGain(
                    sale_date=row.sale_date,
                    account=txn.account,
                    account_type=txn.account_type,
                    owner=txn.owner,
                    symbol=txn.symbol,
                    identical_group=row.lot.group,
                    lot_id=row.lot.lot_id,
                    acquired=row.acquired,
                    holding_period_start=row.hps,
                    quantity=row.quantity,
                    proceeds=row.proceeds,
                    cost_basis=row.basis,
                    gain=gain,
                    term=holding_term(row.hps, row.sale_date),
                    wash_sale_disallowed=row.disallowed,
                    wash_sale_permanent=row.permanent,
                    replacement_shares=row.replacement_shares,
                    replaced_by=tuple(row.replaced_by),
                    taxable=taxable,
                    line=txn.line,
                )
            )

    def _wash(self, seq: int, txn: Transaction, row: _Row) -> None:
        """Match a loss row to replacement shares and disallow the loss pro rata by shares."""
        group = row.lot.group
        dates = self.group_buy_dates.get(group)
        if not dates:
            return
        window = dt.timedelta(days=WASH_SALE_DAYS)
        lo = bisect.bisect_left(dates, row.sale_date - window)
        hi = bisect.bisect_right(dates, row.sale_date + window)
        buys = self.group_buys[group]
        sale_rank = self.rank[seq]
        need = row.quantity
        matches: list[tuple[int, Decimal, _Lot | None]] = []
        disposed: list[str] = []
        for index in range(lo, hi):
            if need == ZERO:
                break
            buy_seq = buys[index]
            origin = self.lot_ids[buy_seq]
            if origin == row.lot.origin:
                continue  # Shares of the same purchase never replace each other.
            if self.rank[buy_seq] < sale_rank:
                base = self.lots[origin]
                available = ZERO if base.used else base.quantity
                if self.origin_disposed.get(origin, ZERO) > ZERO:
                    disposed.append(origin)
                target: _Lot | None = base
            else:
                buy = self.txns[buy_seq]
                available = buy.quantity - self.future_claimed[buy_seq]
                target = None
            if available <= ZERO:
                continue
            take = min(available, need)
            matches.append((buy_seq, take, target))
            need -= take
        if need > ZERO and disposed:
            self.warnings.append(
                f"{_where(txn, seq)}: loss sale of {_fmt(row.quantity)} {txn.symbol} from lot"
                f" {row.lot.lot_id}: shares of lot(s) {', '.join(disposed)}, bought within"
                f" {WASH_SALE_DAYS} days before, were sold before this sale and are not treated"
                " as replacement shares"
            )
        if not matches:
            return
        loss = row.basis - row.proceeds
        days_held = (row.sale_date - row.hps).days
        replaced = ZERO
        disallowed_so_far = ZERO
        for buy_seq, take, target in matches:
            replaced += take
            cumulative = loss if replaced == row.quantity else cents(loss * replaced / row.quantity)
            portion = cumulative - disallowed_so_far
            disallowed_so_far = cumulative
            buy = self.txns[buy_seq]
            claim = _Claim(take, portion, buy.account_type in TAX_ADVANTAGED, days_held)
            if target is not None:
                self._mark_replacement(target, claim)
            else:
                self.future_claims[buy_seq].append(claim)
                self.future_claimed[buy_seq] += take
            row.disallowed += portion
            if claim.permanent:
                row.permanent += portion
            row.replacement_shares += take
            row.replaced_by.append(self.lot_ids[buy_seq])


# --------------------------------------------------------------------------- public API


def apply_transactions(
    transactions: Iterable[Transaction],
    *,
    method: str = FIFO,
    rates: TaxRates | None = None,
) -> LedgerResult:
    """Apply a household's transactions to lots and return open lots and realized gains.

    ``transactions`` are all transactions of all accounts of one household (spouses, IRAs and
    Roth IRAs included: wash sales are household-wide). They are applied in a stable order, by
    trade date, then by input position. ``method`` is the lot-relief method of sells that do not
    name a lot: ``fifo`` (earliest acquisition first), ``hifo`` (highest cost per share first),
    ``minimum_tax`` (lowest tax per share at ``rates`` first) or ``specific`` (every sell must
    name a ``lot_id``). ``rates`` only matter for ``minimum_tax`` (default 37% / 20%).

    Raises ``LedgerError`` listing every problem: invalid values or accounts first (nothing is
    applied then), else every sell that could not be applied (more shares than held, unknown or
    too small lot); such a sell is skipped so that later problems are found too.
    """
    if method not in METHODS:
        raise ValueError(f"unknown lot relief method {method!r} (expected {', '.join(METHODS)})")
    txns = list(transactions)
    problems = validate_transactions(txns, method=method)
    if problems:
        raise LedgerError(problems)
    return _Ledger(txns, method, rates or TaxRates()).run()


@dataclass(frozen=True, kw_only=True)
class WindowEvent:
    """A buy or a loss sale inside a wash-sale window (date, account, symbol, shares)."""

    date: dt.date
    account: str
    account_type: str
    symbol: str
    quantity: Decimal
    """Buy: shares still held and not yet used as replacement. Loss sale: shares not washed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "account": self.account,
            "account_type": self.account_type,
            "symbol": self.symbol,
            "quantity": _fmt(self.quantity),
        }


@dataclass(frozen=True, kw_only=True)
class WashSaleWindow:
    """Recent buys and loss sales of one identical group, as of a date.

    A loss sale on day ``d`` is washed by a buy on ``d - 30 .. d + 30``; a buy on day ``d``
    washes a loss sale on ``d - 30 .. d + 30``. So a future loss sale is blocked while a recent
    buy with unused shares is within 30 days, and a future buy is blocked while a recent loss
    sale with an unwashed loss is within 30 days.
    """

    group: str
    as_of: dt.date
    buys: tuple[WindowEvent, ...]
    loss_sales: tuple[WindowEvent, ...]

    @staticmethod
    def _near(events: tuple[WindowEvent, ...], on: dt.date) -> bool:
        return any(abs((on - event.date).days) <= WASH_SALE_DAYS for event in events)

    def loss_sale_blocked(self, on: dt.date) -> bool:
        """Would a loss sale in this group on ``on`` be washed by a recorded buy?"""
        return self._near(self.buys, on)

    def buy_blocked(self, on: dt.date) -> bool:
        """Would a buy in this group on ``on`` wash a recorded loss sale?"""
        return self._near(self.loss_sales, on)

    @property
    def loss_sale_blocked_until(self) -> dt.date | None:
        """Last day on which a loss sale would still be washed by a recorded buy."""
        if not self.buys:
            return None
        return max(event.date for event in self.buys) + dt.timedelta(days=WASH_SALE_DAYS)

    @property
    def buy_blocked_until(self) -> dt.date | None:
        """Last day on which a buy would still wash a recorded loss sale."""
        if not self.loss_sales:
            return None
        return max(event.date for event in self.loss_sales) + dt.timedelta(days=WASH_SALE_DAYS)

    def to_dict(self) -> dict[str, Any]:
        until_sale = self.loss_sale_blocked_until
        until_buy = self.buy_blocked_until
        return {
            "group": self.group,
            "as_of": self.as_of.isoformat(),
            "buys": [event.to_dict() for event in self.buys],
            "loss_sales": [event.to_dict() for event in self.loss_sales],
            "loss_sale_blocked_until": until_sale.isoformat() if until_sale else None,
            "buy_blocked_until": until_buy.isoformat() if until_buy else None,
        }


def wash_sale_windows(
    transactions: Iterable[Transaction],
    *,
    as_of: dt.date,
    method: str = FIFO,
    rates: TaxRates | None = None,
) -> dict[str, WashSaleWindow]:
    """Wash-sale windows open on ``as_of`` for each identical group, from past transactions.

    Applies the transactions dated on or before ``as_of`` (later ones are ignored) and reports,
    per group with anything to report: the buys of the last 30 days (``as_of - 30 .. as_of``)
    whose shares are still held and not used as replacements (any account, IRAs included),
    and the loss sales of taxable accounts in the same days whose loss is not (fully) washed
    yet. Groups are returned in sorted order. Raises ``LedgerError`` like ``apply_transactions``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown lot relief method {method!r} (expected {', '.join(METHODS)})")
    txns = [txn for txn in transactions if txn.trade_date <= as_of]
    problems = validate_transactions(txns, method=method)
    if problems:
        raise LedgerError(problems)
    ledger = _Ledger(txns, method, rates or TaxRates())
    result = ledger.run()
    start = as_of - dt.timedelta(days=WASH_SALE_DAYS)
    buys: dict[str, list[WindowEvent]] = defaultdict(list)
    for seq in ledger.order:
        txn = txns[seq]
        if txn.action != BUY or txn.trade_date < start:
            continue
        unused = sum(
            (
                part.quantity
                for part in ledger.origin_parts[ledger.lot_ids[seq]]
                if not part.used and part.quantity > ZERO
            ),
            ZERO,
        )
        if unused > ZERO:
            buys[txn.group].append(
                WindowEvent(
                    date=txn.trade_date,
                    account=txn.account,
                    account_type=txn.account_type,
                    symbol=txn.symbol,
                    quantity=unused,
                )
            )
    losses: dict[str, list[WindowEvent]] = defaultdict(list)
    for row in result.realized:
        unwashed = row.quantity - row.replacement_shares
        if row.taxable and row.gain < ZERO and row.sale_date >= start and unwashed > ZERO:
            losses[row.identical_group].append(
                WindowEvent(
                    date=row.sale_date,
                    account=row.account,
                    account_type=row.account_type,
                    symbol=row.symbol,
                    quantity=unwashed,
                )
            )
    return {
        group: WashSaleWindow(
            group=group,
            as_of=as_of,
            buys=tuple(buys.get(group, ())),
            loss_sales=tuple(losses.get(group, ())),
        )
        for group in sorted(set(buys) | set(losses))
    }


def totals(result: LedgerResult) -> Mapping[str, Decimal]:
    """Sums of a result, in dollars: realized proceeds, basis, gains by term, disallowed losses.

    ``short_term`` and ``long_term`` are allowed gains (after wash-sale disallowance) of taxable
    sales; ``open_basis`` is the basis still on open lots.
    """
    sums: dict[str, Decimal] = {
        "proceeds": NO_MONEY,
        "cost_basis": NO_MONEY,
        "gain": NO_MONEY,
        "short_term": NO_MONEY,
        "long_term": NO_MONEY,
        "wash_sale_disallowed": NO_MONEY,
        "wash_sale_permanent": NO_MONEY,
        "open_basis": NO_MONEY,
    }
    for row in result.realized:
        sums["proceeds"] += row.proceeds
        sums["cost_basis"] += row.cost_basis
        sums["gain"] += row.gain
        sums["wash_sale_disallowed"] += row.wash_sale_disallowed
        sums["wash_sale_permanent"] += row.wash_sale_permanent
        if row.taxable:
            sums["long_term" if row.term == "long" else "short_term"] += row.allowed_gain
    for lot in result.open_lots:
        sums["open_basis"] += lot.cost_basis
    return sums
