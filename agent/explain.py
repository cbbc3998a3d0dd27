"""Explanations grounded in an optimization result: facts in, words out, every number checked.

Three texts come from the same facts:

- :func:`explain` with ``audience="adviser"``: the rationale for the adviser reviewing the run
  (what the trades do, what binds and what it costs, the review flags, the checks the optimizer
  could not hold itself);
- :func:`explain` with ``audience="client"``: a plainer text for the client's PDF;
- :func:`answer`: the answer to a follow-up question ("why is tracking error still 2.3% despite
  a $14K tax impact?"), made of the fact sentences that concern the question.

All three are deterministic and need no model. A model may rewrite them (``agent.llm``), but
its text is used only if :func:`check_numbers` finds every number in it among the facts of
:func:`collect_facts`, after rounding: money to the cent, to the dollar or to thousands
("$14K", "$14,000"), percentages to 0.1 percentage point, counts exactly; dates and
identifiers (lot ids, account ids, tickers) must be written as the facts write them.

The facts are the result JSON (every amount, ratio, count, date and identifier in it, and the
numbers in its own sentences), the numbers derived here for the sentences (each registered when
it is written), and the adviser's request (its limits). Nothing else.

Pure Python: no Django, no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from agent.parser import STOPWORDS
from agent.spec import ConstraintSpec
from agent.to_optimizer import check_after

__all__ = [
    "AUDIENCES",
    "MAX_TEXT_CHARS",
    "Audience",
    "FactSheet",
    "Line",
    "RunFacts",
    "answer",
    "check_numbers",
    "collect_facts",
    "explain",
    "fact_lines",
    "normalize_question",
]

Audience = Literal["adviser", "client"]
AUDIENCES: Final = ("adviser", "client")
State = Literal["ok", "infeasible", "blocked", "failed", "pending"]

#: A model-written text longer than this is rejected (a rationale is a few paragraphs).
MAX_TEXT_CHARS: Final = 6000
#: Lines of an answer (the most relevant first).
MAX_ANSWER_LINES: Final = 9
#: Trade sentences given to a model (the rest are in the trade list).
MAX_DETAIL_LINES: Final = 60
#: Binding constraints whose dual estimate of cost is quoted (the most expensive first).
MAX_ESTIMATES: Final = 3
#: The wash-sale window, in days (IRS rule; the snapshot's default).
WASH_WINDOW_DAYS: Final = 30
#: A relaxation that moves tracking error by less than this is "no change".
TE_EPS: Final = Decimal("0.0005")

_ONE: Final = Decimal(1)


# -- input --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunFacts:
    """What one run produced, as the explainer reads it.

    ``state``: ``ok`` (``result`` is the optimizer's result JSON), ``infeasible`` (``error`` is
    ``InfeasibleProblem.as_dict()``), ``blocked`` (``error`` has ``problems``, the data
    problems), ``failed`` (``message``) or ``pending``. ``spec`` is the adviser's confirmed
    request when the run came from one.
    """

    state: State
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    message: str = ""
    spec: ConstraintSpec | None = None


# -- formatting (every number written is registered as a fact) -----------------------------
def _d(value: Any) -> Decimal:
    """A result value (decimal string, int or float) as a Decimal; a malformed one raises."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _money_words(value: Decimal) -> str:
    """$34,918 from $1,000 up (to the dollar); $27.77 below (cents unless whole)."""
    amount = abs(value)
    if amount >= 1000 or amount == amount.to_integral_value():
        return f"${_round(amount, 0):,}"
    return f"${_round(amount, 2):,}"


def _pct_words(fraction: Decimal) -> str:
    return f"{_round(abs(fraction) * 100, 1)}%"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


