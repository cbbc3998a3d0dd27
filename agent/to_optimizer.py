"""A confirmed ConstraintSpec in the optimizer's terms, and the checks made after the solve.

:func:`spec_to_optimizer` maps a spec to what ``optimizer.services.run_request`` takes for a
custom run: ``overrides`` with

- ``budgets``: snapshot budget keys (``max_net_realized_gain``, ``max_short_term_gain``,
  ``no_short_term_gains``), hard limits;
- ``restrictions``: extra snapshot restriction rows (``no_sell``, ``no_buy``, and
  ``max_weight`` 0 for "sell in full"), hard;
- ``knobs``: scenario knobs (``risk_aversion``, ``tax_weight``, ``loss_value_beyond_offset``,
  ``no_short_term_gains``): the base preset's preferences, harvesting on/off, finishing the
  transition;
- ``cash_to_raise``: snapshot account id -> dollars the account must hold on top of its cash
  floor, hard;
- ``agent``: the spec itself and how each constraint is treated (kept with the run).

The snapshot has no tracking-error, completion, trade-count, turnover or invest-cash
constraint. Those are never dropped: each gets a :class:`Treatment` whose words say that the
optimizer treats it as a preference or that it is checked after the solve, and
:func:`check_after` compares the result with it. Every constraint in the spec has a
treatment, so the adviser confirms exactly what will run.

Pure Python: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from agent.render import format_money, format_percent
from agent.spec import ConstraintSpec, conflicts
from optimizer.core.scenarios import PRESETS

__all__ = [
    "AccountInfo",
    "Check",
    "HouseholdContext",
    "NotMappable",
    "OptimizerRequest",
    "Treatment",
    "check_after",
    "spec_to_optimizer",
]

How = Literal["hard", "preference", "checked", "info"]

#: Reason written on the restriction rows the spec adds (shown in the run's flags).
RESTRICTION_REASON: Final = "adviser request"
#: Below this share of the requested amount, cash to invest counts as not invested.
INVEST_TOLERANCE: Final = Decimal("0.99")
#: Harvesting on: losses beyond what offsets gains are worth half their tax value (as the
#: tax-sensitive preset and the harvest mode).
HARVEST_KAPPA: Final = 0.5

_BASE_WORDS: Final = {
    "conservative": "conservative (minimize tax; no short-term gains)",
    "moderate": "moderate",
    "aggressive": "aggressive (complete most of the transition)",
    "tax_sensitive": "tax-sensitive (harvest losses to offset gains; no short-term gains)",
}


class NotMappable(ValueError):
    """The spec asks for something the household's data cannot carry (e.g. no account)."""


@dataclass(frozen=True)
class AccountInfo:
    """One active account as the snapshot names it: ``id`` is ``<custodian>-<number>``."""

    id: str
    name: str
    tax_treatment: str  # taxable | deferred | exempt
    value: Decimal  # cash + holdings, dollars


@dataclass(frozen=True)
class HouseholdContext:
    """What the mapping needs to know about the household (read by the caller)."""

    accounts: tuple[AccountInfo, ...] = ()
    ips_gain_budget: Decimal | None = None


@dataclass(frozen=True)
class Treatment:
    """How the optimizer treats one constraint of the spec, in words."""

    field: str
    how: How
    words: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "how": self.how, "words": self.words}


@dataclass(frozen=True)
class OptimizerRequest:
    """``run_request(scenario=..., overrides=...)`` arguments for a confirmed spec."""

    scenario: str
    base: str
    overrides: dict[str, Any]
    treatments: tuple[Treatment, ...]

    def words(self) -> list[str]:
        return [t.words for t in self.treatments]


