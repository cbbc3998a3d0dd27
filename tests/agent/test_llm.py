"""The model path against a local OpenAI-compatible stub server (the real ``openai`` client over
real HTTP): good tool calls, invalid JSON, schema violations, refusals, timeouts, connection and
HTTP errors, and a hallucinated number; every failure falls back to the deterministic path."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from agent import llm
from agent.explain import RunFacts, answer, collect_facts, explain
from agent.parser import parse_request
from agent.spec import json_schema
from optimizer.core.engine import solve
from tests.agent.openai_stub import (
    Reply,
    Stub,
    http_error,
    raw,
    refusal,
    running_stub,
    slow,
    text,
    tool_call,
)
from tests.optimizer.core.builders import build, loss_only_portfolio

KNOWN = ["AAPL", "MSFT", "XOM", "TSLA", "VTI", "BND"]
REQUEST = (
    "create a scenario with $25K in max gains, restrict AAPL from selling, and no short-term gains"
)
KEY = "sk-test-secret-key"
SPEC_ARGS = {
    "scenario": "custom",
    "max_net_gains": "25000",
    "max_short_term_gains": None,
    "no_short_term_gains": True,
    "no_sell": ["AAPL"],
    "no_buy": [],
    "must_sell": [],
    "raise_cash": None,
    "invest_cash": None,
    "max_tracking_error": None,
    "completion_target": None,
    "max_trades": None,
    "max_turnover": None,
    "harvest_losses": None,
    "notes": "",
}


@pytest.fixture
def stub() -> Iterator[Stub]:
    with running_stub() as s:
        yield s


def transport(stub: Stub, timeout: float = 5.0) -> llm.Transport:
    return llm.Transport(
        llm.ModelConfig(
            base_url=stub.base_url, api_key=KEY, model="stub-model", timeout_seconds=timeout
        )
    )


def offline() -> object:
    return parse_request(REQUEST, known_symbols=KNOWN)


def assert_no_key(call: llm.Call | None) -> None:
    assert call is not None
    assert KEY not in json.dumps(
        [call.model, call.host, call.messages, call.tools, call.response], default=str
    )


def test_config_is_enabled_only_when_complete_and_never_shows_the_key() -> None:
    assert not llm.ModelConfig().enabled
    assert not llm.ModelConfig(base_url="http://x/v1", model="m").enabled
    config = llm.ModelConfig(
        base_url="https://user:pw@api.example.com:8443/v1", api_key=KEY, model="m"
    )
    assert config.enabled and config.host == "api.example.com:8443"
    assert KEY not in repr(config)
    with pytest.raises(ValueError, match="not configured"):
        llm.Transport(llm.ModelConfig())


def test_a_good_tool_call_gives_the_model_spec(stub: Stub) -> None:
    stub.script(tool_call(SPEC_ARGS))
    result = llm.parse(REQUEST, known_symbols=KNOWN, transport=transport(stub))
    assert (result.source, result.status, result.reason) == ("model", "ok", "")
    assert result.outcome.spec is not None
    assert result.outcome.spec == offline().spec  # the same spec as the offline parser
    (body,) = stub.requests
    assert body["temperature"] == 0 and body["model"] == "stub-model"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "set_constraint_spec"}}
    (tool,) = body["tools"]
    assert tool["function"]["strict"] is True
    assert tool["function"]["parameters"]["required"] == json_schema()["required"]
    assert "AAPL, BND, MSFT, TSLA, VTI, XOM" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": REQUEST}
    assert stub.headers[0]["authorization"] == f"Bearer {KEY}"
    call = result.call
    assert call is not None
    assert call.host == stub.base_url.split("//")[1].split("/")[0]
    assert (call.prompt_tokens, call.completion_tokens, call.total_tokens) == (120, 30, 150)
    assert call.latency_ms is not None and call.latency_ms >= 0
    assert len(call.request_sha256) == 64 and len(call.response_sha256) == 64
    assert call.response["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "set_constraint_spec"
    )
    assert_no_key(call)


def test_a_model_spec_with_an_unknown_ticker_becomes_a_question(stub: Stub) -> None:
    stub.script(tool_call({**SPEC_ARGS, "no_sell": ["APPL"]}))
    result = llm.parse("don't sell APPL", known_symbols=KNOWN, transport=transport(stub))
    assert result.source == "model" and result.outcome.spec is None
    assert [q.kind for q in result.outcome.questions] == ["unknown_symbol"]
    assert "APPL is not a security in this household" in result.outcome.questions[0].message


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (tool_call('{"scenario": "custom", "max_net_gains": "25000",'), "invalid_json"),
        (tool_call({**SPEC_ARGS, "max_net_gains": 25000.5}), "schema"),
        (tool_call({**SPEC_ARGS, "max_gains": "1"}), "schema"),
        (tool_call(SPEC_ARGS, name="something_else"), "no_tool_call"),
        (text("Sure! Here is your scenario."), "no_tool_call"),
        (refusal("I can't help with trading."), "refusal"),
        (http_error(500), "http_500"),
        (http_error(429), "http_429"),
        (raw(b"<html>gateway</html>", "text/html"), "bad_response"),
        (raw(b"{not json"), "bad_response"),
        (raw(b"[]"), "bad_response"),
        (raw(b'{"choices": []}'), "empty"),
    ],
)
def test_bad_answers_fall_back_to_the_offline_parser(stub: Stub, reply: Reply, reason: str) -> None:
    stub.script(reply)
    result = llm.parse(REQUEST, known_symbols=KNOWN, transport=transport(stub))
    assert (result.source, result.status) == ("deterministic", "fallback")
    assert result.reason.startswith(f"{reason}: ")
    assert result.outcome == offline()
    assert len(stub.requests) == 1  # no retry
    assert_no_key(result.call)


def test_a_timeout_falls_back(stub: Stub) -> None:
    stub.script(slow(2.0, tool_call(SPEC_ARGS)))
    result = llm.parse(REQUEST, known_symbols=KNOWN, transport=transport(stub, timeout=0.3))
    assert (result.source, result.status) == ("deterministic", "fallback")
    assert result.reason == "timeout: no answer within 0.3 s"
    assert result.outcome == offline()
    assert result.call is not None and result.call.response is None
    assert result.call.latency_ms is not None and result.call.latency_ms >= 250


def test_a_connection_error_falls_back() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = llm.ModelConfig(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, model="m")
    result = llm.parse(REQUEST, known_symbols=KNOWN, transport=llm.Transport(config))
    assert (result.source, result.status) == ("deterministic", "fallback")
    assert result.reason.startswith("connection: ")


def test_without_a_model_the_parser_answers() -> None:
    result = llm.parse(REQUEST, known_symbols=KNOWN, transport=None)
    assert (result.source, result.status, result.call) == ("deterministic", "ok", None)
    assert result.outcome == offline()


# -- explanations -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run() -> RunFacts:
    return RunFacts(state="ok", result=json.loads(solve(build(loss_only_portfolio())).to_json()))


GOOD = (
    "This is a loss-only transition: with no long-term gains and no short-term gains allowed, "
    "only losing lots are sold. The 3 trades realize a net loss of $17.5K and lower the tax by "
    "$1,110; tracking error falls from 14.7% to 8.0%. AAPL stays because of the no-sell "
    "restriction ($95,000 of lots blocked). Do not buy TSLA or XOM before 2025-07-30."
)


def test_a_grounded_model_text_is_used(stub: Stub, run: RunFacts) -> None:
    sheet = collect_facts(run)
    stub.script(text(GOOD))
    result = llm.write(
        "explain_adviser",
        sheet=sheet,
        deterministic=lambda: explain(run, "adviser", sheet),
        transport=transport(stub),
    )
    assert (result.source, result.status, result.text) == ("model", "ok", GOOD)
    (body,) = stub.requests
    assert body["temperature"] == 0 and "tools" not in body
    user = body["messages"][1]["content"]
    assert "FACTS:\n- 3 trades (2 sales and 1 purchase)" in user
    assert "DRAFT (accurate, from the facts):" in user
    assert (
        "every number you write must be one of the facts' numbers" in body["messages"][0]["content"]
    )


def test_a_hallucinated_number_is_rejected(stub: Stub, run: RunFacts) -> None:
    sheet = collect_facts(run)
    wrong = GOOD.replace("8.0%", "2.3%").replace("$1,110", "$14K")
    stub.script(text(wrong))
    result = llm.write(
        "answer",
        sheet=sheet,
        deterministic=lambda: answer(run, "why is TE still 2.3%?", sheet),
        question="why is TE still 2.3%?",
        transport=transport(stub),
    )
    assert (result.source, result.status) == ("deterministic", "rejected")
    assert result.reason == "number check: '$14K' matches no fact; '2.3%' matches no fact"
    assert result.text == answer(run, "why is TE still 2.3%?", sheet)
    assert result.call is not None
    assert result.call.response["choices"][0]["message"]["content"] == wrong  # kept on record
    assert "QUESTION: why is TE still 2.3%?" in stub.requests[0]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (refusal(), "refusal"),
        (text("   "), "empty"),
        (slow(2.0), "timeout"),
        (http_error(503), "http_503"),
    ],
)
def test_explanations_fall_back_cleanly(
    stub: Stub, run: RunFacts, reply: Reply, reason: str
) -> None:
    sheet = collect_facts(run)
    stub.script(reply)
    result = llm.write(
        "explain_client",
        sheet=sheet,
        deterministic=lambda: explain(run, "client", sheet),
        transport=transport(stub, timeout=0.3),
    )
    assert (result.source, result.status) == ("deterministic", "fallback")
    assert result.reason.startswith(f"{reason}: ")
    assert result.text == explain(run, "client", sheet)
