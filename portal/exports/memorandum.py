"""The order memorandum (SEC Rule 204-2(a)(3)) and the export manifest, as files.

For every order: its terms (side, quantity, symbol, order type, time in force, limit price),
who recommended it, who approved it (and the second approver where four-eyes applied), who
entered it (the person who exported the order files: the portal never transmits orders by
itself), the account, the date and time entered, and whether the firm used discretion.
Pure: a function of its arguments, so the same inputs give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from portal.exports.documents import OrderSet, RenderedFile
from portal.exports.tradefiles import format_money, format_price, format_shares, text_cell

MEMORANDUM_COLUMNS = (
    "order_id",
    "block_id",
    "proposal_id",
    "entered_at",
    "account_number",
    "account_name",
    "custodian",
    "side",
    "quantity",
    "symbol",
    "security_name",
    "order_type",
    "time_in_force",
    "limit_price",
    "estimated_price",
    "estimated_value",
    "lot_instructions",
    "discretionary",
    "recommended_by",
    "approved_by",
    "second_approved_by",
    "placed_by",
)


@dataclass(frozen=True)
class People:
    """Who did what, as printed (``Full Name (username, role)``)."""

    recommended_by: str
    approved_by: str
    second_approved_by: str
    placed_by: str


def utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def memorandum_rows(
    orders: OrderSet, people: People, discretionary: Mapping[str, bool]
) -> list[dict[str, str]]:
    """One row per order; ``discretionary`` maps account numbers to the firm's authority."""
    rows = []
    for o in orders.orders:
        rows.append(
            {
                "order_id": o.order_id,
                "block_id": o.block_id,
                "proposal_id": str(orders.proposal_id),
                "entered_at": utc(orders.entered_at),
                "account_number": o.account_number,
                "account_name": text_cell(o.account_name),
                "custodian": o.custodian_name,
                "side": o.side.capitalize(),
                "quantity": format_shares(o.quantity),
                "symbol": o.symbol,
                "security_name": text_cell(o.security_name),
                "order_type": o.order_type.capitalize(),
                "time_in_force": o.time_in_force.capitalize(),
                "limit_price": "" if o.limit_price is None else format_price(o.limit_price),
                "estimated_price": format_price(o.price),
                "estimated_value": format_money(o.estimated_value),
                "lot_instructions": "; ".join(
                    f"{lot.lot_ref} {format_shares(lot.shares)} sh (acquired {lot.acquired.isoformat()})"
                    for lot in o.lots
                ),
                "discretionary": "yes" if discretionary.get(o.account_number, True) else "no",
                "recommended_by": people.recommended_by,
                "approved_by": people.approved_by,
                "second_approved_by": people.second_approved_by,
                "placed_by": people.placed_by,
            }
        )
    return rows


def memorandum_file(
    orders: OrderSet, people: People, discretionary: Mapping[str, bool]
) -> RenderedFile:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(MEMORANDUM_COLUMNS)
    rows = memorandum_rows(orders, people, discretionary)
    for row in rows:
        writer.writerow([row[c] for c in MEMORANDUM_COLUMNS])
    return RenderedFile(
        kind="order_memorandum",
        name=f"proposal-{orders.proposal_id}-order-memorandum.csv",
        content=buffer.getvalue().encode("utf-8"),
        content_type="text/csv",
        order_count=len(rows),
        total_shares=sum((o.quantity for o in orders.orders), Decimal(0)),
    )


def manifest_file(
    orders: OrderSet,
    files: Sequence[tuple[RenderedFile, str]],
    *,
    header: Mapping[str, Any],
) -> RenderedFile:
    """The export's manifest: every file with its SHA-256, size and control totals, and the
    export's totals. ``files`` pairs each file with its SHA-256."""
    body = {
        **header,
        "proposal_id": orders.proposal_id,
        "household": orders.household,
        "as_of": orders.as_of.isoformat(),
        "entered_at": utc(orders.entered_at),
        "orders": len(orders.orders),
        "blocks": len(orders.blocks),
        "total_shares": format_shares(sum((o.quantity for o in orders.orders), Decimal(0))),
        "files": [
            {
                "name": f.name,
                "kind": f.kind,
                "sha256": sha,
                "size": len(f.content),
                "order_count": f.order_count,
                "total_shares": format_shares(f.total_shares),
            }
            for f, sha in files
        ],
    }
    text = json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return RenderedFile(
        kind="manifest",
        name=f"proposal-{orders.proposal_id}-manifest.json",
        content=text.encode("utf-8"),
        content_type="application/json",
    )
