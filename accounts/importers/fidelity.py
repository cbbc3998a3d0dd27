"""The Fidelity-style CSV (see ``docs/imports.md``): leading blank lines, plain header,
``MM/DD/YYYY`` dates, masked account numbers (``XXXX-1234``, ``Z12-***456``), quantities with
thousands separators and parentheses for negatives (a sale's quantity is negative), ``$`` in
money, and disclaimer lines below the data (one cell each) of which ``Date downloaded
MM/DD/YYYY ...`` gives a positions file its as-of date."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from accounts.importers.base import (
    MONEY_PLACES,
    QUANTITY_PLACES,
    Action,
    Kind,
    Layout,
    Numbers,
    Row,
    Table,
    one_cell_footer,
    parse_us_date,
)
from accounts.importers.reader import CsvFormat

ACTIONS: tuple[tuple[str, Action], ...] = (
    ("YOU BOUGHT", Action.BUY),
    ("REINVESTMENT", Action.BUY),
    ("YOU SOLD", Action.SELL),
    ("DIVIDEND RECEIVED", Action.DIVIDEND),
    ("INTEREST EARNED", Action.INTEREST),
    ("ELECTRONIC FUNDS TRANSFER RECEIVED", Action.DEPOSIT),
    ("WIRE TRANSFER FROM BANK", Action.DEPOSIT),
    ("CHECK RECEIVED", Action.DEPOSIT),
    ("ELECTRONIC FUNDS TRANSFER PAID", Action.WITHDRAWAL),
    ("WIRE TRANSFER TO BANK", Action.WITHDRAWAL),
    ("TRANSFERRED FROM", Action.TRANSFER_IN),
    ("TRANSFERRED TO", Action.TRANSFER_OUT),
    ("ADVISORY FEE", Action.FEE),
    ("FEE CHARGED", Action.FEE),
)
"""Fidelity's action text starts with one of these (case-insensitive)."""

_DOWNLOADED = re.compile(r"date downloaded\s+(\d{1,2}/\d{1,2}/\d{4})", re.IGNORECASE)


class FidelityFormat(CsvFormat):
    name = "fidelity"
    label = "Fidelity-style"
    custodian_code = "fidelity"
    numbers = Numbers.CUSTODIAN
    allow_masked = True
    layouts = {
        Kind.POSITIONS: Layout(
            columns={
                "account": "Account Number",
                "symbol": "Symbol",
                "description": "Description",
                "quantity": "Quantity",
                "price": "Last Price",
                "market_value": "Current Value",
            },
            required=frozenset({"account", "symbol", "quantity", "price", "market_value"}),
        ),
        Kind.LOTS: Layout(
            columns={
                "account": "Account Number",
                "symbol": "Symbol",
                "acquired": "Date Acquired",
                "lot_id": "Lot Number",
                "quantity": "Quantity",
                "cost_basis": "Cost Basis ($)",
                "wash_sale_adjustment": "Disallowed Loss ($)",
            },
            required=frozenset(
                {"account", "symbol", "acquired", "lot_id", "quantity", "cost_basis"}
            ),
        ),
        Kind.TRANSACTIONS: Layout(
            columns={
                "trade_date": "Run Date",
                "account": "Account Number",
                "action": "Action",
                "symbol": "Symbol",
                "description": "Security Description",
                "quantity": "Quantity",
                "price": "Price ($)",
                "fee": "Commission ($)",
                "other_fee": "Fees ($)",
                "amount": "Amount ($)",
                "settle_date": "Settlement Date",
                "lot_id": "Lot Number",
            },
            required=frozenset({"trade_date", "account", "action", "amount"}),
        ),
    }

    def parse_date(self, text: str) -> tuple[dt.date | None, str]:
        return parse_us_date(text)

    def is_trailer(self, cells: list[str]) -> bool:
        return one_cell_footer(cells)

    def file_as_of(self, table: Table) -> tuple[dt.date | None, int | None, str]:
        for line, cells in table.trailer:
            match = _DOWNLOADED.search(" ".join(cells))
            if match:
                day, reason = parse_us_date(match[1])
                return day, line, reason
        return None, None, ""

    def is_cash(self, row: Row) -> bool:
        """The core money-market position (``SPAXX**``) is the account's cash."""
        return row.text("symbol").endswith("**")

    def action(self, row: Row) -> tuple[Action | None, str]:
        text = row.required_text("action")
        if not text:
            return None, ""
        upper = " ".join(text.upper().split())
        for prefix, action in ACTIONS:
            if upper.startswith(prefix):
                return action, text
        row.bad("action", f"unknown action {text!r}")
        return None, text

    def shares(self, row: Row, action: Action) -> Decimal | None:
        """Bought and transferred-in shares are positive, sold shares negative (``(10.000)``)."""
        quantity = row.number("quantity", places=QUANTITY_PLACES, required=True)
        if quantity is None:
            return None
        if quantity == 0:
            row.bad("quantity", f"must not be zero, got {row.text('quantity')}")
            return None
        if action == Action.SELL:
            if quantity > 0:
                row.bad(
                    "quantity",
                    f"a sale's quantity is negative in this format, got {row.text('quantity')}",
                )
                return None
            return -quantity
        if quantity < 0:
            row.bad("quantity", f"must be positive for a {action}, got {row.text('quantity')}")
            return None
        return quantity

    def fees(self, row: Row) -> Decimal:
        total = Decimal("0.00")
        for name in ("fee", "other_fee"):
            fee = row.number(name, places=MONEY_PLACES)
            if fee is None:
                continue
            if fee < 0:
                row.bad(name, f"must not be negative, got {row.text(name)}")
            total += abs(fee)
        return total
