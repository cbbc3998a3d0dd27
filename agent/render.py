"""A ConstraintSpec in plain English, to show the adviser before anything runs.

Deterministic: one sentence per constraint, always in the same order (the order of the
fields below), money with thousands separators, fractions as percentages.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from agent.spec import ConstraintSpec

__all__ = ["format_money", "format_percent", "spec_to_words"]

_SCENARIO_WORDS: Final = {
    "conservative": "conservative",
    "moderate": "moderate",
    "aggressive": "aggressive",
    "tax_sensitive": "tax-sensitive",
}


def format_money(value: Decimal) -> str:
    """``Decimal("25000")`` -> ``"$25,000"``; cents only when there are any."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount == amount.to_integral_value():
        return f"{sign}${amount:,.0f}"
    return f"{sign}${amount:,.2f}"


def format_percent(fraction: Decimal) -> str:
    """``Decimal("0.005")`` -> ``"0.5%"``; exact, no float rounding."""
    pct = fraction * 100
    if pct == pct.to_integral_value():
        return f"{pct.quantize(Decimal(1))}%"
    return f"{format(pct.normalize(), 'f')}%"


def _symbols(symbols: Sequence[str]) -> str:
    if len(symbols) == 1:
        return symbols[0]
    if len(symbols) == 2:
        return f"{symbols[0]} and {symbols[1]}"
    return ", ".join(symbols[:-1]) + f", and {symbols[-1]}"


def spec_to_words(spec: ConstraintSpec) -> list[str]:
    """The spec as sentences, e.g. ``["Net realized gains are capped at $25,000.",
    "AAPL will not be sold.", "No short-term gains will be realized."]``."""
    lines: list[str] = []
    if spec.scenario == "custom":
        lines.append("Custom scenario with the constraints below.")
    else:
        lines.append(
            f"Starts from the {_SCENARIO_WORDS[spec.scenario]} scenario, with the constraints below."
        )

    constraints: list[str] = []
    if spec.max_net_gains is not None:
        if spec.max_net_gains == 0:
            constraints.append("No net realized gains: any gain must be offset by a realized loss.")
        else:
            constraints.append(
                f"Net realized gains are capped at {format_money(spec.max_net_gains)}."
            )
    short_zero = spec.max_short_term_gains is not None and spec.max_short_term_gains == 0
    if spec.no_short_term_gains or short_zero:
        constraints.append("No short-term gains will be realized.")
    if spec.max_short_term_gains is not None and not short_zero:
        constraints.append(
            f"Short-term gains are capped at {format_money(spec.max_short_term_gains)}."
        )
    if spec.no_sell:
        constraints.append(f"{_symbols(spec.no_sell)} will not be sold.")
    if spec.no_buy:
        constraints.append(f"{_symbols(spec.no_buy)} will not be bought.")
    if spec.must_sell:
        constraints.append(f"{_symbols(spec.must_sell)} will be sold in full.")
    if spec.raise_cash is not None:
        constraints.append(f"{format_money(spec.raise_cash)} of cash will be raised.")
    if spec.invest_cash is not None:
        constraints.append(f"{format_money(spec.invest_cash)} of cash will be invested.")
    if spec.max_tracking_error is not None:
        constraints.append(
            f"Tracking error to the target will be at most {format_percent(spec.max_tracking_error)}."
        )
    if spec.completion_target is not None:
        if spec.completion_target == 1:
            constraints.append("The transition to the target will be completed in full.")
        else:
            constraints.append(
                f"{format_percent(spec.completion_target)} of the transition to the target will be completed."
            )
    if spec.max_trades is not None:
        if spec.max_trades == 0:
            constraints.append("No trades will be placed.")
        elif spec.max_trades == 1:
            constraints.append("At most 1 trade will be placed.")
        else:
            constraints.append(f"At most {spec.max_trades:,} trades will be placed.")
    if spec.max_turnover is not None:
        constraints.append(
            f"Turnover is limited to {format_percent(spec.max_turnover)} of portfolio value."
        )
    if spec.harvest_losses is True:
        constraints.append("Losses will be harvested where useful.")
    elif spec.harvest_losses is False:
        constraints.append("Losses will not be harvested.")
    if not constraints:
        constraints.append("No additional constraints.")
    lines.extend(constraints)
    if spec.notes:
        lines.append(f'Note: "{spec.notes}"')
    return lines
