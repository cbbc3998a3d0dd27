"""The model-backed path: one small transport around the official ``openai`` client.

Any OpenAI-compatible server works (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``AGENT_MODEL``,
``AGENT_TIMEOUT_SECONDS``). Every call is made at temperature 0, without retries (a failure is
answered by the deterministic path at once, not after back-offs), and returns a :class:`Call`
record: model, server host (never the key), messages, tools, the raw response, tokens, latency
and the SHA-256 of request and response.

Two uses, each with a clean fallback to the deterministic path:

- :func:`parse` turns a request into a ``ConstraintSpec`` by tool calling against
  ``openai_tool()`` (the spec's strict JSON Schema). A refusal, no tool call, invalid JSON, a
  schema violation, a timeout, a connection or HTTP error -> the offline parser's outcome, with
  the reason recorded.
- :func:`write` asks for an explanation or an answer, given the fact sentences and the
  deterministic draft. The text is kept only when ``explain.check_numbers`` finds every number
  in it among the facts; otherwise it is *rejected* and the deterministic text is used.

No Django here: the caller (``agent.services``) stores the records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion

from agent.explain import FactSheet, check_numbers, fact_lines
from agent.parser import ParseOutcome, parse_request
from agent.spec import SCENARIOS, SpecError, conflicts, openai_tool, validate_spec

__all__ = [
    "PROMPT_VERSION",
    "Call",
    "ModelConfig",
    "ModelFailure",
    "Outcome",
    "ParseResult",
    "Transport",
    "WriteResult",
    "parse",
    "write",
]

#: Changes whenever a prompt changes; part of every cache key.
PROMPT_VERSION: Final = "agent-prompts-1"
TOOL_NAME: Final = "set_constraint_spec"

Outcome = Literal["ok", "fallback", "rejected"]
Task = Literal["explain_adviser", "explain_client", "answer"]


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_of(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ModelConfig:
    """Where the model is. ``enabled`` only with a base URL, a key and a model name."""

    base_url: str = ""
    api_key: str = field(default="", repr=False)
    model: str = ""
    timeout_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.api_key and self.model)

    @property
    def host(self) -> str:
        """``host[:port]`` of the base URL, without credentials or path (safe to store)."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host


@dataclass
class Call:
    """The record of one model call (what ``AgentInteraction`` stores)."""

    model: str
    host: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    request_sha256: str
    response: dict[str, Any] | None = None
    response_sha256: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: int | None = None


class ModelFailure(Exception):
    """The model gave no usable answer. ``reason`` is a short code (``timeout``,
    ``connection``, ``http_<status>``, ``api_error``, ``bad_response``, ``refusal``,
    ``no_tool_call``, ``invalid_json``, ``schema``, ``empty``); ``call`` is the record so far."""

    def __init__(self, reason: str, detail: str, call: Call) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.call = call


class Transport:
    """Chat completions against one configured server, temperature 0, no retries."""

    def __init__(self, config: ModelConfig, *, client: openai.OpenAI | None = None) -> None:
        if not config.enabled:
            raise ValueError("the model is not configured (base URL, key and model are needed)")
        self.config = config
        self.client = client or openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_seconds,
            max_retries=0,
        )

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: dict[str, Any] | None = None,
    ) -> tuple[Any, Call]:
        """One completion. Raises :class:`ModelFailure` on timeout, connection or HTTP errors."""
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
        }
        if tools:
            request["tools"] = tools
        if tool_choice:
            request["tool_choice"] = tool_choice
        call = Call(
            model=self.config.model,
            host=self.config.host,
            messages=messages,
            tools=tools or [],
            request_sha256=sha256_of(request),
        )
        started = time.monotonic()
        try:
            completion = self.client.chat.completions.create(**request)
        except openai.APITimeoutError as exc:
            call.latency_ms = _ms(started)
            raise ModelFailure(
                "timeout", f"no answer within {self.config.timeout_seconds:g} s", call
            ) from exc
        except openai.APIConnectionError as exc:
            call.latency_ms = _ms(started)
            raise ModelFailure("connection", str(exc) or "connection error", call) from exc
        except openai.APIStatusError as exc:
            call.latency_ms = _ms(started)
            call.response = {"status_code": exc.status_code, "body": _jsonable(exc.body)}
            call.response_sha256 = sha256_of(call.response)
            raise ModelFailure(f"http_{exc.status_code}", exc.message, call) from exc
        except openai.APIError as exc:
            call.latency_ms = _ms(started)
            raise ModelFailure("api_error", str(exc), call) from exc
        except ValueError as exc:  # a body that is not JSON
            call.latency_ms = _ms(started)
            raise ModelFailure("bad_response", f"the response is not JSON: {exc}", call) from exc
        call.latency_ms = _ms(started)
        if not isinstance(completion, ChatCompletion):  # e.g. an HTML page or a JSON list
            call.response = {"body": str(completion)[:2000]}
            call.response_sha256 = sha256_of(call.response)
            raise ModelFailure("bad_response", "the response is not a chat completion", call)
        call.response = completion.model_dump(mode="json", exclude_none=True)
        call.response_sha256 = sha256_of(call.response)
        usage = getattr(completion, "usage", None)
        if usage is not None:
            call.prompt_tokens = usage.prompt_tokens
            call.completion_tokens = usage.completion_tokens
            call.total_tokens = usage.total_tokens
        return completion, call


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _jsonable(body: object) -> Any:
    try:
        json.dumps(body)
    except (TypeError, ValueError):
        return str(body)
    return body


