"""The offline parser: the evaluation set, plus targeted cases with exact expectations."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.evaluation import EVAL_PATH, EvalCase, check_case, load_cases
from agent.parser import MAX_REQUEST_CHARS, STOPWORDS, ParseOutcome, Understood, parse_request
from agent.spec import ConstraintSpec

KNOWN = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "META",
    "TSLA",
    "JPM",
    "XOM",
    "JNJ",
    "VTI",
    "VOO",
    "IVV",
    "SCHB",
    "VXUS",
    "BND",
    "AGG",
    "VEA",
    "VWO",
    "IEFA",
    "SPY",
    "QQQ",
    "BRK.B",
]

CASES = load_cases()


def parse(text: str, known: tuple[str, ...] | list[str] = tuple(KNOWN)) -> ParseOutcome:
    return parse_request(text, known_symbols=known)


def spec_of(text: str) -> ConstraintSpec:
    outcome = parse(text)
    assert outcome.spec is not None, [q.message for q in outcome.questions]
    assert outcome.questions == ()
    return outcome.spec


# -- the evaluation set -------------------------------------------------------------------
def test_evaluation_set_is_large_and_mixed() -> None:
    assert EVAL_PATH.name == "agent_eval.jsonl"
    assert len(CASES) >= 60
    spec_cases = [c for c in CASES if c.spec is not None]
    question_cases = [c for c in CASES if c.spec is None]
    assert len(spec_cases) >= 40
    assert len(question_cases) >= 20
    asked = {k for c in question_cases for k in c.question_kinds}
    assert {
        "unknown_symbol",
        "contradiction",
        "impossible_value",
        "ambiguous",
        "not_understood",
    } <= asked


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evaluation_case(case: EvalCase) -> None:
    outcome = parse_request(case.text, known_symbols=case.known_symbols)
    assert check_case(case, outcome) == []


def test_check_case_reports_a_wrong_spec() -> None:
    case = next(c for c in CASES if c.id == "max-k-gains")
    wrong = ParseOutcome(
        text=case.text,
        spec=ConstraintSpec(max_net_gains=Decimal(2500)),
        questions=(),
        understood=(),
        ignored=(),
    )
    (problem,) = check_case(case, wrong)
    assert '"max_net_gains": {"got": "2500", "want": "25000"}' in problem


# -- exact expectations ---------------------------------------------------------------------
def test_issue_example_reads_every_phrase_with_its_span() -> None:
    text = (
        "create a scenario with $25K in max gains, restrict AAPL from selling, "
        "and no short-term gains"
    )
    outcome = parse(text)
    assert outcome.ok
    assert outcome.spec == ConstraintSpec(
        max_net_gains=Decimal(25000), no_sell=("AAPL",), no_short_term_gains=True
    )
    assert outcome.understood == (
        Understood("max_net_gains", "25000", "$25K in max gains", (23, 40)),
        Understood("no_sell", "AAPL", "restrict AAPL from selling", (42, 68)),
        Understood("no_short_term_gains", "true", "no short-term gains", (74, 93)),
    )
    for u in outcome.understood:
        assert text[u.span[0] : u.span[1]] == u.phrase
    assert outcome.ignored == ()


@pytest.mark.parametrize(
    ("phrase", "amount"),
    [
        ("$25K", "25000"),
        ("$25k", "25000"),
        ("25,000", "25000"),
        ("25000 dollars", "25000"),
        ("$0.5M", "500000"),
        ("1.2 million", "1200000"),
        ("half a million", "500000"),
        ("a million", "1000000"),
        ("$1,250,000", "1250000"),
        ("$12.5K", "12500"),
        ("$2.5mm", "2500000"),
        ("$25,000.50", "25000.50"),
        ("$500", "500"),
        ("25 thousand", "25000"),
        ("zero", "0"),
    ],
)
def test_amounts(phrase: str, amount: str) -> None:
    assert spec_of(f"max {phrase} in gains").max_net_gains == Decimal(amount)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("keep tracking error under 1%", "max_tracking_error", "0.01"),
        ("TE below 0.5%", "max_tracking_error", "0.005"),
        ("TE under 75 bps", "max_tracking_error", "0.0075"),
        ("tracking error of at most 2 percent", "max_tracking_error", "0.02"),
        ("limit turnover to 15%", "max_turnover", "0.15"),
        ("complete 80% of the transition", "completion_target", "0.8"),
        ("finish the transition", "completion_target", "1"),
        ("complete half of the transition", "completion_target", "0.5"),
    ],
)
def test_percentages_become_fractions(text: str, field: str, value: str) -> None:
    assert getattr(spec_of(text), field) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("at most 20 trades", 20),
        ("no more than 10 trades", 10),
        ("max 12 trades", 12),
        ("limit trades to 30", 30),
        ("20 trades or fewer", 20),
        ("fewer than 20 trades", 19),
        ("under 20 trades", 19),
        ("at most twelve trades", 12),
        ("no more than a dozen orders", 12),
        ("no trades", 0),
    ],
)
def test_trade_counts_strict_bounds_subtract_one(text: str, count: int) -> None:
    assert spec_of(text).max_trades == count


@pytest.mark.parametrize(
    ("text", "harvest"),
    [
        ("harvest losses", True),
        ("tax-loss harvest", True),
        ("TLH where possible", True),
        ("loss harvesting on", True),
        ("don't harvest", False),
        ("no tax-loss harvesting", False),
        ("don't do any tax-loss harvesting", False),
        ("harvesting off", False),
    ],
)
def test_harvest_switch(text: str, harvest: bool) -> None:
    assert spec_of(text).harvest_losses is harvest


@pytest.mark.parametrize(
    ("text", "scenario"),
    [
        ("conservative", "conservative"),
        ("run the moderate scenario", "moderate"),
        ("Aggressive preset", "aggressive"),
        ("tax-sensitive", "tax_sensitive"),
        ("tax sensitive one", "tax_sensitive"),
        ("a custom moderate scenario", "moderate"),
    ],
)
def test_scenario_words(text: str, scenario: str) -> None:
    assert spec_of(text).scenario == scenario


def test_custom_scenario_alone_is_not_a_constraint() -> None:
    outcome = parse("create a custom scenario")
    assert not outcome.ok
    assert [q.kind for q in outcome.questions] == ["not_understood"]


@pytest.mark.parametrize("word", ["I", "A", "IRA", "ETF", "TE", "ST", "LT", "USD", "IPS", "ROTH"])
def test_common_uppercase_words_are_not_tickers(word: str) -> None:
    assert word in STOPWORDS
    outcome = parse(f"don't sell {word}")
    assert not outcome.ok
    assert [q.kind for q in outcome.questions] == ["not_understood"]
    assert all(q.symbols == () for q in outcome.questions)


def test_keep_te_is_tracking_error_not_a_ticker() -> None:
    assert spec_of("keep TE under 1%") == ConstraintSpec(max_tracking_error=Decimal("0.01"))


def test_cashtag_names_a_symbol_that_is_a_stopword() -> None:
    outcome = parse("don't sell $A", known=["A", "AAPL"])
    assert outcome.spec == ConstraintSpec(no_sell=("A",))


def test_unknown_ticker_question_names_phrase_symbol_and_suggestion() -> None:
    text = "max $25K gains and don't sell AAPX"
    outcome = parse(text)
    assert outcome.spec is None
    (q,) = outcome.questions
    assert q.kind == "unknown_symbol"
    assert q.symbols == ("AAPX",)
    assert q.fields == ("no_sell",)
    assert q.phrases == ("don't sell AAPX",)
    assert text[q.spans[0][0] : q.spans[0][1]] == "don't sell AAPX"
    assert "Did you mean AAPL?" in q.message
    # the known part was still read and is shown
    assert [u.field for u in outcome.understood] == ["max_net_gains"]


def test_unknown_ticker_among_known_ones_is_not_dropped() -> None:
    outcome = parse("do not sell MSFT, ZZZZ or AAPL")
    assert outcome.spec is None
    assert [(q.kind, q.symbols) for q in outcome.questions] == [("unknown_symbol", ("ZZZZ",))]


def test_contradiction_names_both_phrases_in_text_order() -> None:
    text = "finish the transition, but no gains"
    (q,) = parse(text).questions
    assert q.kind == "contradiction"
    assert q.phrases == ("finish the transition", "no gains")
    assert [text[a:b] for a, b in q.spans] == list(q.phrases)


def test_the_same_value_twice_is_not_a_contradiction() -> None:
    assert spec_of("max $25K gains; keep gains under 25,000") == ConstraintSpec(
        max_net_gains=Decimal(25000)
    )


def test_symbol_lists_from_several_phrases_are_merged() -> None:
    spec = spec_of("Don't sell AAPL. Never sell MSFT or NVDA. Keep AAPL.")
    assert spec.no_sell == ("AAPL", "MSFT", "NVDA")


def test_sell_nothing_expands_to_the_known_symbols() -> None:
    spec = spec_of("invest $20K without selling anything")
    assert spec.no_sell == tuple(sorted(KNOWN))


def test_clause_without_constraint_words_is_reported_as_ignored() -> None:
    outcome = parse("For the Smith household: max $25K gains")
    assert outcome.ok
    assert outcome.ignored == ("For the Smith household",)


@pytest.mark.parametrize(
    "text",
    [
        "max $25K gains and minimize taxes",
        "max $25K gains, keep drift bands at 5%",
        "max $25K gains and avoid wash sales",
        "max $25K gains, nothing in IBM",
        "max $25K gains by 2026",
    ],
)
def test_clause_that_looks_like_a_constraint_is_never_silently_ignored(text: str) -> None:
    outcome = parse(text)
    assert outcome.spec is None
    assert [q.kind for q in outcome.questions] == ["not_understood"]
    assert outcome.questions[0].phrases[0] in text
    assert "max $25K gains" not in outcome.questions[0].phrases[0]


def test_negation_turns_a_rule_off_instead_of_flipping_it() -> None:
    for text in ("don't finish the transition", "no need to harvest losses", "don't keep AAPL"):
        outcome = parse(text)
        assert outcome.spec is None, text
        assert [q.kind for q in outcome.questions] == ["not_understood"], text


def test_bare_small_number_asks_for_the_unit() -> None:
    (q,) = parse("keep gains under 25").questions
    assert q.kind == "ambiguous"
    assert "$25 or $25,000" in q.message


def test_lowercase_known_ticker_gets_a_capitals_hint() -> None:
    (q,) = parse("don't sell aapl").questions
    assert q.kind == "not_understood"
    assert "capitals (e.g. AAPL)" in q.message


def test_curly_quotes_and_dashes_are_read_and_spans_point_into_the_original() -> None:
    text = "Don\u2019t sell QQQ \u2014 never buy SPY"
    outcome = parse(text)
    assert outcome.spec == ConstraintSpec(no_sell=("QQQ",), no_buy=("SPY",))
    assert outcome.text == text
    first = outcome.understood[0]
    assert first.span == (0, 14)
    assert first.phrase == "Don't sell QQQ"


def test_empty_and_overlong_requests_get_a_question() -> None:
    (q,) = parse("").questions
    assert q.kind == "not_understood"
    (q,) = parse("   ").questions
    assert q.kind == "not_understood"
    (q,) = parse("max $25K gains " * 200).questions
    assert q.kind == "unsupported"
    assert f"{MAX_REQUEST_CHARS:,}" in q.message


def test_outcome_serializes_to_json() -> None:
    outcome = parse("max $25K gains, don't sell AAPX")
    data = json.loads(json.dumps(outcome.to_dict()))
    assert data["spec"] is None
    assert data["questions"][0]["kind"] == "unknown_symbol"
    assert data["understood"][0] == {
        "field": "max_net_gains",
        "phrase": "max $25K gains",
        "span": [0, 14],
        "value": "25000",
    }
    ok = parse("max $25K gains").to_dict()
    assert ok["spec"]["max_net_gains"] == "25000"
    assert ok["questions"] == []


# -- determinism --------------------------------------------------------------------------
def test_same_text_and_symbols_give_the_same_outcome() -> None:
    text = "Moderate, $25K gain cap, don't sell AAPL or buy TSLA, raise $10K, no gains"
    first = parse(text).to_dict()
    for known in (list(reversed(KNOWN)), set(KNOWN), frozenset(s.lower() for s in KNOWN)):
        assert parse_request(text, known_symbols=known).to_dict() == first


_fragments = st.sampled_from(
    [
        "max $25K gains",
        "don't sell AAPL",
        "never buy TSLA",
        "no short-term gains",
        "harvest losses",
        "raise $50K",
        "keep TE under 1%",
        "finish the transition",
        "at most 20 trades",
        "limit turnover to 15%",
        "conservative",
        "no gains",
        "don't sell ZZZZ",
        "for the Smith family",
        "make it nice",
        "sell all of TSLA",
        "invest $20K",
    ]
)


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(st.lists(_fragments, min_size=1, max_size=6), st.sampled_from([", ", "; ", " and ", ". "]))
def test_any_combination_gives_a_spec_xor_questions_and_is_repeatable(
    parts: list[str], joiner: str
) -> None:
    text = joiner.join(parts)
    outcome = parse(text)
    assert (outcome.spec is None) == bool(outcome.questions)
    assert parse(text) == outcome
    for q in outcome.questions:
        for (a, b), phrase in zip(q.spans, q.phrases, strict=True):
            assert text[a:b] == phrase


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text: str) -> None:
    outcome = parse(text)
    assert (outcome.spec is None) == bool(outcome.questions)
