"""The client's PDF rationale of an approved proposal, rendered with WeasyPrint.

A pure renderer: ``render_rationale_pdf`` reads its ``RationaleDocument`` only (no database,
no clock, no network), so the same document gives byte-identical PDF bytes. The PDF's dates
come from ``doc.generated_at``, its file identifier from the proposal id and snapshot hash.

Everything the layout needs ships with the project under ``portal/static/exports/``: the print
stylesheet and the DejaVu Sans fonts. WeasyPrint gets a URL fetcher that serves files from that
folder (and ``data:`` URLs) and refuses anything else, so a rendering never touches the network
or depends on the system's fonts. Every value from the document is escaped by the template
engine; the charts are inline SVG built here, with every label escaped.

Money is formatted from ``Decimal`` (``$12,345.67``, ``-$1,234.00``); floats appear only in the
charts' geometry.

Layout (``templates/portal/exports/rationale.html``, ``portal/static/exports/rationale.css``):
a cover with the key figures and contents, then the explanation, key figures and binding
constraints, the allocation chart and table, the trades by account, realized gains and tax, the
IPS excerpt, the approvals, the disclosures, and the appendix of tax lots sold. Tables repeat
their header on every page and never split a row; the appendix sets each sale's lots as
fixed-width lines in one cell, which keeps a 2,000-lot appendix fast (see ``_lot_listing``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
from collections.abc import Iterable, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from portal.exports.documents import (
    AllocationRow,
    ExportRefused,
    RationaleDocument,
    RenderedFile,
)

ASSETS_DIR = Path(__file__).resolve().parents[1] / "static" / "exports"
STYLESHEET = "rationale.css"
TEMPLATE = "portal/exports/rationale.html"
FONT_FAMILY = "Rationale Sans"  # the @font-face family of rationale.css (DejaVu Sans files)

CENT = Decimal("0.01")
EN_DASH = "\u2013"
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

DEFAULT_DISCLOSURES = (
    "All figures in this document are estimates. Prices, values, gains and losses are computed "
    "from closing prices as of the data date shown on the cover; they are not quotes and will "
    "change before the orders are executed.",
    "Orders are entered as market orders unless stated otherwise and may execute at prices "
    "different from the estimated prices shown, so the amounts bought and sold, the gains and "
    "losses realized and the resulting allocation may differ from these estimates.",
    "The estimated tax is an approximation based on the tax rates on file for your household. "
    "It does not include state or local taxes, the net investment income tax, the alternative "
    "minimum tax or any other item of your tax return. This document is not tax or legal advice; "
    "please consult your tax adviser.",
    "Cost basis and holding periods come from the tax lots on record with your custodian as of "
    "the data date. Your custodian's year-end tax reporting (Form 1099-B) is the official record "
    "of realized gains and losses.",
    "Gains and losses realized inside tax-deferred or tax-exempt accounts, such as IRAs, are not "
    "taxed when realized; withdrawals from these accounts are subject to their own tax rules.",
    "Tracking error measures how far the portfolio's risk exposures are from the targets in your "
    "investment policy statement. It is computed with a statistical risk model and is not a "
    "forecast of returns. Past performance does not guarantee future results, and all "
    "investments involve risk, including the loss of principal.",
    "This proposal was prepared with the help of portfolio software and was reviewed and "
    "approved by your adviser. Please review it, and tell your adviser promptly if your "
    "financial situation, objectives or restrictions have changed or if anything in it is "
    "unclear.",
)


# --------------------------------------------------------------------------- formatting


def money(value: Decimal) -> str:
    """``$12,345.67``; negatives ``-$1,234.00`` (rounded half up to the cent)."""
    q = value.quantize(CENT, ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    return f"{sign}${abs(q):,.2f}"


def money_or_dash(value: Decimal | None) -> str:
    return "—" if value is None else money(value)


def shares(value: Decimal) -> str:
    """As many decimals as the quantity has: ``150``, ``12.5``, ``0.125``, ``1,250``."""
    return f"{value.normalize():,f}"


def pct(value: Decimal | None, places: int = 1) -> str:
    """A fraction as a percentage: ``Decimal("0.25")`` -> ``25.0%``."""
    if value is None:
        return "—"
    q = (value * 100).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return f"{q:f}%"


def band(row: AllocationRow) -> str:
    if row.lower is None and row.upper is None:
        return "—"
    return f"{pct(row.lower)} {EN_DASH} {pct(row.upper)}"


def long_date(day: dt.date) -> str:
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def utc(moment: dt.datetime) -> dt.datetime:
    """Aware datetimes converted to UTC; naive ones are taken as UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def utc_datetime(moment: dt.datetime) -> str:
    m = utc(moment)
    return f"{long_date(m.date())}, {m:%H:%M} UTC"


