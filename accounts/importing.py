"""Importing custodian files into the book: one service for the command and the upload page.

``import_file`` reads a file (``accounts.importers``), checks every row against the book (the
firm's accounts, known securities, lots and transactions on record, enough shares to sell,
enough cash), and only when nothing at all is wrong writes everything in one transaction:
the ``ImportBatch`` with its counts, the rows, history on the actor's behalf (each history row's
change reason names the batch) and one audit event. Any problem refuses the whole file with
every problem listed (``ImportFileError``: file, line, field, reason) and writes nothing.

What each kind does to the book is in ``docs/imports.md``:

* positions - reconciliation only: the custodian's shares against the sum of our open lots
  per account and security, its cash against the account's cash; differences beyond the
  tolerance become ``ReconciliationBreak`` rows (earlier open breaks of the same accounts are
  superseded); the custodian's prices are recorded as closes for the as-of day when none is.
* lots - open tax lots created, or updated when the custodian reports different values for a
  lot id we already hold; lots missing from the file are left alone.
* transactions - recorded once each (by transaction id); buys, sells and transfers of
  securities in go through the tax-lot engine together with the household's open lots (relief
  by FIFO unless a lot is named, realized gains, wash sales household-wide); every row's
  amount moves the account's cash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Sum
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.importers import (
    AccountRef,
    Action,
    ImportFileError,
    Kind,
    ParsedFile,
    TransactionRow,
    get_format,
    money_text,
    normalize_number,
    parse_file,
)
from accounts.models import (
    ZERO,
    Account,
    BreakStatus,
    Custodian,
    Firm,
    ImportBatch,
    ImportFormat,
    ImportKind,
    ImportStatus,
    Price,
    ReconciliationBreak,
    Security,
    TaxLot,
    TaxTreatment,
    Transaction,
    User,
)
from audit.history import acting_as
from audit.services import audit_record
from optimizer.core import taxlots as engine
from optimizer.core.taxlots import Problem

DEFAULT_TOLERANCE = Decimal("0.0001")
"""Shares: a custodian position within this of our lots' total is not a break."""
MAX_FILE_BYTES = 50 * 1024 * 1024
CHUNK = 900
"""Ids per ``__in`` query (SQLite's historical limit on query parameters is 999)."""
BULK_BATCH = 2000
LEFT_OUT = " (rows with other problems were left out)"
"""Appended to a problem found by running only the rows that had none."""