# -- the fact sheet -----------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One fact sentence. ``topics`` say which questions it answers; ``role`` orders answers:
    ``state`` (what the trades do), ``cause`` (why: binding constraints, the nature of the job),
    ``flag`` (review items), ``check`` (request checks), ``outlook`` (forecast)."""

    text: str
    topics: frozenset[str]
    role: str
    client: bool = False  # plain enough for the client text as it is


@dataclass
class FactSheet:
    """The numbers, dates and identifiers a text may use, and the fact sentences."""

    money: set[Decimal] = field(default_factory=set)
    fractions: set[Decimal] = field(default_factory=set)
    counts: set[Decimal] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    lines: list[Line] = field(default_factory=list)
    client_lines: list[str] = field(default_factory=list)

    # writing helpers: format and register
    def m(self, value: Any) -> str:
        v = abs(_d(value))
        self.money.add(v)
        return _money_words(v)

    def p(self, fraction: Any) -> str:
        f = abs(_d(fraction))
        self.fractions.add(f)
        return _pct_words(f)

    def n(self, count: int, word: str, plural: str | None = None) -> str:
        self.counts.add(Decimal(abs(count)))
        return _plural(count, word, plural)

    def c(self, count: Any) -> str:
        v = abs(_d(count))
        self.counts.add(v)
        return f"{v:,}" if v == v.to_integral_value() else f"{v.normalize():,f}"

    def line(self, text: str, topics: Iterable[str], role: str, *, client: bool = False) -> None:
        self.lines.append(Line(text, frozenset(topics), role, client))

    def absorb(self, text: str) -> None:
        """Register the numbers of a sentence the optimizer itself wrote (conflicts, facts)."""
        for kind, value, _ in _numbers_in(text, self.identifiers):
            if kind == "date":
                self.dates.add(str(value))
            elif kind == "percent":
                self.fractions.add(abs(value) / 100)
            elif kind == "word":
                self.counts.add(value)
            elif kind == "identifier":
                self.identifiers.add(str(value))
            else:
                amount = abs(value.value * value.mult)
                self.money.add(amount)
                if kind == "plain":
                    self.counts.add(amount)


_MONEY_STR: Final = re.compile(r"^-?\d+\.\d{2}$")
_DEC_STR: Final = re.compile(r"^-?\d+(?:\.\d+)?$")
_ISO_STR: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SKIP_KEYS: Final = frozenset(
    {"solver", "input_sha256", "schema_version", "shadow_price", "objective"}
)
_ID_KEYS: Final = frozenset(
    {
        "account",
        "lot_id",
        "symbol",
        "identical_group",
        "conflicting_buy_account",
        "loss_sale_account",
    }
)
_COUNT_KEYS: Final = frozenset(
    {"shares", "quantity", "risk_aversion", "tax_weight", "loss_value_beyond_offset"}
)


def _walk(sheet: FactSheet, obj: Any, key: str = "") -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            ks = str(k)
            if ks in _SKIP_KEYS:
                continue
            if any(ch.isdigit() for ch in ks):
                sheet.identifiers.add(ks)
            _walk(sheet, v, ks)
        return
    if isinstance(obj, list | tuple):
        for v in obj:
            _walk(sheet, v, key)
        return
    if obj is None or isinstance(obj, bool):
        return
    if isinstance(obj, int):
        sheet.counts.add(abs(Decimal(obj)))
    elif isinstance(obj, float):
        target = sheet.counts if key in _COUNT_KEYS else sheet.fractions
        target.add(abs(_d(obj)))
    elif isinstance(obj, str):
        if key in _ID_KEYS:
            sheet.identifiers.add(obj)
        elif key == "constraint":
            sheet.identifiers.update(part for part in obj.split(":")[1:] if part)
        elif _ISO_STR.match(obj):
            sheet.dates.add(obj)
        elif key in _COUNT_KEYS and _DEC_STR.match(obj):
            sheet.counts.add(abs(Decimal(obj)))
        elif key == "max_weight" and _DEC_STR.match(obj):
            sheet.fractions.add(abs(Decimal(obj)))
        elif _MONEY_STR.match(obj) or (key == "price" and _DEC_STR.match(obj)):
            sheet.money.add(abs(Decimal(obj)))
        elif key in ("text", "message", "summary"):
            sheet.absorb(obj)


# -- the number check ---------------------------------------------------------------------
_DATE_RE: Final = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")
_MULT: Final = r"(?:\s?(?P<mult>[kK](?![a-zA-Z])|MM(?![a-zA-Z])|mm(?![a-zA-Z])|[mM](?![a-zA-Z])|thousand\b|million\b|billion\b|bn\b))"
_NUM: Final = r"(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?"
_MONEY_RE: Final = re.compile(rf"(?<![\w.])\$\s?{_NUM}{_MULT}?")
_PCT_RE: Final = re.compile(
    rf"(?<![\w.$]){_NUM}\s?(?P<unit>%|percent(?:age)?\s+points?\b|percent\b|per\s+cent\b|pp\b|bps\b|basis\s+points?\b)"
)
_PLAIN_RE: Final = re.compile(rf"(?<![\w.$]){_NUM}{_MULT}?(?![\w])")
_TOKEN_RE: Final = re.compile(r"(?<![\w])[A-Za-z0-9](?:[\w\-/.]*[A-Za-z0-9])?(?![\w])")
_LIST_MARKER_RE: Final = re.compile(r"(?m)^\s*\d{1,2}[.)]\s+")
_NUMBER_WORDS: Final = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12, "twenty": 20, "hundred": 100,
}  # fmt: skip
_WORD_RE: Final = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_MULTIPLIERS: Final = {
    "k": Decimal(1000), "thousand": Decimal(1000), "m": Decimal(10**6), "mm": Decimal(10**6),
    "million": Decimal(10**6), "b": Decimal(10**9), "bn": Decimal(10**9),
    "billion": Decimal(10**9),
}  # fmt: skip


@dataclass(frozen=True)
class _Written:
    value: Decimal  # as written, in its unit
    places: int  # decimals written
    mult: Decimal  # K/M multiplier (1 when none)


def _written(m: re.Match[str]) -> _Written:
    num = m.group("num").replace(",", "")
    dec = m.group("dec") or ""
    mult_word = (m.groupdict().get("mult") or "").lower()
    return _Written(
        value=Decimal(num + dec),
        places=max(0, len(dec) - 1),
        mult=_MULTIPLIERS.get(mult_word, _ONE),
    )


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _numbers_in(text: str, identifiers: Iterable[str]) -> list[tuple[str, Any, str]]:
    """(kind, value, as written) for every number in ``text``: dates first, then identifiers
    are blanked out, then money, percentages, plain numbers and number words."""
    out: list[tuple[str, Any, str]] = []
    work = _LIST_MARKER_RE.sub(lambda m: " " * len(m.group(0)), text)
    for m in _DATE_RE.finditer(work):
        out.append(("date", m.group(0), m.group(0)))
        work = _blank(work, m.start(), m.end())
    for ident in sorted(
        {i for i in identifiers if any(ch.isdigit() for ch in i)}, key=lambda s: (-len(s), s)
    ):
        pattern = re.compile(rf"(?<![\w]){re.escape(ident)}(?![\w])")
        for m in list(pattern.finditer(work)):
            work = _blank(work, m.start(), m.end())
    for kind, regex in (("money", _MONEY_RE), ("percent", _PCT_RE), ("plain", _PLAIN_RE)):
        for m in list(regex.finditer(work)):
            w = _written(m)
            if kind == "percent":
                unit = m.group("unit").lower()
                value = w.value / 100 if unit.startswith(("bps", "basis")) else w.value
                out.append(("percent", value, m.group(0).strip()))
            else:
                out.append((kind, w, m.group(0).strip()))
            work = _blank(work, m.start(), m.end())
    for m in _WORD_RE.finditer(work):
        out.append(("word", Decimal(_NUMBER_WORDS[m.group(1).lower()]), m.group(0)))
    for m in _TOKEN_RE.finditer(work):
        token = m.group(0)
        if any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token):
            out.append(("identifier", token, token))
    return out


def _money_matches(w: _Written, values: set[Decimal]) -> bool:
    for v in values:
        if w.mult != 1:
            if _round(v / w.mult, w.places) == w.value:
                return True
            continue
        if _round(v, w.places) == w.value:
            return True
        if w.places == 0 and w.value > 0:
            for unit in (Decimal(1000), Decimal(10**6)):
                if w.value % unit == 0 and v >= unit / 2 and _round(v / unit, 0) * unit == w.value:
                    return True
    return False


def _pct_matches(value: Decimal, fractions: set[Decimal]) -> bool:
    target = _round(value, 1)
    return any(_round(f * 100, 1) == target for f in fractions)


def check_numbers(text: str, sheet: FactSheet) -> list[str]:
    """Numbers in ``text`` that match no fact (empty list: the text passes).

    Money matches a money fact rounded to the cents written, to the dollar, or to thousands or
    millions ("$14K", "$14,000", "$1.2M"); a percentage matches a ratio fact at 0.1 percentage
    point; a plain number matches a count exactly or an amount to the dollar; dates
    (YYYY-MM-DD) and identifiers (any token mixing letters and digits, such as a lot id) must
    be facts as written; the number words two to twelve, twenty and hundred must be counts.
    """
    problems: list[str] = []
    if len(text) > MAX_TEXT_CHARS:
        problems.append(f"the text is {len(text):,} characters long (limit {MAX_TEXT_CHARS:,})")
    for kind, value, written in _numbers_in(text, sheet.identifiers):
        ok: bool
        if kind == "date":
            ok = value in sheet.dates
        elif kind == "money":
            ok = _money_matches(value, sheet.money)
        elif kind == "percent":
            ok = _pct_matches(value, sheet.fractions)
        elif kind == "word":
            ok = value in sheet.counts
        elif kind == "identifier":
            ok = False  # the known identifiers were blanked out before
        else:
            w: _Written = value
            ok = (w.mult == 1 and w.places == 0 and w.value in sheet.counts) or (
                w.mult == 1
                and w.places > 0
                and any(_round(v, w.places) == w.value for v in sheet.counts | sheet.fractions)
            )
            ok = ok or _money_matches(w, sheet.money)
            ok = ok or (w.mult == 1 and w.places == 0 and w.value in _years(sheet.dates))
        if not ok:
            problems.append(f"{written!r} matches no fact")
    return problems


def _years(dates: Iterable[str]) -> set[Decimal]:
    return {Decimal(d[:4]) for d in dates}


# -- building the fact sentences ------------------------------------------------------------
def _realized(metrics: Mapping[str, Any]) -> dict[str, Decimal]:
    r = metrics["realized"]
    return {k: _d(r[k]) for k in r}


def _headline(sheet: FactSheet, result: Mapping[str, Any]) -> None:
    after = result["metrics"]["after"]
    before = result["metrics"]["before"]
    trades = result["trades"]
    sells = [t for t in trades if t["side"] == "sell"]
    buys = [t for t in trades if t["side"] == "buy"]
    sales, purchases = _d(after["sales"]), _d(after["purchases"])
    te0, te1 = _d(before["tracking_error"]), _d(after["tracking_error"])
    dr0, dr1 = _d(before["drift_total"]), _d(after["drift_total"])
    if not trades:
        sheet.line(
            "No trades are proposed: under these constraints the current portfolio is already "
            "the best trade-off between tracking error, tax and cost.",
            {"summary", "trades", "te"},
            "state",
        )
        sheet.client_lines.append("No trades are proposed at this time.")
    else:
        kinds = [
            sheet.n(len(group), word)
            for group, word in ((sells, "sale"), (buys, "purchase"))
            if group
        ]
        flows = [
            f"{sheet.m(amount)} of {word}"
            for amount, word in ((sales, "sales"), (purchases, "purchases"))
            if amount
        ]
        verb = "moves" if len(trades) == 1 else "move"
        text = (
            f"{sheet.n(len(trades), 'trade')} ({_join(kinds)}) {verb} {sheet.m(sales + purchases)}"
        )
        sheet.line(
            text + (f": {_join(flows)}." if len(flows) > 1 else "."),
            {"summary", "trades"},
            "state",
        )
        sheet.client_lines.append(
            f"We propose {sheet.n(len(trades), 'trade')} in your accounts: {_join(flows)}."
        )
    r = _realized(after)
    gains = r["short_term_gains"] + r["long_term_gains"]
    losses = r["short_term_losses"] + r["long_term_losses"]
    net, tax = r["net"], _d(after["estimated_tax"])
    if gains or losses:
        st = r["short_term_gains"] + r["short_term_losses"]
        lt = r["long_term_gains"] + r["long_term_losses"]
        sign = "gain" if net >= 0 else "loss"
        parts = [
            f"{sheet.m(amount)} of {what}"
            for amount, what in ((gains, "gains"), (losses, "losses"))
            if amount
        ]
        terms = [
            f"{term} {'-' if amount < 0 else ''}{sheet.m(amount)}"
            for term, amount in (("short term", st), ("long term", lt))
            if amount
        ]
        text = (
            f"In taxable accounts the trades realize {_join(parts)}: a net {sign} of "
            f"{sheet.m(net)} ({', '.join(terms) or 'short and long term offset'})"
        )
        if tax > 0:
            text += f", with an estimated tax of {sheet.m(tax)}."
        elif tax < 0:
            text += f", which lowers the estimated tax by {sheet.m(tax)}."
        else:
            text += ", with no estimated tax."
        sheet.line(text, {"summary", "tax", "gains", "loss"}, "state")
        if net > 0:
            client = f"They realize a net capital gain of {sheet.m(net)}"
            client += (
                f", with an estimated tax of about {sheet.m(tax)}." if tax > 0 else " and no tax."
            )
        elif net < 0:
            client = f"They realize a net capital loss of {sheet.m(net)}"
            client += (
                f", which is expected to lower your taxes by about {sheet.m(tax)}."
                if tax < 0
                else "."
            )
        else:
            client = "Gains and losses offset each other: no net capital gain is realized."
        sheet.client_lines.append(client)
    elif trades:
        sheet.line(
            "The trades realize no gain or loss in taxable accounts.",
            {"tax", "gains", "loss"},
            "state",
        )
        sheet.client_lines.append("The trades realize no taxable gain or loss.")
    deferred = _d(after.get("realized_tax_deferred", "0"))
    if deferred > 0:
        sheet.line(
            f"A net gain of {sheet.m(deferred)} is realized in tax-deferred accounts, where it "
            "is not taxed now.",
            {"tax", "gains"},
            "state",
        )
    elif deferred < 0:
        sheet.line(
            f"A net loss of {sheet.m(deferred)} is realized in tax-deferred accounts, where it "
            "has no tax effect.",
            {"tax", "gains", "loss"},
            "state",
        )
    sheet.line(
        f"Tracking error to the target goes from {sheet.p(te0)} to {sheet.p(te1)}; the share of "
        f"capital away from its target mix (drift) from {sheet.p(dr0)} to {sheet.p(dr1)}.",
        {"summary", "te"},
        "state",
    )
    if te0 > 0 and trades:
        removed = max(Decimal(0), _ONE - te1 / te0)
        sheet.line(
            f"The trades remove {sheet.p(removed)} of the tracking error.",
            {"te"},
            "state",
        )
    if trades:
        if te1 < te0:
            sheet.client_lines.append(
                "They bring your portfolio closer to its target mix: its expected deviation "
                f"from the target (tracking error) goes from {sheet.p(te0)} to {sheet.p(te1)}."
            )
        sheet.line(
            f"Turnover is {sheet.p(_d(after['turnover']))} of the household value and trading "
            f"costs {sheet.m(_d(after['trading_cost']))} (commissions and ticket fees).",
            {"trades", "cost", "turnover"},
            "state",
        )
        sheet.client_lines.append(
            f"Estimated trading costs are {sheet.m(_d(after['trading_cost']))}."
        )


def _budget_lines(sheet: FactSheet, result: Mapping[str, Any], spec: ConstraintSpec | None) -> None:
    before, after = result["metrics"]["before"], result["metrics"]["after"]
    bindings = [
        b for b in result["binding_constraints"] if b["constraint"].startswith("gain_budget")
    ]
    facts = {f["fact"] for f in result["facts"]}
    for b in bindings:
        sheet.line(b["text"], {"budget", "gains", "tax", "te"}, "cause")
        _effect_line(sheet, b, "this budget", result["binding_constraints"].index(b))
    if "loss_only_transition" in facts:
        return
    ub = before["unrealized"]
    available = _d(ub["short_term_gains"]) + _d(ub["long_term_gains"])
    r = _realized(after)
    gross = r["short_term_gains"] + r["long_term_gains"]
    if not bindings and available > 0:
        sheet.line(
            f"Of the {sheet.m(available)} of unrealized gains in taxable accounts, "
            f"{sheet.m(gross)} ({sheet.p(gross / available)}) were realized.",
            {"budget", "gains", "tax"},
            "state",
        )
        if spec is not None and spec.max_net_gains is not None:
            sheet.line(
                f"The {sheet.m(spec.max_net_gains)} net gain cap did not bind: the trades realize "
                "less than it allows.",
                {"budget", "gains", "tax"},
                "cause",
            )
    if bindings:
        cap = _d(bindings[0]["limit"])
        sheet.client_lines.append(
            f"To keep realized gains within the limit of {sheet.m(cap)} for the year, part of "
            "the move toward the target is left for later."
        )


def _effect_line(sheet: FactSheet, entry: Mapping[str, Any], what: str, rank: int) -> None:
    """What lifting a binding constraint would change: measured (``effect_if_relaxed``) or, for
    the ``MAX_ESTIMATES`` most expensive, the optimizer's dual estimate."""
    effect = entry.get("effect_if_relaxed")
    if not effect or effect["without"].get("status") == "infeasible":
        estimate = entry.get("estimated_effect")
        if rank < MAX_ESTIMATES and estimate and estimate.get("text"):
            sheet.line(str(estimate["text"]), _topics_for(entry) | {"cost_of"}, "cause")
        return
    w, wo = effect["with"], effect["without"]
    te_w, te_wo = _d(w["tracking_error"]), _d(wo["tracking_error"])
    g_w, g_wo = _d(w["realized_net_gain"]), _d(wo["realized_net_gain"])
    if abs(te_w - te_wo) < TE_EPS and abs(g_w - g_wo) < 1:
        sheet.line(
            f"Lifting {what} alone would not change the result: another constraint holds the "
            "same positions.",
            _topics_for(entry),
            "cause",
        )
        return
    gain_words = (
        f"net realized gains from {'-' if g_w < 0 else ''}{sheet.m(g_w)} to "
        f"{'-' if g_wo < 0 else ''}{sheet.m(g_wo)}"
    )
    sheet.line(
        f"Without {what}, tracking error would be {sheet.p(te_wo)} instead of {sheet.p(te_w)} "
        f"and {gain_words} (estimate from the continuous solve).",
        _topics_for(entry),
        "cause",
    )


