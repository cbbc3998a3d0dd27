"""Formatting for money, shares and fractions in templates (Decimal in, text out)."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


def _dec(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


@register.filter
def money(value: object, places: int = 2) -> str:
    """$1,234.56; negatives as -$1,234.56."""
    number = _dec(value)
    if number is None:
        return "—"
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number):,.{int(places)}f}"


@register.filter
def money0(value: object) -> str:
    return money(value, 0)


@register.filter
def pct(value: object, places: int = 1) -> str:
    """A fraction as a percentage: 0.2534 -> 25.3%."""
    number = _dec(value)
    if number is None:
        return "—"
    return f"{number * 100:.{int(places)}f}%"


@register.filter
def signed_pct(value: object, places: int = 1) -> str:
    number = _dec(value)
    if number is None:
        return "—"
    return f"{number * 100:+.{int(places)}f} pp"


@register.filter
def shares(value: object) -> str:
    """Whole shares without decimals, fractional shares with up to 6 places."""
    number = _dec(value)
    if number is None:
        return "—"
    if number == number.to_integral_value():
        return f"{number:,.0f}"
    return f"{number.normalize():,f}"
