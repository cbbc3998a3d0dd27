"""``manage.py taxlots FILE.csv``: run the tax-lot engine on a generic transactions file.

Reads the file, applies the transactions (one household) and prints the open lots and the
realized gains ledger. Never touches the database. Output is deterministic: the same file and
options give byte-identical output.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.taxlot_file import read_transactions
from optimizer.core.taxlots import (
    FIFO,
    HIFO,
    MINIMUM_TAX,
    SPECIFIC,
    LedgerResult,
    TaxLotInputError,
    TaxRates,
    apply_transactions,
    totals,
)


def _rate(text: str) -> Decimal:
    """A tax rate as a fraction between 0 and 1 (``0.37``)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
        raise ValueError(f"{text!r} is not a rate between 0 and 1")
    return value


class Command(BaseCommand):
    help = (
        "Rebuild tax lots from a generic transactions CSV (one household) without touching the "
        "database; print open lots and realized gains (see docs/taxlots.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="generic transactions CSV")
        parser.add_argument(
            "--method",
            choices=[FIFO, HIFO, MINIMUM_TAX, SPECIFIC],
            default=FIFO,
            help="lot relief for sells that name no lot_id (default: fifo)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
        parser.add_argument(
            "--short-term-rate",
            default="0.37",
            help="short-term rate used to order lots by minimum tax (default 0.37)",
        )
        parser.add_argument(
            "--long-term-rate",
            default="0.20",
            help="long-term rate used to order lots by minimum tax (default 0.20)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rates = TaxRates(
                short_term=_rate(options["short_term_rate"]),
                long_term=_rate(options["long_term_rate"]),
            )
        except ValueError as exc:
            raise CommandError(f"bad tax rate: {exc}") from None
        path = options["file"]
        try:
            transactions = read_transactions(path, today=dt.date.today())
            result = apply_transactions(transactions, method=options["method"], rates=rates)
        except TaxLotInputError as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            count = len(exc.problems)
            raise CommandError(
                f"{path}: {count} problem{'s' if count != 1 else ''}; no lots computed"
            ) from None
        if options["json"]:
            self.stdout.write(self.render_json(result, options["method"]))
        else:
            self.stdout.write(self.render_text(result, options["method"]))

    @staticmethod
    def render_json(result: LedgerResult, method: str) -> str:
        """The result as JSON, keys sorted, Decimals as strings."""
        payload = result.to_dict()
        payload["method"] = method
        payload["totals"] = {key: format(value, "f") for key, value in totals(result).items()}
        return json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False)

    @staticmethod
    def render_text(result: LedgerResult, method: str) -> str:
        """The result as two aligned tables plus totals and warnings."""
        lines = [f"Open lots ({len(result.open_lots)}), method {method}"]
        lines += _table(
            [
                "account",
                "symbol",
                "lot",
                "quantity",
                "basis",
                "acquired",
                "holding from",
                "wash adj",
            ],
            [
                [
                    lot.account,
                    lot.symbol,
                    lot.lot_id,
                    format(lot.quantity, "f"),
                    format(lot.cost_basis, "f"),
                    lot.acquired.isoformat(),
                    lot.holding_period_start.isoformat(),
                    format(lot.wash_sale_adjustment, "f"),
                ]
                for lot in result.open_lots
            ],
            right={3, 4, 7},
        )
        lines.append("")
        lines.append(f"Realized ({len(result.realized)})")
        lines += _table(
            [
                "sold",
                "account",
                "symbol",
                "lot",
                "quantity",
                "proceeds",
                "basis",
                "gain",
                "term",
                "wash disallowed",
            ],
            [
                [
                    row.sale_date.isoformat(),
                    row.account,
                    row.symbol,
                    row.lot_id,
                    format(row.quantity, "f"),
                    format(row.proceeds, "f"),
                    format(row.cost_basis, "f"),
                    format(row.gain, "f"),
                    row.term if row.taxable else f"{row.term} (ira)",
                    format(row.wash_sale_disallowed, "f")
                    + (" (permanent)" if row.wash_sale_permanent else ""),
                ]
                for row in result.realized
            ],
            right={4, 5, 6, 7, 9},
        )
        sums = totals(result)
        lines.append("")
        lines.append(
            f"Short-term gain {sums['short_term']}, long-term gain {sums['long_term']} (after "
            f"{sums['wash_sale_disallowed']} disallowed by wash sales, "
            f"{sums['wash_sale_permanent']} of it permanently)"
        )
        for warning in result.warnings:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]], *, right: set[int]) -> list[str]:
    """Rows as aligned text columns; columns in ``right`` are right-aligned (numbers)."""
    if not rows:
        return ["  (none)"]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [render(header), render(["-" * width for width in widths]), *map(render, rows)]