def _topics_for(entry: Mapping[str, Any]) -> set[str]:
    family = entry["family"]
    topics = {"te", "cause"}
    sym = entry["constraint"].split(":", 1)[1] if ":" in entry["constraint"] else ""
    topics |= {
        "gain_net": {"budget", "gains", "tax"},
        "gain_st": {"budget", "gains", "tax", "short_term"},
        "cash": {"cash"},
        "class": {"drift"},
        "max_weight": {"restriction"},
        "no_sell": {"restriction", "sell"},
        "no_buy": {"restriction", "buy"},
        "wash_sale": {"wash", "loss"},
        "near_long_term": {"long_term", "gains", "tax"},
        "no_short_term_gains": {"short_term", "gains", "tax"},
    }.get(family, set())
    if sym and family not in ("cash", "class"):
        topics.add(f"id:{sym}")
    return topics


def _binding_lines(sheet: FactSheet, result: Mapping[str, Any]) -> None:
    flags = [f for f in result["flags"] if f["kind"] == "restricted_position"]
    reasons = {(f["symbol"], "no_sell" if f["no_sell"] else "no_buy"): f for f in flags}
    for rank, b in enumerate(result["binding_constraints"]):
        if b["constraint"].startswith("gain_budget"):
            continue
        text = b["text"]
        family = b["family"]
        sym = b["constraint"].split(":", 1)[1] if ":" in b["constraint"] else ""
        if family in ("no_sell", "no_buy"):
            flag = reasons.get((sym, family))
            why = f" ({flag['reason']})" if flag and flag.get("reason") else ""
            _, _, rest = text.partition(" binds: ")
            text = (
                f"The {'no-sell' if family == 'no_sell' else 'no-buy'} restriction on {sym}{why} "
                f"forced a deviation from the target: {rest or text}"
            )
        sheet.line(text, _topics_for(b), "cause")
        what = {
            "no_sell": f"the no-sell restriction on {sym}",
            "no_buy": f"the no-buy restriction on {sym}",
            "no_short_term_gains": f"the no-short-term-gains rule on {sym}",
            "near_long_term": f"the hold-back of {sym} lots near long term",
            "wash_sale": f"the wash-sale block on {sym}",
            "cash": "this cash requirement",
            "class": "this asset-class bound",
            "max_weight": "this maximum weight",
        }.get(family, "this constraint")
        _effect_line(sheet, b, what, rank)


