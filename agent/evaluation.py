"""The parser's evaluation set: loading cases and judging an outcome against one.

Shared by ``tests/agent/test_parser.py`` and ``bench/agent_eval.py`` so both apply the same
rule.  A case is one JSON object per line of ``tests/data/agent_eval.jsonl``::

    {"id": "...", "text": "...", "known_symbols": ["AAPL", ...],
     "expect": {"spec": {...}}}                                  # a runnable spec, or
     "expect": {"questions": ["contradiction", ...],             # the question kinds, and
                "question_phrases": ["no gains", ...]}}          # phrases they must name

``spec`` is a ``ConstraintSpec.to_dict()`` with the default fields left out.  A spec case
is correct when the parser returns exactly that spec and no question; a question case
when it returns no spec, exactly those question kinds (in any order), and every listed
phrase among the questions' phrases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.parser import ParseOutcome
from agent.spec import QUESTION_KINDS, ConstraintSpec, validate_spec

__all__ = ["EVAL_PATH", "EvalCase", "check_case", "load_cases"]

EVAL_PATH = Path(__file__).resolve().parent.parent / "tests" / "data" / "agent_eval.jsonl"


@dataclass(frozen=True)
class EvalCase:
    id: str
    text: str
    known_symbols: tuple[str, ...]
    spec: ConstraintSpec | None
    question_kinds: tuple[str, ...]
    question_phrases: tuple[str, ...]


def _case(raw: Mapping[str, Any], line: int) -> EvalCase:
    where = f"line {line} ({raw.get('id', '?')})"
    expect = raw["expect"]
    if ("spec" in expect) == ("questions" in expect):
        raise ValueError(f"{where}: expect exactly one of 'spec' or 'questions'")
    kinds = tuple(expect.get("questions", ()))
    unknown = [k for k in kinds if k not in QUESTION_KINDS]
    if unknown:
        raise ValueError(f"{where}: unknown question kinds {unknown}")
    if "questions" in expect and not kinds:
        raise ValueError(f"{where}: a question case must name at least one kind")
    return EvalCase(
        id=str(raw["id"]),
        text=str(raw["text"]),
        known_symbols=tuple(raw["known_symbols"]),
        spec=validate_spec(expect["spec"]) if "spec" in expect else None,
        question_kinds=kinds,
        question_phrases=tuple(expect.get("question_phrases", ())),
    )


def load_cases(path: Path = EVAL_PATH) -> list[EvalCase]:
    """Every case in the file; ids must be unique."""
    cases: list[EvalCase] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                cases.append(_case(json.loads(line), number))
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {duplicates}")
    return cases


def check_case(case: EvalCase, outcome: ParseOutcome) -> list[str]:
    """Why ``outcome`` is wrong for ``case``; an empty list means it is right."""
    problems: list[str] = []
    got_kinds = sorted(q.kind for q in outcome.questions)
    if case.spec is not None:
        if outcome.questions:
            problems.append(
                f"expected a spec, got questions {[q.message for q in outcome.questions]}"
            )
        elif outcome.spec != case.spec:
            want = case.spec.to_dict()
            got = outcome.spec.to_dict() if outcome.spec is not None else {}
            diff = {
                k: {"want": want[k], "got": got.get(k)}
                for k in sorted(want)
                if want[k] != got.get(k)
            }
            problems.append(f"spec differs: {json.dumps(diff, sort_keys=True)}")
        return problems
    if outcome.spec is not None:
        problems.append(
            f"expected questions {list(case.question_kinds)}, got a spec {outcome.spec.to_json()}"
        )
    if got_kinds != sorted(case.question_kinds):
        problems.append(f"question kinds {got_kinds} != expected {sorted(case.question_kinds)}")
    named = {p for q in outcome.questions for p in q.phrases}
    missing = [p for p in case.question_phrases if p not in named]
    if missing:
        problems.append(f"questions do not name {missing}; they name {sorted(named)}")
    return problems