def w3c_datetime(moment: dt.datetime) -> str:
    return f"{utc(moment):%Y-%m-%dT%H:%M:%S}Z"


def _total(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def _names(names: Sequence[str]) -> str:
    names = [n for n in names if n]
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --------------------------------------------------------------------------- charts

INK = "#1d2433"
MUTED = "#667085"
GRID = "#d0d5dd"
BEFORE = "#a9c1dc"
AFTER = "#1f4e79"
BAND = "#e4ebf3"
GAIN = "#2e7d4f"
LOSS = "#b42318"


def _svg(width: int, height: int, body: list[str], title: str) -> SafeString:
    font = f'font-family="\'{FONT_FAMILY}\'" font-size="10"'
    return mark_safe(  # noqa: S308 - every interpolated label is escaped by the callers
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<g {font} fill="{INK}">' + "".join(body) + "</g></svg>"
    )


def _nice_top(value: float, step: float) -> float:
    steps = int(value / step)
    top = steps * step
    return top if top >= value - 1e-9 else top + step


def allocation_chart(rows: Sequence[AllocationRow]) -> SafeString:
    """Horizontal bars per asset class: before (light) and after (dark) against the IPS target
    (tick) and its band (shaded), with the figures at the right."""
    label_w, plot_w, value_w, row_h, top_pad = 150, 360, 130, 34, 30
    width = label_w + plot_w + value_w
    height = top_pad + row_h * len(rows) + 26
    peak = max(
        [0.1]
        + [float(v) for r in rows for v in (r.before, r.after, r.target, r.upper) if v is not None]
    )
    scale = _nice_top(peak, 0.1)

    def x(v: Decimal | float) -> float:
        return label_w + plot_w * float(v) / scale

    body: list[str] = []
    # legend
    lx = label_w
    for label, kind, color in (
        ("Before", "rect", BEFORE),
        ("After", "rect", AFTER),
        ("IPS target", "tick", INK),
        ("IPS band", "rect", BAND),
    ):
        if kind == "rect":
            body.append(f'<rect x="{lx}" y="6" width="12" height="9" fill="{color}"/>')
        else:
            body.append(
                f'<line x1="{lx + 6}" x2="{lx + 6}" y1="3" y2="18" stroke="{color}" '
                'stroke-width="2"/>'
            )
        body.append(f'<text x="{lx + 17}" y="14.5" fill="{MUTED}">{label}</text>')
        lx += 90
    # grid
    plot_top, plot_bottom = top_pad - 4, top_pad + row_h * len(rows)
    tick, steps = 0.0, round(scale / 0.1)
    for k in range(steps + 1):
        tick = k * 0.1
        gx = x(tick)
        body.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{plot_top}" y2="{plot_bottom}" '
            f'stroke="{GRID}" stroke-width="0.6"/>'
            f'<text x="{gx:.1f}" y="{plot_bottom + 14}" text-anchor="middle" '
            f'font-size="8.5" fill="{MUTED}">{k * 10}%</text>'
        )
    for i, row in enumerate(rows):
        y = top_pad + i * row_h
        label = escape(row.label)
        body.append(f'<text x="0" y="{y + 19}">{label}</text>')
        if row.lower is not None and row.upper is not None:
            body.append(
                f'<rect x="{x(row.lower):.1f}" y="{y + 2}" '
                f'width="{max(x(row.upper) - x(row.lower), 0.5):.1f}" height="{row_h - 6}" '
                f'fill="{BAND}"/>'
            )
        body.append(
            f'<rect x="{label_w}" y="{y + 6}" width="{max(x(row.before) - label_w, 0.5):.1f}" '
            f'height="10" fill="{BEFORE}"/>'
            f'<rect x="{label_w}" y="{y + 16}" width="{max(x(row.after) - label_w, 0.5):.1f}" '
            f'height="10" fill="{AFTER}"/>'
        )
        if row.target is not None:
            tx = x(row.target)
            body.append(
                f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y + 1}" y2="{y + row_h - 3}" '
                f'stroke="{INK}" stroke-width="2"/>'
            )
        body.append(
            f'<text x="{width}" y="{y + 19}" text-anchor="end">'
            f'<tspan fill="{MUTED}">{pct(row.before)} → </tspan>'
            f'<tspan font-weight="bold">{pct(row.after)}</tspan></text>'
        )
    return _svg(width, height, body, "Allocation before and after against the IPS target")


