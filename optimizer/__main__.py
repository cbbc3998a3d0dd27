"""Command line: ``python -m optimizer solve PROBLEM.json [--solver CLARABEL|SCS] [--scenario NAME|all]``.

Prints the result JSON (sorted keys, Decimals as strings, floats rounded: byte-identical for the
same input). On invalid or infeasible input it prints one line ``error: ...`` to stderr and exits
with status 2 (invalid), 3 (infeasible) or 4 (solver or check failure) - never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from optimizer.core.engine import RunOptions, solve, solve_scenarios
from optimizer.core.errors import InfeasibleProblem, InvalidSnapshot, OptimizerError
from optimizer.core.result import dumps
from optimizer.core.scenarios import PRESET_NAMES, PRESETS
from optimizer.core.snapshot import load_snapshot


def _exit_code(exc: OptimizerError) -> int:
    if isinstance(exc, InvalidSnapshot):
        return 2
    if isinstance(exc, InfeasibleProblem):
        return 3
    return 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optimizer", description="Tax-aware optimizer core."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="solve a snapshot JSON file and print the result JSON")
    p.add_argument("problem", help="path to the snapshot JSON")
    p.add_argument("--solver", choices=["CLARABEL", "SCS"], type=str.upper, default=None)
    p.add_argument("--scenario", choices=[*PRESETS, "all"], default=None)
    p.add_argument(
        "--timings", action="store_true", help="include wall-clock timings (not repeatable)"
    )
    p.add_argument("--no-explain", action="store_true", help="skip the what-it-costs re-solves")
    args = parser.parse_args(argv)

    options = RunOptions(explain=not args.no_explain)
    try:
        snapshot = load_snapshot(args.problem)
        if args.scenario == "all":
            results = solve_scenarios(snapshot, PRESET_NAMES, solver=args.solver, options=options)
            payload = {
                name: (
                    r.as_dict(args.timings) if not isinstance(r, OptimizerError) else r.as_dict()
                )
                for name, r in results.items()
            }
            sys.stdout.write(dumps({"scenarios": payload}))
            return 0
        result = solve(snapshot, scenario=args.scenario, solver=args.solver, options=options)
    except OptimizerError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return _exit_code(exc)
    sys.stdout.write(result.to_json(timings=args.timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