def _nature_lines(sheet: FactSheet, result: Mapping[str, Any]) -> None:
    for f in result["facts"]:
        if f["fact"] == "loss_only_transition":
            sheet.line(f["text"], {"te", "gains", "tax", "loss", "budget", "short_term"}, "cause")
            sheet.client_lines.append(
                "Because no short-term gains may be realized and none of your positions has a "
                "long-term gain, only positions at a loss are sold in this step."
            )
        elif f["fact"] != "net_loss_realized":
            sheet.line(f["text"], {"summary"}, "cause")


def _flag_lines(sheet: FactSheet, result: Mapping[str, Any]) -> None:
    bound = {b["constraint"] for b in result["binding_constraints"]}
    client_wash: list[tuple[str, str]] = []
    for f in result["flags"]:
        kind = f["kind"]
        if kind == "near_long_term":
            status = (
                "sold anyway"
                if f["sold"]
                else "held back so the gain becomes long term"
                if f["held_back"]
                else "not sold"
            )
            sheet.line(
                f"Lot {f['lot_id']} of {f['symbol']} in account {f['account']} becomes long term "
                f"in {sheet.n(int(f['days_to_long_term']), 'day')} with "
                f"{sheet.m(_d(f['unrealized_gain']))} of unrealized gain: {status}.",
                {"long_term", "gains", "tax", "flags", f"id:{f['symbol']}", f"id:{f['lot_id']}"},
                "flag",
            )
        elif kind == "harvest_blocked_wash_sale":
            sheet.counts.add(Decimal(WASH_WINDOW_DAYS))
            sheet.line(
                f"The {sheet.m(_d(f['unrealized_loss']))} loss in lot {f['lot_id']} of "
                f"{f['symbol']} (account {f['account']}) could not be harvested: "
                f"{f['identical_group']} was bought in account {f['conflicting_buy_account']} on "
                f"{f['conflicting_buy_date']}, inside the {WASH_WINDOW_DAYS}-day wash-sale "
                "window that spans every household account, IRAs and spouse accounts included.",
                {"wash", "loss", "harvest", "flags", f"id:{f['symbol']}", f"id:{f['lot_id']}"},
                "flag",
            )
        elif kind == "buy_blocked_wash_sale":
            sheet.counts.add(Decimal(WASH_WINDOW_DAYS))
            sheet.line(
                f"{f['identical_group']} cannot be bought in any household account: a loss sale "
                f"in account {f['loss_sale_account']} on {f['loss_sale_date']} is inside the "
                f"{WASH_WINDOW_DAYS}-day wash-sale window.",
                {"wash", "buy", "flags", f"id:{f['identical_group']}"},
                "flag",
            )
        elif kind == "wash_sale_window_opened":
            sheet.line(f["text"], {"wash", "loss", "flags", f"id:{f['identical_group']}"}, "flag")
            client_wash.append((f["identical_group"], f["no_buy_until"]))
        elif kind == "restricted_position":
            sym = f["symbol"]
            kinds = [w for w, on in (("no sell", f["no_sell"]), ("no buy", f["no_buy"])) if on]
            if f.get("max_weight") is not None:
                kinds.append(f"maximum weight {sheet.p(_d(f['max_weight']))}")
            forced = {f"no_sell:{sym}", f"no_buy:{sym}", f"max_weight:{sym}"} & bound
            where = f" in account {f['account']}" if f.get("account") else ""
            reason = f"; {f['reason']}" if f.get("reason") else ""
            effect = (
                "it forced a deviation from the target (see above)"
                if forced
                else "it did not change the trades"
            )
            sheet.line(
                f"{sym}{where} is restricted ({', '.join(kinds)}{reason}), a "
                f"{sheet.m(_d(f['value']))} position: {effect}.",
                {"restriction", "flags", f"id:{sym}"},
                "flag",
            )
            if f["no_sell"] and f["no_buy"]:
                sheet.client_lines.append(f"{sym} is neither sold nor bought, as restricted.")
            elif f["no_sell"]:
                sheet.client_lines.append(f"{sym} is not sold, as restricted.")
            elif f["no_buy"]:
                sheet.client_lines.append(f"{sym} is not bought, as restricted.")
        elif kind == "large_trade_list":
            sheet.line(
                f"The list has {sheet.n(int(f['tickets']), 'ticket')}, more than the review "
                f"threshold of {sheet.c(f['threshold'])}.",
                {"trades", "flags"},
                "flag",
            )
    if client_wash:
        groups = _join([g for g, _ in client_wash])
        until = max(d for _, d in client_wash)
        sheet.dates.add(until)
        sheet.client_lines.append(
            f"Because losses are realized, {groups} should not be bought in any of your "
            f"household's accounts until {until} (the wash-sale rule)."
        )


