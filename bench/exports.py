"""Export benchmark: prints JSON figures (medians of several runs).

    .venv/bin/python bench/exports.py [--repeat N]

A 500-stock (+4 funds), 2,000-lot funds-to-direct-index transition is solved by the optimizer
core (the same synthetic book as ``bench/optimizer.py``); its result becomes the proposal's
documents exactly as an export would see them (one taxable account at Schwab, every trade, every
lot sold), and then:

- ``rationale_pdf``: the optimizer's proposal rendered to the client PDF by WeasyPrint
  (``render_rationale_pdf``): seconds per render (median, min, max), pages, bytes, whether every
  render gave the same bytes; target < 10 s;
- ``rationale_pdf_every_lot_sold``: the largest document the book can give (every one of the
  2,000 lots sold, every other security bought: ~500 trades, 2,000 lot rows in the appendix);
- ``trade_files``: validation and every custodian file (``write_trade_files``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# ruff: noqa: E402

import django

django.setup()

from optimizer.core.engine import solve
from optimizer.core.synthetic import synthetic_snapshot
from portal.exports.documents import (
    AccountSection,
    AllocationRow,
    ApprovalLine,
    IpsExcerpt,
    LotInstruction,
    Order,
    OrderSet,
    RationaleDocument,
    RealizedSummary,
    TradeLine,
)
from portal.exports.pdf import render_rationale_pdf
from portal.exports.tradefiles import assign_blocks, write_trade_files

D = Decimal
AT = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)


def _d(value: Any) -> Decimal:
    return D(str(value)) if value is not None else D(0)


def transition() -> tuple[Any, dict[str, Any]]:
    snapshot = synthetic_snapshot(
        n_stocks=500,
        n_lots=2000,
        n_funds=4,
        mode="transition",
        seed=2,
        gain_cap=None,  # no gain budget: the transition completes (the largest proposal)
        ticket_fee="1",
        min_trade_value="100",
        value=5_000_000,
    )
    result = solve(snapshot).as_dict()
    return snapshot, result


def documents(snapshot: Any, result: dict[str, Any]) -> tuple[RationaleDocument, OrderSet]:
    lots = {lot.lot_id: lot for lot in snapshot.lots}
    lines, orders = [], []
    for n, t in enumerate(result["trades"], start=1):
        sold = tuple(
            LotInstruction(
                lot_ref=row["lot_id"],
                acquired=lots[row["lot_id"]].acquired,
                shares=_d(row["shares"]),
                lot_shares=lots[row["lot_id"]].quantity,
                cost_basis=_d(row["cost_basis"]),
                proceeds=_d(row["proceeds"]),
                realized_gain=_d(row["realized_gain"]),
                term="short" if row["term"] == "short" else "long",
            )
            for row in t.get("lots") or ()
        )
        lines.append(
            TradeLine(
                side=t["side"],
                symbol=t["symbol"],
                security_name=f"{t['symbol']} Corporation",
                shares=_d(t["shares"]),
                price=_d(t["price"]),
                estimated_value=_d(t["estimated_value"]),
                realized_short_term=_d(t.get("realized_short_term")) if sold else None,
                realized_long_term=_d(t.get("realized_long_term")) if sold else None,
                lots=sold,
            )
        )
        orders.append(
            Order(
                order_id=f"P500-{n:03d}",
                block_id="",
                custodian="schwab",
                custodian_name="Charles Schwab",
                account_number="12345678",
                account_name="Transition account",
                registration="individual",
                tax_treatment="taxable",
                allows_fractional=False,
                side=t["side"],
                symbol=t["symbol"],
                security_name=f"{t['symbol']} Corporation",
                quantity=_d(t["shares"]),
                price=_d(t["price"]),
                estimated_value=_d(t["estimated_value"]),
                lots=sold,
            )
        )
    after, before = result["metrics"]["after"], result["metrics"]["before"]
    classes = sorted(set(before["asset_classes"]) | set(after["asset_classes"]))
    allocation = tuple(
        AllocationRow(
            key=k,
            label=k.replace("_", " ").capitalize(),
            target=_d(after["asset_classes"].get(k, {}).get("target"))
            if after["asset_classes"].get(k, {}).get("target") is not None
            else None,
            lower=None,
            upper=None,
            before=_d(before["asset_classes"].get(k, {}).get("weight")),
            after=_d(after["asset_classes"].get(k, {}).get("weight")),
        )
        for k in classes
    )
    realized = after["realized"]
    section = AccountSection(
        label="Transition account",
        custodian_name="Charles Schwab",
        account_number_masked="****5678",
        registration="Individual",
        tax_treatment="Taxable",
        trades=tuple(sorted(lines, key=lambda x: (x.side != "sell", x.symbol))),
        buys=sum((x.estimated_value for x in lines if x.side == "buy"), D(0)),
        sells=sum((x.estimated_value for x in lines if x.side == "sell"), D(0)),
    )
    doc = RationaleDocument(
        proposal_id=500,
        firm_name="Harbor Point Wealth",
        household_name="Benchmark Household",
        client_names=("Pat Benchmark",),
        adviser_name="Alice Moreno",
        scenario_label="Moderate",
        as_of=dt.date.fromisoformat(result["as_of"]),
        approved_at=AT,
        generated_at=AT,
        snapshot_sha256=result["input_sha256"],
        explanation=(
            "We move your core equity from four index funds into a direct index of 500 stocks.",
            "Losses harvested on the way offset the gains the budget allows this year.",
        ),
        explanation_source="deterministic",
        allocation=allocation,
        accounts=(section,),
        realized=RealizedSummary(
            short_term_gains=_d(realized["short_term_gains"]),
            short_term_losses=_d(realized["short_term_losses"]),
            long_term_gains=_d(realized["long_term_gains"]),
            long_term_losses=_d(realized["long_term_losses"]),
            net=_d(realized["net"]),
            estimated_tax=_d(after["estimated_tax"]),
            tax_deferred=_d(after.get("realized_tax_deferred")),
        ),
        tracking_error_before=_d(before["tracking_error"]),
        tracking_error_after=_d(after["tracking_error"]),
        turnover=_d(after["turnover"]),
        trading_cost=_d(after["trading_cost"]),
        tickets=len(lines),
        constraints=tuple(b["text"] for b in result["binding_constraints"]),
        ips=IpsExcerpt(
            version=3,
            effective_date=dt.date(2025, 1, 2),
            objectives="Long-term growth with tax-aware transition to a direct index.",
            targets=allocation,
            restrictions=(),
        ),
        approvals=(ApprovalLine("Approval", "Alice Moreno", "Adviser", AT, "Reviewed."),),
    )
    with_blocks, blocks = assign_blocks(500, orders)
    order_set = OrderSet(
        proposal_id=500,
        household="Benchmark Household",
        as_of=doc.as_of,
        entered_at=AT,
        orders=with_blocks,
        blocks=blocks,
    )
    return doc, order_set


def stress(doc: RationaleDocument, snapshot: Any) -> RationaleDocument:
    """The largest document the book can give: every one of its 2,000 lots sold (one sell per
    security held) and every other security bought, so ~500 trades and 2,000 lot rows."""
    prices = {s.symbol: s.price for s in snapshot.securities}
    held: dict[str, list[Any]] = {}
    for lot in snapshot.lots:
        held.setdefault(lot.symbol, []).append(lot)
    lines = []
    for symbol in sorted(prices):
        price = prices[symbol]
        if symbol in held:
            sold = tuple(
                LotInstruction(
                    lot_ref=lot.lot_id,
                    acquired=lot.acquired,
                    shares=lot.quantity,
                    lot_shares=lot.quantity,
                    cost_basis=lot.cost_basis,
                    proceeds=(lot.quantity * price).quantize(D("0.01")),
                    realized_gain=(lot.quantity * price).quantize(D("0.01")) - lot.cost_basis,
                    term="long",
                )
                for lot in held[symbol]
            )
            shares = sum((x.shares for x in sold), D(0))
            lines.append(
                TradeLine(
                    side="sell",
                    symbol=symbol,
                    security_name=f"{symbol} Corporation",
                    shares=shares,
                    price=price,
                    estimated_value=(shares * price).quantize(D("0.01")),
                    realized_short_term=D(0),
                    realized_long_term=sum((x.realized_gain for x in sold), D(0)),
                    lots=sold,
                )
            )
        else:
            lines.append(
                TradeLine(
                    side="buy",
                    symbol=symbol,
                    security_name=f"{symbol} Corporation",
                    shares=D(10),
                    price=price,
                    estimated_value=(10 * price).quantize(D("0.01")),
                    realized_short_term=None,
                    realized_long_term=None,
                    lots=(),
                )
            )
    section = dataclasses.replace(doc.accounts[0], trades=tuple(lines))
    return dataclasses.replace(doc, accounts=(section,), tickets=len(lines))


def timed_renders(doc: RationaleDocument, repeat: int) -> tuple[list[float], list[bytes]]:
    renders, outputs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outputs.append(render_rationale_pdf(doc).content)
        renders.append(time.perf_counter() - t0)
    return renders, outputs


def figures(doc: RationaleDocument, renders: list[float], outputs: list[bytes]) -> dict[str, Any]:
    trades = doc.accounts[0].trades
    return {
        "trades": len(trades),
        "lots_sold": sum(len(t.lots) for t in trades),
        "render_s_p50": round(statistics.median(renders), 2),
        "render_s_min": round(min(renders), 2),
        "render_s_max": round(max(renders), 2),
        "runs": len(renders),
        "pages": pages(outputs[0]),
        "bytes": len(outputs[0]),
        "identical": all(o == outputs[0] for o in outputs),
        "target_s": 10,
    }


def pages(data: bytes) -> int | None:
    tool = shutil.which("pdfinfo")
    if tool is None:
        return None
    out = subprocess.run([tool, "-"], input=data, capture_output=True, check=True).stdout
    match = re.search(rb"Pages:\s+(\d+)", out)
    return int(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    snapshot, result = transition()
    solve_s = time.perf_counter() - t0
    doc, order_set = documents(snapshot, result)
    renders, outputs = timed_renders(doc, args.repeat)
    big = stress(doc, snapshot)
    big_renders, big_outputs = timed_renders(big, args.repeat)
    files_s = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        files = write_trade_files(order_set)
        files_s.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "proposal": {
                    "stocks": 500,
                    "lots_in_book": len(snapshot.lots),
                    "trades": len(result["trades"]),
                    "solve_s": round(solve_s, 2),
                },
                "rationale_pdf": figures(doc, renders, outputs),
                "rationale_pdf_every_lot_sold": figures(big, big_renders, big_outputs),
                "trade_files": {
                    "seconds_p50": round(statistics.median(files_s), 3),
                    "files": [f.name for f in files],
                    "orders": len(order_set.orders),
                    "blocks": len(order_set.blocks),
                },
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
