"""ConstraintSpec: validation, canonical serialization, JSON Schema, conflicts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.spec import (
    FIELD_DOCS,
    FIELD_NAMES,
    SCENARIOS,
    ConstraintSpec,
    FieldError,
    Question,
    SpecError,
    conflicts,
    json_schema,
    openai_tool,
    validate_spec,
)

KNOWN = ("AAPL", "MSFT", "TSLA", "VTI")

ISSUE_SPEC = ConstraintSpec(
    max_net_gains=Decimal("25000"), no_sell=("AAPL",), no_short_term_gains=True
)


def kinds(questions: list[Question]) -> list[tuple[str, tuple[str, ...]]]:
    return [(q.kind, q.fields) for q in questions]


# -- construction and normalization ------------------------------------------------------
def test_defaults_are_an_empty_custom_spec() -> None:
    spec = ConstraintSpec()
    assert spec.scenario == "custom"
    assert spec.to_dict() == {
        "completion_target": None,
        "harvest_losses": None,
        "invest_cash": None,
        "max_net_gains": None,
        "max_short_term_gains": None,
        "max_tracking_error": None,
        "max_trades": None,
        "max_turnover": None,
        "must_sell": [],
        "no_buy": [],
        "no_sell": [],
        "no_short_term_gains": False,
        "notes": "",
        "raise_cash": None,
        "scenario": "custom",
    }


def test_symbols_are_uppercased_deduplicated_and_sorted() -> None:
    spec = ConstraintSpec(no_sell=["msft", "AAPL", " aapl "])  # type: ignore[arg-type]
    assert spec.no_sell == ("AAPL", "MSFT")


def test_decimals_are_canonical_so_equal_specs_serialize_identically() -> None:
    a = ConstraintSpec(max_net_gains=Decimal("25000.00"), max_tracking_error=Decimal("0.0100"))
    b = ConstraintSpec(max_net_gains=Decimal("2.5E+4"), max_tracking_error=Decimal("0.01"))
    assert a == b
    assert a.to_json() == b.to_json()
    assert a.to_dict()["max_net_gains"] == "25000"
    assert a.to_dict()["max_tracking_error"] == "0.01"


def test_int_money_is_accepted_and_becomes_decimal() -> None:
    spec = ConstraintSpec(raise_cash=50000)  # type: ignore[arg-type]
    assert spec.raise_cash == Decimal("50000")
    assert isinstance(spec.raise_cash, Decimal)


def test_to_json_is_sorted_and_compact() -> None:
    text = ISSUE_SPEC.to_json()
    assert text.startswith('{"completion_target":null,"harvest_losses":null,')
    assert '"max_net_gains":"25000"' in text
    assert '"no_sell":["AAPL"]' in text
    assert list(json.loads(text)) == sorted(FIELD_NAMES)


def test_spec_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ISSUE_SPEC.max_trades = 3  # type: ignore[misc]


def test_constructor_lists_every_bad_field() -> None:
    with pytest.raises(SpecError) as info:
        ConstraintSpec(
            scenario="wild",
            max_net_gains=25000.0,  # type: ignore[arg-type]
            raise_cash=Decimal("10.005"),
            no_sell="AAPL",  # type: ignore[arg-type]
            max_tracking_error=Decimal("NaN"),
            max_trades=True,
            harvest_losses="yes",  # type: ignore[arg-type]
            no_short_term_gains=None,  # type: ignore[arg-type]
            notes="x" * 2001,
        )
    fields = [e.field for e in info.value.errors]
    assert sorted(fields) == sorted(
        [
            "scenario",
            "max_net_gains",
            "raise_cash",
            "no_sell",
            "max_tracking_error",
            "max_trades",
            "harvest_losses",
            "no_short_term_gains",
            "notes",
        ]
    )
    reasons = {e.field: e.reason for e in info.value.errors}
    assert "two decimal places" in reasons["raise_cash"]
    assert "finite" in reasons["max_tracking_error"]
    assert "list of ticker symbols" in reasons["no_sell"]
    assert "scenario: must be one of conservative" in str(info.value)


def test_bad_symbols_are_named() -> None:
    with pytest.raises(SpecError) as info:
        ConstraintSpec(no_buy=("AAPL", "not a ticker", "1ABC"))
    assert info.value.errors == (
        FieldError("no_buy", "not ticker symbols: 'not a ticker', '1ABC'"),
    )


def test_share_class_symbols_are_valid() -> None:
    assert ConstraintSpec(no_sell=("BRK.B", "BF-B")).no_sell == ("BF-B", "BRK.B")


# -- from_dict / validate_spec -------------------------------------------------------------
def test_round_trip_through_dict_and_json() -> None:
    spec = ConstraintSpec(
        scenario="tax_sensitive",
        max_net_gains=Decimal("25000.50"),
        max_short_term_gains=Decimal("0"),
        no_short_term_gains=True,
        no_sell=("MSFT", "AAPL"),
        no_buy=("TSLA",),
        must_sell=("VTI",),
        raise_cash=Decimal("50000"),
        max_tracking_error=Decimal("0.005"),
        completion_target=Decimal("0.8"),
        max_trades=20,
        max_turnover=Decimal("0.15"),
        harvest_losses=True,
        notes="Smith household, before the March withdrawal",
    )
    assert validate_spec(spec.to_dict()) == spec
    assert validate_spec(json.loads(spec.to_json())) == spec
    assert spec.to_dict()["max_net_gains"] == "25000.50"


def test_missing_keys_take_defaults() -> None:
    assert validate_spec({"max_net_gains": "25000"}) == ConstraintSpec(max_net_gains=Decimal(25000))


def test_validate_spec_lists_every_bad_field_including_unknown_ones() -> None:
    with pytest.raises(SpecError) as info:
        validate_spec(
            {
                "scenario": "yolo",
                "max_net_gains": "25k",
                "raise_cash": 5000.5,
                "max_tracking_error": "1%",
                "no_sell": "AAPL",
                "max_trades": "20",
                "harvest_losses": "true",
                "gain_cap": "25000",
            }
        )
    fields = [e.field for e in info.value.errors]
    assert fields == sorted(fields)
    assert set(fields) == {
        "scenario",
        "max_net_gains",
        "raise_cash",
        "max_tracking_error",
        "no_sell",
        "max_trades",
        "harvest_losses",
        "gain_cap",
    }
    reasons = {e.field: e.reason for e in info.value.errors}
    assert reasons["gain_cap"] == "unknown field"
    assert "not a float" in reasons["raise_cash"]
    assert "'25k' is not dollars" in reasons["max_net_gains"]


def test_validate_spec_rejects_non_objects() -> None:
    with pytest.raises(SpecError):
        validate_spec(["not", "a", "dict"])  # type: ignore[arg-type]


def test_validate_spec_accepts_integers_for_decimals() -> None:
    spec = validate_spec({"raise_cash": 50000, "completion_target": 1})
    assert spec.raise_cash == Decimal(50000)
    assert spec.completion_target == Decimal(1)


# -- JSON Schema --------------------------------------------------------------------------
def test_schema_is_valid_draft_2020_12_and_strict_shaped() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(FIELD_NAMES)
    assert list(schema["properties"]) == list(FIELD_NAMES)
    assert schema["properties"]["scenario"]["enum"] == list(SCENARIOS)
    for name, prop in schema["properties"].items():
        assert prop["description"] == FIELD_DOCS[name]


def test_schema_accepts_every_serialized_spec_example() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.validate(ConstraintSpec().to_dict())
    validator.validate(ISSUE_SPEC.to_dict())


@pytest.mark.parametrize(
    "bad",
    [
        {"max_net_gains": "25k"},
        {"max_net_gains": 25000.5},
        {"raise_cash": "10.005"},
        {"max_tracking_error": "1%"},
        {"scenario": "yolo"},
        {"no_sell": "AAPL"},
        {"no_sell": ["aapl!"]},
        {"max_trades": "20"},
        {"harvest_losses": "true"},
        {"extra": 1},
    ],
)
def test_schema_and_validate_spec_reject_the_same_bad_values(bad: dict[str, Any]) -> None:
    document = {**ConstraintSpec().to_dict(), **bad}
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(document)), f"schema accepted {bad}"
    with pytest.raises(SpecError):
        validate_spec(document)


def test_openai_tool_wraps_the_schema_for_strict_tool_calling() -> None:
    tool = openai_tool()
    assert tool["type"] == "function"
    function = tool["function"]
    assert function["name"] == "set_constraint_spec"
    assert function["strict"] is True
    parameters = function["parameters"]
    assert "$schema" not in parameters
    assert {k: v for k, v in json_schema().items() if k != "$schema"} == parameters
    json.dumps(tool)  # serializable as sent to the API
    # strict mode: every property required, optional ones nullable
    for name in ("max_net_gains", "raise_cash", "max_trades", "harvest_losses"):
        assert "null" in parameters["properties"][name]["type"]


_money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
_fraction = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False)
_symbols = st.lists(st.sampled_from(["AAPL", "MSFT", "BRK.B", "VTI", "XOM"]), max_size=4)


@st.composite
def specs(draw: st.DrawFn) -> ConstraintSpec:
    return ConstraintSpec(
        scenario=draw(st.sampled_from(SCENARIOS)),
        max_net_gains=draw(st.none() | _money),
        max_short_term_gains=draw(st.none() | _money),
        no_short_term_gains=draw(st.booleans()),
        no_sell=tuple(draw(_symbols)),
        no_buy=tuple(draw(_symbols)),
        must_sell=tuple(draw(_symbols)),
        raise_cash=draw(st.none() | _money),
        invest_cash=draw(st.none() | _money),
        max_tracking_error=draw(st.none() | _fraction),
        completion_target=draw(st.none() | _fraction),
        max_trades=draw(st.none() | st.integers(min_value=0, max_value=10_000)),
        max_turnover=draw(st.none() | _fraction),
        harvest_losses=draw(st.none() | st.booleans()),
        notes=draw(st.text(max_size=40)),
    )


@settings(derandomize=True, max_examples=150, deadline=None, database=None)
@given(specs())
def test_any_spec_round_trips_and_matches_the_schema(spec: ConstraintSpec) -> None:
    data = spec.to_dict()
    jsonschema.Draft202012Validator(json_schema()).validate(data)
    assert validate_spec(data) == spec
    assert validate_spec(json.loads(spec.to_json())).to_json() == spec.to_json()


# -- conflicts ----------------------------------------------------------------------------
def test_a_plain_spec_has_no_conflicts() -> None:
    assert conflicts(ISSUE_SPEC, known_symbols=KNOWN) == []


def test_no_gains_and_finish_the_transition_is_a_contradiction() -> None:
    spec = ConstraintSpec(max_net_gains=Decimal(0), completion_target=Decimal(1))
    assert kinds(conflicts(spec)) == [("contradiction", ("max_net_gains", "completion_target"))]
    # a positive cap with completion is fine, and so is no gains with partial completion
    assert conflicts(ConstraintSpec(max_net_gains=Decimal(1), completion_target=Decimal(1))) == []
    assert (
        conflicts(ConstraintSpec(max_net_gains=Decimal(0), completion_target=Decimal("0.5"))) == []
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ConstraintSpec(max_net_gains=Decimal(-1)), "max_net_gains"),
        (ConstraintSpec(max_short_term_gains=Decimal("-0.01")), "max_short_term_gains"),
        (ConstraintSpec(raise_cash=Decimal(-5000)), "raise_cash"),
        (ConstraintSpec(raise_cash=Decimal(0)), "raise_cash"),
        (ConstraintSpec(invest_cash=Decimal(-1)), "invest_cash"),
        (ConstraintSpec(max_tracking_error=Decimal(1)), "max_tracking_error"),
        (ConstraintSpec(max_tracking_error=Decimal("-0.01")), "max_tracking_error"),
        (ConstraintSpec(completion_target=Decimal("1.2")), "completion_target"),
        (ConstraintSpec(completion_target=Decimal(0)), "completion_target"),
        (ConstraintSpec(max_turnover=Decimal("1.5")), "max_turnover"),
        (ConstraintSpec(max_turnover=Decimal("-0.1")), "max_turnover"),
        (ConstraintSpec(max_trades=-3), "max_trades"),
    ],
)
def test_impossible_numbers(spec: ConstraintSpec, field: str) -> None:
    assert kinds(conflicts(spec)) == [("impossible_value", (field,))]


@pytest.mark.parametrize(
    "spec",
    [
        ConstraintSpec(max_tracking_error=Decimal(0)),
        ConstraintSpec(max_tracking_error=Decimal("0.9999")),
        ConstraintSpec(completion_target=Decimal("0.0001")),
        ConstraintSpec(max_turnover=Decimal(1)),
        ConstraintSpec(max_trades=0),
        ConstraintSpec(max_net_gains=Decimal(0)),
    ],
)
def test_boundary_values_that_are_possible(spec: ConstraintSpec) -> None:
    assert conflicts(spec) == []


def test_impossible_number_messages_name_the_value() -> None:
    (q,) = conflicts(ConstraintSpec(raise_cash=Decimal("-5000")))
    assert "-$5,000" in q.message
    (q,) = conflicts(ConstraintSpec(max_tracking_error=Decimal("1.25")))
    assert "125%" in q.message


def test_zero_trades_with_work_to_do() -> None:
    spec = ConstraintSpec(max_trades=0, raise_cash=Decimal(50000), harvest_losses=True)
    (q,) = conflicts(spec)
    assert (q.kind, q.fields) == ("contradiction", ("max_trades", "raise_cash", "harvest_losses"))
    assert "cash to be raised and loss harvesting" in q.message


def test_zero_turnover_with_work_to_do() -> None:
    spec = ConstraintSpec(max_turnover=Decimal(0), must_sell=("TSLA",))
    assert kinds(conflicts(spec)) == [("contradiction", ("max_turnover", "must_sell"))]


def test_same_symbol_in_no_sell_and_must_sell() -> None:
    spec = ConstraintSpec(no_sell=("AAPL", "TSLA"), must_sell=("TSLA", "VTI"))
    (q,) = conflicts(spec)
    assert (q.kind, q.fields, q.symbols) == ("contradiction", ("no_sell", "must_sell"), ("TSLA",))
    assert "TSLA" in q.message


def test_no_short_term_gains_with_a_positive_short_term_cap() -> None:
    spec = ConstraintSpec(no_short_term_gains=True, max_short_term_gains=Decimal(5000))
    assert kinds(conflicts(spec)) == [
        ("contradiction", ("no_short_term_gains", "max_short_term_gains"))
    ]
    zero = ConstraintSpec(no_short_term_gains=True, max_short_term_gains=Decimal(0))
    assert conflicts(zero) == []


def test_raise_and_invest_together() -> None:
    spec = ConstraintSpec(raise_cash=Decimal(40000), invest_cash=Decimal(10000))
    assert kinds(conflicts(spec)) == [("contradiction", ("raise_cash", "invest_cash"))]


def test_tax_sensitive_without_harvesting() -> None:
    spec = ConstraintSpec(scenario="tax_sensitive", harvest_losses=False)
    assert kinds(conflicts(spec)) == [("contradiction", ("scenario", "harvest_losses"))]
    assert conflicts(ConstraintSpec(scenario="conservative", harvest_losses=False)) == []


def test_unknown_symbols_only_with_known_symbols() -> None:
    spec = ConstraintSpec(no_sell=("AAPX",), no_buy=("TSLA",))
    assert conflicts(spec) == []
    (q,) = conflicts(spec, known_symbols=["aapl", "TSLA"])
    assert (q.kind, q.fields, q.symbols) == ("unknown_symbol", ("no_sell",), ("AAPX",))


def test_nothing_tradable() -> None:
    spec = ConstraintSpec(no_sell=KNOWN, no_buy=KNOWN)
    assert kinds(conflicts(spec, known_symbols=KNOWN)) == [("contradiction", ("no_sell", "no_buy"))]
    # without the symbol list "everything" cannot be judged
    assert conflicts(spec) == []


def test_sell_nothing_with_raise_cash_or_harvest() -> None:
    spec = ConstraintSpec(no_sell=KNOWN, raise_cash=Decimal(25000), harvest_losses=True)
    assert kinds(conflicts(spec, known_symbols=KNOWN)) == [
        ("contradiction", ("no_sell", "raise_cash")),
        ("contradiction", ("no_sell", "harvest_losses")),
    ]


def test_buy_nothing_with_invest_cash() -> None:
    spec = ConstraintSpec(no_buy=KNOWN, invest_cash=Decimal(20000))
    assert kinds(conflicts(spec, known_symbols=KNOWN)) == [
        ("contradiction", ("no_buy", "invest_cash"))
    ]


def test_conflicts_are_deterministic() -> None:
    spec = ConstraintSpec(
        max_net_gains=Decimal(0),
        completion_target=Decimal(1),
        raise_cash=Decimal(1),
        invest_cash=Decimal(1),
        max_trades=0,
    )
    first = [q.to_dict() for q in conflicts(spec, known_symbols=KNOWN)]
    assert first == [q.to_dict() for q in conflicts(spec, known_symbols=list(reversed(KNOWN)))]
    assert [q["kind"] for q in first] == ["contradiction"] * 3