def gains_chart(
    *,
    short_gains: Decimal,
    short_losses: Decimal,
    long_gains: Decimal,
    long_losses: Decimal,
) -> SafeString:
    """Vertical bars from a zero line for each holding period (taxable accounts): gains,
    losses and the net, each labelled in dollars."""
    groups = [
        ("Short-term (one year or less)", short_gains, short_losses),
        ("Long-term (more than one year)", long_gains, long_losses),
    ]
    bars = [
        [("Gains", g, GAIN), ("Losses", lo, LOSS), ("Net", g + lo, AFTER)] for _, g, lo in groups
    ]
    values = [float(v) for group in bars for _, v, _ in group]
    top = max([1.0] + [v for v in values if v > 0])
    bottom = min([0.0] + [v for v in values if v < 0])
    span = top - bottom
    plot_h, bar_w, gap, group_w, head = 130, 64, 12, 320, 16
    width = group_w * len(groups)
    height = head + plot_h + 16 + 40
    zero_y = head + plot_h * top / span
    body = [
        f'<line x1="0" x2="{width}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" '
        f'stroke="{MUTED}" stroke-width="0.8"/>'
    ]
    base = head + plot_h + 16
    for i, (name, _, _) in enumerate(groups):
        inner = 3 * bar_w + 2 * gap
        gx = i * group_w + (group_w - inner) / 2
        for label, value, color in bars[i]:
            h = plot_h * abs(float(value)) / span
            y = zero_y - h if value >= 0 else zero_y
            cx = gx + bar_w / 2
            body.append(
                f'<rect x="{gx:.1f}" y="{y:.1f}" width="{bar_w}" height="{max(h, 0.8):.1f}" '
                f'fill="{color}"/>'
                f'<text x="{cx:.1f}" y="{(y - 4 if value >= 0 else y + h + 11):.1f}" '
                f'text-anchor="middle" font-size="9">{money(value)}</text>'
                f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="middle" font-size="8.5" '
                f'fill="{MUTED}">{label}</text>'
            )
            gx += bar_w + gap
        body.append(
            f'<text x="{i * group_w + group_w / 2:.1f}" y="{base + 31}" text-anchor="middle" '
            f'font-weight="bold">{escape(name)}</text>'
        )
    return _svg(width, height, body, "Realized gains and losses by holding period")


# --------------------------------------------------------------------------- view model


def _allocation_rows(rows: Sequence[AllocationRow], *, with_weights: bool) -> list[dict[str, str]]:
    out = []
    for r in rows:
        item = {"label": r.label, "target": pct(r.target), "band": band(r)}
        if with_weights:
            item["before"] = pct(r.before)
            item["after"] = pct(r.after)
            change = r.after - r.before
            item["change"] = ("+" if change > 0 else "") + pct(change)
        out.append(item)
    return out


LOT_COLUMNS = (
    ("Account", "<"),
    ("Symbol", "<"),
    ("Lot", "<"),
    ("Acquired", "<"),
    ("Shares", ">"),
    ("Cost basis", ">"),
    ("Est. proceeds", ">"),
    ("Gain / loss", ">"),
    ("Term", "<"),
)
LOT_LINE_WIDTH_PT = 500  # the text width of a letter page less the table's padding
MONO_ADVANCE_EM = Decimal("0.602")  # DejaVu Sans Mono's advance width
LOT_FONT_PT = Decimal("7.5")


LOTS_PER_CELL = 12  # a sale's lots share a table cell (a row never splits across pages)


