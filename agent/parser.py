"""Deterministic offline parser: an adviser's request in plain English -> ConstraintSpec.

No model, no network, no randomness: the same text and symbols always give the same
outcome.  The parser is a fixed, ordered list of rules (regular expressions plus a small
handler each).  A rule that matches *consumes* its characters, so later rules never read
the same words twice.  What is left afterwards is checked clause by clause:

* a leftover clause that looks like a constraint (it has a number, ``$`` or ``%``, a
  ticker-like upper-case token, a constraint word such as *sell*, *gains*, *trades*,
  *cash*, *not*, *under*, a condition or scope word such as *unless*, *each*, *per* (see
  ``SIGNAL_WORDS``), or it narrows something to one account: "in the IRA") becomes a
  ``not_understood`` question;
* a leftover clause without such words ("for the Smith household") is reported in
  ``ParseOutcome.ignored`` and changes nothing;
* a request in which nothing at all was understood is one ``not_understood`` question.

A rule whose match comes right after a negation ("don't finish the transition", "no need
to harvest losses") does not fire, so the clause is asked about instead of read backwards.

Questions also come from unknown tickers, bare numbers without a unit, phrases with two
readings, values given twice, and :func:`agent.spec.conflicts`.  When there is any
question the outcome carries no spec: the adviser answers first; nothing is guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from agent.spec import (
    SYMBOL_FIELDS,
    ConstraintSpec,
    Question,
    QuestionKind,
    SpecError,
    conflicts,
)

__all__ = [
    "MAX_REQUEST_CHARS",
    "SIGNAL_WORDS",
    "STOPWORDS",
    "ParseOutcome",
    "Understood",
    "parse_request",
]

#: Longer requests get one question instead of a parse (bounds the regex work per request).
MAX_REQUEST_CHARS: Final = 2000

#: Upper-case words that are never read as tickers (acronyms common in advisers' notes).
#: A security whose symbol is one of these can still be named with a cashtag: ``$A``.
# fmt: off
STOPWORDS: Final = frozenset({
    "A", "AN", "AND", "ANY", "ALL", "ADR", "AUM", "B", "BN", "BP", "BPS", "CASH", "CEO", "CFO",
    "DAF", "DCA", "DO", "EOD", "EOM", "EOY", "ESG", "ETF", "ETFS", "FY", "FYI", "HSA", "I",
    "IPO", "IPS", "IRA", "IRAS", "IRS", "K", "LLC", "LT", "LTCG", "M", "MAX", "MIN", "MM", "MN",
    "MTD", "NAV", "NO", "NOT", "OK", "OR", "PM", "Q1", "Q2", "Q3", "Q4", "QTD", "RIA", "RMD",
    "ROTH", "SEC", "SEP", "SMA", "ST", "STCG", "TAX", "TE", "TLH", "TOD", "UGMA", "UMA", "US",
    "USA", "USD", "UTMA", "YTD"
})
# fmt: on

#: Lower-case words that make a leftover clause look like a constraint (see module doc).
#: Conditions and scopes ("unless needed", "for each account", "ideally") are included: a
#: spec constraint is hard and household-wide, so a clause that softens or scopes one must
#: be asked about, not dropped.
# fmt: off
SIGNAL_WORDS: Final = frozenset({
    "above", "after", "allow", "avoid", "before", "below", "block", "bought", "budget", "buy",
    "buying", "buys", "cap", "capped", "cash", "complete", "completion", "deploy", "don't",
    "dont", "drift", "each", "error", "every", "exceed", "except", "exclude", "excluding",
    "exit", "fewer", "finish", "freeze", "gain", "gains", "harvest", "harvesting", "hold",
    "ideally", "if", "instead", "invest", "keep", "least", "less", "limit", "liquidate", "long",
    "long-term", "loss", "losses", "max", "maximum", "min", "minimize", "minimum", "more",
    "most", "never", "no", "none", "not", "nothing", "only", "over", "per", "percent", "prefer",
    "preferably", "provided", "purchase", "purchases", "purchasing", "raise", "rather",
    "realize", "realized", "rebalance", "reduce", "restrict", "restricted", "risk", "sale",
    "sales", "sell", "selling", "sells", "short", "short-term", "sold", "target", "tax",
    "taxes", "term", "tlh", "touch", "track", "tracking", "trade", "trades", "trading",
    "transaction", "transactions", "transition", "trim", "turnover", "under", "unless", "until",
    "when", "withdraw", "withdrawal", "without"
})
# fmt: on

# fmt: off
_FILLER_WORDS: Final = frozenset({
    "a", "account", "accounts", "also", "an", "and", "are", "as", "at", "based", "be", "build",
    "but", "can", "client", "clients", "could", "create", "family", "for", "from", "give", "go",
    "hello", "hi", "his", "her", "household", "households", "i", "i'd", "in", "is", "it", "its",
    "just", "let", "let's", "lets", "like", "make", "me", "model", "my", "new", "of", "ok",
    "okay", "on", "one", "or", "our", "please", "plan", "plus", "portfolio", "portfolios",
    "preset", "run", "scenario", "scenarios", "set", "show", "so", "some", "start", "that",
    "the", "their", "them", "then", "there", "these", "this", "thanks", "thank", "to", "try",
    "up", "us", "use", "using", "version", "want", "wants", "we", "what-if", "while", "with",
    "would", "you", "your"
})
# fmt: on


@dataclass(frozen=True)
class Understood:
    """One phrase the parser read: where it is, which field it set, and to what."""

    field: str
    value: str
    phrase: str
    span: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "phrase": self.phrase,
            "span": list(self.span),
            "value": self.value,
        }


@dataclass(frozen=True)
class ParseOutcome:
    """Either a spec (``questions`` empty) or the questions to ask first (``spec`` None)."""

    text: str
    spec: ConstraintSpec | None
    questions: tuple[Question, ...]
    understood: tuple[Understood, ...]
    ignored: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.spec is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ignored": list(self.ignored),
            "questions": [q.to_dict() for q in self.questions],
            "spec": None if self.spec is None else self.spec.to_dict(),
            "text": self.text,
            "understood": [u.to_dict() for u in self.understood],
        }


# -- vocabulary (regular-expression fragments) --------------------------------------------
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d|\.\d|,\d)"
_MULT = r"(?:\s?(?:k|thousand|mm|mn|m|million|bn|b|billion)\b)"
_AMOUNT = (
    r"(?P<amt>(?<![\w.$])(?:(?:-\s?|minus\s+|negative\s+)(?=\$|\d))?(?:half\s+a\s+million|a\s+million|zero"
    rf"|\$\s?{_NUM}{_MULT}?(?:\s+dollars\b)?|{_NUM}{_MULT}?(?:\s?(?:dollars|usd)\b)?)"
    r"(?!\s?(?:%|percent|pct|bps|basis\b)))"
)
_PCT = (
    r"(?P<pct>(?<![\w.$])(?:(?:-\s?|minus\s+|negative\s+)(?=\d))?\d+(?:\.\d+)?(?!\d|\.\d)"
    r"(?:\s?(?:%|percent\b|per\s+cent\b|pct\b|bps\b|bp\b|basis\s+points?\b))?)"
)
_GAINS = (
    r"(?P<gains>(?:(?:net|realized|realised|capital|total|taxable)\s+)*"
    r"(?:(?P<term>short[-\s]?term|st|long[-\s]?term|lt)\s+)?"
    r"(?:(?:net|realized|realised|capital|taxable)\s+)*gains?\b)"
)
_STOP_RE = "|".join(sorted(STOPWORDS, key=lambda w: (-len(w), w)))
_SYM_CORE = r"[A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,4})?"
_TOK = rf"(?:\$(?-i:{_SYM_CORE})|(?-i:(?!(?:{_STOP_RE})\b){_SYM_CORE}))\b"
_TOK_RE: Final = re.compile(_TOK)
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+|nor\s+|&\s+)?|\s+(?:and|or|nor|&|plus)\s+|\s*/\s*|\s+as\s+well\s+as\s+)"
_SYMS = rf"(?P<syms>{_TOK}(?:{_SEP}{_TOK})*)"
_SYMS2 = rf"(?P<syms2>{_TOK}(?:{_SEP}{_TOK})*)"
_DET = (
    r"(?:(?:any|either|both|neither|the|my|our|their|his|her|its|client's|of|shares|stock|"
    r"position|positions|holding|holdings|in|more)\s+)*"
)
_NEG = (
    r"(?:do\s+not|don't|dont|never|cannot|can't|can\s+not|should\s+not|shouldn't|must\s+not|"
    r"mustn't|won't|will\s+not)(?:\s+(?:ever|want\s+to))?"
)
_SELLV = r"(?:sell(?:\s+(?:off|down))?|trim|reduce)"
_BUYV = (
    r"(?:buy(?:\s+more(?:\s+of)?)?|purchase|acquire|add\s+more(?:\s+of)?|add(?:\s+to)?|increase)"
)
_BE_NOT = (
    r"(?:(?:should|must|may|will|shall|can)\s+not|shouldn't|mustn't|can't|cannot|won't|"
    r"is\s+not\s+to|are\s+not\s+to)\s+be"
)
_N = (
    r"(?P<n>(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?![\d.]\d)|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|a\s+dozen|a\s+hundred)"
)
_TRN = r"(?:trade\s+tickets?|trades?|transactions?|orders?|tickets?)\b"
_UPPER = (
    r"(?P<bound>at\s+most|no\s+more\s+than|not\s+more\s+than|no\s+greater\s+than|"
    r"a\s+max(?:imum)?\s+of|max(?:imum)?(?:\s+of)?|up\s+to|within|fewer\s+than|less\s+than|"
    r"under|below|<=|<|≤)"
)
_BOUND = (
    r"(?:under|below|beneath|less\s+than|no\s+more\s+than|not\s+more\s+than|no\s+greater\s+than|"
    r"at\s+most|at\s+or\s+below|at\s+or\s+under|within|up\s+to|to|of|at|max(?:imum)?(?:\s+of)?|"
    r"limited\s+to|capped\s+at|kept\s+(?:under|below)|<=|<|≤|=|:)"
)
_UPPER_WORDS = (
    r"(?:no\s+more\s+than|at\s+most|a\s+max(?:imum)?\s+of|max(?:imum)?(?:\s+of)?|under|below|"
    r"less\s+than|up\s+to|within|a|an)"
)
_OR_LESS = r"(?:\s+(?:or\s+(?:less|lower|below|under)|at\s+most|max(?:imum)?|tops))?"
_TEN = r"(?:tracking[-\s]?error|(?-i:TE)|active\s+risk)"
_PURPOSE = (
    r"(?:for|to\s+fund|to\s+cover|to\s+pay\s+for)\s+(?:(?:a|an|the|her|his|their|my|our|this|"
    r"upcoming|planned|client|client's|next\s+month's)\s+)*(?:withdrawal|distribution|"
    r"down\s+payment|tax\s+payment|tax\s+bill|(?:estimated\s+|quarterly\s+)?taxes|gift|"
    r"home\s+purchase|purchase|tuition(?:\s+payment)?|"
    r"wire|transfer|rmd|expenses?)\b"
)
_CASH_ADJ = r"(?:(?:new|available|idle|excess|extra|incoming|spare)\s+)?"

_NUMBER_WORDS: Final[dict[str, int]] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "a dozen": 12, "a hundred": 100,
}  # fmt: skip
_MULTIPLIERS: Final[dict[str, int]] = {
    "k": 10**3, "thousand": 10**3, "m": 10**6, "mm": 10**6, "mn": 10**6, "million": 10**6,
    "b": 10**9, "bn": 10**9, "billion": 10**9,
}  # fmt: skip
_STRICT_BOUNDS: Final = ("fewer than", "less than", "under", "below", "<")
#: A negation right before a match ("don't finish the transition", "no need to harvest")
#: turns a rule off; the words allowed in between are listed so that "no gains and ..."
#: does not negate what follows.
_NEGATION_BEFORE = re.compile(
    r"(?:n't|\bnot|\bnever|\bno|\bdont|\bcannot|\bwithout)\s+"
    r"(?:(?:do|ever|want|to|be|any|need|needs|try|bother|even|really|have|actually|i|we)\s+){0,3}$",
    re.IGNORECASE,
)


# -- rule machinery ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Assign:
    field: str
    value: object
    span: tuple[int, int]


class _Ctx:
    """Mutable state for one parse: the request, what was read, what must be asked."""

    def __init__(self, text: str, known: frozenset[str]) -> None:
        self.text = text
        self.known = known
        self.assigns: list[_Assign] = []
        self.questions: list[Question] = []

    def phrase(self, m: re.Match[str]) -> str:
        return self.text[m.start() : m.end()]

    def assign(self, m: re.Match[str], field: str, value: object) -> None:
        self.assigns.append(_Assign(field, value, m.span()))

    def ask(
        self,
        m: re.Match[str],
        kind: QuestionKind,
        message: str,
        fields: Sequence[str] = (),
        symbols: Sequence[str] = (),
    ) -> None:
        self.questions.append(
            Question(
                kind=kind,
                message=message,
                fields=tuple(fields),
                phrases=(self.phrase(m),),
                spans=(m.span(),),
                symbols=tuple(symbols),
            )
        )


_Handler = Callable[[re.Match[str], _Ctx], bool]


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    handle: _Handler


def _rule(name: str, pattern: str, handle: _Handler) -> _Rule:
    return _Rule(name, re.compile(pattern, re.IGNORECASE), handle)


# -- value readers -------------------------------------------------------------------------
def _amount(m: re.Match[str], ctx: _Ctx, field: str) -> Decimal | None:
    """The dollar amount in group ``amt``; asks (and returns None) when it has no unit and
    is small enough to be a slip ("keep gains under 25" - $25 or $25,000?)."""
    raw = m.group("amt")
    text = re.sub(r"\s+", " ", raw.lower().strip())
    sign = Decimal(1)
    signed = re.match(r"(?:-|minus|negative)\s?", text)
    if signed:
        sign = Decimal(-1)
        text = text[signed.end() :]
    if text == "zero":
        return Decimal(0)
    if text == "half a million":
        return sign * 500_000
    if text == "a million":
        return sign * 1_000_000
    parts = re.fullmatch(r"(\$)?\s?([\d,]+(?:\.\d+)?)\s?([a-z]*)(?:\s?(?:dollars|usd))?", text)
    if parts is None:  # pragma: no cover - _AMOUNT admits only the forms above
        raise AssertionError(f"unreadable amount {raw!r}")
    value = Decimal(parts.group(2).replace(",", ""))
    suffix = parts.group(3)
    multiplier = _MULTIPLIERS.get(suffix, 1)
    explicit = bool(parts.group(1)) or suffix in _MULTIPLIERS or suffix in {"dollars", "usd"}
    explicit = explicit or "dollar" in text or "usd" in text
    value *= multiplier * sign
    if not explicit and 0 < abs(value) < 1000:
        thousand = value * 1000
        ctx.ask(
            m,
            "ambiguous",
            f'"{raw.strip()}" has no unit: did you mean ${_fmt_plain(value)} or '
            f"${_fmt_plain(thousand)}? Write it as ${_fmt_plain(value)} or "
            f"${_fmt_plain(value)}K.",
            (field,),
        )
        return None
    return value


def _fmt_plain(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _percent(
    m: re.Match[str], ctx: _Ctx, field: str, what: str, *, bare_fraction: bool = False
) -> Decimal | None:
    """The fraction in group ``pct`` ("1%" -> 0.01, "50 bps" -> 0.005).  Without a unit it
    asks, except that ``bare_fraction`` accepts a number <= 1 as a fraction ("0.8 of the
    transition")."""
    raw = m.group("pct")
    parts = re.fullmatch(r"(-\s?|minus\s+|negative\s+)?(\d+(?:\.\d+)?)\s?(.*)", raw.strip().lower())
    if parts is None:  # pragma: no cover - _PCT admits only this form
        raise AssertionError(f"unreadable percentage {raw!r}")
    number = Decimal(parts.group(2)) * (-1 if parts.group(1) else 1)
    unit = re.sub(r"\s+", " ", parts.group(3))
    if unit in {"%", "percent", "per cent", "pct"}:
        return number / 100
    if unit in {"bps", "bp", "basis point", "basis points"}:
        return number / 10_000
    if bare_fraction and number <= 1:
        return number
    ctx.ask(
        m,
        "ambiguous",
        f'"{raw.strip()}" has no unit for the {what}: did you mean {number}%? Write the '
        "percent sign (or bps).",
        (field,),
    )
    return None


def _count(m: re.Match[str]) -> int:
    raw = re.sub(r"\s+", " ", m.group("n").lower())
    if raw in _NUMBER_WORDS:
        return _NUMBER_WORDS[raw]
    return int(raw.replace(",", ""))


def _symbols(m: re.Match[str], ctx: _Ctx, group: str, field: str) -> tuple[str, ...]:
    """Tickers in ``group``; each unknown one becomes a question (never a guess)."""
    found: list[str] = []
    for tok in _TOK_RE.findall(m.group(group)):
        sym = tok.lstrip("$").upper()
        if sym in ctx.known:
            found.append(sym)
            continue
        close = difflib.get_close_matches(sym, sorted(ctx.known), n=3, cutoff=0.6)
        hint = f" Did you mean {_or_list(close)}?" if close else " Which security did you mean?"
        ctx.ask(
            m,
            "unknown_symbol",
            f'{sym} (in "{ctx.phrase(m)}") is not a security of this household or its target.{hint}',
            (field,),
            (sym,),
        )
    return tuple(found)


def _or_list(items: Sequence[str]) -> str:
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + f", or {items[-1]}"


def _negated(m: re.Match[str], ctx: _Ctx) -> bool:
    return bool(_NEGATION_BEFORE.search(ctx.text[max(0, m.start() - 48) : m.start()]))


# -- handlers ------------------------------------------------------------------------------
def _h_gain_cap(m: re.Match[str], ctx: _Ctx) -> bool:
    term = (m.group("term") or "").lower()
    if term.startswith("l"):
        ctx.ask(
            m,
            "unsupported",
            "There is no separate cap for long-term gains. Should this be the cap on net "
            "realized gains (short- and long-term together)?",
            ("max_net_gains",),
        )
        return True
    field = "max_short_term_gains" if term.startswith("s") else "max_net_gains"
    value = _amount(m, ctx, field)
    if value is not None:
        ctx.assign(m, field, value)
    return True


def _h_no_gains(m: re.Match[str], ctx: _Ctx) -> bool:
    term = (m.group("term") or "").lower()
    if term.startswith("l"):
        ctx.ask(
            m,
            "unsupported",
            "Long-term gains cannot be ruled out on their own. Do you mean no net realized "
            "gains at all, or a cap on net gains?",
            ("max_net_gains",),
        )
    elif term.startswith("s"):
        ctx.assign(m, "no_short_term_gains", True)
    else:
        ctx.assign(m, "max_net_gains", Decimal(0))
    return True


def _symbol_handler(*fields: str, group: str = "syms") -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        syms = _symbols(m, ctx, group, fields[0])
        if syms:
            for field in fields:
                ctx.assign(m, field, syms)
        return True

    return handle


def _h_sell_and_buy(first: str, second: str) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        a = _symbols(m, ctx, "syms", first)
        b = _symbols(m, ctx, "syms2", second)
        if a:
            ctx.assign(m, first, a)
        if b:
            ctx.assign(m, second, b)
        return True

    return handle


def _h_keep_part(m: re.Match[str], ctx: _Ctx) -> bool:
    syms = ", ".join(tok.lstrip("$") for tok in _TOK_RE.findall(m.group("syms")))
    ctx.ask(
        m,
        "ambiguous",
        f'Should {syms} not be sold at all, or may part of it be sold? Say "don\'t sell {syms}" '
        "to keep all of it.",
        ("no_sell",),
    )
    return True


def _h_direction(m: re.Match[str], ctx: _Ctx) -> bool:
    syms = ", ".join(tok.lstrip("$") for tok in _TOK_RE.findall(m.group("syms")))
    ctx.ask(
        m,
        "ambiguous",
        f"Should {syms} be kept from selling, from buying, or both?",
        ("no_sell", "no_buy"),
    )
    return True


def _h_bare_sell(m: re.Match[str], ctx: _Ctx) -> bool:
    syms = ", ".join(tok.lstrip("$") for tok in _TOK_RE.findall(m.group("syms")))
    ctx.ask(
        m,
        "ambiguous",
        f'Sell all of {syms}, or only part? Say "sell all of {syms}" to require a full sale; '
        "partial sales are left to the optimizer.",
        ("must_sell",),
    )
    return True


def _h_bare_buy(m: re.Match[str], ctx: _Ctx) -> bool:
    ctx.ask(
        m,
        "unsupported",
        "A spec cannot require a purchase; the optimizer buys toward the target. Did you mean "
        "to invest cash, or to keep something from being sold?",
        ("invest_cash",),
    )
    return True


def _everything(field: str) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        if not ctx.known:
            ctx.ask(
                m,
                "missing_value",
                'No list of this household\'s securities was given, so "everything" cannot be '
                "spelled out. Which securities does this cover?",
                (field,),
            )
            return True
        ctx.assign(m, field, tuple(sorted(ctx.known)))
        return True

    return handle


def _h_raise(m: re.Match[str], ctx: _Ctx) -> bool:
    verb = m.group("verb").lower()
    if verb in {"generate", "create", "need", "needs", "provide"} and not m.group("cash"):
        return False
    value = _amount(m, ctx, "raise_cash")
    if value is not None:
        ctx.assign(m, "raise_cash", value)
    return True


def _h_amount(field: str) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        value = _amount(m, ctx, field)
        if value is not None:
            ctx.assign(m, field, value)
        return True

    return handle


def _h_invest(m: re.Match[str], ctx: _Ctx) -> bool:
    if m.group("verb").lower() == "put" and not m.group("work"):
        return False
    return _h_amount("invest_cash")(m, ctx)


def _h_missing(field: str, message: str) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        ctx.ask(m, "missing_value", message, (field,))
        return True

    return handle


def _h_percent(field: str, what: str, *, bare_fraction: bool = False) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        value = _percent(m, ctx, field, what, bare_fraction=bare_fraction)
        if value is not None:
            ctx.assign(m, field, value)
        return True

    return handle


def _h_const(field: str, value: object) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        ctx.assign(m, field, value)
        return True

    return handle


def _h_ambiguous(field: str, message: str) -> _Handler:
    def handle(m: re.Match[str], ctx: _Ctx) -> bool:
        ctx.ask(m, "ambiguous", message, (field,))
        return True

    return handle


def _h_trades(m: re.Match[str], ctx: _Ctx) -> bool:
    n = _count(m)
    bound = re.sub(r"\s+", " ", (m.groupdict().get("bound") or "").lower())
    if bound in _STRICT_BOUNDS:
        n -= 1
    ctx.assign(m, "max_trades", n)
    return True


def _h_scenario(m: re.Match[str], ctx: _Ctx) -> bool:
    word = re.sub(r"[-\s_]+", "_", m.group("scen").lower())
    ctx.assign(m, "scenario", word)
    return True


def _h_custom(m: re.Match[str], ctx: _Ctx) -> bool:
    ctx.assign(m, "scenario:custom", "custom")
    return True


# -- the rules, in order -------------------------------------------------------------------
_NOT_SOLD = r"(?:being\s+sold|selling|sales?|any\s+sales?|the\s+sell\s+side)"
_NOT_BOUGHT = r"(?:being\s+(?:bought|purchased)|buying|purchases?|purchasing|any\s+purchases?|the\s+buy\s+side)"
_RESTRICT = r"(?:restrict|block|prohibit|exclude|bar|lock)"
_RESTRICTED = r"(?:restricted|blocked|locked|excluded|prohibited|barred)"

_SYMBOL_RULES: Final[tuple[_Rule, ...]] = (
    # "don't sell AAPL or buy TSLA" / "never buy TSLA or sell AAPL"
    _rule(
        "no_sell_or_buy",
        rf"\b{_NEG}\s+{_SELLV}\s+{_DET}{_SYMS}\s*,?\s*(?:or|nor)\s+(?:ever\s+)?{_BUYV}\s+{_DET}{_SYMS2}",
        _h_sell_and_buy("no_sell", "no_buy"),
    ),
    _rule(
        "no_buy_or_sell",
        rf"\b{_NEG}\s+{_BUYV}\s+{_DET}{_SYMS}\s*,?\s*(?:or|nor)\s+(?:ever\s+)?{_SELLV}\s+{_DET}{_SYMS2}",
        _h_sell_and_buy("no_buy", "no_sell"),
    ),
    # neither side: "don't trade AAPL", "leave AAPL alone", "freeze AAPL"
    _rule(
        "no_trade_sym",
        rf"\b{_NEG}\s+(?:trade|touch)\s+{_DET}{_SYMS}",
        _symbol_handler("no_sell", "no_buy"),
    ),
    _rule(
        "no_trading_in",
        rf"\bno\s+(?:trading|trades|transactions)\s+(?:in|of|on)\s+{_DET}{_SYMS}",
        _symbol_handler("no_sell", "no_buy"),
    ),
    _rule(
        "leave_alone",
        rf"\bleave\s+{_DET}{_SYMS}\s+(?:alone|untouched|as\s+is|as-is)",
        _symbol_handler("no_sell", "no_buy"),
    ),
    _rule("freeze", rf"\bfreeze\s+{_DET}{_SYMS}", _symbol_handler("no_sell", "no_buy")),
    _rule(
        "restrict_trading",
        rf"\b{_RESTRICT}\s+{_DET}{_SYMS}\s+from\s+(?:trading|being\s+traded|any\s+trad(?:es|ing))",
        _symbol_handler("no_sell", "no_buy"),
    ),
    _rule(
        "not_traded",
        rf"{_SYMS}\s+{_BE_NOT}\s+(?:traded|touched)",
        _symbol_handler("no_sell", "no_buy"),
    ),
    # "don't sell all of AAPL": keep all, or sell part?  Ask.
    _rule("keep_part", rf"\b{_NEG}\s+sell\s+all\s+(?:of\s+)?{_DET}{_SYMS}", _h_keep_part),
    # no sell
    _rule("no_sell", rf"\b{_NEG}\s+{_SELLV}\s+{_DET}{_SYMS}", _symbol_handler("no_sell")),
    _rule(
        "no_selling_of",
        rf"\bno\s+(?:selling|sales|sells|sale|trimming)\s+(?:of\s+|in\s+|on\s+)?{_DET}{_SYMS}",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "avoid_selling",
        rf"\b(?:avoid|without|refrain\s+from|stop)\s+(?:selling|trimming|reducing)\s+{_DET}{_SYMS}",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "restrict_from_sale",
        rf"\b{_RESTRICT}\s+{_DET}{_SYMS}\s+from\s+{_NOT_SOLD}",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "restrict_sales_of",
        rf"\b{_RESTRICT}\s+(?:any\s+)?(?:selling|sales|sale|sells)\s+(?:of|in)\s+{_DET}{_SYMS}",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "restricted_from_sale",
        rf"{_SYMS}\s+(?:is|are)\s+{_RESTRICTED}\s+from\s+{_NOT_SOLD}",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "not_sold", rf"{_SYMS}\s+{_BE_NOT}\s+(?:sold|trimmed|reduced)", _symbol_handler("no_sell")
    ),
    _rule(
        "no_sell_list_add",
        rf"\b(?:add|put|place)\s+{_SYMS}\s+(?:to|on)\s+(?:the\s+)?no[-\s]?sell(?:\s+list)?",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "no_sell_list",
        rf"\bno[-\s]?sells?(?:\s+list)?\s*(?::|-|for|on|=)?\s*{_SYMS}",
        _symbol_handler("no_sell"),
    ),
    _rule(
        "hold",
        rf"\b(?:hold|keep)\s+(?:on\s*to\s+|onto\s+)?(?:all\s+(?:of\s+)?)?{_DET}{_SYMS}",
        _symbol_handler("no_sell"),
    ),
    # no buy
    _rule("no_buy", rf"\b{_NEG}\s+{_BUYV}\s+{_DET}{_SYMS}", _symbol_handler("no_buy")),
    _rule(
        "no_buying_of",
        rf"\bno\s+(?:buying|buys|purchases?|purchasing|new\s+purchases|additions|adding)\s+"
        rf"(?:of\s+|in\s+|to\s+)?{_DET}{_SYMS}",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "avoid_buying",
        rf"\b(?:avoid|without|refrain\s+from|stop)\s+(?:buying|purchasing|adding(?:\s+to)?|acquiring)\s+{_DET}{_SYMS}",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "restrict_from_buy",
        rf"\b{_RESTRICT}\s+{_DET}{_SYMS}\s+from\s+{_NOT_BOUGHT}",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "restrict_buys_of",
        rf"\b{_RESTRICT}\s+(?:any\s+)?(?:buying|purchases?|buys|purchasing)\s+(?:of|in)\s+{_DET}{_SYMS}",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "restricted_from_buy",
        rf"{_SYMS}\s+(?:is|are)\s+{_RESTRICTED}\s+from\s+{_NOT_BOUGHT}",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "not_bought",
        rf"{_SYMS}\s+{_BE_NOT}\s+(?:bought|purchased|added(?:\s+to)?)",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "no_buy_list_add",
        rf"\b(?:add|put|place)\s+{_SYMS}\s+(?:to|on)\s+(?:the\s+)?no[-\s]?buy(?:\s+list)?",
        _symbol_handler("no_buy"),
    ),
    _rule(
        "no_buy_list",
        rf"\bno[-\s]?buys?(?:\s+list)?\s*(?::|-|for|on|=)?\s*{_SYMS}",
        _symbol_handler("no_buy"),
    ),
    # sell in full
    _rule(
        "sell_all",
        rf"\bsell\s+(?:all|everything)\s+(?:of\s+)?{_DET}{_SYMS}",
        _symbol_handler("must_sell"),
    ),
    _rule(
        "sell_out",
        rf"\bsell\s+(?:out\s+of|off\s+all(?:\s+of)?)\s+{_DET}{_SYMS}",
        _symbol_handler("must_sell"),
    ),
    _rule(
        "sell_entire",
        rf"\bsell\s+(?:the\s+|my\s+|our\s+|their\s+)?(?:entire|whole|full)\s+"
        rf"(?:position|positions|holding|holdings|stake)\s+(?:in|of)\s+{_SYMS}",
        _symbol_handler("must_sell"),
    ),
    _rule(
        "sell_fully",
        rf"\bsell\s+{_SYMS}\s+(?:entirely|completely|in\s+full|fully|outright)",
        _symbol_handler("must_sell"),
    ),
    _rule(
        "fully_sell",
        rf"\b(?:fully|completely)\s+(?:sell|exit|liquidate)\s+{_DET}{_SYMS}",
        _symbol_handler("must_sell"),
    ),
    _rule(
        "exit",
        rf"\b(?:exit|liquidate|dump|eliminate|get\s+rid\s+of|get\s+out\s+of|close\s+out)\s+{_DET}{_SYMS}"
        r"(?:\s+(?:entirely|completely|in\s+full|fully))?",
        _symbol_handler("must_sell"),
    ),
    # a ticker with no direction, or a partial sale / a purchase: ask
    _rule("restrict_sym", rf"\b(?:{_RESTRICT}|avoid)\s+{_DET}{_SYMS}", _h_direction),
    _rule("sym_restricted", rf"{_SYMS}\s+(?:is|are)\s+{_RESTRICTED}\b", _h_direction),
    _rule(
        "bare_sell", rf"\b(?:sell|trim|reduce)\s+(?:some\s+(?:of\s+)?)?{_DET}{_SYMS}", _h_bare_sell
    ),
    _rule(
        "bare_buy", rf"\b(?:buy|purchase|add(?:\s+to)?)\s+(?:some\s+)?{_DET}{_SYMS}", _h_bare_buy
    ),
)

_GAIN_RULES: Final[tuple[_Rule, ...]] = (
    _rule(
        "gain_max_amount",
        rf"\b(?:max(?:imum)?|cap|limit|budget|ceiling)\s+(?:of\s+)?{_AMOUNT}\s+(?:(?:in|of|on|for)\s+)?{_GAINS}"
        r"(?:\s+(?:cap|budget|limit))?",
        _h_gain_cap,
    ),
    _rule(
        "amount_max_gains", rf"{_AMOUNT}\s+(?:(?:in|of)\s+)?max(?:imum)?\s+{_GAINS}", _h_gain_cap
    ),
    _rule(
        "amount_gain_cap",
        rf"{_AMOUNT}\s+(?:(?:of|in)\s+)?{_GAINS}\s+(?:cap|budget|limit|ceiling|max(?:imum)?)\b",
        _h_gain_cap,
    ),
    _rule(
        "amount_cap_on_gains",
        rf"{_AMOUNT}\s+(?:cap|limit|ceiling|budget|max(?:imum)?)\s+(?:on|for)\s+{_GAINS}",
        _h_gain_cap,
    ),
    _rule(
        "bound_amount_gains",
        r"\b(?:(?:realize|realise|take|recognize|generate|allow|with|keep\s+it\s+to|keep\s+to)\s+)?"
        r"(?:no\s+more\s+than|not\s+more\s+than|at\s+most|up\s+to|under|below|less\s+than|within|"
        r"a\s+max(?:imum)?\s+of|max(?:imum)?\s+of|at\s+or\s+below|no\s+greater\s+than)\s+"
        rf"{_AMOUNT}\s+(?:in|of|worth\s+of)\s+{_GAINS}",
        _h_gain_cap,
    ),
    _rule(
        "dont_exceed_gains",
        rf"\b{_NEG}\s+(?:realize|take|exceed|go\s+over)\s+(?:more\s+than\s+)?{_AMOUNT}\s+(?:(?:in|of)\s+)?{_GAINS}",
        _h_gain_cap,
    ),
    _rule(
        "gain_cap_of",
        rf"\b(?:(?:a|the)\s+)?{_GAINS}\s+(?:cap|budget|limit|ceiling|maximum|max)\s*(?:of|at|to|is|=|:|-)?\s*"
        rf"(?:no\s+more\s+than\s+|at\s+most\s+)?{_AMOUNT}",
        _h_gain_cap,
    ),
    _rule(
        "cap_gains_at",
        r"\b(?:cap|limit|hold|keep|restrict|constrain|manage)\s+(?:the\s+|our\s+|my\s+|their\s+|total\s+)?"
        rf"{_GAINS}\s+(?:at|to|under|below|beneath|within|at\s+or\s+below|<=|<|≤)\s+"
        rf"(?:a\s+max(?:imum)?\s+of\s+|no\s+more\s+than\s+)?{_AMOUNT}",
        _h_gain_cap,
    ),
    _rule(
        "gains_under",
        rf"\b{_GAINS}\s+(?:(?:should|must|need\s+to|needs\s+to)\s+(?:be|stay|remain)\s+|are\s+|of\s+)?"
        r"(?:under|below|less\s+than|no\s+more\s+than|not\s+(?:above|over|exceeding|more\s+than)|"
        r"at\s+most|up\s+to|capped\s+at|limited\s+to|kept\s+(?:under|below)|within|<=|<|≤|"
        r"max(?:imum)?(?:\s+of)?|no\s+greater\s+than|not\s+to\s+exceed|(?:should|must|may)\s+not\s+exceed|"
        rf"shouldn't\s+exceed|can't\s+exceed|cannot\s+exceed)\s+{_AMOUNT}",
        _h_gain_cap,
    ),
    _rule(
        "max_gains_of", rf"\bmax(?:imum)?\s+{_GAINS}\s*(?:of|at|=|:|-|to)?\s*{_AMOUNT}", _h_gain_cap
    ),
    _rule(
        "no_gains_over",
        rf"\bno\s+{_GAINS}\s+(?:over|above|beyond|exceeding|in\s+excess\s+of|more\s+than)\s+{_AMOUNT}",
        _h_gain_cap,
    ),
    _rule(
        "no_gains",
        r"\b(?:no|zero|avoid(?:\s+realizing)?|without(?:\s+realizing)?|realize\s+no|no\s+new|"
        rf"{_NEG}\s+(?:realize|take|recognize|generate|trigger))\s+(?:any\s+)?(?:new\s+)?{_GAINS}",
        _h_no_gains,
    ),
)

_CASH_RULES: Final[tuple[_Rule, ...]] = (
    _rule(
        "raise_amount",
        r"\b(?P<verb>raise|free\s+up|withdraw|take\s+out|pull\s+out|set\s+aside|generate|create|need|needs|"
        rf"provide)\s+(?:about\s+|around\s+|roughly\s+)?{_AMOUNT}"
        r"(?P<cash>\s+(?:in\s+|of\s+)?(?:cash|liquidity))?"
        rf"(?:\s+{_PURPOSE})?",
        _h_raise,
    ),
    _rule(
        "raise_cash_of",
        rf"\braise\s+(?:cash|liquidity)\s+(?:of\s+|totaling\s+|totalling\s+|:\s*|=\s*)?{_AMOUNT}(?:\s+{_PURPOSE})?",
        _h_amount("raise_cash"),
    ),
    _rule(
        "amount_withdrawal",
        rf"{_AMOUNT}\s+(?:cash\s+)?(?:withdrawal|distribution|cash\s+need|cash\s+raise|liquidity\s+need|"
        r"cash\s+requirement)\b",
        _h_amount("raise_cash"),
    ),
    _rule(
        "withdrawal_of", rf"\b(?:withdrawal|distribution)\s+of\s+{_AMOUNT}", _h_amount("raise_cash")
    ),
    _rule(
        "raise_cash_missing",
        rf"\braise\s+(?:some\s+|more\s+|enough\s+)?(?:cash|liquidity)\b(?:\s+{_PURPOSE})?",
        _h_missing("raise_cash", "How much cash should be raised?"),
    ),
    _rule(
        "invest_amount",
        r"\b(?P<verb>invest|deploy|put)\s+(?:(?:the|a|an|our|my|their|his|her|this)\s+)?"
        rf"{_CASH_ADJ}{_AMOUNT}"
        rf"(?:\s+(?:(?:of|in)\s+)?{_CASH_ADJ}(?:cash|money|funds|deposit|contribution|inflow))?"
        r"(?P<work>\s+(?:to\s+work|into\s+the\s+(?:market|portfolio|model|target)|"
        r"in\s+the\s+(?:market|portfolio|model)))?",
        _h_invest,
    ),
    _rule(
        "invest_missing",
        r"\b(?:(?:invest|deploy)\s+(?:all\s+(?:of\s+)?)?(?:(?:the|our|my|their|his|her)\s+)?"
        rf"{_CASH_ADJ}(?:cash|money|funds)\b|put\s+(?:all\s+(?:of\s+)?)?(?:(?:the|our|my|their)\s+)?"
        rf"{_CASH_ADJ}(?:cash|money|funds)\s+to\s+work)",
        _h_missing("invest_cash", "How much cash should be invested?"),
    ),
)

_TARGET_RULES: Final[tuple[_Rule, ...]] = (
    # tracking error
    _rule(
        "te_under",
        r"\b(?:(?:keep|get|bring|hold|limit|cap|reduce|lower|cut|target|constrain|manage|set)\s+"
        r"(?:the\s+)?(?:portfolio(?:'s)?\s+)?)?(?:(?:a\s+)?(?:max(?:imum)?|target(?:ed)?)\s+)?"
        rf"{_TEN}(?:\s+(?:target|limit|cap|budget|ceiling|max(?:imum)?|tolerance|goal))?"
        r"(?:\s+(?:should|must|needs?\s+to)\s+(?:be|stay|remain))?(?:\s+(?:down|back))?"
        rf"(?:\s*{_BOUND})?(?:\s+{_BOUND})?\s*{_PCT}{_OR_LESS}",
        _h_percent("max_tracking_error", "tracking error"),
    ),
    _rule(
        "pct_te",
        rf"\b(?:{_UPPER_WORDS}\s+)?{_PCT}\s+(?:(?:max(?:imum)?|target)\s+)?{_TEN}"
        r"(?:\s+(?:target|limit|cap|max(?:imum)?|ceiling|budget|or\s+(?:less|lower|below|under)))?",
        _h_percent("max_tracking_error", "tracking error"),
    ),
    # completion
    _rule(
        "complete_most",
        r"\b(?:complete|finish|do|get\s+through)\s+(?:most|much|part|some|a\s+lot|a\s+good\s+part|"
        r"the\s+bulk)\s+of\s+the\s+(?:transition|way)",
        _h_ambiguous(
            "completion_target", "What share of the transition should be completed (e.g. 80%)?"
        ),
    ),
    _rule(
        "complete_pct",
        r"\b(?:complete|finish|do|get|make|move|go|take\s+it|transition)\s+"
        rf"{_PCT}\s+(?:of\s+the\s+(?:transition|way)(?:\s+(?:to|toward|towards)\s+(?:the\s+)?(?:target|model))?"
        r"|(?:of\s+the\s+way\s+)?(?:to|toward|towards)\s+(?:the\s+)?(?:target|model))",
        _h_percent("completion_target", "completion target", bare_fraction=True),
    ),
    _rule(
        "pct_of_transition",
        rf"\b{_PCT}\s+(?:of\s+the\s+(?:transition|way\s+(?:to|toward|towards)\s+(?:the\s+)?(?:target|model))"
        r"|completion|complete|transition\s+completion)",
        _h_percent("completion_target", "completion target", bare_fraction=True),
    ),
    _rule(
        "completion_target_of",
        rf"\b(?:completion|transition)\s+(?:(?:target|goal|level|rate)\s+)?(?:(?:of|at|to|=|:)\s*)?{_PCT}",
        _h_percent("completion_target", "completion target", bare_fraction=True),
    ),
    _rule(
        "complete_half",
        r"\b(?:complete|finish|do|get\s+through)\s+half\s+(?:of\s+)?the\s+(?:transition|way)",
        _h_const("completion_target", Decimal("0.5")),
    ),
    _rule(
        "finish_transition",
        r"\b(?:finish|complete|completing|finishing|do)\s+(?:the\s+|this\s+|a\s+)?(?:full\s+|entire\s+|whole\s+)?"
        r"(?:transition|move\s+to\s+(?:the\s+)?(?:target|model))"
        r"(?:\s+(?:fully|completely|in\s+full|all\s+the\s+way|entirely))?",
        _h_const("completion_target", Decimal(1)),
    ),
    _rule(
        "fully_transition",
        r"\b(?:(?:fully|completely)\s+transition(?:\s+to\s+(?:the\s+)?(?:target|model))?|"
        r"transition\s+(?:fully|completely|all\s+the\s+way)|go\s+all\s+the\s+way(?:\s+to\s+(?:the\s+)?"
        r"(?:target|model))?|(?:finish|complete)\s+transitioning|full\s+transition)\b",
        _h_const("completion_target", Decimal(1)),
    ),
    # turnover
    _rule(
        "turnover_under",
        r"\b(?:(?:limit|cap|keep|hold|constrain|restrict)\s+(?:the\s+)?(?:portfolio\s+)?)?"
        r"(?:(?:max(?:imum)?|one[-\s]way|annual)\s+)?turnover"
        r"(?:\s+(?:limit|cap|budget|ceiling|max(?:imum)?|target))?"
        r"(?:\s+(?:should|must|needs?\s+to)\s+(?:be|stay|remain))?"
        rf"(?:\s*{_BOUND})?(?:\s+{_BOUND})?\s*{_PCT}{_OR_LESS}",
        _h_percent("max_turnover", "turnover limit"),
    ),
    _rule(
        "pct_turnover",
        rf"\b(?:{_UPPER_WORDS}\s+)?{_PCT}\s+(?:(?:max(?:imum)?|one[-\s]way)\s+)?turnover"
        r"(?:\s+(?:cap|limit|max(?:imum)?|ceiling|budget|or\s+less))?",
        _h_percent("max_turnover", "turnover limit"),
    ),
    # trade count
    _rule(
        "bound_n_trades",
        r"\b(?:(?:make|place|do|execute|use|with|allow|keep\s+it\s+to|limit\s+it\s+to|keep\s+to|limit\s+to)\s+)?"
        rf"{_UPPER}\s+{_N}\s+(?:total\s+)?{_TRN}",
        _h_trades,
    ),
    _rule(
        "max_trades_n",
        rf"\bmax(?:imum)?\s+(?:number\s+of\s+)?(?:trades|transactions|orders|tickets)\s*(?:of|:|=|is)?\s*{_N}",
        _h_trades,
    ),
    _rule(
        "limit_trades_to",
        r"\b(?:(?:limit|cap|keep|hold|restrict)\s+(?:the\s+)?)?(?:number\s+of\s+|total\s+)?"
        r"(?:trades|transactions|orders|tickets|trade\s+count)\s+(?:(?:to|at)\s+)?"
        rf"(?:{_UPPER}\s+)?{_N}\b(?:\s+{_TRN})?",
        _h_trades,
    ),
    _rule(
        "limit_to_n_trades",
        rf"\blimit\s+(?:it\s+|this\s+|the\s+(?:run|scenario)\s+)?to\s+{_N}\s+{_TRN}",
        _h_trades,
    ),
    _rule(
        "n_trades_max",
        rf"\b{_N}\s+{_TRN}\s+(?:max(?:imum)?|at\s+most|or\s+(?:fewer|less)|tops|limit|cap)\b",
        _h_trades,
    ),
    _rule(
        "no_trades",
        rf"\b(?:no\s+(?:trades|trading|transactions)|zero\s+trades|{_NEG}\s+trade(?:\s+anything)?)\b"
        r"(?!\s+(?:in|of|on|for)\b)",
        _h_const("max_trades", 0),
    ),
    # loss harvesting: the negative forms first
    _rule(
        "harvest_off_state",
        r"\b(?:tax[-\s]?loss\s+|loss\s+)?harvesting\s+(?:off|disabled|turned\s+off)\b",
        _h_const("harvest_losses", False),
    ),
    _rule(
        "no_harvest",
        rf"\b(?:{_NEG}|no|without|avoid|skip|disable|turn\s+off|switch\s+off|stop|not)\s+(?:do\s+)?(?:any\s+)?"
        r"(?:tax[-\s]?loss\s+|loss\s+)?(?:harvest(?:ing)?|TLH)\b(?:\s+(?:any\s+)?(?:tax\s+)?losses)?",
        _h_const("harvest_losses", False),
    ),
    _rule(
        "harvest_on_state",
        r"\b(?:tax[-\s]?loss\s+|loss\s+)?harvesting\s+(?:on|enabled|turned\s+on)\b",
        _h_const("harvest_losses", True),
    ),
    _rule(
        "harvest",
        r"\b(?:(?:do|enable|turn\s+on|switch\s+on|use|with|allow|include)\s+)?(?:opportunistic\s+)?"
        r"(?:tax[-\s]?loss\s+|loss\s+)?(?:harvest(?:ing)?|TLH)\b"
        r"(?:\s+(?:(?:any|all|available|the|some|unrealized)\s+)*(?:tax\s+)?losses)?"
        r"(?:\s+(?:where|when|if|wherever|whenever)\s+(?:possible|available|useful|it\s+helps))?"
        r"(?:\s+opportunistically)?(?:\s+to\s+offset\s+(?:the\s+|any\s+)?(?:realized\s+)?gains)?",
        _h_const("harvest_losses", True),
    ),
    _rule(
        "realize_losses",
        r"\b(?:realize|realise|use)\s+(?:(?:any|all|available|unrealized)\s+)*losses"
        r"(?:\s+to\s+offset\s+(?:the\s+|any\s+)?(?:realized\s+)?gains)?",
        _h_const("harvest_losses", True),
    ),
    _rule(
        "offset_gains",
        r"\boffset\s+(?:the\s+|any\s+)?(?:realized\s+)?gains\s+with\s+(?:harvested\s+)?losses",
        _h_const("harvest_losses", True),
    ),
)

_EVERYTHING_RULES: Final[tuple[_Rule, ...]] = (
    _rule(
        "sell_nothing",
        rf"\b(?:{_NEG}\s+sell\s+(?:anything|any\s+(?:positions?|holdings?|securities|shares|stocks?|funds?))"
        r"|sell\s+nothing|no\s+(?:selling|sales|sells)(?:\s+at\s+all)?"
        r"|(?:without|avoid)\s+selling(?:\s+(?:anything|any\s+(?:positions?|holdings?|securities|shares)))?)\b",
        _everything("no_sell"),
    ),
    _rule(
        "buy_nothing",
        rf"\b(?:{_NEG}\s+(?:buy|purchase)\s+(?:anything|any\s+(?:positions?|securities|shares|stocks?|funds?))"
        r"|buy\s+nothing|no\s+(?:new\s+)?(?:buying|buys|purchases)(?:\s+at\s+all)?"
        r"|(?:without|avoid)\s+buying(?:\s+anything)?)\b",
        _everything("no_buy"),
    ),
)

_SCENARIO_RULES: Final[tuple[_Rule, ...]] = (
    _rule(
        "scenario",
        r"(?<!not\s)(?<!n't\s)(?<!too\s)(?<!overly\s)(?<!less\s)(?<!more\s)(?<!very\s)"
        r"\b(?P<scen>conservative|moderate|aggressive|tax[-\s]sensitive|tax_sensitive)(?:ly)?\b"
        r"(?:\s+(?:scenario|preset|one|case|version|approach|plan|option|profile|template|baseline|base|mode))?",
        _h_scenario,
    ),
    _rule("custom", r"\bcustom\b(?:\s+(?:scenario|preset|one|case|version|plan))?", _h_custom),
)

RULES: Final[tuple[_Rule, ...]] = (
    _SYMBOL_RULES + _GAIN_RULES + _CASH_RULES + _TARGET_RULES + _EVERYTHING_RULES + _SCENARIO_RULES
)

# -- leftovers -----------------------------------------------------------------------------
_CLAUSE_SPLIT = re.compile(
    r"\x00+|[;!?:\n()]|,(?!\d{3})|\.(?!\d)|\b(?:and|but|also|then|plus|while|with|so)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9$%][A-Za-z0-9$%'.\-]*")
_NORMALIZE = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)