def _money_text(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _raise_account(context: HouseholdContext) -> tuple[AccountInfo, str]:
    """Where cash is raised: the largest taxable account (a withdrawal from an IRA is a taxable
    distribution), else the largest account. Said in the shown-back words, never silent."""
    if not context.accounts:
        raise NotMappable("Cash can only be raised in an account, and the household has none.")
    taxable = [a for a in context.accounts if a.tax_treatment == "taxable"]
    pool, why = (
        (taxable, "the largest taxable account")
        if taxable
        else (list(context.accounts), "the largest account; the household has no taxable one")
    )
    chosen = sorted(pool, key=lambda a: (-a.value, a.id))[0]
    return chosen, why


def _symbols(symbols: Sequence[str]) -> str:
    if len(symbols) == 1:
        return symbols[0]
    if len(symbols) == 2:
        return f"{symbols[0]} and {symbols[1]}"
    return ", ".join(symbols[:-1]) + f", and {symbols[-1]}"


def spec_to_optimizer(
    spec: ConstraintSpec, context: HouseholdContext | None = None
) -> OptimizerRequest:
    """Map a confirmed spec (no open questions) to a custom run's overrides and treatments.

    Raises :class:`NotMappable` for a spec with contradictions or impossible numbers (those are
    questions for the adviser, never a run) and for cash to raise without an account.
    """
    open_questions = conflicts(spec)
    if open_questions:
        raise NotMappable(" ".join(q.message for q in open_questions))
    ctx = context or HouseholdContext()
    treatments: list[Treatment] = []
    budgets: dict[str, Any] = {}
    knobs: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    cash_to_raise: dict[str, str] = {}

    def row(symbol: str) -> dict[str, Any]:
        return rows.setdefault(symbol, {"symbol": symbol, "reason": RESTRICTION_REASON})

    # -- the base scenario's preferences
    if spec.scenario in PRESETS:
        knobs.update(PRESETS[spec.scenario])
        treatments.append(
            Treatment(
                "scenario",
                "preference",
                f"Preferences from the {_BASE_WORDS[spec.scenario]} scenario: how tracking error, "
                "tax and trading cost weigh against each other.",
            )
        )
    else:
        treatments.append(
            Treatment(
                "scenario",
                "preference",
                "Default preferences for the household's mode: tracking error, tax and trading "
                "cost weigh as in the moderate scenario unless set below.",
            )
        )

    # -- gain budgets (hard)
    if spec.max_net_gains is not None:
        budgets["max_net_realized_gain"] = _money_text(spec.max_net_gains)
        words = (
            f"Hard limit: net realized gains in taxable accounts (with gains already realized "
            f"this year) stay at or below {format_money(spec.max_net_gains)}"
        )
        if ctx.ips_gain_budget is not None and ctx.ips_gain_budget != spec.max_net_gains:
            words += (
                f"; for this run this replaces the IPS annual gain budget of "
                f"{format_money(ctx.ips_gain_budget)}"
            )
        treatments.append(Treatment("max_net_gains", "hard", words + "."))
    elif ctx.ips_gain_budget is not None:
        treatments.append(
            Treatment(
                "ips_gain_budget",
                "info",
                f"Hard limit from the IPS: the annual gain budget of "
                f"{format_money(ctx.ips_gain_budget)} applies.",
            )
        )
    if spec.max_short_term_gains is not None:
        budgets["max_short_term_gain"] = _money_text(spec.max_short_term_gains)
        treatments.append(
            Treatment(
                "max_short_term_gains",
                "hard",
                f"Hard limit: net short-term gains stay at or below "
                f"{format_money(spec.max_short_term_gains)}.",
            )
        )
    if spec.no_short_term_gains:
        budgets["no_short_term_gains"] = True
        treatments.append(
            Treatment(
                "no_short_term_gains",
                "hard",
                "Hard rule: no lot with a short-term gain is sold.",
            )
        )

    # -- restrictions (hard)
    for sym in spec.no_sell:
        row(sym)["no_sell"] = True
    for sym in spec.no_buy:
        row(sym)["no_buy"] = True
    for sym in spec.must_sell:
        entry = row(sym)
        entry["max_weight"] = "0"
        entry["no_buy"] = True
    if spec.no_sell:
        treatments.append(
            Treatment(
                "no_sell",
                "hard",
                f"Hard rule: {_symbols(spec.no_sell)} will not be sold (a no-sell restriction "
                "for this run).",
            )
        )
    if spec.no_buy:
        treatments.append(
            Treatment(
                "no_buy",
                "hard",
                f"Hard rule: {_symbols(spec.no_buy)} will not be bought (a no-buy restriction "
                "for this run).",
            )
        )
    if spec.must_sell:
        treatments.append(
            Treatment(
                "must_sell",
                "hard",
                f"Hard rule: {_symbols(spec.must_sell)} will be sold in full and not bought (a "
                "maximum weight of 0%); if a lot cannot be sold, for instance under the "
                "wash-sale rule, the run reports the conflict instead of trading.",
            )
        )

    # -- cash
    if spec.raise_cash is not None:
        account, why = _raise_account(ctx)
        cash_to_raise[account.id] = _money_text(spec.raise_cash)
        treatments.append(
            Treatment(
                "raise_cash",
                "hard",
                f"Hard limit: account {account.name} ({account.id}, {why}) ends with at least "
                f"its cash floor plus {format_money(spec.raise_cash)} in cash.",
            )
        )
    if spec.invest_cash is not None:
        treatments.append(
            Treatment(
                "invest_cash",
                "checked",
                "Checked after the solve: the optimizer has no exact invest-cash constraint; it "
                "invests cash above the floor toward the target by itself. The net amount "
                f"invested (purchases minus sales) is compared with "
                f"{format_money(spec.invest_cash)} and reported.",
            )
        )

    # -- what the snapshot cannot express: preferences and checks after the solve
    if spec.max_tracking_error is not None:
        treatments.append(
            Treatment(
                "max_tracking_error",
                "checked",
                "Checked after the solve: the optimizer has no tracking-error constraint; it "
                "weighs tracking error against tax and cost. The tracking error after the "
                f"trades is compared with {format_percent(spec.max_tracking_error)} and "
                "reported.",
            )
        )
    if spec.completion_target is not None:
        check_words = (
            "The share of the tracking error the trades remove is compared with "
            f"{format_percent(spec.completion_target)} and reported."
        )
        if spec.completion_target == 1 and spec.scenario == "custom":
            knobs["risk_aversion"] = PRESETS["aggressive"]["risk_aversion"]
            treatments.append(
                Treatment(
                    "completion_target",
                    "preference",
                    "Preference: finishing the transition weighs tracking error as the "
                    "aggressive scenario does; the optimizer has no completion constraint, so "
                    "hard limits such as gain budgets still come first. " + check_words,
                )
            )
        else:
            treatments.append(
                Treatment(
                    "completion_target",
                    "checked",
                    "Checked after the solve: the optimizer has no completion constraint. "
                    + check_words,
                )
            )
    if spec.max_trades is not None:
        treatments.append(
            Treatment(
                "max_trades",
                "checked",
                "Checked after the solve: the optimizer has no trade-count constraint (ticket "
                "fees and the minimum order size already discourage small trades). The number "
                f"of trades is compared with {spec.max_trades:,} and reported.",
            )
        )
    if spec.max_turnover is not None:
        treatments.append(
            Treatment(
                "max_turnover",
                "checked",
                "Checked after the solve: the optimizer has no turnover constraint. Turnover "
                "((purchases + sales) / 2 of the household value) is compared with "
                f"{format_percent(spec.max_turnover)} and reported.",
            )
        )
    if spec.harvest_losses is True:
        knobs["loss_value_beyond_offset"] = max(
            float(knobs.get("loss_value_beyond_offset", 0.0)), HARVEST_KAPPA
        )
        treatments.append(
            Treatment(
                "harvest_losses",
                "preference",
                "Preference: losses are harvested where useful; a loss beyond what offsets gains "
                "is valued at half its tax value (carried forward).",
            )
        )
    elif spec.harvest_losses is False:
        knobs["loss_value_beyond_offset"] = 0.0
        treatments.append(
            Treatment(
                "harvest_losses",
                "preference",
                "Preference: no harvesting for its own sake; a loss beyond what offsets gains "
                "has no value. A lot at a loss may still be sold to move toward the target.",
            )
        )
    if spec.notes:
        treatments.append(
            Treatment(
                "notes", "info", "The note is kept with the run; the optimizer does not read it."
            )
        )

    overrides: dict[str, Any] = {}
    if budgets:
        overrides["budgets"] = budgets
    if rows:
        overrides["restrictions"] = [rows[s] for s in sorted(rows)]
    if knobs:
        overrides["knobs"] = dict(sorted(knobs.items()))
    if cash_to_raise:
        overrides["cash_to_raise"] = cash_to_raise
    overrides["agent"] = {
        "spec": spec.to_dict(),
        "treatments": [t.to_dict() for t in treatments],
    }
    return OptimizerRequest(
        scenario="custom", base=spec.scenario, overrides=overrides, treatments=tuple(treatments)
    )


# -- after the solve ----------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One checked constraint against the result: met or not, in words with the numbers."""

    field: str
    met: bool
    words: str
    requested: Decimal
    actual: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "actual": str(self.actual),
            "field": self.field,
            "met": self.met,
            "requested": str(self.requested),
            "words": self.words,
        }