def _check_lines(sheet: FactSheet, result: Mapping[str, Any], spec: ConstraintSpec) -> None:
    topic = {
        "max_tracking_error": {"te"},
        "completion_target": {"te"},
        "max_trades": {"trades"},
        "max_turnover": {"turnover", "trades"},
        "invest_cash": {"cash"},
    }
    for check in check_after(spec, result):
        if check.field in ("max_tracking_error", "completion_target", "max_turnover"):
            sheet.fractions.update({abs(check.requested), abs(check.actual)})
            if check.field == "completion_target":
                sheet.fractions.add(_d(result["metrics"]["before"]["tracking_error"]))
        elif check.field == "invest_cash":
            sheet.money.update({abs(check.requested), abs(check.actual)})
        else:
            sheet.counts.update({check.requested, check.actual})
        sheet.line(check.words, topic[check.field] | {"check"}, "check")


def _forecast_lines(sheet: FactSheet, result: Mapping[str, Any]) -> None:
    rows = [r for r in result.get("forecast", []) if r.get("status") == "ok"]
    if len(rows) < 2:
        return
    parts = [
        f"{sheet.p(_d(r['tracking_error_after']))} after year {sheet.c(r['year'])}" for r in rows
    ]
    gains = [
        f"{'-' if _d(r['realized_net']) < 0 else ''}{sheet.m(_d(r['realized_net']))}" for r in rows
    ]
    sheet.line(
        "Forecast with the same annual limits and constant prices: tracking error "
        f"{_join(parts)}; net realized gains per year {_join(gains)}.",
        {"forecast", "te", "gains"},
        "outlook",
    )
    last = rows[-1]
    if _d(last["tracking_error_after"]) < _d(rows[0]["tracking_error_after"]):
        sheet.client_lines.append(
            f"If the same limits are kept in the coming years, the deviation from the target "
            f"is expected to fall to about {sheet.p(_d(last['tracking_error_after']))} by year "
            f"{sheet.c(last['year'])}."
        )


