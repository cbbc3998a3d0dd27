"""Server-rendered inline SVG charts (no JavaScript, nothing downloaded at run time).

Each function returns ``SafeString`` markup; every label is escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BEFORE = "#b9cde5"
AFTER = "#1f4e79"
TARGET = "#1d2433"
GAIN = "#027a48"
LOSS = "#b42318"
GAIN_LT = "#6cc59b"
LOSS_LT = "#f09a92"
PALETTE = ["#1f4e79", "#b54708", "#027a48", "#7a2e98", "#475467"]
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _money(x: float) -> str:
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 1_000_000:
        return f"{sign}${x / 1_000_000:.1f}M"
    if x >= 1_000:
        return f"{sign}${x / 1_000:.1f}K"
    return f"{sign}${x:,.0f}"


def _svg(width: int, height: int, body: list[str], title: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every interpolated label is escaped above
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def allocation_chart(
    classes_before: Mapping[str, Any], classes_after: Mapping[str, Any], names: Mapping[str, str]
) -> SafeString:
    """Horizontal bars per asset class: weight before (light), after (dark), target (tick)."""
    keys = [k for k in classes_after if k in classes_before or k in classes_after]
    label_w, bar_w, row_h = 110, 170, 30
    scale = max(
        [0.1]
        + [_f(classes_before.get(k, {}).get("weight")) for k in keys]
        + [_f(classes_after.get(k, {}).get("weight")) for k in keys]
        + [_f(classes_after.get(k, {}).get("target")) for k in keys]
    )
    height = row_h * len(keys) + 28
    width = label_w + bar_w + 60
    body: list[str] = []
    for i, key in enumerate(keys):
        y = 6 + i * row_h
        before = _f(classes_before.get(key, {}).get("weight"))
        after = _f(classes_after.get(key, {}).get("weight"))
        target = classes_after.get(key, {}).get("target")
        name = escape(names.get(key, key))
        body.append(f'<text x="0" y="{y + 15}" {FONT} fill="#475467">{name}</text>')
        body.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{bar_w * before / scale:.1f}" height="9" '
            f'fill="{BEFORE}"><title>{name} before: {_pct(before)}</title></rect>'
        )
        body.append(
            f'<rect x="{label_w}" y="{y + 12}" width="{bar_w * after / scale:.1f}" height="9" '
            f'fill="{AFTER}"><title>{name} after: {_pct(after)}</title></rect>'
        )
        if target is not None:
            tx = label_w + bar_w * _f(target) / scale
            body.append(
                f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y}" y2="{y + 23}" stroke="{TARGET}" '
                f'stroke-width="2"><title>{name} target: {_pct(_f(target))}</title></line>'
            )
        body.append(
            f'<text x="{label_w + bar_w + 6}" y="{y + 20}" {FONT} fill="#1d2433">{_pct(after)}</text>'
        )
    ly = height - 10
    body.append(
        f'<rect x="0" y="{ly - 8}" width="10" height="8" fill="{BEFORE}"/>'
        f'<text x="14" y="{ly}" {FONT}>before</text>'
        f'<rect x="60" y="{ly - 8}" width="10" height="8" fill="{AFTER}"/>'
        f'<text x="74" y="{ly}" {FONT}>after</text>'
        f'<line x1="116" x2="116" y1="{ly - 10}" y2="{ly + 1}" stroke="{TARGET}" stroke-width="2"/>'
        f'<text x="122" y="{ly}" {FONT}>target</text>'
    )
    return _svg(width, height, body, "Allocation against target, before and after")


def gains_chart(columns: Sequence[tuple[str, Mapping[str, Any]]]) -> SafeString:
    """Realized gains and losses by holding period, one group of four bars per scenario."""
    series = [
        ("short_term_gains", "ST gains", GAIN),
        ("long_term_gains", "LT gains", GAIN_LT),
        ("short_term_losses", "ST losses", LOSS),
        ("long_term_losses", "LT losses", LOSS_LT),
    ]
    values = [[_f(realized.get(key)) for key, _, _ in series] for _, realized in columns]
    top = max([1.0] + [v for row in values for v in row if v > 0])
    bottom = min([0.0] + [v for row in values for v in row if v < 0])
    span = top - bottom or 1.0
    plot_h, group_w, bar_w, left = 150, 130, 22, 56
    width = left + group_w * max(1, len(columns)) + 10
    height = plot_h + 60
    zero_y = 10 + plot_h * top / span
    body = [
        f'<line x1="{left}" x2="{width - 5}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" stroke="#98a2b3"/>',
        f'<text x="{left - 4}" y="14" text-anchor="end" {FONT} fill="#667085">{_money(top)}</text>',
        f'<text x="{left - 4}" y="{zero_y + 4:.1f}" text-anchor="end" {FONT} fill="#667085">$0</text>',
    ]
    if bottom < 0:
        body.append(
            f'<text x="{left - 4}" y="{10 + plot_h:.1f}" text-anchor="end" {FONT} '
            f'fill="#667085">{_money(bottom)}</text>'
        )
    for i, (name, _) in enumerate(columns):
        gx = left + i * group_w + 10
        for j, (_, label, color) in enumerate(series):
            v = values[i][j]
            h = plot_h * abs(v) / span
            y = zero_y - h if v >= 0 else zero_y
            body.append(
                f'<rect x="{gx + j * (bar_w + 4)}" y="{y:.1f}" width="{bar_w}" height="{max(h, 0.5):.1f}" '
                f'fill="{color}"><title>{escape(name)} {label}: {_money(v)}</title></rect>'
            )
        body.append(
            f'<text x="{gx + 2 * (bar_w + 4) - 2}" y="{10 + plot_h + 18}" text-anchor="middle" '
            f'{FONT} fill="#1d2433">{escape(name)}</text>'
        )
    lx = left
    for _, label, color in series:
        body.append(
            f'<rect x="{lx}" y="{height - 16}" width="10" height="8" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{height - 8}" {FONT}>{label}</text>'
        )
        lx += 80
    return _svg(width, height, body, "Realized gains and losses by holding period")


def forecast_chart(columns: Sequence[tuple[str, Sequence[Mapping[str, Any]], float]]) -> SafeString:
    """Tracking error after trading, year by year (year 0 = today), one line per scenario."""
    years = max([1] + [len(rows) for _, rows, _ in columns])
    top = max(
        [0.001]
        + [te0 for _, _, te0 in columns]
        + [_f(r.get("tracking_error_after")) for _, rows, _ in columns for r in rows]
    )
    left, plot_w, plot_h = 50, 360, 140
    width, height = left + plot_w + 130, plot_h + 50

    def xy(year: int, te: float) -> tuple[float, float]:
        return left + plot_w * year / years, 10 + plot_h * (1 - te / top)

    body = [
        f'<line x1="{left}" x2="{left + plot_w}" y1="{10 + plot_h}" y2="{10 + plot_h}" stroke="#98a2b3"/>',
        f'<text x="{left - 4}" y="14" text-anchor="end" {FONT} fill="#667085">{_pct(top)}</text>',
        f'<text x="{left - 4}" y="{10 + plot_h}" text-anchor="end" {FONT} fill="#667085">0%</text>',
    ]
    for year in range(years + 1):
        x, _ = xy(year, 0)
        body.append(
            f'<text x="{x:.1f}" y="{plot_h + 26}" text-anchor="middle" {FONT} fill="#667085">'
            f"{'today' if year == 0 else f'yr {year}'}</text>"
        )
    for i, (name, rows, te0) in enumerate(columns):
        color = PALETTE[i % len(PALETTE)]
        points = [xy(0, te0)] + [
            xy(int(r.get("year", k + 1)), _f(r.get("tracking_error_after")))
            for k, r in enumerate(rows)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for x, y in points:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        body.append(
            f'<rect x="{left + plot_w + 16}" y="{14 + i * 18}" width="10" height="3" fill="{color}"/>'
            f'<text x="{left + plot_w + 30}" y="{19 + i * 18}" {FONT}>{escape(name)}</text>'
        )
    return _svg(width, height, body, "Tracking error by year")
