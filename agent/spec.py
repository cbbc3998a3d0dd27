"""The constraint spec: what an adviser's request means to the optimizer.

A :class:`ConstraintSpec` is a frozen, validated value. It is *well-formed* when it
constructs (types, formats, known scenario names) and *runnable* when
:func:`conflicts` finds nothing (no contradictions, no impossible numbers).  The two are
kept apart on purpose: a model or the parser may produce a well-formed spec that asks for
something impossible ("raise -$5,000"), and the right answer to that is a question to the
adviser, not an exception.

Units: money is :class:`decimal.Decimal` dollars with at most two decimal places;
fractions (tracking error, completion, turnover) are :class:`~decimal.Decimal` fractions
(``0.01`` is 1%); ``max_trades`` is a count.  ``to_dict`` writes Decimals as strings and
symbol lists sorted, so the same spec always gives the same JSON.

Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

__all__ = [
    "FIELD_DOCS",
    "FIELD_NAMES",
    "QUESTION_KINDS",
    "SCENARIOS",
    "ConstraintSpec",
    "FieldError",
    "Question",
    "QuestionKind",
    "SpecError",
    "conflicts",
    "json_schema",
    "openai_tool",
    "validate_spec",
]

SCENARIOS: Final = ("conservative", "moderate", "aggressive", "tax_sensitive", "custom")

QuestionKind = Literal[
    "unknown_symbol",
    "contradiction",
    "impossible_value",
    "ambiguous",
    "missing_value",
    "unsupported",
    "not_understood",
]
QUESTION_KINDS: Final = (
    "unknown_symbol",
    "contradiction",
    "impossible_value",
    "ambiguous",
    "missing_value",
    "unsupported",
    "not_understood",
)

MONEY_FIELDS: Final = ("max_net_gains", "max_short_term_gains", "raise_cash", "invest_cash")
FRACTION_FIELDS: Final = ("max_tracking_error", "completion_target", "max_turnover")
SYMBOL_FIELDS: Final = ("no_sell", "no_buy", "must_sell")
NOTES_MAX_CHARS: Final = 2000
MAX_SYMBOLS: Final = 500

# Strings accepted for Decimal fields (the JSON Schema uses the same patterns).
_MONEY_PATTERN: Final = r"^-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?$"
_FRACTION_PATTERN: Final = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
_SYMBOL_PATTERN: Final = r"^[A-Z][A-Z0-9]{0,9}([.\-][A-Z0-9]{1,4})?$"
_MONEY_RE: Final = re.compile(_MONEY_PATTERN)
_FRACTION_RE: Final = re.compile(_FRACTION_PATTERN)
_SYMBOL_RE: Final = re.compile(_SYMBOL_PATTERN)

#: One description per field: its meaning and unit.  Used by ``json_schema()`` and docs.
FIELD_DOCS: Final[Mapping[str, str]] = {
    "scenario": (
        "Preset the request starts from: conservative (minimize tax), moderate, aggressive "
        "(complete most of the transition), tax_sensitive (harvest losses to offset gains), "
        "or custom (only the constraints below)."
    ),
    "max_net_gains": (
        "Cap on net realized capital gains for the run, in US dollars as a decimal string "
        "(e.g. '25000'). '0' means no net gains. null: no cap."
    ),
    "max_short_term_gains": (
        "Cap on realized short-term gains (lots held one year or less), in US dollars as a "
        "decimal string. null: no separate cap."
    ),
    "no_short_term_gains": "true: realize no short-term gains at all.",
    "no_sell": "Ticker symbols that must not be sold (upper case, e.g. 'AAPL').",
    "no_buy": "Ticker symbols that must not be bought.",
    "must_sell": "Ticker symbols whose whole position must be sold.",
    "raise_cash": "Cash to raise by selling, in US dollars as a decimal string. null: none.",
    "invest_cash": "Existing cash to invest, in US dollars as a decimal string. null: none.",
    "max_tracking_error": (
        "Largest acceptable ex-ante tracking error to the IPS target after the trades, as a "
        "fraction (e.g. '0.01' for 1%). null: no target."
    ),
    "completion_target": (
        "Fraction of the transition to the target to complete, in (0, 1] (e.g. '1' to "
        "finish the transition, '0.8' for 80%). null: the scenario decides."
    ),
    "max_trades": "Largest number of trades (tickets) in the run. null: no limit.",
    "max_turnover": (
        "Largest one-way turnover as a fraction of portfolio value, in [0, 1] (e.g. '0.15' "
        "for 15%). null: no limit."
    ),
    "harvest_losses": (
        "true: harvest losses where useful; false: do not harvest; null: the scenario decides."
    ),
    "notes": "Free text the adviser wants kept with the scenario (not used by the optimizer).",
}


@dataclass(frozen=True)
class FieldError:
    """One bad field and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class SpecError(ValueError):
    """A spec is not well-formed.  ``errors`` lists every bad field with its reason."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("invalid constraint spec: " + "; ".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class Question:
    """A clarifying question for the adviser.

    ``fields`` names the spec fields concerned; ``phrases`` and ``spans`` (character
    offsets into the request text) name what the adviser wrote, when the question comes
    from text; ``symbols`` names the tickers concerned, if any.
    """

    kind: QuestionKind
    message: str
    fields: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()
    symbols: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": list(self.fields),
            "kind": self.kind,
            "message": self.message,
            "phrases": list(self.phrases),
            "spans": [list(s) for s in self.spans],
            "symbols": list(self.symbols),
        }


def _canonical_decimal(value: Decimal) -> Decimal:
    """The one representation of a number: integral values without exponent or decimals,
    others without trailing zeros ("25000", "0.005")."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


