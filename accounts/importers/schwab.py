"""The Schwab-style CSV (see ``docs/imports.md``): a preamble line or two above the header
(``"Positions for CUSTACCS as of 04:00 PM ET, 06/13/2025"``), quoted cells, ``MM/DD/YYYY``
dates (a transaction date may read ``06/11/2025 as of 06/10/2025``: the trade date is the
"as of" one), ``$1,234.56`` and ``-$1,234.56`` amounts, ``--`` for an empty cell, and a totals
line at the bottom whose figure must equal the sum of the rows (a cut-off file is refused)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from accounts.importers.base import (
    MONEY_PLACES,
    Action,
    Kind,
    Layout,
    Numbers,
    ParsedFile,
    Row,
    Table,
    norm_header,
    parse_number,
    parse_us_date,
    sum_decimals,
)
from accounts.importers.reader import CsvFormat
from optimizer.core.taxlots import Problem

CASH_SYMBOL = "cash & cash investments"
TRAILERS = frozenset({"total", "account total", "transactions total"})

ACTIONS: dict[str, Action] = {
    "buy": Action.BUY,
    "reinvest shares": Action.BUY,
    "sell": Action.SELL,
    "qualified dividend": Action.DIVIDEND,
    "cash dividend": Action.DIVIDEND,
    "non-qualified div": Action.DIVIDEND,
    "reinvest dividend": Action.DIVIDEND,
    "credit interest": Action.INTEREST,
    "bank interest": Action.INTEREST,
    "moneylink deposit": Action.DEPOSIT,
    "wire funds received": Action.DEPOSIT,
    "funds received": Action.DEPOSIT,
    "moneylink transfer": Action.WITHDRAWAL,
    "wire funds": Action.WITHDRAWAL,
    "service fee": Action.FEE,
    "advisor fee": Action.FEE,
    "adr mgmt fee": Action.FEE,
}
"""Schwab's action wording (case-insensitive) -> our action. ``Journal`` and
``Security Transfer`` go either way, by the sign of the amount or quantity."""

_AS_OF = re.compile(r"\bas of\b.*?(\d{1,2}/\d{1,2}/\d{4})", re.IGNORECASE)
_DATE_AS_OF = re.compile(
    r"(\d{1,2}/\d{1,2}/\d{4})(?:\s+as\s+of\s+(\d{1,2}/\d{1,2}/\d{4}))?", re.IGNORECASE
)


class SchwabFormat(CsvFormat):
    name = "schwab"
    label = "Schwab-style"
    custodian_code = "schwab"
    numbers = Numbers.CUSTODIAN
    layouts = {
        Kind.POSITIONS: Layout(
            columns={
                "account": "Account Number",
                "symbol": "Symbol",
                "description": "Description",
                "quantity": "Quantity",
                "price": "Price",
                "market_value": "Market Value",
            },
            required=frozenset({"account", "symbol", "quantity", "price", "market_value"}),
        ),
        Kind.LOTS: Layout(
            columns={
                "account": "Account Number",
                "symbol": "Symbol",
                "lot_id": "Lot ID",
                "acquired": "Open Date",
                "quantity": "Quantity",
                "cost_basis": "Cost Basis",
                "wash_sale_adjustment": "Disallowed Loss",
            },
            required=frozenset(
                {"account", "symbol", "lot_id", "acquired", "quantity", "cost_basis"}
            ),
        ),
        Kind.TRANSACTIONS: Layout(
            columns={
                "account": "Account Number",
                "trade_date": "Date",
                "action": "Action",
                "symbol": "Symbol",
                "description": "Description",
                "quantity": "Quantity",
                "price": "Price",
                "fee": "Fees & Comm",
                "amount": "Amount",
                "external_id": "Transaction ID",
                "lot_id": "Lot ID",
            },
            required=frozenset({"account", "trade_date", "action", "amount"}),
        ),
    }

    def parse_date(self, text: str) -> tuple[dt.date | None, str]:
        return parse_us_date(text)

    def trade_date(self, row: Row) -> dt.date | None:
        raw = row.text("trade_date")
        if not raw:
            row.bad("trade_date", "missing value")
            return None
        match = _DATE_AS_OF.fullmatch(raw)
        if match is None:
            row.bad("trade_date", f"{raw!r} is not a date in MM/DD/YYYY (as of MM/DD/YYYY) form")
            return None
        day, reason = parse_us_date(match[2] or match[1])
        if reason:
            row.bad("trade_date", reason)
        return day

    def is_trailer(self, cells: list[str]) -> bool:
        return bool(cells) and norm_header(cells[0]) in TRAILERS

    def file_as_of(self, table: Table) -> tuple[dt.date | None, int | None, str]:
        for line, cells in table.preamble:
            match = _AS_OF.search(" ".join(cells))
            if match:
                day, reason = parse_us_date(match[1])
                return day, line, reason
        return None, None, ""

    def is_cash(self, row: Row) -> bool:
        return norm_header(row.text("symbol")) == CASH_SYMBOL

    def action(self, row: Row) -> tuple[Action | None, str]:
        text = row.required_text("action")
        if not text:
            return None, ""
        key = norm_header(text)
        if key in ACTIONS:
            return ACTIONS[key], text
        if key == "journal":
            amount, _ = parse_number(row.text("amount"), style=self.numbers, places=MONEY_PLACES)
            return (
                Action.TRANSFER_OUT if amount is not None and amount < 0 else Action.TRANSFER_IN
            ), text
        if key == "security transfer":
            quantity, _ = parse_number(row.text("quantity") or "0", style=self.numbers, places=6)
            return (
                Action.TRANSFER_OUT if quantity is not None and quantity < 0 else Action.TRANSFER_IN
            ), text
        row.bad("action", f"unknown action {text!r}")
        return None, text

    def check_trailer(self, table: Table, kind: Kind, parsed: ParsedFile) -> list[Problem]:
        """The last totals line's figure must equal the sum of the rows above it."""
        if not table.trailer:
            return []
        line, cells = table.trailer[-1]
        column, values = {
            Kind.POSITIONS: (
                "market_value",
                [
                    p.quantity if p.is_cash else (p.market_value or Decimal(0))
                    for p in parsed.positions
                ],
            ),
            Kind.LOTS: ("cost_basis", [lot.cost_basis for lot in parsed.lots]),
            Kind.TRANSACTIONS: ("amount", [t.amount for t in parsed.transactions]),
        }[kind]
        header = self.layouts[kind].columns[column]
        position = table.index.get(column)
        raw = cells[position].strip() if position is not None and position < len(cells) else ""
        if raw in ("", "--"):
            return []
        total, reason = parse_number(raw, style=self.numbers, places=MONEY_PLACES)
        if total is None:
            return [Problem(table.source, line, header, f"totals line: {reason}")]
        expected = sum_decimals(values)
        if total != expected:
            return [
                Problem(
                    table.source,
                    line,
                    header,
                    f"the totals line says {total:,.2f} but the rows add up to {expected:,.2f}:"
                    " is the file complete?",
                )
            ]
        return []