def _is_signal(word: str, known: frozenset[str]) -> bool:
    bare = word.rstrip(".'").removesuffix("'s")
    lower = bare.lower()
    if lower in SIGNAL_WORDS or any(c.isdigit() for c in bare) or "$" in bare or "%" in bare:
        return True
    return (
        bare.isupper()
        and bare.isalpha()
        and bare not in STOPWORDS
        and (len(bare) >= 2 or bare in known)
    )


_SCOPE_START: Final = frozenset({"in", "within", "inside", "from", "only"})
_ACCOUNT_WORDS: Final = frozenset(
    {"ira", "iras", "roth", "401k", "401(k)", "account", "accounts", "trust", "joint", "taxable"}
)


def _is_scope(words: Sequence[str]) -> bool:
    """ "in the IRA", "from the trust account": a clause that narrows a constraint to one
    account.  Constraints are household-wide, so such a clause is asked about; "for the
    Johnson IRA" (whom the scenario is for) is not a scope."""
    lowered = [w.lower().rstrip(".'") for w in words]
    return lowered[0] in _SCOPE_START and any(w in _ACCOUNT_WORDS for w in lowered)


def _leftovers(ctx: _Ctx, consumed: list[bool]) -> tuple[list[Question], list[str]]:
    masked = "".join("\x00" if used else ch for ch, used in zip(ctx.text, consumed, strict=True))
    questions: list[Question] = []
    ignored: list[str] = []
    start = 0
    pieces: list[tuple[int, int]] = []
    for sep in _CLAUSE_SPLIT.finditer(masked):
        pieces.append((start, sep.start()))
        start = sep.end()
    pieces.append((start, len(masked)))
    for a, b in pieces:
        chunk = masked[a:b]
        stripped = chunk.strip(" \t,.-'\"")
        if not stripped:
            continue
        a += chunk.index(stripped[0])
        b = a + len(stripped)
        words = _WORD.findall(stripped)
        if not words:
            continue
        if any(_is_signal(w, ctx.known) for w in words) or _is_scope(words):
            hint = ""
            lowered = [w for w in words if len(w) >= 3 and w.islower() and w.upper() in ctx.known]
            if lowered:
                hint = f" Tickers must be written in capitals (e.g. {lowered[0].upper()})."
            questions.append(
                Question(
                    kind="not_understood",
                    message=f'I did not understand "{stripped}". Please rephrase it.{hint}',
                    phrases=(stripped,),
                    spans=((a, b),),
                )
            )
        elif any(w.lower() not in _FILLER_WORDS for w in words):
            ignored.append(stripped)
    return questions, ignored


