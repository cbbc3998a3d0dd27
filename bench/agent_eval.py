"""Accuracy and speed of the offline parser on tests/data/agent_eval.jsonl.

Prints one JSON object:
{"cases": N, "correct": K, "accuracy": K/N, "failures": [...], "median_ms_per_request": ...}

Usage: python bench/agent_eval.py [--repeat R] [--path FILE]
Exit status 1 when any case fails, so it can gate CI as well as report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.evaluation import EVAL_PATH, check_case, load_cases  # noqa: E402
from agent.parser import parse_request  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per request (median)")
    parser.add_argument("--path", type=Path, default=EVAL_PATH, help="evaluation set (JSONL)")
    args = parser.parse_args(argv)

    cases = load_cases(args.path)
    failures: list[dict[str, object]] = []
    timings_ms: list[float] = []
    for case in cases:
        outcome = parse_request(case.text, known_symbols=case.known_symbols)
        problems = check_case(case, outcome)
        if problems:
            failures.append({"id": case.id, "text": case.text, "problems": problems})
        runs: list[float] = []
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            parse_request(case.text, known_symbols=case.known_symbols)
            runs.append((time.perf_counter() - start) * 1000)
        timings_ms.append(statistics.median(runs))

    correct = len(cases) - len(failures)
    report = {
        "cases": len(cases),
        "correct": correct,
        "accuracy": round(correct / len(cases), 4) if cases else 0.0,
        "failures": failures,
        "median_ms_per_request": round(statistics.median(timings_ms), 3) if timings_ms else 0.0,
        "max_ms_per_request": round(max(timings_ms), 3) if timings_ms else 0.0,
        "set": str(args.path.relative_to(ROOT) if args.path.is_relative_to(ROOT) else args.path),
    }
    print(json.dumps(report, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