def _spec_numbers(sheet: FactSheet, spec: ConstraintSpec) -> None:
    for v in (spec.max_net_gains, spec.max_short_term_gains, spec.raise_cash, spec.invest_cash):
        if v is not None:
            sheet.money.add(abs(v))
    for v in (spec.max_tracking_error, spec.completion_target, spec.max_turnover):
        if v is not None:
            sheet.fractions.add(abs(v))
    if spec.max_trades is not None:
        sheet.counts.add(Decimal(spec.max_trades))
    sheet.identifiers.update(spec.no_sell + spec.no_buy + spec.must_sell)


def collect_facts(run: RunFacts) -> FactSheet:
    """Every fact of a run: the numbers a text may use and the fact sentences, in a fixed order."""
    sheet = FactSheet()
    if run.spec is not None:
        _spec_numbers(sheet, run.spec)
    if run.state == "ok" and run.result is not None:
        result = run.result
        _walk(sheet, result)
        _headline(sheet, result)
        _nature_lines(sheet, result)
        _budget_lines(sheet, result, run.spec)
        _binding_lines(sheet, result)
        if run.spec is not None:
            _check_lines(sheet, result, run.spec)
        _flag_lines(sheet, result)
        _forecast_lines(sheet, result)
        for trade in result["trades"]:
            _trade_line(sheet, trade)
    elif run.state == "infeasible":
        error = run.error or {}
        _walk(sheet, error)
        conflicts = [c for c in error.get("conflicts", []) if isinstance(c, Mapping)]
        summary = str(error.get("summary") or "no trade list satisfies every hard constraint")
        sheet.line(
            f"The request cannot be met: {summary}.",
            {"summary", "infeasible", "te", "trades"},
            "state",
        )
        if conflicts:
            sheet.line(
                "These constraints conflict: "
                + "; ".join(str(c["text"]) for c in conflicts)
                + ". Each of them is needed for the conflict, so lifting or loosening any one of "
                "them makes the request feasible.",
                {"summary", "infeasible", "cause", "te", "trades"},
                "cause",
            )
        sheet.client_lines.append(
            "No trades are proposed: the requested limits cannot all be met together."
        )
    elif run.state == "blocked":
        error = run.error or {}
        problems = [str(p) for p in error.get("problems", [])] or [run.message]
        for p in problems:
            sheet.absorb(p)
        sheet.line(
            "The run did not start because the data cannot support a proposal: "
            + " ".join(problems),
            {"summary", "blocked", "trades"},
            "state",
        )
        sheet.client_lines.append("No trades are proposed until the account data is complete.")
    elif run.state == "failed":
        sheet.absorb(run.message)
        sheet.line(
            f"The run failed: {run.message or 'no result was produced'}.",
            {"summary", "trades"},
            "state",
        )
        sheet.client_lines.append("No trades are proposed.")
    else:
        sheet.line("The run has not finished yet.", {"summary"}, "state")
        sheet.client_lines.append("The proposal is being prepared.")
    return sheet