ENGINE_ACCOUNT_TYPE = {
    TaxTreatment.TAXABLE: engine.TAXABLE,
    TaxTreatment.DEFERRED: engine.IRA,
    TaxTreatment.EXEMPT: engine.ROTH_IRA,
}

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class ImportOutcome:
    """The batch of an import; ``created`` is False when the same file (same SHA-256, format
    and kind) was imported before: ``batch`` is then that earlier batch and nothing changed."""

    batch: ImportBatch
    created: bool


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def import_file(
    *,
    firm: Firm,
    fmt: str,
    file_name: str,
    data: bytes,
    actor: User | None,
    kind: str | None = None,
    tolerance: Decimal = DEFAULT_TOLERANCE,
    method: str = engine.FIFO,
    today: dt.date | None = None,
) -> ImportOutcome:
    """Import one custodian file into ``firm``'s book, all rows or none.

    ``fmt`` is ``schwab``, ``fidelity`` or ``generic``; ``kind`` is ``positions``, ``lots`` or
    ``transactions`` (None: told by the file's header). ``tolerance`` (shares, >= 0) is the
    reconciliation tolerance of a positions file; ``method`` the lot relief of sells that name
    no lot (``fifo``, ``hifo``, ``minimum_tax``). Raises ``ImportFileError`` listing every
    problem; nothing is written then.
    """
    day = today or timezone.localdate()
    source = file_name
    try:
        parser = get_format(fmt)
    except ValueError as exc:
        raise ImportFileError([Problem(source, None, "format", str(exc))]) from None
    wanted_kind = _kind(kind, source)
    if tolerance < ZERO:
        raise ImportFileError([Problem(source, None, "tolerance", "must not be negative")])
    if method not in (engine.FIFO, engine.HIFO, engine.MINIMUM_TAX):
        raise ImportFileError(
            [Problem(source, None, "method", f"unknown lot relief method {method!r}")]
        )
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            [Problem(source, None, "file", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")]
        )
    digest = file_sha256(data)
    earlier = _earlier(firm, fmt, wanted_kind, digest)
    if earlier is not None:
        return ImportOutcome(batch=earlier, created=False)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            [Problem(source, None, "file", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    parsed = parse_file(fmt, text, source=source, today=day, kind=wanted_kind)
    if parsed.rows_read == 0 and parsed.problems:
        raise ImportFileError(parsed.problems)
    return _import(
        firm=firm,
        parsed=parsed,
        digest=digest,
        actor=actor,
        tolerance=tolerance,
        method=method,
        custodian_code=parser.custodian_code,
    )


def _kind(kind: str | None, source: str) -> Kind | None:
    if kind is None or kind == "":
        return None
    try:
        return Kind(kind)
    except ValueError:
        raise ImportFileError(
            [
                Problem(
                    source,
                    None,
                    "kind",
                    f"unknown kind {kind!r} (expected {', '.join(k.value for k in Kind)})",
                )
            ]
        ) from None


def _earlier(firm: Firm, fmt: str, kind: Kind | None, digest: str) -> ImportBatch | None:
    batches = ImportBatch.objects.filter(firm=firm, file_format=fmt, sha256=digest)
    if kind is not None:
        batches = batches.filter(kind=kind.value)
    return batches.order_by("pk").first()


@transaction.atomic
def _import(
    *,
    firm: Firm,
    parsed: ParsedFile,
    digest: str,
    actor: User | None,
    tolerance: Decimal,
    method: str,
    custodian_code: str | None,
) -> ImportOutcome:
    Firm.objects.select_for_update().filter(pk=firm.pk).first()  # one import per firm at a time
    earlier = _earlier(firm, parsed.fmt, parsed.kind, digest)
    if earlier is not None:
        return ImportOutcome(batch=earlier, created=False)
    custodian = None
    if custodian_code is not None:
        custodian = Custodian.objects.filter(code=custodian_code).first()
        if custodian is None:
            raise ImportFileError(
                [
                    Problem(
                        parsed.source,
                        None,
                        "format",
                        f"the book has no custodian {custodian_code!r} for this format",
                    )
                ]
            )
    book = _Book(firm=firm, custodian=custodian)
    plan: _Plan
    if parsed.kind == Kind.POSITIONS:
        plan = _PositionsPlan(parsed=parsed, book=book, tolerance=tolerance, method=method)
    elif parsed.kind == Kind.LOTS:
        plan = _LotsPlan(parsed=parsed, book=book, tolerance=tolerance, method=method)
    else:
        plan = _TransactionsPlan(parsed=parsed, book=book, tolerance=tolerance, method=method)
    problems = [*parsed.problems, *plan.problems]
    if problems:
        raise ImportFileError(sorted(problems, key=lambda p: (p.line or 0, p.field)))
    batch = ImportBatch(
        firm=firm,
        file_format=parsed.fmt,
        custodian=custodian,
        kind=parsed.kind.value,
        file_name=parsed.source[:255],
        sha256=digest,
        as_of=parsed.as_of,
        rows_read=parsed.rows_read,
        rows_created=plan.created,
        rows_updated=plan.updated,
        rows_unchanged=plan.unchanged,
        actor=actor,
        status=plan.status,
        summary=_jsonable(plan.summary()),
    )
    batch.full_clean(exclude=["firm", "custodian", "actor"], validate_constraints=False)
    with acting_as(actor):
        batch.save()
    plan.write(batch=batch, actor=actor, reason=f"import #{batch.pk} {parsed.source}"[:100])
    audit_record(
        actor=actor,
        event_type="import.completed",
        firm=firm,
        obj=batch,
        data={
            "file_name": batch.file_name,
            "sha256": digest,
            "format": batch.file_format,
            "kind": batch.kind,
            "as_of": batch.as_of,
            "rows": {
                "read": batch.rows_read,
                "created": batch.rows_created,
                "updated": batch.rows_updated,
                "unchanged": batch.rows_unchanged,
            },
            "status": batch.status,
            "effects": _jsonable(plan.audit_summary()),
        },
    )
    return ImportOutcome(batch=batch, created=True)


# --------------------------------------------------------------------------- the book's side


class _Book:
    """The firm's accounts (at the format's custodian) and the securities, looked up once."""

    def __init__(self, *, firm: Firm, custodian: Custodian | None) -> None:
        self.firm = firm
        accounts = Account.objects.filter(household__firm=firm).select_related("custodian")
        if custodian is not None:
            accounts = accounts.filter(custodian=custodian)
        self.accounts = list(accounts)
        self.by_number: dict[str, list[Account]] = defaultdict(list)
        for account in self.accounts:
            self.by_number[normalize_number(account.number)].append(account)
        self._resolved: dict[AccountRef, tuple[Account | None, str]] = {}
        self.securities: dict[str, Security] = {}

    def load_securities(self, symbols: Iterable[str]) -> None:
        wanted = sorted({s for s in symbols if s})
        for chunk in _chunks(wanted):
            for security in Security.objects.filter(symbol__in=chunk):
                self.securities[security.symbol] = security

    def account(self, ref: AccountRef) -> tuple[Account | None, str]:
        """The account a file's number means, or ``(None, reason)``."""
        found = self._resolved.get(ref)
        if found is None:
            found = self._resolve(ref)
            self._resolved[ref] = found
        return found

    def _resolve(self, ref: AccountRef) -> tuple[Account | None, str]:
        if ref.masked:
            candidates = [
                account
                for account in self.accounts
                if _matches_mask(normalize_number(account.number), ref)
            ]
        else:
            candidates = list(self.by_number.get(normalize_number(ref.text), ()))
        if ref.custodian:
            candidates = [a for a in candidates if a.custodian.code == ref.custodian]
        if len(candidates) == 1:
            return candidates[0], ""
        at = f" at custodian {ref.custodian!r}" if ref.custodian else ""
        if not candidates:
            if ref.masked:
                return None, f"no account of this firm{at} matches the masked number {ref.text!r}"
            return None, f"unknown account {ref.text!r}: no such account of this firm{at}"
        numbers = ", ".join(sorted(f"{a.custodian.code} {a.number}" for a in candidates))
        if ref.masked:
            return None, (
                f"the masked number {ref.text!r} matches {len(candidates)} accounts of this firm"
                f" ({numbers}): ambiguous"
            )
        return None, (
            f"account number {ref.text!r} is used at several custodians ({numbers}):"
            " add the custodian column"
        )


def _matches_mask(number: str, ref: AccountRef) -> bool:
    return (
        len(number) >= len(ref.prefix) + len(ref.suffix)
        and number.startswith(ref.prefix)
        and number.endswith(ref.suffix)
    )


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _validation_problems(
    exc: ValidationError, *, source: str, line: int | None, labels: dict[str, str]
) -> list[Problem]:
    out = []
    for name, messages in exc.message_dict.items():
        for message in messages:
            out.append(Problem(source, line, labels.get(name, name), message))
    return out


def _clean(obj: models.Model, *, exclude: Sequence[str]) -> None:
    """The model's own validation without database queries (foreign keys were looked up,
    uniqueness is checked in Python by the plan)."""
    obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)


def _create(objs: list[M], model: type[M], *, actor: User | None, reason: str) -> None:
    """Insert new rows of a history-tracked model with their history rows (one history row
    each, ``history_user`` = actor, change reason = the batch)."""
    if objs:
        bulk_create_with_history(
            objs,
            model,
            batch_size=BULK_BATCH,
            default_user=actor,
            default_change_reason=reason,
        )


def _save_all(objs: Iterable[models.Model], *, actor: User | None, reason: str) -> None:
    """Save changed rows one by one so that each gets its history row."""
    with acting_as(actor):
        for obj in objs:
            obj._change_reason = reason  # type: ignore[attr-defined]
            obj.save()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- plans


class _Plan(ABC):
    """Everything an import would write, computed (and checked) before anything is."""

    def __init__(self, *, parsed: ParsedFile, book: _Book, tolerance: Decimal, method: str) -> None:
        self.parsed = parsed
        self.book = book
        self.tolerance = tolerance
        self.method = method
        self.problems: list[Problem] = []
        self.created = 0
        self.updated = 0
        self.unchanged = 0
        self.status = ImportStatus.IMPORTED
        layout = get_format(parsed.fmt).layouts[parsed.kind]
        self.labels = dict(layout.columns)
        self.build()

    def bad(self, line: int | None, name: str, reason: str) -> None:
        self.problems.append(Problem(self.parsed.source, line, self.labels.get(name, name), reason))

    def account(self, line: int, ref: AccountRef) -> Account | None:
        account, reason = self.book.account(ref)
        if account is None:
            self.bad(line, "account", reason)
        return account

    def security(self, line: int, symbol: str) -> Security | None:
        security = self.book.securities.get(symbol)
        if security is None:
            self.bad(
                line, "symbol", f"unknown symbol {symbol!r}: add the security to the book first"
            )
        return security

    @abstractmethod
    def build(self) -> None:
        """Check every row against the book and plan the writes (nothing is written)."""

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """Counts and effects of the planned import, for the batch record."""

    def audit_summary(self) -> dict[str, Any]:
        return self.summary()

    @abstractmethod
    def write(self, *, batch: ImportBatch, actor: User | None, reason: str) -> None:
        """Write the planned rows (inside the import's transaction)."""


# -- positions ------------------------------------------------------------------------------


@dataclass
class _Break:
    account: Account
    security: Security | None
    custodian: Decimal
    book: Decimal


class _PositionsPlan(_Plan):
    def build(self) -> None:
        rows = self.parsed.positions
        self.book.load_securities(row.symbol for row in rows)
        reported: dict[tuple[int, int], Decimal] = {}
        cash: dict[int, Decimal] = {}
        accounts: dict[int, Account] = {}
        securities: dict[int, Security] = {}
        self.prices: dict[int, tuple[Decimal, int]] = {}
        for row in rows:
            account = self.account(row.line, row.account)
            security = None if row.is_cash else self.security(row.line, row.symbol)
            if account is None or (security is None and not row.is_cash):
                continue
            accounts[account.pk] = account
            if security is None:
                if account.pk in cash:
                    self.bad(
                        row.line, "account", f"a second cash balance for account {account.number}"
                    )
                cash[account.pk] = row.quantity
                continue
            key = (account.pk, security.pk)
            if key in reported:
                self.bad(
                    row.line,
                    "symbol",
                    f"{security.symbol} of account {account.number} is listed twice",
                )
                continue
            reported[key] = row.quantity
            securities[security.pk] = security
            if row.price is not None and security.pk not in self.prices:
                self.prices[security.pk] = (row.price, row.line)
        if self.problems:
            return
        ours: dict[tuple[int, int], Decimal] = {}
        ids = sorted(accounts)
        for chunk in _chunks(ids):
            for values in (
                TaxLot.objects.filter(account_id__in=chunk, closed_on__isnull=True)
                .values("account_id", "security_id")
                .annotate(total=Sum("quantity"))
            ):
                ours[(values["account_id"], values["security_id"])] = values["total"]
        missing = {sec_id for _, sec_id in ours if sec_id not in securities}
        for security in Security.objects.filter(pk__in=sorted(missing)):
            securities[security.pk] = security
        self.breaks: list[_Break] = []
        for key in sorted(set(reported) | set(ours)):
            theirs = reported.get(key, ZERO)
            held = ours.get(key, ZERO)
            if abs(theirs - held) > self.tolerance:
                self.breaks.append(_Break(accounts[key[0]], securities[key[1]], theirs, held))
            elif key in reported:
                self.unchanged += 1
        for account_id, balance in sorted(cash.items()):
            account = accounts[account_id]
            if balance != account.cash:
                self.breaks.append(_Break(account, None, balance, account.cash))
            else:
                self.unchanged += 1
        self.superseded = list(
            ReconciliationBreak.objects.filter(account_id__in=ids, status=BreakStatus.OPEN)
            .select_related("batch")
            .order_by("pk")
        )
        self.new_prices: list[Price] = []
        self.prices_kept: dict[str, dict[str, Decimal]] = {}
        as_of = self.parsed.as_of
        if as_of is None:  # the reader has reported the missing date
            return
        stored = dict(
            Price.objects.filter(security_id__in=sorted(self.prices), date=as_of).values_list(
                "security_id", "close"
            )
        )
        for security_id, (close, line) in sorted(self.prices.items()):
            if security_id in stored:
                if stored[security_id] != close:
                    self.prices_kept[securities[security_id].symbol] = {
                        "stored": stored[security_id],
                        "file": close,
                    }
                continue
            price = Price(
                security_id=security_id, date=as_of, close=close, source=f"import:{self.parsed.fmt}"
            )
            try:
                _clean(price, exclude=["security"])
            except ValidationError as exc:
                self.problems.extend(
                    _validation_problems(
                        exc, source=self.parsed.source, line=line, labels=self.labels
                    )
                )
                continue
            self.new_prices.append(price)
        self.created = len(self.breaks)
        self.updated = len(self.superseded)
        self.accounts = accounts
        if self.breaks:
            self.status = ImportStatus.NEEDS_REVIEW

    def summary(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "accounts": sorted(a.number for a in self.accounts.values()),
            "breaks": len(self.breaks),
            "superseded_breaks": [b.pk for b in self.superseded],
            "prices_recorded": len(self.new_prices),
            "prices_kept": self.prices_kept,
        }

    def write(self, *, batch: ImportBatch, actor: User | None, reason: str) -> None:
        now = timezone.now()
        for old in self.superseded:
            old.status = BreakStatus.RESOLVED
            old.resolved_at = now
            old.resolved_by = actor
            old.resolution_note = (
                f"Superseded by import #{batch.pk} (positions as of {batch.as_of})."
            )
        _save_all(self.superseded, actor=actor, reason=reason)
        _refresh_batches({old.batch_id for old in self.superseded}, actor=actor, reason=reason)
        breaks = []
        for item in self.breaks:
            brk = ReconciliationBreak(
                batch=batch,
                account=item.account,
                security=item.security,
                custodian_quantity=item.custodian,
                book_quantity=item.book,
                difference=item.custodian - item.book,
            )
            _clean(brk, exclude=["batch", "account", "security", "resolved_by"])
            breaks.append(brk)
        _create(breaks, ReconciliationBreak, actor=actor, reason=reason)
        for price in self.new_prices:
            price.save()


def _refresh_batches(batch_ids: Iterable[int], *, actor: User | None, reason: str) -> None:
    """A batch whose breaks are all resolved is reviewed."""
    ids = sorted(batch_ids)
    if not ids:
        return
    still_open = set(
        ReconciliationBreak.objects.filter(batch_id__in=ids, status=BreakStatus.OPEN).values_list(
            "batch_id", flat=True
        )
    )
    done = [
        batch
        for batch in ImportBatch.objects.filter(pk__in=ids, status=ImportStatus.NEEDS_REVIEW)
        if batch.pk not in still_open
    ]
    for batch in done:
        batch.status = ImportStatus.REVIEWED
    _save_all(done, actor=actor, reason=reason)


# -- lots -----------------------------------------------------------------------------------

_LOT_FIELDS = ("quantity", "cost_basis", "acquired", "holding_period_start", "wash_sale_adjustment")


class _LotsPlan(_Plan):
    def build(self) -> None:
        rows = self.parsed.lots
        self.book.load_securities(row.symbol for row in rows)
        resolved = []
        for row in rows:
            account = self.account(row.line, row.account)
            security = self.security(row.line, row.symbol)
            if account is not None and security is not None:
                resolved.append((row, account, security))
        account_ids = sorted({account.pk for _, account, _ in resolved})
        existing: dict[tuple[int, str], TaxLot] = {}
        for chunk in _chunks(account_ids):
            for lot in TaxLot.objects.filter(account_id__in=chunk).select_related(
                "security", "account"
            ):
                existing[(lot.account_id, lot.lot_ref)] = lot
        self.new: list[TaxLot] = []
        self.changed: list[TaxLot] = []
        for row, account, security in resolved:
            values = {
                "quantity": row.quantity,
                "cost_basis": row.cost_basis,
                "acquired": row.acquired,
                "holding_period_start": row.holding_period_start,
                "wash_sale_adjustment": row.wash_sale_adjustment,
            }
            held = existing.get((account.pk, row.lot_id))
            if held is None:
                lot = TaxLot(account=account, security=security, lot_ref=row.lot_id, **values)
                target = self.new
            elif held.closed_on is not None:
                self.bad(
                    row.line,
                    "lot_id",
                    f"lot {row.lot_id!r} of account {account.number} was closed on"
                    f" {held.closed_on}; an import does not reopen a closed lot",
                )
                continue
            elif held.security_id != security.pk:
                self.bad(
                    row.line,
                    "lot_id",
                    f"lot {row.lot_id!r} of account {account.number} holds"
                    f" {held.security.symbol} in the book, not {security.symbol}",
                )
                continue
            elif not _assign(held, values):
                self.unchanged += 1
                continue
            else:
                lot, target = held, self.changed
            try:
                _clean(lot, exclude=["account", "security"])
            except ValidationError as exc:
                self.problems.extend(
                    _validation_problems(
                        exc, source=self.parsed.source, line=row.line, labels=self.labels
                    )
                )
                continue
            target.append(lot)
        self.created = len(self.new)
        self.updated = len(self.changed)

    def summary(self) -> dict[str, Any]:
        return {
            "lots_created": len(self.new),
            "lots_updated": [f"{lot.account.number} {lot.lot_ref}" for lot in self.changed],
        }

    def write(self, *, batch: ImportBatch, actor: User | None, reason: str) -> None:
        _create(self.new, TaxLot, actor=actor, reason=reason)
        _save_all(self.changed, actor=actor, reason=reason)


# -- transactions ---------------------------------------------------------------------------

_KIND = {
    Action.BUY: "buy",
    Action.SELL: "sell",
    Action.DIVIDEND: "dividend",
    Action.INTEREST: "interest",
    Action.DEPOSIT: "deposit",
    Action.WITHDRAWAL: "withdrawal",
    Action.TRANSFER_IN: "transfer_in",
    Action.FEE: "fee",
}
"""Transaction kinds the reader produces (a transfer out of securities is refused)."""


@dataclass
class _LotKey:
    account: Account
    lot_ref: str


@dataclass
class _Household:
    """One household's share movements in the file, for the engine."""

    rows: list[tuple[TransactionRow, Account, Security]] = field(default_factory=list)


class _TransactionsPlan(_Plan):
    def build(self) -> None:
        rows = self.parsed.transactions
        self.book.load_securities(
            row.symbol for row in rows if row.moves_shares or row.action == Action.DIVIDEND
        )
        resolved: list[tuple[TransactionRow, Account, Security | None]] = []
        for row in rows:
            account = self.account(row.line, row.account)
            security = None
            if row.moves_shares or row.action == Action.DIVIDEND:
                security = self.security(row.line, row.symbol)
                if security is None:
                    continue
            if account is not None:
                resolved.append((row, account, security))
        accounts = {account.pk: account for _, account, _ in resolved}
        recorded: dict[tuple[int, str], tuple[Any, ...]] = {}
        lot_refs: dict[int, set[str]] = defaultdict(set)
        for chunk in _chunks(sorted(accounts)):
            for values in (
                Transaction.objects.filter(account_id__in=chunk)
                .exclude(external_id="")
                .values_list(
                    "account_id", "external_id", "kind", "trade_date", "quantity", "price", "amount"
                )
            ):
                recorded[(values[0], values[1])] = values[2:]
            for account_id, lot_ref in TaxLot.objects.filter(account_id__in=chunk).values_list(
                "account_id", "lot_ref"
            ):
                lot_refs[account_id].add(lot_ref)
        self.transactions: list[Transaction] = []
        self.rows_by_line: dict[int, Transaction] = {}
        new_lots: dict[tuple[int, str], int] = {}
        cash_moves: dict[int, Decimal] = defaultdict(Decimal)
        last_line: dict[int, int] = {}
        households: dict[int, _Household] = defaultdict(_Household)
        for row, account, security in resolved:
            kind = _KIND[row.action]
            on_record = recorded.get((account.pk, row.external_id))
            if on_record is not None:
                mine = (kind, row.trade_date, row.quantity, row.price, row.amount)
                if not _same_record(on_record, mine):
                    self.bad(
                        row.line,
                        "external_id",
                        f"transaction {row.external_id!r} of account {account.number} is on"
                        f" record with other values ({on_record[0]} on {on_record[1]},"
                        f" amount {on_record[4]})",
                    )
                else:
                    self.unchanged += 1
                continue
            lot_ref = row.lot_id
            if row.action in (Action.BUY, Action.TRANSFER_IN):
                lot_ref = row.lot_id or row.external_id[:60]
                first = new_lots.setdefault((account.pk, lot_ref), row.line)
                if first != row.line:
                    self.bad(
                        row.line,
                        "lot_id",
                        f"duplicate lot id {lot_ref!r} for account {account.number}"
                        f" (also on line {first})",
                    )
                    continue
                if lot_ref in lot_refs[account.pk]:
                    self.bad(
                        row.line,
                        "lot_id",
                        f"duplicate lot id {lot_ref!r}: account {account.number} already has"
                        " a lot with this id",
                    )
                    continue
            txn = Transaction(
                account=account,
                security=security,
                kind=kind,
                trade_date=row.trade_date,
                settle_date=row.settle_date,
                quantity=row.quantity,
                price=row.price,
                amount=row.amount,
                lot_ref=lot_ref,
                external_id=row.external_id,
                description=row.description,
            )
            try:
                _clean(txn, exclude=["account", "security"])
            except ValidationError as exc:
                self.problems.extend(
                    _validation_problems(
                        exc, source=self.parsed.source, line=row.line, labels=self.labels
                    )
                )
                continue
            self.transactions.append(txn)
            self.rows_by_line[row.line] = txn
            cash_moves[account.pk] += row.amount
            last_line[account.pk] = row.line
            if row.moves_shares and security is not None:
                households[account.household_id].rows.append((row, account, security))
        rows_left_out = bool(self.parsed.problems or self.problems)
        note = LEFT_OUT if rows_left_out else ""
        self.cash: list[tuple[Account, Decimal, Decimal]] = []
        for account_id, move in sorted(cash_moves.items()):
            account = accounts[account_id]
            after = account.cash + move
            if after < ZERO:
                self.bad(
                    last_line[account_id],
                    "amount",
                    f"account {account.number} would end with {money_text(after)} in cash"
                    f" ({money_text(account.cash)} before this file, {money_text(move)} moved by it):"
                    f" margin is not supported{note}",
                )
            elif move != ZERO:
                self.cash.append((account, account.cash, after))
        self.lots_new: list[TaxLot] = []
        self.lots_changed: list[TaxLot] = []
        self.lots_closed: list[TaxLot] = []
        self.realized: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        for household_id, part in sorted(households.items()):
            self._run_engine(household_id, part, lot_refs, rows_left_out)
        self.created = len(self.transactions)

    def _run_engine(
        self,
        household_id: int,
        part: _Household,
        lot_refs: dict[int, set[str]],
        rows_left_out: bool,
    ) -> None:
        """Apply the household's new share movements to its open lots with the engine."""
        ledger = _HouseholdLedger(household_id, part, source=self.parsed.source)
        txns = ledger.engine_input({line: t.lot_ref for line, t in self.rows_by_line.items()})
        try:
            result = engine.apply_transactions(txns, method=self.method)
        except engine.LedgerError as exc:
            note = LEFT_OUT if rows_left_out else ""
            for problem in exc.problems:
                self.bad(problem.line, problem.field, problem.reason + note)
            return
        self.warnings.extend(result.warnings)
        closed_on: dict[str, dt.date] = {}
        for realized in result.realized:
            closed_on[realized.lot_id] = max(
                closed_on.get(realized.lot_id, realized.sale_date), realized.sale_date
            )
            if realized.line is not None:
                txn = self.rows_by_line[realized.line]
                txn.realized_gain = (txn.realized_gain or ZERO) + realized.gain
            self.realized.append(ledger.realized_record(realized))
        seen: set[tuple[int, str]] = set()
        for open_lot in result.open_lots:
            key = ledger.key(open_lot.lot_id)
            seen.add((key.account.pk, key.lot_ref))
            values = {
                "quantity": open_lot.quantity,
                "cost_basis": open_lot.cost_basis,
                "acquired": open_lot.acquired,
                "holding_period_start": open_lot.holding_period_start,
                "wash_sale_adjustment": open_lot.wash_sale_adjustment,
            }
            line = ledger.lines.get(open_lot.origin_lot_id)
            held = ledger.by_key.get((key.account.pk, key.lot_ref))
            if held is not None:
                if not _assign(held, values):
                    continue
                lot, target = held, self.lots_changed
            elif key.lot_ref in lot_refs[key.account.pk] or len(key.lot_ref) > 60:
                self.bad(
                    line,
                    "lot_id",
                    f"lot id {key.lot_ref!r} (split off {ledger.key(open_lot.origin_lot_id).lot_ref}"
                    f" by a wash sale) is already used in account {key.account.number}",
                )
                continue
            else:
                lot = TaxLot(
                    account=key.account,
                    security=ledger.by_symbol[open_lot.symbol],
                    lot_ref=key.lot_ref,
                    **values,
                )
                target = self.lots_new
            if self._valid(lot, line):
                target.append(lot)
        last_day = max(row.trade_date for row, _, _ in part.rows)
        for (account_id, lot_ref), lot in ledger.by_key.items():
            if (account_id, lot_ref) in seen:
                continue
            lot.closed_on = closed_on.get(ledger.engine_id_of(account_id, lot_ref), last_day)
            lot.quantity = ZERO
            lot.cost_basis = Decimal("0.00")
            lot.wash_sale_adjustment = Decimal("0.00")
            if self._valid(lot, None):
                self.lots_closed.append(lot)

    def _valid(self, obj: models.Model, line: int | None) -> bool:
        try:
            _clean(obj, exclude=["account", "security"])
        except ValidationError as exc:
            self.problems.extend(
                _validation_problems(exc, source=self.parsed.source, line=line, labels=self.labels)
            )
            return False
        return True

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "lots_created": len(self.lots_new),
            "lots_updated": len(self.lots_changed),
            "lots_closed": len(self.lots_closed),
            "cash": {
                f"{account.custodian.code} {account.number}": {"before": before, "after": after}
                for account, before, after in self.cash
            },
            "realized": self.realized,
            "realized_totals": _realized_totals(self.realized),
            "warnings": self.warnings,
        }

    def audit_summary(self) -> dict[str, Any]:
        summary = self.summary()
        summary["realized"] = len(self.realized)
        return summary

    def write(self, *, batch: ImportBatch, actor: User | None, reason: str) -> None:
        _create(self.transactions, Transaction, actor=actor, reason=reason)
        _save_all([*self.lots_changed, *self.lots_closed], actor=actor, reason=reason)
        _create(self.lots_new, TaxLot, actor=actor, reason=reason)
        with acting_as(actor):
            for account, _, after in self.cash:
                account.cash = after
                account._change_reason = reason  # type: ignore[attr-defined]
                account.full_clean()
                account.save(update_fields=["cash"])


class _HouseholdLedger:
    """One household for the tax-lot engine: its accounts (by a readable label), its open lots
    and the file's share movements, as engine transactions; and the way back from engine lot
    ids (``<account label>/<lot ref>``) to our accounts and lot refs."""

    def __init__(self, household_id: int, part: _Household, *, source: str) -> None:
        self.source = source
        self.part = part
        self.accounts = {
            a.pk: a
            for a in Account.objects.filter(household_id=household_id).select_related("custodian")
        }
        uses: dict[str, int] = defaultdict(int)
        for account in self.accounts.values():
            uses[account.number] += 1
        self.labels = {
            pk: a.number if uses[a.number] == 1 else f"{a.custodian.code}:{a.number}"
            for pk, a in self.accounts.items()
        }
        self.open_lots = list(
            TaxLot.objects.filter(
                account_id__in=sorted(self.accounts), closed_on__isnull=True, quantity__gt=0
            ).order_by("acquired", "account_id", "lot_ref")
        )
        wanted = sorted({lot.security_id for lot in self.open_lots})
        securities = {s.pk: s for s in Security.objects.filter(pk__in=wanted)}
        for _, _, security in part.rows:
            securities[security.pk] = security
        self.securities = securities
        self.by_symbol = {security.symbol: security for security in securities.values()}
        self.keys: dict[str, _LotKey] = {}
        self.by_key: dict[tuple[int, str], TaxLot] = {}
        self.lines: dict[str, int] = {}
        """Engine lot id of a new acquisition -> its line in the file."""

    def engine_id_of(self, account_id: int, lot_ref: str) -> str:
        return f"{self.labels[account_id]}/{lot_ref}"

    def _register(self, account: Account, lot_ref: str) -> str:
        lot_id = self.engine_id_of(account.pk, lot_ref)
        self.keys[lot_id] = _LotKey(account, lot_ref)
        return lot_id

    def _common(
        self, account: Account, security: Security, quantity: Decimal, day: dt.date
    ) -> dict[str, Any]:
        return {
            "account": self.labels[account.pk],
            "account_type": ENGINE_ACCOUNT_TYPE[TaxTreatment(account.tax_treatment)],
            "owner": str(account.owner_id),
            "symbol": security.symbol,
            "identical_group": security.wash_group,
            "quantity": _plain(quantity),
            "trade_date": day,
        }

    def engine_input(self, new_lot_refs: dict[int, str]) -> list[engine.Transaction]:
        """The open lots (first, in acquisition order), then the file's movements in file
        order; the engine applies them by date, then position. ``new_lot_refs`` gives the lot
        ref chosen for the acquisition on each line."""
        txns: list[engine.Transaction] = []
        for lot in self.open_lots:
            account = self.accounts[lot.account_id]
            self.by_key[(account.pk, lot.lot_ref)] = lot
            common = self._common(
                account, self.securities[lot.security_id], lot.quantity, lot.acquired
            )
            common["lot_id"] = self._register(account, lot.lot_ref)
            if lot.wash_sale_adjustment == ZERO and lot.holding_period_start == lot.acquired:
                # A plain purchase: a buy whose basis is exactly the lot's (price 0, the basis
                # as its fee), so that it can be a wash-sale replacement like any purchase.
                txns.append(engine.Transaction(action=engine.BUY, fee=lot.cost_basis, **common))
            else:
                # Already a replacement (adjusted or tacked): brought in as it is.
                txns.append(
                    engine.Transaction(
                        action=engine.TRANSFER_IN,
                        cost_basis=lot.cost_basis,
                        acquired=lot.acquired,
                        holding_period_start=lot.holding_period_start,
                        **common,
                    )
                )
        for row, account, security in self.part.rows:
            assert row.quantity is not None  # the reader requires it on share movements
            common = self._common(account, security, row.quantity, row.trade_date)
            common.update(line=row.line, source=self.source)
            if row.action == Action.SELL:
                lot_id = self.engine_id_of(account.pk, row.lot_id) if row.lot_id else None
                txns.append(
                    engine.Transaction(
                        action=engine.SELL,
                        price=row.price or ZERO,
                        fee=row.fee,
                        lot_id=lot_id,
                        **common,
                    )
                )
                continue
            common["lot_id"] = self._register(account, new_lot_refs[row.line])
            self.lines[common["lot_id"]] = row.line
            if row.action == Action.BUY:
                txns.append(
                    engine.Transaction(
                        action=engine.BUY, price=row.price or ZERO, fee=row.fee, **common
                    )
                )
            else:
                txns.append(
                    engine.Transaction(
                        action=engine.TRANSFER_IN,
                        cost_basis=row.cost_basis,
                        acquired=row.acquired,
                        holding_period_start=row.holding_period_start,
                        **common,
                    )
                )
        return txns

    def key(self, lot_id: str) -> _LotKey:
        """The account and lot ref of an engine lot id. A lot the engine split off another by
        a wash sale is ``<origin>.<n>``: it becomes lot ``<origin ref>.<n>`` of that account."""
        if lot_id in self.keys:
            return self.keys[lot_id]
        origin, _, part = lot_id.rpartition(".")
        if not origin or not part.isdigit():
            raise KeyError(lot_id)
        base = self.key(origin)
        key = _LotKey(base.account, f"{base.lot_ref}.{part}")
        self.keys[lot_id] = key
        return key

    def realized_record(self, realized: engine.RealizedGain) -> dict[str, Any]:
        """The engine's realized row with our account number and lot refs."""
        key = self.key(realized.lot_id)
        record = realized.to_dict()
        record["account"] = key.account.number
        del record["owner"]
        record["lot_id"] = key.lot_ref
        record["replaced_by"] = [self.key(r).lot_ref for r in realized.replaced_by]
        return record


def _plain(quantity: Decimal) -> Decimal:
    """Shares without trailing zeros (``100.000000`` -> ``100``), for readable engine output."""
    if quantity == quantity.to_integral_value():
        return quantity.quantize(Decimal(1))
    return quantity.normalize()


def _assign(obj: models.Model, values: dict[str, Any]) -> bool:
    """Set ``values`` on ``obj``; True if anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _same_record(on_record: tuple[Any, ...], mine: tuple[Any, ...]) -> bool:
    return all(a == b for a, b in zip(on_record, mine, strict=True))


def _realized_totals(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    totals = {"proceeds": ZERO, "cost_basis": ZERO, "gain": ZERO, "wash_sale_disallowed": ZERO}
    for row in rows:
        for name in totals:
            totals[name] += Decimal(row[name])
    return totals


# --------------------------------------------------------------------------- breaks


@transaction.atomic
def reconciliation_break_resolve(
    *, brk: ReconciliationBreak, actor: User, note: str
) -> ReconciliationBreak:
    """Mark an open break reviewed, with the reviewer's note; the batch is reviewed once all of
    its breaks are."""
    brk = ReconciliationBreak.objects.select_for_update().select_related("batch").get(pk=brk.pk)
    if brk.status != BreakStatus.OPEN:
        raise ValidationError({"status": "This break is already resolved."})
    brk.status = BreakStatus.RESOLVED
    brk.resolved_by = actor
    brk.resolved_at = timezone.now()
    brk.resolution_note = note.strip()
    brk.full_clean()
    with acting_as(actor):
        brk.save()
    reason = f"break #{brk.pk} resolved"
    _refresh_batches([brk.batch_id], actor=actor, reason=reason)
    audit_record(
        actor=actor,
        event_type="reconciliation_break.resolved",
        firm=brk.batch.firm,
        obj=brk,
        data={
            "batch": brk.batch_id,
            "account": brk.account_id,
            "security": brk.security_id,
            "difference": brk.difference,
            "note": brk.resolution_note,
        },
    )
    return brk


__all__ = [
    "DEFAULT_TOLERANCE",
    "ImportFileError",
    "ImportFormat",
    "ImportKind",
    "ImportOutcome",
    "file_sha256",
    "import_file",
    "reconciliation_break_resolve",
]
