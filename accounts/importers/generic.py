"""Our own generic CSV (see ``docs/imports.md``): one header row, lower-case column names
(matched case-insensitively; unknown columns ignored), ISO dates, plain numbers. A generic
transactions file is a superset of the ``taxlots`` command's file (``account_type`` and
``owner`` are ignored here: the book knows them)."""

from __future__ import annotations

from accounts.importers.base import Action, Kind, Layout, Numbers, Row
from accounts.importers.reader import CsvFormat

CASH_SYMBOL = "CASH:USD"

ACTIONS = {action.name: action for action in Action}


class GenericFormat(CsvFormat):
    name = "generic"
    label = "generic"
    custodian_code = None
    numbers = Numbers.PLAIN
    cash_field = "quantity"
    layouts = {
        Kind.POSITIONS: Layout(
            columns={
                name: name
                for name in (
                    "as_of",
                    "account",
                    "custodian",
                    "symbol",
                    "quantity",
                    "price",
                    "market_value",
                )
            },
            required=frozenset({"as_of", "account", "symbol", "quantity", "price"}),
            not_with=frozenset({"action", "lot_id"}),
        ),
        Kind.LOTS: Layout(
            columns={
                name: name
                for name in (
                    "account",
                    "custodian",
                    "symbol",
                    "lot_id",
                    "quantity",
                    "cost_basis",
                    "acquired",
                    "holding_period_start",
                    "wash_sale_adjustment",
                )
            },
            required=frozenset(
                {"account", "symbol", "lot_id", "quantity", "cost_basis", "acquired"}
            ),
            not_with=frozenset({"action", "trade_date"}),
        ),
        Kind.TRANSACTIONS: Layout(
            columns={
                name: name
                for name in (
                    "trade_date",
                    "settle_date",
                    "account",
                    "custodian",
                    "action",
                    "symbol",
                    "quantity",
                    "price",
                    "fee",
                    "amount",
                    "lot_id",
                    "cost_basis",
                    "acquired",
                    "holding_period_start",
                    "external_id",
                    "description",
                )
            },
            required=frozenset({"trade_date", "account", "action"}),
        ),
    }

    def is_cash(self, row: Row) -> bool:
        return row.text("symbol").upper() == CASH_SYMBOL

    def action(self, row: Row) -> tuple[Action | None, str]:
        text = row.required_text("action")
        if not text:
            return None, ""
        action = ACTIONS.get(text.upper())
        if action is None:
            row.bad("action", f"unknown action {text!r} (expected {', '.join(ACTIONS)})")
        return action, text.upper()