def _lot_listing(sales: Sequence[Sequence[tuple[str, ...]]]) -> dict[str, Any] | None:
    """The appendix's lots as fixed-width lines in a monospace font, one table cell per sale
    (at most ``LOTS_PER_CELL`` lines each): 2,000 lots lay out in about a second this way, where
    18,000 table cells take ten. Column widths fit the longest value; the font shrinks (down to
    5pt) when very long lot ids would not fit the page width."""
    rows = [row for sale in sales for row in sale]
    if not rows:
        return None
    widths = [
        max([len(title)] + [len(row[i]) for row in rows])
        for i, (title, _) in enumerate(LOT_COLUMNS)
    ]
    capacity = int(Decimal(LOT_LINE_WIDTH_PT) / (MONO_ADVANCE_EM * LOT_FONT_PT))
    gap = " " * max(2, min(5, (capacity - sum(widths)) // (len(widths) - 1)))

    def line(values: Sequence[str]) -> str:
        cells = [
            f"{v:{align}{w}}" for v, w, (_, align) in zip(values, widths, LOT_COLUMNS, strict=True)
        ]
        return gap.join(cells).rstrip()

    chars = sum(widths) + len(gap) * (len(widths) - 1)
    size = min(LOT_FONT_PT, Decimal(LOT_LINE_WIDTH_PT) / (MONO_ADVANCE_EM * chars))
    size = max(Decimal(5), size.quantize(Decimal("0.1"), rounding=ROUND_FLOOR))
    cells = [
        "\n".join(line(row) for row in sale[i : i + LOTS_PER_CELL])
        for sale in sales
        for i in range(0, len(sale), LOTS_PER_CELL)
    ]
    return {
        "header": line([title for title, _ in LOT_COLUMNS]),
        "cells": cells,
        "font_size": f"{size:f}pt",
    }


def rationale_context(doc: RationaleDocument) -> dict[str, Any]:
    """Everything the template shows, formatted (strings, lists and dicts only)."""
    r = doc.realized
    accounts = []
    lots: list[list[tuple[str, ...]]] = []
    all_trades = 0
    for section in doc.accounts:
        trades = []
        for t in section.trades:
            all_trades += 1
            trades.append(
                {
                    "side": "Buy" if t.side == "buy" else "Sell",
                    "is_buy": t.side == "buy",
                    "symbol": t.symbol,
                    "name": t.security_name,
                    "shares": shares(t.shares),
                    "price": money(t.price),
                    "value": money(t.estimated_value),
                    "st": money_or_dash(t.realized_short_term),
                    "lt": money_or_dash(t.realized_long_term),
                }
            )
            sale: list[tuple[str, ...]] = [
                (
                    section.account_number_masked,
                    t.symbol,
                    lot.lot_ref,
                    f"{lot.acquired:%m/%d/%Y}",
                    shares(lot.shares),
                    money(lot.cost_basis),
                    money(lot.proceeds),
                    money(lot.realized_gain),
                    "Long" if lot.term == "long" else "Short",
                )
                for lot in t.lots
            ]
            if sale:
                lots.append(sale)
        st = [t.realized_short_term for t in section.trades if t.realized_short_term is not None]
        lt = [t.realized_long_term for t in section.trades if t.realized_long_term is not None]
        sells = [t for t in section.trades if t.side == "sell"]
        accounts.append(
            {
                "label": section.label,
                "custodian": section.custodian_name,
                "number": section.account_number_masked,
                "registration": section.registration,
                "tax_treatment": section.tax_treatment,
                "trades": trades,
                "buy_count": len(section.trades) - len(sells),
                "sell_count": len(sells),
                "buys": money(section.buys),
                "sells": money(section.sells),
                "net_cash": money(section.sells - section.buys),
                "st_total": money(_total(st)) if st else "—",
                "lt_total": money(_total(lt)) if lt else "—",
                "untaxed_sells": bool(sells) and not st and not lt,
            }
        )

    approvals = [
        {
            "step": a.step,
            "name": a.name,
            "role": a.role,
            "at": utc_datetime(a.at),
            "comment": a.comment,
        }
        for a in doc.approvals
    ]
    ips = None
    if doc.ips is not None:
        ips = {
            "version": doc.ips.version,
            "effective": long_date(doc.ips.effective_date),
            "objectives": _paragraphs(doc.ips.objectives),
            "targets": _allocation_rows(doc.ips.targets, with_weights=False),
            "restrictions": list(doc.ips.restrictions),
        }
    st_net = r.short_term_gains + r.short_term_losses
    lt_net = r.long_term_gains + r.long_term_losses
    footer = f"Proposal {doc.proposal_id} · Snapshot SHA-256 {doc.snapshot_sha256}"
    return {
        "title": f"Portfolio proposal {doc.proposal_id} · {doc.household_name}",
        "created": w3c_datetime(doc.generated_at),
        "firm": doc.firm_name,
        "household": doc.household_name,
        "clients": _names(doc.client_names),
        "adviser": doc.adviser_name,
        "scenario": doc.scenario_label,
        "proposal_id": doc.proposal_id,
        "snapshot": doc.snapshot_sha256,
        "footer": footer,
        "as_of": long_date(doc.as_of),
        "approved": long_date(utc(doc.approved_at).date()) if doc.approved_at else None,
        "generated": utc_datetime(doc.generated_at),
        "explanation": [p for p in doc.explanation if p.strip()],
        "explanation_by_model": doc.explanation_source == "model",
        "allocation": _allocation_rows(doc.allocation, with_weights=True),
        "allocation_chart": allocation_chart(doc.allocation) if doc.allocation else "",
        "accounts": accounts,
        "trade_count": all_trades,
        "realized": {
            "st_gains": money(r.short_term_gains),
            "st_losses": money(r.short_term_losses),
            "st_net": money(st_net),
            "lt_gains": money(r.long_term_gains),
            "lt_losses": money(r.long_term_losses),
            "lt_net": money(lt_net),
            "gains": money(r.short_term_gains + r.long_term_gains),
            "losses": money(r.short_term_losses + r.long_term_losses),
            "net": money(r.net),
            "tax": money(r.estimated_tax),
            "deferred": money(abs(r.tax_deferred)),
            "deferred_kind": "gain" if r.tax_deferred > 0 else "loss",
            "has_deferred": r.tax_deferred != 0,
        },
        "gains_chart": gains_chart(
            short_gains=r.short_term_gains,
            short_losses=r.short_term_losses,
            long_gains=r.long_term_gains,
            long_losses=r.long_term_losses,
        ),
        "te_before": pct(doc.tracking_error_before, 2),
        "te_after": pct(doc.tracking_error_after, 2),
        "turnover": pct(doc.turnover),
        "trading_cost": money(doc.trading_cost),
        "tickets": doc.tickets,
        "constraints": list(doc.constraints),
        "ips": ips,
        "approvals": approvals,
        "lots": _lot_listing(lots),
        "lot_accounts": [
            {"number": a.account_number_masked, "label": a.label}
            for a in doc.accounts
            if any(t.lots for t in a.trades)
        ],
        "disclosures": list(doc.disclosures or DEFAULT_DISCLOSURES),
        "stylesheet": STYLESHEET,
    }


# --------------------------------------------------------------------------- rendering


class ExportAssetFetcher(URLFetcher):
    """Serves the files under ``portal/static/exports/`` (and ``data:`` URLs); refuses every
    other URL (http, https, ftp, files elsewhere) without touching the network."""

    def __init__(self, root: Path = ASSETS_DIR) -> None:
        super().__init__(allowed_protocols=("file", "data"), fail_on_errors=True)
        self.root = root.resolve()

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file":
            raise ValueError(f"refused to fetch {url!r}: only the export assets may be used")
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"refused to fetch {url!r}: not a local file")
        path = Path(url2pathname(parts.path)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise ValueError(f"refused to fetch {url!r}: outside {self.root}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".ttf":
            content_type = "font/ttf"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )


def render_rationale_html(doc: RationaleDocument) -> str:
    """The rationale as HTML for WeasyPrint (its stylesheet and fonts are relative URLs into
    ``portal/static/exports/``)."""
    return render_to_string(TEMPLATE, rationale_context(doc))


def pdf_identifier(doc: RationaleDocument) -> bytes:
    """The PDF's file identifier: stable for one proposal and snapshot."""
    seed = f"rationale:{doc.proposal_id}:{doc.snapshot_sha256}".encode()
    return hashlib.sha256(seed).hexdigest()[:32].encode()


def html_to_pdf(html: str, *, identifier: bytes) -> bytes:
    """WeasyPrint with the export assets as the only reachable resources. A reference to
    anything else stops the rendering with ``ExportRefused``."""
    try:
        document = HTML(
            string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=ExportAssetFetcher()
        )
        pdf = document.write_pdf(pdf_identifier=identifier)
    except FatalURLFetchingError as exc:
        raise ExportRefused(
            "The rationale PDF refers to a resource outside the export assets.",
            [str(exc.__cause__ or exc)],
        ) from exc
    assert isinstance(pdf, bytes)
    return pdf


def render_rationale_pdf(doc: RationaleDocument) -> RenderedFile:
    """The client's rationale PDF (US letter, portrait) of an approved proposal."""
    content = html_to_pdf(render_rationale_html(doc), identifier=pdf_identifier(doc))
    return RenderedFile(
        kind="rationale_pdf",
        name=f"proposal-{doc.proposal_id}-rationale.pdf",
        content=content,
        content_type="application/pdf",
        order_count=0,
        total_shares=Decimal(0),
    )