def _check_decimal(name: str, value: object, *, money: bool, errors: list[FieldError]) -> object:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        kind = "dollar amount" if money else "fraction"
        errors.append(FieldError(name, f"must be a Decimal {kind} or null, got {value!r}"))
        return value
    dec = Decimal(value)
    if not dec.is_finite():
        errors.append(FieldError(name, "must be a finite number"))
        return value
    dec = _canonical_decimal(dec)
    if money and dec != dec.to_integral_value():
        if dec != dec.quantize(Decimal("0.01")):
            errors.append(FieldError(name, "must have at most two decimal places (cents)"))
            return value
        dec = dec.quantize(Decimal("0.01"))  # whole cents: "25000.50", not "25000.5"
    return dec


def _check_symbols(name: str, value: object, errors: list[FieldError]) -> object:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        errors.append(FieldError(name, "must be a list of ticker symbols"))
        return value
    cleaned: set[str] = set()
    bad: list[str] = []
    for item in value:
        if not isinstance(item, str):
            bad.append(repr(item))
            continue
        sym = item.strip().upper()
        if not _SYMBOL_RE.match(sym):
            bad.append(repr(item))
            continue
        cleaned.add(sym)
    if bad:
        errors.append(FieldError(name, "not ticker symbols: " + ", ".join(bad)))
        return value
    if len(cleaned) > MAX_SYMBOLS:
        errors.append(FieldError(name, f"at most {MAX_SYMBOLS} symbols"))
        return value
    return tuple(sorted(cleaned))


def _check_values(values: Mapping[str, object]) -> tuple[dict[str, object], list[FieldError]]:
    """Check and normalize every field; collect every problem instead of stopping."""
    errors: list[FieldError] = []
    out: dict[str, object] = dict(values)

    scenario = values["scenario"]
    if scenario not in SCENARIOS:
        errors.append(FieldError("scenario", f"must be one of {', '.join(SCENARIOS)}"))

    for name in MONEY_FIELDS:
        out[name] = _check_decimal(name, values[name], money=True, errors=errors)
    for name in FRACTION_FIELDS:
        out[name] = _check_decimal(name, values[name], money=False, errors=errors)
    for name in SYMBOL_FIELDS:
        out[name] = _check_symbols(name, values[name], errors)

    if not isinstance(values["no_short_term_gains"], bool):
        errors.append(FieldError("no_short_term_gains", "must be true or false"))
    harvest = values["harvest_losses"]
    if harvest is not None and not isinstance(harvest, bool):
        errors.append(FieldError("harvest_losses", "must be true, false or null"))
    trades = values["max_trades"]
    if trades is not None and (isinstance(trades, bool) or not isinstance(trades, int)):
        errors.append(FieldError("max_trades", "must be a whole number or null"))
    notes = values["notes"]
    if not isinstance(notes, str):
        errors.append(FieldError("notes", "must be text"))
    elif len(notes) > NOTES_MAX_CHARS:
        errors.append(FieldError("notes", f"at most {NOTES_MAX_CHARS} characters"))
    return out, errors


