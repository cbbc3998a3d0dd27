"""Custodian file readers: Schwab-style, Fidelity-style and our generic CSV, each for
positions, open tax lots and transactions (layouts in ``docs/imports.md``).

``parse_file`` is pure: text in, normalized rows and every problem out. Writing to the book is
``accounts.importing.import_file``.
"""

from __future__ import annotations

import datetime as dt

from accounts.importers.base import (
    AccountRef,
    Action,
    ImportFileError,
    Kind,
    LotRow,
    ParsedFile,
    PositionRow,
    TransactionRow,
    money_text,
    normalize_number,
)
from accounts.importers.fidelity import FidelityFormat
from accounts.importers.generic import GenericFormat
from accounts.importers.reader import CsvFormat
from accounts.importers.schwab import SchwabFormat

FORMATS: dict[str, CsvFormat] = {
    fmt.name: fmt for fmt in (SchwabFormat(), FidelityFormat(), GenericFormat())
}


def get_format(name: str) -> CsvFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown format {name!r} (expected {', '.join(sorted(FORMATS))})"
        ) from None


def parse_file(
    fmt: str, text: str, *, source: str, today: dt.date, kind: Kind | None = None
) -> ParsedFile:
    """Read ``text`` (a whole file) as ``fmt``; ``kind`` None means detect it from the header.

    Never raises for bad content: every problem is in ``ParsedFile.problems``.
    """
    return get_format(fmt).parse(text, source=source, kind=kind, today=today)


__all__ = [
    "FORMATS",
    "AccountRef",
    "Action",
    "CsvFormat",
    "ImportFileError",
    "Kind",
    "LotRow",
    "ParsedFile",
    "PositionRow",
    "TransactionRow",
    "get_format",
    "money_text",
    "normalize_number",
    "parse_file",
]
