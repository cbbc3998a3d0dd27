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
    """The demo firm's whole book (26 households) through Celery: a Redis broker and a real
    ``celery worker`` (2 processes) when redis-server is installed, eager Celery otherwise. A
    fresh SQLite database in a temporary folder; figures are per-run medians from the runs'
    recorded timings plus the wall time of the whole batch."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-book-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'book.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    redis = shutil.which("redis-server")
    procs: list[subprocess.Popen[bytes]] = []
    if redis:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        procs.append(
            subprocess.Popen(
                [
                    redis,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--dir",
                    str(tmp),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import Firm
    from optimizer.management.commands._common import wait_for
    from optimizer.services import batch_request

    try:
        call_command("migrate", verbosity=0)
        call_command("demo", "--as-of", "2026-11-20", stdout=open(os.devnull, "w"))  # noqa: SIM115
        if redis:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "portal",
                        "worker",
                        "--concurrency",
                        "2",
                        "--loglevel",
                        "WARNING",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    cwd=_HERE.parent,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(3)
        firm = Firm.objects.get(slug="harbor-point")
        started = time.perf_counter()
        batch = batch_request(
            firm=firm,
            scenario="moderate",
            actor=None,
            as_of=__import__("datetime").date(2026, 11, 20),
        )
        runs = wait_for(list(batch.runs.values_list("pk", flat=True)), 1800)
        wall = time.perf_counter() - started
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    done = [r for r in runs if r.status == "succeeded"]
    ratio = [
        r.timings["total_s"] / r.timings["solver_s"] for r in done if r.timings.get("solver_s")
    ]
    core_ratio = [
        r.timings["core_s"] / r.timings["solver_s"] for r in done if r.timings.get("solver_s")
    ]
    return {
        "path": "redis + celery worker x2" if redis else "eager",
        "households": len(runs),
        "statuses": {
            s: sum(1 for r in runs if r.status == s) for s in sorted({r.status for r in runs})
        },
        "wall_s": round(wall, 2),
        "per_run_total_s_p50": round(statistics.median(r.timings["total_s"] for r in runs), 3),
        "per_run_adapter_s_p50": round(
            statistics.median(r.timings.get("adapter_s", 0) for r in done), 3
        ),
        "per_run_core_s_p50": round(statistics.median(r.timings["core_s"] for r in done), 3),
        "per_run_solver_s_p50": round(statistics.median(r.timings["solver_s"] for r in done), 4),
        "end_to_end_over_solver_p50": round(statistics.median(ratio), 2) if ratio else None,
        "core_over_solver_p50": round(statistics.median(core_ratio), 2) if core_ratio else None,
        "trades_p50": statistics.median(r.summary.get("trades", 0) for r in done) if done else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--no-book", action="store_true", help="skip the firm book through Celery")
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
        "firm_book_celery": None if args.no_book else bench_firm_book(),
    }
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