# -- assembling the spec ---------------------------------------------------------------------
def _display(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _symbol_value(a: _Assign) -> tuple[str, ...]:
    if not isinstance(a.value, tuple):  # pragma: no cover - symbol handlers assign tuples
        raise TypeError(f"{a.field} holds {a.value!r}, not symbols")
    return tuple(str(s) for s in a.value)


def _combine(ctx: _Ctx) -> tuple[dict[str, object], list[Question]]:
    """Merge assignments: symbol lists are united; a scalar given twice with different
    values is a contradiction."""
    values: dict[str, object] = {}
    questions: list[Question] = []
    by_field: dict[str, list[_Assign]] = {}
    for a in ctx.assigns:
        if a.field == "scenario:custom":
            continue
        by_field.setdefault(a.field, []).append(a)
    for field in sorted(by_field):
        items = by_field[field]
        if field in SYMBOL_FIELDS:
            merged: set[str] = set()
            for a in items:
                merged.update(_symbol_value(a))
            values[field] = tuple(sorted(merged))
            continue
        distinct: list[object] = []
        for a in items:
            if a.value not in distinct:
                distinct.append(a.value)
        if len(distinct) == 1:
            values[field] = distinct[0]
            continue
        phrases = tuple(ctx.text[a.span[0] : a.span[1]] for a in items)
        shown = " and ".join(f'"{p}"' for p in phrases)
        questions.append(
            Question(
                kind="contradiction",
                message=f"{shown} ask for different values of {field.replace('_', ' ')}. Which one applies?",
                fields=(field,),
                phrases=phrases,
                spans=tuple(a.span for a in items),
            )
        )
    return values, questions


def _attach_phrases(q: Question, ctx: _Ctx) -> Question:
    """Name the adviser's own words for a question raised on the spec by ``conflicts``."""
    spans: list[tuple[int, int]] = []
    for a in ctx.assigns:
        if a.field not in q.fields or a.span in spans:
            continue
        if q.symbols and a.field in SYMBOL_FIELDS and not set(q.symbols) & set(_symbol_value(a)):
            continue
        spans.append(a.span)
    spans.sort()
    return replace(q, phrases=tuple(ctx.text[s:e] for s, e in spans), spans=tuple(spans))


def _question_key(q: Question, end: int) -> tuple[int, str, str]:
    return (q.spans[0][0] if q.spans else end, q.kind, q.message)


def parse_request(text: str, *, known_symbols: Collection[str]) -> ParseOutcome:
    """Read an adviser's request.

    ``known_symbols`` are the tickers the request may name (the household's holdings and
    its target's securities); any other ticker in a sell/buy phrase becomes a question.
    Returns a :class:`ParseOutcome` holding either a spec or the questions to ask, plus
    the phrases read (span -> field) and the clauses ignored.
    """
    if len(text) > MAX_REQUEST_CHARS:
        return ParseOutcome(
            text=text,
            spec=None,
            questions=(
                Question(
                    kind="unsupported",
                    message=(
                        f"The request is {len(text):,} characters long; please keep it under "
                        f"{MAX_REQUEST_CHARS:,} characters (one scenario per request)."
                    ),
                ),
            ),
            understood=(),
            ignored=(),
        )
    norm = text.translate(_NORMALIZE)
    known = frozenset(s.strip().upper() for s in known_symbols)
    ctx = _Ctx(norm, known)
    consumed = [False] * len(norm)
    for rule in RULES:
        masked = "".join("\x00" if used else ch for ch, used in zip(norm, consumed, strict=True))
        for m in rule.pattern.finditer(masked):
            if m.end() > m.start() and not _negated(m, ctx) and rule.handle(m, ctx):
                for i in range(m.start(), m.end()):
                    consumed[i] = True

    leftover_questions, ignored = _leftovers(ctx, consumed)
    values, merge_questions = _combine(ctx)
    questions = ctx.questions + leftover_questions + merge_questions

    spec: ConstraintSpec | None = None
    try:
        spec = ConstraintSpec(**values)  # type: ignore[arg-type]
    except SpecError as err:
        for e in err.errors:
            questions.append(
                _attach_phrases(
                    Question(
                        kind="impossible_value",
                        message=f"{e.field}: {e.reason}.",
                        fields=(e.field,),
                    ),
                    ctx,
                )
            )
    if spec is not None:
        questions.extend(_attach_phrases(q, ctx) for q in conflicts(spec, known_symbols=known))

    if not any(a.field != "scenario:custom" for a in ctx.assigns) and not questions:
        stripped = norm.strip()
        questions.append(
            Question(
                kind="not_understood",
                message=(
                    f'I could not find a constraint in "{stripped}". Try e.g. "max $25K gains, '
                    "don't sell AAPL, no short-term gains\"."
                    if stripped
                    else "The request is empty. What should the scenario do?"
                ),
                phrases=(stripped,) if stripped else (),
                spans=((norm.index(stripped[0]), norm.index(stripped[0]) + len(stripped)),)
                if stripped
                else (),
            )
        )

    understood = tuple(
        sorted(
            (
                Understood(
                    field="scenario" if a.field == "scenario:custom" else a.field,
                    value=_display(a.value),
                    phrase=norm[a.span[0] : a.span[1]],
                    span=a.span,
                )
                for a in ctx.assigns
            ),
            key=lambda u: (u.span, u.field),
        )
    )
    ordered = tuple(sorted(questions, key=lambda q: _question_key(q, len(norm))))
    return ParseOutcome(
        text=text,
        spec=None if ordered else spec,
        questions=ordered,
        understood=understood,
        ignored=tuple(ignored),
    )