@dataclass(frozen=True)
class ConstraintSpec:
    """What the adviser asked for, in the optimizer's terms.  See ``FIELD_DOCS``."""

    scenario: str = "custom"
    max_net_gains: Decimal | None = None
    max_short_term_gains: Decimal | None = None
    no_short_term_gains: bool = False
    no_sell: tuple[str, ...] = ()
    no_buy: tuple[str, ...] = ()
    must_sell: tuple[str, ...] = ()
    raise_cash: Decimal | None = None
    invest_cash: Decimal | None = None
    max_tracking_error: Decimal | None = None
    completion_target: Decimal | None = None
    max_trades: int | None = None
    max_turnover: Decimal | None = None
    harvest_losses: bool | None = None
    notes: str = field(default="")

    def __post_init__(self) -> None:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        normalized, errors = _check_values(current)
        if errors:
            raise SpecError(errors)
        for name, value in normalized.items():
            if value is not current[name]:
                object.__setattr__(self, name, value)

    # -- serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, keys sorted; Decimals as strings, symbol lists sorted."""
        out: dict[str, Any] = {}
        for name in FIELD_NAMES:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                out[name] = _decimal_text(value)
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal specs give identical text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConstraintSpec:
        """Build from ``to_dict()`` output (or a model's tool-call arguments).

        Missing keys take their defaults; unknown keys are errors.  Decimal fields accept
        decimal strings (the schema's form) or integers; floats are refused so no binary
        rounding reaches money.  Raises :class:`SpecError` listing every bad field.
        """
        if not isinstance(data, Mapping):
            raise SpecError([FieldError("(spec)", "must be a JSON object")])
        errors: list[FieldError] = [
            FieldError(str(key), "unknown field")
            for key in sorted(map(str, data))
            if key not in _DEFAULTS
        ]
        values: dict[str, object] = dict(_DEFAULTS)
        for name in FIELD_NAMES:
            if name not in data:
                continue
            raw = data[name]
            if name in MONEY_FIELDS or name in FRACTION_FIELDS:
                values[name] = _decimal_from_json(name, raw, errors)
            elif name in SYMBOL_FIELDS:
                if not isinstance(raw, list):
                    errors.append(FieldError(name, "must be a list of ticker symbols"))
                values[name] = raw
            else:
                values[name] = raw
        normalized, more = _check_values(values)
        seen = {e.field for e in errors}
        errors.extend(e for e in more if e.field not in seen)
        if errors:
            raise SpecError(sorted(errors, key=lambda e: (e.field, e.reason)))
        return cls(**normalized)  # type: ignore[arg-type]


FIELD_NAMES: Final[tuple[str, ...]] = tuple(sorted(f.name for f in fields(ConstraintSpec)))
_DEFAULTS: Final[dict[str, object]] = {f.name: f.default for f in fields(ConstraintSpec)}


def _decimal_from_json(name: str, raw: object, errors: list[FieldError]) -> object:
    if raw is None:
        return None
    money = name in MONEY_FIELDS
    if isinstance(raw, (bool, float)):
        errors.append(FieldError(name, "must be a decimal string such as '25000', not a float"))
        return None
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, str):
        pattern = _MONEY_RE if money else _FRACTION_RE
        if not pattern.match(raw):
            what = "dollars with at most two decimals" if money else "a decimal fraction"
            errors.append(FieldError(name, f"{raw!r} is not {what} (e.g. '25000', '0.01')"))
            return None
        try:
            return Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            errors.append(FieldError(name, f"{raw!r} is not a number"))
            return None
    errors.append(FieldError(name, "must be a decimal string or null"))
    return None


def validate_spec(data: Mapping[str, Any]) -> ConstraintSpec:
    """Validate a dict (e.g. a tool call's arguments) into a spec; see ``from_dict``."""
    return ConstraintSpec.from_dict(data)


