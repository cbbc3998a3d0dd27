"""spec_to_words: the spec read back to the adviser in plain English."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

import pytest

from agent.parser import parse_request
from agent.render import format_money, format_percent, spec_to_words
from agent.spec import ConstraintSpec


def test_issue_example_in_words() -> None:
    spec = ConstraintSpec(max_net_gains=Decimal(25000), no_sell=("AAPL",), no_short_term_gains=True)
    assert spec_to_words(spec) == [
        "Custom scenario with the constraints below.",
        "Net realized gains are capped at $25,000.",
        "No short-term gains will be realized.",
        "AAPL will not be sold.",
    ]


def test_every_field_in_words_in_a_fixed_order() -> None:
    spec = ConstraintSpec(
        scenario="tax_sensitive",
        max_net_gains=Decimal("1250000.5"),
        max_short_term_gains=Decimal(10000),
        no_sell=("MSFT", "AAPL"),
        no_buy=("TSLA", "XOM", "META"),
        must_sell=("VWO",),
        raise_cash=Decimal(50000),
        max_tracking_error=Decimal("0.005"),
        completion_target=Decimal("0.8"),
        max_trades=1500,
        max_turnover=Decimal("0.15"),
        harvest_losses=True,
        notes="Before the March withdrawal",
    )
    assert spec_to_words(spec) == [
        "Starts from the tax-sensitive scenario, with the constraints below.",
        "Net realized gains are capped at $1,250,000.50.",
        "Short-term gains are capped at $10,000.",
        "AAPL and MSFT will not be sold.",
        "META, TSLA, and XOM will not be bought.",
        "VWO will be sold in full.",
        "$50,000 of cash will be raised.",
        "Tracking error to the target will be at most 0.5%.",
        "80% of the transition to the target will be completed.",
        "At most 1,500 trades will be placed.",
        "Turnover is limited to 15% of portfolio value.",
        "Losses will be harvested where useful.",
        'Note: "Before the March withdrawal"',
    ]


def test_empty_spec() -> None:
    assert spec_to_words(ConstraintSpec()) == [
        "Custom scenario with the constraints below.",
        "No additional constraints.",
    ]
    assert spec_to_words(ConstraintSpec(scenario="conservative")) == [
        "Starts from the conservative scenario, with the constraints below.",
        "No additional constraints.",
    ]


@pytest.mark.parametrize(
    ("spec", "sentence"),
    [
        (
            ConstraintSpec(max_net_gains=Decimal(0)),
            "No net realized gains: any gain must be offset by a realized loss.",
        ),
        (ConstraintSpec(max_short_term_gains=Decimal(0)), "No short-term gains will be realized."),
        (ConstraintSpec(invest_cash=Decimal("20000")), "$20,000 of cash will be invested."),
        (
            ConstraintSpec(completion_target=Decimal(1)),
            "The transition to the target will be completed in full.",
        ),
        (ConstraintSpec(max_trades=0), "No trades will be placed."),
        (ConstraintSpec(max_trades=1), "At most 1 trade will be placed."),
        (ConstraintSpec(harvest_losses=False), "Losses will not be harvested."),
        (
            ConstraintSpec(max_tracking_error=Decimal("0.0125")),
            "Tracking error to the target will be at most 1.25%.",
        ),
    ],
)
def test_single_sentences(spec: ConstraintSpec, sentence: str) -> None:
    assert spec_to_words(spec)[1:] == [sentence]


def test_no_short_term_gains_is_said_once() -> None:
    spec = ConstraintSpec(no_short_term_gains=True, max_short_term_gains=Decimal(0))
    assert spec_to_words(spec)[1:] == ["No short-term gains will be realized."]


def test_each_set_field_adds_a_sentence() -> None:
    base = len(spec_to_words(ConstraintSpec())) - 1  # the "No additional constraints." line
    samples: dict[str, object] = {
        "scenario": "moderate",
        "max_net_gains": Decimal(1),
        "max_short_term_gains": Decimal(1),
        "no_short_term_gains": True,
        "no_sell": ("AAPL",),
        "no_buy": ("AAPL",),
        "must_sell": ("AAPL",),
        "raise_cash": Decimal(1),
        "invest_cash": Decimal(1),
        "max_tracking_error": Decimal("0.01"),
        "completion_target": Decimal("0.5"),
        "max_trades": 5,
        "max_turnover": Decimal("0.1"),
        "harvest_losses": True,
        "notes": "n",
    }
    assert set(samples) == {f.name for f in fields(ConstraintSpec)}
    for name, value in samples.items():
        words = spec_to_words(ConstraintSpec(**{name: value}))  # type: ignore[arg-type]
        if name == "scenario":
            assert words[0].startswith("Starts from the moderate scenario")
        elif name == "notes":  # a note is not a constraint
            assert words[1:] == ["No additional constraints.", 'Note: "n"']
        else:
            assert len(words) == base + 1, name
            assert words != spec_to_words(ConstraintSpec()), name


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("25000"), "$25,000"),
        (Decimal("25000.5"), "$25,000.50"),
        (Decimal("0"), "$0"),
        (Decimal("999"), "$999"),
        (Decimal("1234567.89"), "$1,234,567.89"),
        (Decimal("-5000"), "-$5,000"),
    ],
)
def test_format_money(value: Decimal, text: str) -> None:
    assert format_money(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.01"), "1%"),
        (Decimal("0.005"), "0.5%"),
        (Decimal("1"), "100%"),
        (Decimal("0.0075"), "0.75%"),
        (Decimal("0.15"), "15%"),
        (Decimal("0"), "0%"),
    ],
)
def test_format_percent(value: Decimal, text: str) -> None:
    assert format_percent(value) == text


def test_parse_then_render_is_deterministic() -> None:
    text = "Moderate, $25K gain cap, don't sell AAPL or buy TSLA, keep TE under 0.75%"
    outcome = parse_request(text, known_symbols=["AAPL", "TSLA"])
    assert outcome.spec is not None
    words = spec_to_words(outcome.spec)
    assert words == [
        "Starts from the moderate scenario, with the constraints below.",
        "Net realized gains are capped at $25,000.",
        "AAPL will not be sold.",
        "TSLA will not be bought.",
        "Tracking error to the target will be at most 0.75%.",
    ]
    again = parse_request(text, known_symbols=["TSLA", "AAPL"])
    assert again.spec is not None
    assert spec_to_words(again.spec) == words