def _pct1(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _dollars(value: Decimal) -> str:
    whole = value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"-${abs(whole):,}" if whole < 0 else f"${whole:,}"


def check_after(spec: ConstraintSpec, result: Mapping[str, Any]) -> list[Check]:
    """The constraints the optimizer cannot hold (see :func:`spec_to_optimizer`) against a result.

    ``result`` is the optimizer's result JSON (``metrics.before``/``metrics.after``). Completion is
    the share of the tracking error the trades remove, ``1 - TE_after / TE_before``.
    """
    before = result["metrics"]["before"]
    after = result["metrics"]["after"]
    out: list[Check] = []
    te_before = Decimal(str(before["tracking_error"]))
    te_after = Decimal(str(after["tracking_error"]))
    if spec.max_tracking_error is not None:
        limit = spec.max_tracking_error
        met = te_after.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) <= limit
        out.append(
            Check(
                "max_tracking_error",
                met,
                f"Tracking error after the trades is {_pct1(te_after)}; the request asked for at "
                f"most {_pct1(limit)}: {'met' if met else 'not met'}.",
                limit,
                te_after,
            )
        )
    if spec.completion_target is not None:
        done = Decimal(1) - te_after / te_before if te_before > 0 else Decimal(1)
        done = max(Decimal(0), done)
        met = done.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) >= spec.completion_target
        out.append(
            Check(
                "completion_target",
                met,
                f"The trades remove {_pct1(done)} of the tracking error (from {_pct1(te_before)} "
                f"to {_pct1(te_after)}); the request asked for {_pct1(spec.completion_target)}: "
                f"{'met' if met else 'not met'}.",
                spec.completion_target,
                done,
            )
        )
    if spec.max_trades is not None:
        tickets = int(after["tickets"])
        met = tickets <= spec.max_trades
        out.append(
            Check(
                "max_trades",
                met,
                f"The proposal has {tickets:,} trade{'s' if tickets != 1 else ''}; the request "
                f"asked for at most {spec.max_trades:,}: {'met' if met else 'not met'}.",
                Decimal(spec.max_trades),
                Decimal(tickets),
            )
        )
    if spec.max_turnover is not None:
        turnover = Decimal(str(after["turnover"]))
        met = turnover.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) <= spec.max_turnover
        out.append(
            Check(
                "max_turnover",
                met,
                f"Turnover is {_pct1(turnover)}; the request asked for at most "
                f"{_pct1(spec.max_turnover)}: {'met' if met else 'not met'}.",
                spec.max_turnover,
                turnover,
            )
        )
    if spec.invest_cash is not None:
        invested = Decimal(after["purchases"]) - Decimal(after["sales"])
        met = invested >= spec.invest_cash * INVEST_TOLERANCE
        out.append(
            Check(
                "invest_cash",
                met,
                f"Net cash invested (purchases minus sales) is {_dollars(invested)}; the request "
                f"asked to invest {_dollars(spec.invest_cash)}: {'met' if met else 'not met'}.",
                spec.invest_cash,
                invested,
            )
        )
    return out