# -- JSON Schema -------------------------------------------------------------------------
def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``ConstraintSpec.to_dict()``.

    Shaped for OpenAI tool calling in strict mode: every property is listed in
    ``required`` (optional values are nullable instead), ``additionalProperties`` is false,
    and only widely supported keywords are used.  Every dict this schema accepts is
    accepted by :func:`validate_spec`.
    """

    def money(name: str) -> dict[str, Any]:
        return {
            "type": ["string", "null"],
            "pattern": _MONEY_PATTERN,
            "description": FIELD_DOCS[name],
        }

    def fraction(name: str) -> dict[str, Any]:
        return {
            "type": ["string", "null"],
            "pattern": _FRACTION_PATTERN,
            "description": FIELD_DOCS[name],
        }

    def symbols(name: str) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "string", "pattern": _SYMBOL_PATTERN},
            "maxItems": MAX_SYMBOLS,
            "description": FIELD_DOCS[name],
        }

    properties: dict[str, Any] = {
        "scenario": {
            "type": "string",
            "enum": list(SCENARIOS),
            "description": FIELD_DOCS["scenario"],
        },
        "max_net_gains": money("max_net_gains"),
        "max_short_term_gains": money("max_short_term_gains"),
        "no_short_term_gains": {
            "type": "boolean",
            "description": FIELD_DOCS["no_short_term_gains"],
        },
        "no_sell": symbols("no_sell"),
        "no_buy": symbols("no_buy"),
        "must_sell": symbols("must_sell"),
        "raise_cash": money("raise_cash"),
        "invest_cash": money("invest_cash"),
        "max_tracking_error": fraction("max_tracking_error"),
        "completion_target": fraction("completion_target"),
        "max_trades": {"type": ["integer", "null"], "description": FIELD_DOCS["max_trades"]},
        "max_turnover": fraction("max_turnover"),
        "harvest_losses": {
            "type": ["boolean", "null"],
            "description": FIELD_DOCS["harvest_losses"],
        },
        "notes": {
            "type": "string",
            "maxLength": NOTES_MAX_CHARS,
            "description": FIELD_DOCS["notes"],
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ConstraintSpec",
        "description": (
            "Constraints for one tax-aware transition scenario, exactly as the adviser "
            "asked. Use null or empty lists for anything the adviser did not ask for."
        ),
        "type": "object",
        "properties": {name: properties[name] for name in FIELD_NAMES},
        "required": list(FIELD_NAMES),
        "additionalProperties": False,
    }


def openai_tool(name: str = "set_constraint_spec") -> dict[str, Any]:
    """An OpenAI ``tools`` entry whose ``parameters`` is :func:`json_schema` (strict)."""
    parameters = {k: v for k, v in json_schema().items() if k != "$schema"}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Record the constraint spec for the adviser's scenario request.",
            "parameters": parameters,
            "strict": True,
        },
    }


# -- semantic checks ---------------------------------------------------------------------
def _money_words(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    amount = abs(value)
    text = f"{amount:,.2f}" if amount != amount.to_integral_value() else f"{amount:,.0f}"
    return f"{sign}${text}"


def _pct_words(value: Decimal) -> str:
    return _decimal_text(_canonical_decimal(value * 100)) + "%"


def conflicts(
    spec: ConstraintSpec, *, known_symbols: Collection[str] | None = None
) -> list[Question]:
    """Contradictions and impossible numbers in a well-formed spec, as questions.

    An empty list means the spec is runnable.  With ``known_symbols`` it also reports
    symbols outside that list and restrictions that leave nothing tradable.  The checks
    run in a fixed order, so the same spec always gives the same questions.
    """
    out: list[Question] = []

    def ask(kind: QuestionKind, message: str, *names: str, symbols: Iterable[str] = ()) -> None:
        out.append(Question(kind=kind, message=message, fields=names, symbols=tuple(symbols)))

    # Impossible numbers.
    for name, label in (
        ("max_net_gains", "net gain cap"),
        ("max_short_term_gains", "short-term gain cap"),
    ):
        value = getattr(spec, name)
        if value is not None and value < 0:
            ask(
                "impossible_value",
                f"The {label} of {_money_words(value)} is negative. What cap did you mean?",
                name,
            )
    for name, label in (("raise_cash", "cash to raise"), ("invest_cash", "cash to invest")):
        value = getattr(spec, name)
        if value is not None and value <= 0:
            ask(
                "impossible_value",
                f"The {label} must be more than $0 (got {_money_words(value)}). How much did you mean?",
                name,
            )
    te = spec.max_tracking_error
    if te is not None and (te < 0 or te >= 1):
        ask(
            "impossible_value",
            f"A tracking-error target of {_pct_words(te)} is not possible; it must be at least 0% "
            "and below 100%. What target did you mean?",
            "max_tracking_error",
        )
    ct = spec.completion_target
    if ct is not None and (ct <= 0 or ct > 1):
        ask(
            "impossible_value",
            f"A completion target of {_pct_words(ct)} is not possible; it must be above 0% and at "
            "most 100% of the transition. How much of the transition should be completed?",
            "completion_target",
        )
    to = spec.max_turnover
    if to is not None and (to < 0 or to > 1):
        ask(
            "impossible_value",
            f"A turnover limit of {_pct_words(to)} is not possible; one-way turnover is between 0% "
            "and 100% of the portfolio. What limit did you mean?",
            "max_turnover",
        )
    if spec.max_trades is not None and spec.max_trades < 0:
        ask(
            "impossible_value",
            f"A limit of {spec.max_trades} trades is negative. What limit did you mean?",
            "max_trades",
        )

    # Contradictions between fields.
    if spec.max_net_gains is not None and spec.max_net_gains == 0 and ct is not None and ct == 1:
        ask(
            "contradiction",
            "No net gains and finishing the transition usually cannot both hold: completing it "
            "needs gain-heavy positions sold. Which comes first: the $0 gain cap (complete as "
            "much as it allows) or finishing the transition (allow gains)?",
            "max_net_gains",
            "completion_target",
        )
    if (
        spec.no_short_term_gains
        and spec.max_short_term_gains is not None
        and spec.max_short_term_gains > 0
    ):
        ask(
            "contradiction",
            f"You asked for no short-term gains and also for a short-term gain cap of "
            f"{_money_words(spec.max_short_term_gains)}. Which one applies?",
            "no_short_term_gains",
            "max_short_term_gains",
        )
    if spec.raise_cash is not None and spec.invest_cash is not None:
        ask(
            "contradiction",
            f"The request both raises {_money_words(spec.raise_cash)} of cash and invests "
            f"{_money_words(spec.invest_cash)} of cash. Which one should this scenario do?",
            "raise_cash",
            "invest_cash",
        )
    both = sorted(set(spec.no_sell) & set(spec.must_sell))
    if both:
        names = _join(both)
        ask(
            "contradiction",
            f"{names} cannot both be sold in full and kept from selling. Should {names} be sold or kept?",
            "no_sell",
            "must_sell",
            symbols=both,
        )
    if spec.scenario == "tax_sensitive" and spec.harvest_losses is False:
        ask(
            "contradiction",
            "The tax-sensitive scenario harvests losses to offset gains, but the request turns "
            "harvesting off. Keep harvesting, or use another scenario?",
            "scenario",
            "harvest_losses",
        )

    needs_trades = [
        name
        for name, wanted in (
            ("raise_cash", spec.raise_cash is not None and spec.raise_cash > 0),
            ("invest_cash", spec.invest_cash is not None and spec.invest_cash > 0),
            ("must_sell", bool(spec.must_sell)),
            ("completion_target", ct is not None and ct > 0),
            ("harvest_losses", spec.harvest_losses is True),
        )
        if wanted
    ]
    if spec.max_trades == 0 and needs_trades:
        ask(
            "contradiction",
            "A limit of 0 trades leaves nothing to trade, but the request also asks for "
            f"{_field_list(needs_trades)}. Should trades be allowed?",
            "max_trades",
            *needs_trades,
        )
    if spec.max_turnover is not None and spec.max_turnover == 0 and needs_trades:
        ask(
            "contradiction",
            "A turnover limit of 0% leaves nothing to trade, but the request also asks for "
            f"{_field_list(needs_trades)}. Should trading be allowed?",
            "max_turnover",
            *needs_trades,
        )

    if known_symbols is not None:
        known = {s.strip().upper() for s in known_symbols}
        for name in SYMBOL_FIELDS:
            unknown = [s for s in getattr(spec, name) if s not in known]
            for sym in unknown:
                ask(
                    "unknown_symbol",
                    f"{sym} is not a security in this household or its target. Which symbol did you mean?",
                    name,
                    symbols=[sym],
                )
        if known:
            sell_all = known <= set(spec.no_sell)
            buy_all = known <= set(spec.no_buy)
            if sell_all and buy_all:
                ask(
                    "contradiction",
                    "Nothing may be sold and nothing may be bought, so no trade is possible. Which "
                    "restriction should be lifted?",
                    "no_sell",
                    "no_buy",
                )
            if sell_all and spec.raise_cash is not None and spec.raise_cash > 0:
                ask(
                    "contradiction",
                    f"Raising {_money_words(spec.raise_cash)} needs sales, but nothing may be sold. "
                    "Which securities may be sold?",
                    "no_sell",
                    "raise_cash",
                )
            if sell_all and spec.harvest_losses is True:
                ask(
                    "contradiction",
                    "Harvesting losses needs sales, but nothing may be sold. Harvest, or sell nothing?",
                    "no_sell",
                    "harvest_losses",
                )
            if buy_all and spec.invest_cash is not None and spec.invest_cash > 0:
                ask(
                    "contradiction",
                    f"Investing {_money_words(spec.invest_cash)} needs purchases, but nothing may be "
                    "bought. Which securities may be bought?",
                    "no_buy",
                    "invest_cash",
                )
    return out


_FIELD_WORDS: Final[Mapping[str, str]] = {
    "raise_cash": "cash to be raised",
    "invest_cash": "cash to be invested",
    "must_sell": "positions to be sold",
    "completion_target": "progress on the transition",
    "harvest_losses": "loss harvesting",
}


def _field_list(names: list[str]) -> str:
    return _join([_FIELD_WORDS[n] for n in names])


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"