def _trade_line(sheet: FactSheet, trade: Mapping[str, Any]) -> None:
    sym = trade["symbol"]
    verb = "sells" if trade["side"] == "sell" else "buys"
    text = (
        f"Account {trade['account']} {verb} {sheet.c(trade['shares'])} {sym} at "
        f"{sheet.m(_d(trade['price']))} ({sheet.m(_d(trade['estimated_value']))})"
    )
    if trade["side"] == "sell":
        gain = _d(trade["realized_gain"])
        lots = ", ".join(lot["lot_id"] for lot in trade["lots"])
        text += (
            f" from lot{'s' if len(trade['lots']) != 1 else ''} {lots}, realizing a "
            f"{'gain' if gain >= 0 else 'loss'} of {sheet.m(gain)}"
        )
    ids = {f"id:{sym}", f"id:{trade['account']}"} | {
        f"id:{lot['lot_id']}" for lot in trade.get("lots", [])
    }
    sheet.line(text + ".", ids | {"trade_detail"}, "detail")


# -- texts ----------------------------------------------------------------------------------
_ROLE_ORDER: Final = ("state", "cause", "check", "flag", "outlook")


def fact_lines(sheet: FactSheet, *, detail: bool = True) -> list[str]:
    """The fact sentences (what a model is given), in a fixed order; at most
    ``MAX_DETAIL_LINES`` trade lines."""
    out = [ln.text for role in _ROLE_ORDER for ln in sheet.lines if ln.role == role]
    if detail:
        trades = [ln.text for ln in sheet.lines if ln.role == "detail"]
        out += trades[:MAX_DETAIL_LINES]
        if len(trades) > MAX_DETAIL_LINES:
            out.append("(The other trades are in the trade list.)")
    return out


def explain(run: RunFacts, audience: Audience = "adviser", sheet: FactSheet | None = None) -> str:
    """The deterministic explanation: the adviser's rationale or the client's plain text."""
    facts = sheet if sheet is not None else collect_facts(run)
    if audience == "client":
        return " ".join(facts.client_lines)
    paragraphs: list[str] = []
    for role in _ROLE_ORDER:
        texts = [ln.text for ln in facts.lines if ln.role == role]
        if texts:
            paragraphs.append(" ".join(texts))
    return "\n\n".join(paragraphs)


def normalize_question(question: str) -> str:
    """The question as it is cached: whitespace collapsed, ends trimmed."""
    return " ".join(question.split())