def _message(completion: Any, call: Call) -> Any:
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise ModelFailure("empty", "the response has no choices", call)
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise ModelFailure("empty", "the response has no message", call)
    refusal = getattr(message, "refusal", None)
    if refusal or getattr(choice, "finish_reason", None) == "content_filter":
        raise ModelFailure("refusal", refusal or "the content filter stopped the answer", call)
    return message


# -- intent -> spec --------------------------------------------------------------------------
def parse_messages(text: str, known_symbols: Collection[str]) -> list[dict[str, Any]]:
    symbols = ", ".join(sorted({s.strip().upper() for s in known_symbols})) or "(none)"
    system = (
        "You turn a registered investment adviser's request for a tax-aware rebalancing or "
        f"transition scenario into a constraint spec by calling {TOOL_NAME} exactly once.\n"
        "Rules:\n"
        "- Record only what the adviser asked; use null (or an empty list, false) for anything "
        "not asked. Never invent a constraint, an amount or a ticker.\n"
        f"- Tickers must come from this household's securities: {symbols}. Write them in "
        "capitals. A ticker outside this list is still recorded as written, so the adviser "
        "is asked about it.\n"
        "- Money is a decimal string of US dollars ('25000' for $25K, '500000' for $0.5M); "
        "percentages are decimal fractions ('0.01' for 1%, '0.005' for 50 bps).\n"
        f"- scenario is one of {', '.join(SCENARIOS)}; 'custom' unless a preset is named.\n"
        "- 'no gains' is max_net_gains '0'; 'finish the transition' is completion_target '1'; "
        "'don't touch X' puts X in no_sell and no_buy; 'sell all of X' puts X in must_sell.\n"
        "- Put nothing in notes unless the adviser asks for a note to be kept."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


@dataclass(frozen=True)
class ParseResult:
    """The outcome shown to the adviser and how it was produced."""

    outcome: ParseOutcome
    source: Literal["model", "deterministic"]
    status: Outcome
    reason: str
    call: Call | None


def _offline(text: str, known_symbols: Collection[str]) -> ParseOutcome:
    return parse_request(text, known_symbols=known_symbols)


def parse(text: str, *, known_symbols: Collection[str], transport: Transport | None) -> ParseResult:
    """The request as a spec: by the model when one is configured, else (or on any failure)
    by the deterministic parser. Contradictions, impossible numbers and unknown tickers become
    questions either way (``spec.conflicts``)."""
    if transport is None:
        return ParseResult(
            _offline(text, known_symbols), "deterministic", "ok", "no model configured", None
        )
    messages = parse_messages(text, known_symbols)
    tool = openai_tool(TOOL_NAME)
    try:
        completion, call = transport.chat(
            messages,
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": TOOL_NAME}},
        )
        message = _message(completion, call)
        tool_calls = [
            tc
            for tc in (getattr(message, "tool_calls", None) or [])
            if getattr(tc, "type", "function") == "function"
        ]
        function = getattr(tool_calls[0], "function", None) if tool_calls else None
        if function is None or getattr(function, "name", None) != TOOL_NAME:
            raise ModelFailure("no_tool_call", f"the model did not call {TOOL_NAME}", call)
        raw = str(getattr(function, "arguments", None) or "")
        try:
            arguments = json.loads(raw)
        except (TypeError, ValueError) as exc:
            raise ModelFailure("invalid_json", f"tool arguments are not JSON: {exc}", call) from exc
        try:
            spec = validate_spec(arguments)
        except SpecError as exc:
            raise ModelFailure("schema", str(exc), call) from exc
    except ModelFailure as failure:
        return ParseResult(
            _offline(text, known_symbols),
            "deterministic",
            "fallback",
            f"{failure.reason}: {failure.detail}",
            failure.call,
        )
    questions = tuple(conflicts(spec, known_symbols=known_symbols))
    outcome = ParseOutcome(
        text=text,
        spec=None if questions else spec,
        questions=questions,
        understood=(),
        ignored=(),
    )
    return ParseResult(outcome, "model", "ok", "", call)


# -- explanations and answers ----------------------------------------------------------------
_TASKS: Final[Mapping[str, str]] = {
    "explain_adviser": (
        "Write the rationale for the adviser who reviews this proposal: what the trades do, "
        "what binds and what it costs, then what needs a look (flags, checks). Most important "
        "first, at most 250 words, plain paragraphs."
    ),
    "explain_client": (
        "Write a short, plain explanation for the client's PDF (second person, 'your "
        "portfolio'), at most 150 words: what the trades do, the tax effect, and any limit or "
        "restriction the client should know about. No jargon (no 'shadow price', 'dual', "
        "'objective', lot ids or account ids)."
    ),
    "answer": (
        "Answer the adviser's question below from the facts, in at most 150 words. If the facts "
        "do not answer it, say so and say what they do cover."
    ),
}

_WRITE_RULES: Final = (
    "You explain the result of a tax-aware portfolio optimization for a registered investment "
    "adviser. Use only the FACTS given; do not add knowledge, advice or speculation.\n"
    "Numbers: every number you write must be one of the facts' numbers. You may round money to "
    "the dollar or to thousands ($14K) and percentages to one decimal (2.3%). Do not compute new "
    "numbers (no sums, differences or ratios that are not in the facts). Write digits, not "
    "number words. Write dates as YYYY-MM-DD and identifiers (tickers, lot ids, account ids) "
    "exactly as in the facts. No numbered lists, no tables, no markdown."
)


def write_messages(
    task: Task, sheet: FactSheet, draft: str, question: str = ""
) -> list[dict[str, Any]]:
    facts = "\n".join(f"- {line}" for line in fact_lines(sheet))
    user = f"FACTS:\n{facts}\n\nDRAFT (accurate, from the facts):\n{draft}\n\nTASK: {_TASKS[task]}"
    if task == "answer":
        user += f"\n\nQUESTION: {question}"
    return [{"role": "system", "content": _WRITE_RULES}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class WriteResult:
    text: str
    source: Literal["model", "deterministic"]
    status: Outcome
    reason: str
    call: Call | None


def write(
    task: Task,
    *,
    sheet: FactSheet,
    deterministic: Callable[[], str],
    question: str = "",
    transport: Transport | None,
) -> WriteResult:
    """An explanation or answer: the model's text if it passes the number check, else the
    deterministic one (``rejected`` when the check failed, ``fallback`` when the model failed)."""
    draft = deterministic()
    if transport is None:
        return WriteResult(draft, "deterministic", "ok", "no model configured", None)
    messages = write_messages(task, sheet, draft, question)
    try:
        completion, call = transport.chat(messages)
        message = _message(completion, call)
        text = (getattr(message, "content", None) or "").strip()
        if not text:
            raise ModelFailure("empty", "the model wrote no text", call)
    except ModelFailure as failure:
        return WriteResult(
            draft, "deterministic", "fallback", f"{failure.reason}: {failure.detail}", failure.call
        )
    problems = check_numbers(text, sheet)
    if problems:
        return WriteResult(
            draft, "deterministic", "rejected", "number check: " + "; ".join(problems), call
        )
    return WriteResult(text, "model", "ok", "", call)
