"""ConstraintSpec -> the optimizer's overrides: hard limits, preferences, checks after the solve."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from agent.evaluation import load_cases
from agent.parser import parse_request
from agent.spec import FIELD_NAMES, ConstraintSpec
from agent.to_optimizer import (
    AccountInfo,
    HouseholdContext,
    NotMappable,
    check_after,
    spec_to_optimizer,
)
from optimizer.core.engine import solve
from optimizer.core.scenarios import PRESETS
from tests.optimizer.core.builders import build, loss_only_portfolio

D = Decimal
ACCOUNTS = (
    AccountInfo("schwab-11111111", "Pat IRA", "deferred", D("900000")),
    AccountInfo("schwab-22222222", "Pat Individual", "taxable", D("300000")),
    AccountInfo("fidelity-33333333", "Sam Individual", "taxable", D("450000")),
)


def spec_of(text: str, known: list[str]) -> ConstraintSpec:
    outcome = parse_request(text, known_symbols=known)
    assert outcome.spec is not None, [q.message for q in outcome.questions]
    return outcome.spec


def test_issue_example_maps_to_hard_budgets_and_a_restriction() -> None:
    spec = spec_of(
        "create a scenario with $25K in max gains, restrict AAPL from selling, and no "
        "short-term gains",
        ["AAPL", "MSFT"],
    )
    req = spec_to_optimizer(spec, HouseholdContext(ips_gain_budget=D("35000")))
    assert req.scenario == "custom" and req.base == "custom"
    assert req.overrides["budgets"] == {
        "max_net_realized_gain": "25000.00",
        "no_short_term_gains": True,
    }
    assert req.overrides["restrictions"] == [
        {"symbol": "AAPL", "no_sell": True, "reason": "adviser request"}
    ]
    assert "knobs" not in req.overrides and "cash_to_raise" not in req.overrides
    assert req.overrides["agent"]["spec"] == spec.to_dict()
    words = req.words()
    assert words[1] == (
        "Hard limit: net realized gains in taxable accounts (with gains already realized this "
        "year) stay at or below $25,000; for this run this replaces the IPS annual gain budget "
        "of $35,000."
    )
    assert "Hard rule: no lot with a short-term gain is sold." in words
    assert "Hard rule: AAPL will not be sold (a no-sell restriction for this run)." in words
    assert json.loads(json.dumps(req.overrides)) == req.overrides  # JSON-ready for the run


def test_without_a_cap_the_ips_budget_is_said_to_apply() -> None:
    req = spec_to_optimizer(
        ConstraintSpec(no_buy=("TSLA",)), HouseholdContext(ips_gain_budget=D("25000"))
    )
    assert "Hard limit from the IPS: the annual gain budget of $25,000 applies." in req.words()


def test_the_spec_overrides_reproduce_the_loss_only_case() -> None:
    """The issue's loss-only example through the mapping gives the same result as the core
    test that writes the snapshot by hand."""
    spec = spec_of(
        "max $25K gains, don't sell AAPL, no short-term gains",
        ["AAPL", "MSFT", "XOM", "TSLA", "VTI", "BND"],
    )
    overrides = spec_to_optimizer(spec).overrides
    d: dict[str, Any] = loss_only_portfolio()
    d["budgets"] = dict(overrides["budgets"])
    d["restrictions"] = [
        {k: v for k, v in row.items() if k != "reason"} | {"reason": "client request"}
        for row in overrides["restrictions"]
    ]
    mapped = solve(build(d), overrides=overrides.get("knobs") or None)
    by_hand = solve(build(loss_only_portfolio()))
    assert [t.as_dict() for t in mapped.trades] == [t.as_dict() for t in by_hand.trades]
    assert {f["fact"] for f in mapped.facts} >= {"loss_only_transition"}


def test_a_preset_base_and_harvesting_become_knobs() -> None:
    spec = ConstraintSpec(scenario="conservative", harvest_losses=True)
    req = spec_to_optimizer(spec)
    assert req.overrides["knobs"] == {**PRESETS["conservative"], "loss_value_beyond_offset": 0.5}
    assert req.words()[0].startswith("Preferences from the conservative (minimize tax")
    off = spec_to_optimizer(ConstraintSpec(scenario="tax_sensitive", harvest_losses=None))
    assert off.overrides["knobs"]["loss_value_beyond_offset"] == 0.5
    no = spec_to_optimizer(ConstraintSpec(harvest_losses=False)).overrides["knobs"]
    assert no == {"loss_value_beyond_offset": 0.0}


def test_finishing_the_transition_is_a_preference_and_a_check() -> None:
    req = spec_to_optimizer(ConstraintSpec(completion_target=D(1)))
    assert req.overrides["knobs"] == {"risk_aversion": PRESETS["aggressive"]["risk_aversion"]}
    (treatment,) = [t for t in req.treatments if t.field == "completion_target"]
    assert treatment.how == "preference"
    assert "the optimizer has no completion constraint" in treatment.words
    partial = spec_to_optimizer(ConstraintSpec(completion_target=D("0.8")))
    assert "knobs" not in partial.overrides
    (t80,) = [t for t in partial.treatments if t.field == "completion_target"]
    assert t80.how == "checked" and "80%" in t80.words


def test_must_sell_is_a_zero_maximum_weight() -> None:
    req = spec_to_optimizer(ConstraintSpec(must_sell=("XOM",), no_sell=("AAPL",)))
    assert req.overrides["restrictions"] == [
        {"symbol": "AAPL", "no_sell": True, "reason": "adviser request"},
        {"symbol": "XOM", "max_weight": "0", "no_buy": True, "reason": "adviser request"},
    ]


def test_cash_is_raised_in_the_largest_taxable_account_and_said_so() -> None:
    req = spec_to_optimizer(ConstraintSpec(raise_cash=D(50000)), HouseholdContext(ACCOUNTS))
    assert req.overrides["cash_to_raise"] == {"fidelity-33333333": "50000.00"}
    (treatment,) = [t for t in req.treatments if t.field == "raise_cash"]
    assert treatment.how == "hard"
    assert treatment.words == (
        "Hard limit: account Sam Individual (fidelity-33333333, the largest taxable account) "
        "ends with at least its cash floor plus $50,000 in cash."
    )
    iras = HouseholdContext((ACCOUNTS[0],))
    only_ira = spec_to_optimizer(ConstraintSpec(raise_cash=D(1000)), iras)
    assert only_ira.overrides["cash_to_raise"] == {"schwab-11111111": "1000.00"}
    assert "the household has no taxable one" in only_ira.words()[-1]
    with pytest.raises(NotMappable, match="the household has none"):
        spec_to_optimizer(ConstraintSpec(raise_cash=D(1000)), HouseholdContext())


def test_a_spec_with_open_questions_is_never_mapped() -> None:
    with pytest.raises(NotMappable, match="short-term gain cap"):
        spec_to_optimizer(ConstraintSpec(no_short_term_gains=True, max_short_term_gains=D(5000)))


@pytest.mark.parametrize(
    ("field", "spec", "how", "phrase"),
    [
        ("max_tracking_error", ConstraintSpec(max_tracking_error=D("0.01")), "checked", "1%"),
        ("max_trades", ConstraintSpec(max_trades=20), "checked", "compared with 20"),
        ("max_turnover", ConstraintSpec(max_turnover=D("0.15")), "checked", "15%"),
        ("invest_cash", ConstraintSpec(invest_cash=D(20000)), "checked", "$20,000"),
    ],
)
def test_what_the_optimizer_cannot_hold_is_said_to_be_checked(
    field: str, spec: ConstraintSpec, how: str, phrase: str
) -> None:
    req = spec_to_optimizer(spec)
    (treatment,) = [t for t in req.treatments if t.field == field]
    assert treatment.how == how
    assert treatment.words.startswith("Checked after the solve: the optimizer has no ")
    assert phrase in treatment.words
    assert set(req.overrides) == {"agent"}  # nothing the snapshot can carry


def test_no_constraint_of_the_evaluation_set_is_dropped() -> None:
    """Every field a spec sets has a treatment in the words shown before the run."""
    context = HouseholdContext(ACCOUNTS, ips_gain_budget=D("25000"))
    checked = 0
    for case in load_cases():
        if case.spec is None:
            continue
        req = spec_to_optimizer(case.spec, context)
        default = ConstraintSpec()
        set_fields = {f for f in FIELD_NAMES if getattr(case.spec, f) != getattr(default, f)}
        if case.spec.max_short_term_gains == 0 and case.spec.no_short_term_gains:
            set_fields.discard("no_short_term_gains")
        treated = {t.field for t in req.treatments}
        assert set_fields <= treated, (case.id, set_fields - treated)
        checked += 1
    assert checked > 60


def _result(**after: Any) -> dict[str, Any]:
    base = {
        "tracking_error": 0.02,
        "tickets": 12,
        "turnover": 0.08,
        "purchases": "0.00",
        "sales": "0.00",
    }
    return {
        "metrics": {
            "before": {"tracking_error": 0.05},
            "after": {**base, **after},
        }
    }


def test_checks_after_the_solve_report_met_and_not_met() -> None:
    spec = ConstraintSpec(
        max_tracking_error=D("0.01"),
        completion_target=D("0.5"),
        max_trades=10,
        max_turnover=D("0.1"),
    )
    checks = {c.field: c for c in check_after(spec, _result())}
    assert checks["max_tracking_error"].words == (
        "Tracking error after the trades is 2.0%; the request asked for at most 1.0%: not met."
    )
    assert not checks["max_tracking_error"].met
    assert checks["completion_target"].met
    assert checks["completion_target"].words == (
        "The trades remove 60.0% of the tracking error (from 5.0% to 2.0%); the request asked "
        "for 50.0%: met."
    )
    assert checks["max_trades"].words == (
        "The proposal has 12 trades; the request asked for at most 10: not met."
    )
    assert checks["max_turnover"].met and checks["max_turnover"].actual == D("0.08")


def test_invest_cash_is_checked_on_net_purchases() -> None:
    spec = ConstraintSpec(invest_cash=D(20000))
    (ok,) = check_after(spec, _result(purchases="25000.00", sales="5100.00"))
    assert ok.met and ok.words == (
        "Net cash invested (purchases minus sales) is $19,900; the request asked to invest "
        "$20,000: met."
    )
    (short,) = check_after(spec, _result(purchases="10000.00", sales="0.00"))
    assert not short.met
