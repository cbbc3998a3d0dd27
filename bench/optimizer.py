"""Optimizer benchmark: prints JSON figures (medians of several runs).

    .venv/bin/python bench/optimizer.py [--repeat N] [--quick]

Sections:
- ``account_30_150``: one 30-security, 150-lot taxable account; compile once (cold), then warm
  re-solves of the whole core pipeline with new prices (p50 / p90 ms), target p50 <= 50 ms.
- ``transition_500_2000``: a synthetic 500-stock (+4 funds), 2,000-lot funds-to-direct-index
  transition, per scenario (cold = first, including compilation; warm = median of repeats) and
  all four presets in one call; target <= 1 s per scenario.
- ``clarabel_vs_scs``: time and relative objective gap of the continuous problem.
- ``ticket_fee_model``: tickets proposed with and without the ticket-fee model.
- ``end_to_end_over_solver``: core time / raw solver time (target <= 1.5).
- ``firm_book_celery``: placeholder filled by the portal layer (see ``bench_firm_book``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

# this file is named like the package it measures: put the repository first on the path
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]
# ruff: noqa: E402

from optimizer.core.bounds import base_bounds
from optimizer.core.engine import RunOptions, solve, solve_scenarios
from optimizer.core.model import build_problem_data
from optimizer.core.problem import clear_cache, compiled_model, parameter_values, solver_options
from optimizer.core.scenarios import PRESET_NAMES, resolve_settings
from optimizer.core.snapshot import Snapshot
from optimizer.core.synthetic import synthetic_snapshot


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def _reprice(snap: Snapshot, factor: Decimal) -> Snapshot:
    secs = tuple(
        dataclasses.replace(
            s, price=(s.price * (factor if i % 2 else 2 - factor)).quantize(Decimal("0.01"))
        )
        for i, s in enumerate(snap.securities)
    )
    return dataclasses.replace(snap, securities=secs)


def bench_account(repeat: int) -> dict[str, Any]:
    clear_cache()
    snap = synthetic_snapshot(
        n_stocks=30, n_lots=150, seed=1, gain_cap="20000", ticket_fee="4.95", min_trade_value="200"
    )
    t0 = time.perf_counter()
    first = solve(snap)
    cold = time.perf_counter() - t0
    warm, solver, ratio = [], [], []
    for r in range(repeat):
        moved = _reprice(snap, Decimal("1") + Decimal(r + 1) / Decimal(1000))
        t = time.perf_counter()
        res = solve(moved)
        dt_ = time.perf_counter() - t
        warm.append(dt_)
        solver.append(res.solver.solve_time_s)
        ratio.append(dt_ / res.solver.solve_time_s)
    warm.sort()
    return {
        "cold_ms": _ms(cold),
        "warm_p50_ms": _ms(statistics.median(warm)),
        "warm_p90_ms": _ms(warm[int(0.9 * (len(warm) - 1))]),
        "solver_p50_ms": _ms(statistics.median(solver)),
        "end_to_end_over_solver_p50": round(statistics.median(ratio), 2),
        "solves_per_run": first.solver.solves,
        "tickets": len(first.trades),
        "target_warm_p50_ms": 50,
    }


def bench_transition(repeat: int) -> dict[str, Any]:
    clear_cache()
    snap = synthetic_snapshot(
        n_stocks=500,
        n_lots=2000,
        n_funds=4,
        mode="transition",
        seed=2,
        gain_cap="25000",
        ticket_fee="1",
        min_trade_value="100",
        value=5_000_000,
    )
    per: dict[str, Any] = {}
    t = time.perf_counter()
    solve(snap, scenario="moderate")
    compile_and_first = time.perf_counter() - t
    for name in PRESET_NAMES:
        times, ratios, solver_s = [], [], []
        res = None
        for _ in range(repeat):
            t = time.perf_counter()
            res = solve(snap, scenario=name)
            el = time.perf_counter() - t
            times.append(el)
            solver_s.append(res.solver.solve_time_s)
            ratios.append(el / res.solver.solve_time_s)
        assert res is not None
        per[name] = {
            "warm_p50_ms": _ms(statistics.median(times)),
            "solver_p50_ms": _ms(statistics.median(solver_s)),
            "end_to_end_over_solver": round(statistics.median(ratios), 2),
            "solves": res.solver.solves,
            "tickets": len(res.trades),
            "tracking_error_before": round(res.metrics["before"]["tracking_error"], 5),
            "tracking_error_after": round(res.metrics["after"]["tracking_error"], 5),
            "realized_net": res.metrics["after"]["realized"]["net"],
        }
    all_times = []
    for _ in range(max(1, repeat // 2)):
        t = time.perf_counter()
        solve_scenarios(snap)
        all_times.append(time.perf_counter() - t)
    clear_cache()
    t = time.perf_counter()
    solve_scenarios(snap)
    all_cold = time.perf_counter() - t
    no_explain = []
    for _ in range(repeat):
        t = time.perf_counter()
        solve(snap, scenario="moderate", options=RunOptions(explain=False))
        no_explain.append(time.perf_counter() - t)
    return {
        "securities": 504,
        "lots": 2000,
        "first_run_with_compile_ms": _ms(compile_and_first),
        "per_scenario": per,
        "all_four_warm_p50_ms": _ms(statistics.median(all_times)),
        "all_four_cold_ms": _ms(all_cold),
        "moderate_without_explain_p50_ms": _ms(statistics.median(no_explain)),
        "target_per_scenario_ms": 1000,
    }


def bench_solvers(repeat: int) -> dict[str, Any]:
    snap = synthetic_snapshot(
        n_stocks=500,
        n_lots=2000,
        n_funds=4,
        mode="transition",
        seed=2,
        gain_cap="25000",
        value=5_000_000,
    )
    pd = build_problem_data(snap, resolve_settings(snap, "moderate"))
    xu, bu = base_bounds(pd)
    out: dict[str, Any] = {}
    objs: dict[str, float] = {}
    for name in ("CLARABEL", "SCS"):
        model = compiled_model(pd, name)
        opts = solver_options(name)
        model.solve(parameter_values(pd, xu, bu), opts)  # compile
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            sol = model.solve(parameter_values(pd, xu, bu), opts)
            times.append(time.perf_counter() - t)
        objs[name] = sol.objective
        out[name] = {
            "p50_ms": _ms(statistics.median(times)),
            "iterations": sol.iterations,
            "objective": sol.objective,
        }
    out["relative_objective_gap"] = abs(objs["SCS"] - objs["CLARABEL"]) / max(
        abs(objs["CLARABEL"]), 1e-12
    )
    return out


def bench_tickets() -> dict[str, Any]:
    snap = synthetic_snapshot(
        n_stocks=200, n_lots=600, seed=5, ticket_fee="9.95", bps="1", value=400_000
    )
    with_fee = solve(snap, options=RunOptions(explain=False))
    no_model = solve(
        snap, options=RunOptions(explain=False, use_ticket_proxy=False, use_fee_test=False)
    )
    return {
        "ticket_fee": "9.95",
        "tickets_with_fee_model": len(with_fee.trades),
        "tickets_without_fee_model": len(no_model.trades),
        "trading_cost_with": with_fee.metrics["after"]["trading_cost"],
        "trading_cost_without": no_model.metrics["after"]["trading_cost"],
        "tracking_error_with": round(with_fee.metrics["after"]["tracking_error"], 5),
        "tracking_error_without": round(no_model.metrics["after"]["tracking_error"], 5),
    }


# --------------------------------------------------------------------------------------------
# The demo firm's whole book through Celery: added by the portal layer (needs Django, the demo
# data and a worker). Keep this function's signature; return a dict of figures or None.
# --------------------------------------------------------------------------------------------
def bench_firm_book() -> dict[str, Any] | None:
    """Figures of the demo firm's book run through Celery (not part of the pure core)."""
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    account = bench_account(max(repeat * 3, 5))
    transition = bench_transition(repeat)
    figures = {
        "account_30_150": account,
        "transition_500_2000": transition,
        "clarabel_vs_scs": bench_solvers(max(2, repeat // 2)),
        "ticket_fee_model": bench_tickets(),
        "end_to_end_over_solver": {
            "account_30_150": account["end_to_end_over_solver_p50"],
            "transition_moderate": transition["per_scenario"]["moderate"]["end_to_end_over_solver"],
            "target": 1.5,
        },
        "firm_book_celery": bench_firm_book(),
    }
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