# Question words -> topics; matched as whole words on the lower-cased question.
_TOPIC_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "te": (
        "tracking error", "te", "drift", "target", "deviation", "off target", "far from",
        "transition", "closer", "complete", "completion", "mix", "risk",
    ),
    "tax": ("tax", "taxes", "taxed", "tax impact", "tax bill"),
    "gains": ("gain", "gains", "realize", "realized", "realise"),
    "budget": ("budget", "cap", "capped", "gain limit", "allowance"),
    "short_term": ("short-term", "short term", "st gains"),
    "long_term": ("long-term", "long term", "holding period", "held back", "hold back", "days"),
    "trades": ("trade", "trades", "ticket", "tickets", "transactions", "orders", "how many"),
    "sell": ("sell", "sold", "sale", "sales", "selling"),
    "buy": ("buy", "bought", "purchase", "purchases", "buying"),
    "cost": ("cost", "costs", "fee", "fees", "commission", "commissions"),
    "turnover": ("turnover",),
    "cash": ("cash", "withdrawal", "withdraw", "raise", "invest", "deposit"),
    "wash": ("wash", "wash-sale", "wash sale"),
    "loss": ("loss", "losses", "harvest", "harvesting", "tlh"),
    "harvest": ("harvest", "harvesting", "tlh"),
    "restriction": ("restrict", "restricted", "restriction", "restrictions", "no-sell", "no-buy"),
    "forecast": ("forecast", "next year", "years", "future", "later", "over time"),
    "infeasible": ("infeasible", "impossible", "conflict", "cannot", "can't", "why no"),
    "flags": ("flag", "flags", "review", "watch", "risks"),
}  # fmt: skip
_WHY_WORDS: Final = ("why", "still", "despite", "how come", "instead", "not lower", "only")
_TOPIC_ORDER: Final = tuple(_TOPIC_WORDS)


_TICKER_RE: Final = re.compile(r"(?<![\w$])\$?([A-Z][A-Z0-9]{0,5}(?:\.[A-Z])?)(?![\w])")


def _question_topics(question: str) -> tuple[list[str], list[str], bool]:
    """(topics, tickers named, whether the question asks why)."""
    q = question.lower()
    topics = [
        t
        for t in _TOPIC_ORDER
        if any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", q) for w in _TOPIC_WORDS[t])
    ]
    tickers = sorted(
        {
            m.group(1)
            for m in _TICKER_RE.finditer(question)
            if m.group(1) not in STOPWORDS or m.group(0).startswith("$")
        }
    )
    asks_why = any(re.search(rf"\b{re.escape(w)}\b", q) for w in _WHY_WORDS)
    return topics, tickers, asks_why


def answer(run: RunFacts, question: str, sheet: FactSheet | None = None) -> str:
    """A deterministic answer to a follow-up question, from the fact sentences that concern it.

    A question that names tickers is answered about them: their trades, the constraints that
    bind on them and their flags (or that the run has nothing about them). Otherwise the
    question's words select topics (tracking error, tax, gains, budget, trades, wash sales, ...)
    and the answer gives what the trades do on those topics, then why (binding constraints and
    the nature of the job) when the question asks why or is about tracking error, tax or limits,
    then the checks, flags and forecast on those topics; at most ``MAX_ANSWER_LINES`` sentences.
    Without a matching topic it gives the summary and says what the facts cover.
    """
    facts = sheet if sheet is not None else collect_facts(run)
    topics, tickers, asks_why = _question_topics(normalize_question(question))
    by_role = {
        role: [ln for ln in facts.lines if ln.role == role] for role in (*_ROLE_ORDER, "detail")
    }
    chosen: list[Line] = []

    def take(lines: Iterable[Line]) -> None:
        for ln in lines:
            if ln not in chosen and len(chosen) < MAX_ANSWER_LINES:
                chosen.append(ln)

    if tickers:
        parts: list[str] = []
        for ticker in tickers:
            tag = f"id:{ticker}"
            about = [
                ln
                for role in ("detail", "cause", "check", "flag")
                for ln in by_role[role]
                if tag in ln.topics
            ]
            if about:
                take(about)
            else:
                parts.append(ticker)
        text = " ".join(ln.text for ln in chosen)
        if parts:
            names = _join(parts)
            text = (
                f"{names} {'does' if len(parts) == 1 else 'do'} not appear in this run's result: "
                "not traded, not restricted, not flagged and not named by a binding constraint. "
                + text
            ).strip()
        return text
    wanted = set(topics)
    if not wanted:
        take(ln for ln in by_role["state"] if "summary" in ln.topics)
        return (
            " ".join(ln.text for ln in chosen) + " The facts of this run cover the trades, "
            "tracking error and drift, realized gains and tax, the constraints that bind and what "
            "they cost, wash sales, lots near long term, restrictions and the forecast; ask about "
            "one of them for more."
        ).strip()
    take(ln for ln in by_role["state"] if ln.topics & wanted)
    if asks_why or wanted & {"te", "tax", "gains", "budget", "restriction", "infeasible"}:
        causes = [ln for ln in by_role["cause"] if ln.topics & wanted]
        take(causes or by_role["cause"])
    take(ln for ln in by_role["check"] if ln.topics & wanted)
    take(ln for ln in by_role["flag"] if ln.topics & wanted)
    take(ln for ln in by_role["outlook"] if ln.topics & wanted)
    if not chosen:
        take(ln for ln in by_role["state"] if "summary" in ln.topics)
    return " ".join(ln.text for ln in chosen)
