"""Optimizer benchmark: prints JSON figures (medians of several runs).

    .venv/bin/python bench/optimizer.py [--repeat N] [--quick] [--no-book] [--no-portal]
                                        [--demo-db DATABASE_URL]

Sections:
- ``account_30_150``: one 30-security, 150-lot taxable account; compile once (cold), then warm
  runs of the whole core pipeline with new prices (p50 / p90 ms), target p50 <= 50 ms. Warm
  means a process that has already run a few: the first ``warmup_runs`` after the cold one are
  left out (Python specializes a function's bytecode after several calls, so the second to
  about the tenth run of a new process are slower than the ones after, as they would be in a
  worker that has been serving for a while). The warm runs are ``20 x --repeat`` (at least 60)
  price moves: the number of solves a run needs, and so its ratio, differs between them.
- ``transition_500_2000``: a synthetic 500-stock (+4 funds), 2,000-lot funds-to-direct-index
  transition, per scenario (warm = median of repeats; the first run with compilation is reported
  separately) and all four presets in one call; target <= 1 s per scenario.
- ``clarabel_vs_scs``: the continuous problem of the transition solved by each solver from
  scratch every time (a new solver object, no warm start: the previous solution is never reused),
  wall and solver-reported time, iterations and the objective gap to a Clarabel solve at 1e-12
  tolerances.
- ``ticket_fee_model``: tickets proposed with and without the ticket-fee model.
- ``portal_path``: every household of the demo firm through what a run does before and after
  the core: ``optimizer.adapter.build_snapshot`` (database -> snapshot), validation and the
  canonical snapshot text, ``solve()`` with the adapter's three-year forecast, the result JSON
  (the database writes of ``run_execute`` are left out; ``firm_book_celery`` has them). Twice:
  ``cold`` (nothing remembered: every structure compiled, every covariance estimated) and
  ``warm`` (the same households again, as a second scenario or a re-run of the day would be).
- ``end_to_end_over_solver``: the ratios of the issue's target (<= 1.5), per run, medians:

  * ``core``: ``core_time_s / (solve_time_s + forecast_solve_time_s)``: the whole ``solve()``
    call (snapshot to checked result: arrays, compilation when the structure is new, solves,
    rounding, repair, checker, metrics, facts, the forecast years) over the solver-reported
    times of all the solves it made (the run's and the forecast years'; Clarabel's
    ``solve_time`` includes its setup, SCS's setup + solve time);
  * ``portal``: ``(adapter + core + result JSON) / the same solver time``, the ``portal_path``
    runs; cold and warm;
  * with, for each, the solves per run and the share of compilation, so a figure can be read.

  * ``solve_calls``: the solve calls alone, ``solve_wall_time_s / solve_time_s``: how much the
    DPP-compiled problem adds around the solver per solve (applying the parameters to the
    compiled map, handing the data over, reading the solution back).

- ``machine``: CPU count and load averages before and after (the figures are wall-clock; on a
  shared machine compare them with the load).
- ``firm_book_celery``: the demo firm's book through Celery (see ``bench_firm_book``).

The demo database (``portal_path``, ``firm_book_celery``) is built once in a temporary folder
(``migrate`` and ``demo``, about a minute) unless ``--demo-db`` names one that has it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
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
from optimizer.core.problem import CompiledModel, clear_cache, parameter_values, solver_options
from optimizer.core.result import Result
from optimizer.core.scenarios import PRESET_NAMES, resolve_settings
from optimizer.core.snapshot import Snapshot
from optimizer.core.synthetic import synthetic_snapshot


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def _p(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank, lower) of ``values``."""
    xs = sorted(values)
    return xs[int(q * (len(xs) - 1))]


def _all_solver_s(res: Result) -> float:
    """Solver-reported time of every solve of a run: its own and its forecast years'."""
    return res.solver.solve_time_s + res.solver.forecast_solve_time_s


def _ratio(res: Result) -> float:
    """``core``: the whole ``solve()`` call over the solver-reported times of all its solves."""
    solver_s = _all_solver_s(res)
    return res.solver.core_time_s / solver_s if solver_s else 0.0


def _reprice(snap: Snapshot, factor: Decimal) -> Snapshot:
    secs = tuple(
        dataclasses.replace(
            s, price=(s.price * (factor if i % 2 else 2 - factor)).quantize(Decimal("0.01"))
        )
        for i, s in enumerate(snap.securities)
    )
    return dataclasses.replace(snap, securities=secs)


def _runs(snaps: list[Snapshot], **kwargs: Any) -> dict[str, Any]:
    """Solve each snapshot once; medians of wall time, solver time, ratio and solves."""
    wall, solver, ratio, solves, path = [], [], [], [], []
    res: Result | None = None
    for snap in snaps:
        t = time.perf_counter()
        res = solve(snap, **kwargs)
        wall.append(time.perf_counter() - t)
        solver.append(_all_solver_s(res))
        ratio.append(_ratio(res))
        solves.append(res.solver.solves + res.solver.forecast_solves)
        if res.solver.solve_time_s:
            path.append(res.solver.solve_wall_time_s / res.solver.solve_time_s)
    assert res is not None
    return {
        "runs": len(snaps),
        "warm_p50_ms": _ms(statistics.median(wall)),
        "warm_p90_ms": _ms(_p(wall, 0.9)),
        "solver_p50_ms": _ms(statistics.median(solver)),
        "end_to_end_over_solver_p50": round(statistics.median(ratio), 2),
        "end_to_end_over_solver_p90": round(_p(ratio, 0.9), 2),
        "solve_calls_over_solver_p50": round(statistics.median(path), 2) if path else None,
        "solves_per_run_p50": statistics.median(solves),
        "solves_per_run_max": max(solves),
    }


def account_snapshot() -> Snapshot:
    return synthetic_snapshot(
        n_stocks=30, n_lots=150, seed=1, gain_cap="20000", ticket_fee="4.95", min_trade_value="200"
    )


ACCOUNT_WARMUP_RUNS = 10


def bench_account(repeat: int) -> dict[str, Any]:
    clear_cache()
    snap = account_snapshot()
    t0 = time.perf_counter()
    first = solve(snap)
    cold = time.perf_counter() - t0
    n = ACCOUNT_WARMUP_RUNS + repeat
    moved = [_reprice(snap, Decimal("1") + Decimal(r + 1) / Decimal(1000)) for r in range(n)]
    for warm_up in moved[:ACCOUNT_WARMUP_RUNS]:
        solve(warm_up)
    moved = moved[ACCOUNT_WARMUP_RUNS:]
    out = _runs(moved)
    out.update(
        {
            "warmup_runs": ACCOUNT_WARMUP_RUNS,
            "cold_ms": _ms(cold),
            "tickets": len(first.trades),
            "target_warm_p50_ms": 50,
            # the same runs with the three "what lifting it would gain" re-solves
            "explain_resolve": _runs(moved[: max(5, repeat // 3)], options=RunOptions("resolve")),
        }
    )
    return out


def transition_snapshot(**extra: Any) -> Snapshot:
    kwargs: dict[str, Any] = {
        "n_stocks": 500,
        "n_lots": 2000,
        "n_funds": 4,
        "mode": "transition",
        "seed": 2,
        "gain_cap": "25000",
        "ticket_fee": "1",
        "min_trade_value": "100",
        "value": 5_000_000,
    }
    kwargs.update(extra)
    return synthetic_snapshot(**kwargs)


def bench_transition(repeat: int) -> dict[str, Any]:
    clear_cache()
    snap = transition_snapshot()
    per: dict[str, Any] = {}
    t = time.perf_counter()
    solve(snap, scenario="moderate")
    compile_and_first = time.perf_counter() - t
    for name in PRESET_NAMES:
        res = solve(snap, scenario=name)
        # a new snapshot object per run (as a new request would be: nothing cached on it)
        figures = _runs([dataclasses.replace(snap) for _ in range(repeat)], scenario=name)
        figures.update(
            {
                "tickets": len(res.trades),
                "tracking_error_before": round(res.metrics["before"]["tracking_error"], 5),
                "tracking_error_after": round(res.metrics["after"]["tracking_error"], 5),
                "realized_net": res.metrics["after"]["realized"]["net"],
            }
        )
        per[name] = figures
    all_times = []
    for _ in range(max(1, repeat // 2)):
        t = time.perf_counter()
        solve_scenarios(snap)
        all_times.append(time.perf_counter() - t)
    clear_cache()
    t = time.perf_counter()
    solve_scenarios(snap)
    all_cold = time.perf_counter() - t
    resolve = _runs(
        [dataclasses.replace(snap) for _ in range(max(2, repeat // 2))],
        scenario="moderate",
        options=RunOptions("resolve"),
    )
    return {
        "securities": 504,
        "lots": 2000,
        "first_run_with_compile_ms": _ms(compile_and_first),
        "per_scenario": per,
        "all_four_warm_p50_ms": _ms(statistics.median(all_times)),
        "all_four_cold_ms": _ms(all_cold),
        "moderate_explain_resolve": resolve,
        "target_per_scenario_ms": 1000,
    }


def bench_solvers(repeat: int) -> dict[str, Any]:
    """Each solver from scratch on every solve: a new solver object and no warm start."""
    snap = transition_snapshot(ticket_fee="0", min_trade_value="0")
    pd = build_problem_data(snap, resolve_settings(snap, "moderate"))
    xu, bu = base_bounds(pd)
    values = parameter_values(pd, xu, bu)
    reference = CompiledModel(pd, "CLARABEL").solve(
        values, {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "max_iter": 500}
    )
    out: dict[str, Any] = {"reference_objective": reference.objective}
    objs: dict[str, float] = {}
    for name in ("CLARABEL", "SCS"):
        model = CompiledModel(pd, name)  # its own compiled problem
        opts = solver_options(name)
        t = time.perf_counter()
        model.solve(values, opts)
        compile_and_first = time.perf_counter() - t
        wall, reported, iters = [], [], []
        for _ in range(repeat):
            t = time.perf_counter()
            sol = model.solve(values, opts)
            wall.append(time.perf_counter() - t)
            reported.append(sol.solve_time)
            iters.append(sol.iterations)
        objs[name] = sol.objective
        out[name] = {
            "options": opts,
            "compile_and_first_ms": _ms(compile_and_first),
            "wall_p50_ms": _ms(statistics.median(wall)),
            "solver_reported_p50_ms": _ms(statistics.median(reported)),
            "iterations": statistics.median(iters),
            "status": sol.status,
            "objective": sol.objective,
            "relative_gap_to_reference": abs(sol.objective - reference.objective)
            / max(abs(reference.objective), 1e-12),
        }
    out["relative_objective_gap_scs_vs_clarabel"] = abs(objs["SCS"] - objs["CLARABEL"]) / max(
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


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


# --------------------------------------------------------------------------------------------
# The demo database: Django on a database holding the demo firm, set up once per process.
# --------------------------------------------------------------------------------------------
AS_OF = datetime.date(2026, 11, 20)
_DEMO: dict[str, Any] = {}


def _demo_setup(demo_db: str | None = None, *, broker: bool = True) -> dict[str, Any]:
    """Set up Django on ``demo_db`` (a DATABASE_URL holding the demo firm) or on a new SQLite
    file in a temporary folder filled with ``migrate`` and ``demo`` (removed at exit). With
    ``broker`` and redis-server installed, Celery is pointed at a Redis on a free loopback port
    (started by ``bench_firm_book``): the settings read it when Django starts."""
    if _DEMO:
        return _DEMO
    import atexit
    import shutil
    import socket
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-book-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ["DATABASE_URL"] = demo_db or f"sqlite:///{tmp / 'book.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    redis = shutil.which("redis-server") if broker else None
    port = 0
    if redis:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import Firm

    call_command("migrate", verbosity=0)
    if not Firm.objects.filter(slug="harbor-point").exists():
        with open(os.devnull, "w") as devnull:
            call_command("demo", "--as-of", AS_OF.isoformat(), stdout=devnull)
    _DEMO.update({"tmp": tmp, "redis": redis, "port": port})
    return _DEMO


def _q(values: list[float], digits: int = 1, scale: float = 1000.0) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values) * scale, digits),
        "p90": round(_p(values, 0.9) * scale, digits),
    }


def bench_portal_path() -> dict[str, Any]:
    """Every household of the demo firm through the adapter, the core and the result JSON,
    cold then warm (see the module docstring). Milliseconds per run, p50 / p90."""
    _demo_setup()
    from accounts.models import Firm
    from optimizer import adapter
    from optimizer.adapter import DataNotReady, build_snapshot
    from optimizer.core import model as core_model
    from optimizer.core.errors import OptimizerError
    from optimizer.core.snapshot import snapshot_from_dict

    firm = Firm.objects.get(slug="harbor-point")
    households = list(firm.households.filter(is_active=True).order_by("pk"))
    clear_cache()
    adapter._risk_cache.clear()
    core_model._structure_cache.clear()
    out: dict[str, Any] = {"households": len(households)}
    for name in ("cold", "warm"):
        rows: list[dict[str, float]] = []
        refused: dict[str, int] = {}
        for household in households:
            t0 = time.perf_counter()
            try:
                build = build_snapshot(household, as_of=AS_OF, scenario="moderate")
                snap = snapshot_from_dict(build.snapshot)
                snap.canonical_json()  # the text run_execute stores and hashes
                t1 = time.perf_counter()
                res = solve(snap)
                res.to_json()
            except (DataNotReady, OptimizerError) as exc:
                refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1
                continue
            total = time.perf_counter() - t0
            solver_s = _all_solver_s(res)
            rows.append(
                {
                    "adapter": t1 - t0,
                    "core": res.solver.core_time_s,
                    "total": total,
                    "solver": solver_s,
                    "compile": res.solver.compile_time_s,
                    "solves": res.solver.solves + res.solver.forecast_solves,
                    "core_ratio": res.solver.core_time_s / solver_s,
                    "total_ratio": total / solver_s,
                    "compile_share": res.solver.compile_time_s / total,
                    "securities": len(snap.securities),
                }
            )
        out[name] = {
            "runs": len(rows),
            "refused": refused,
            "adapter_ms": _q([r["adapter"] for r in rows]),
            "core_ms": _q([r["core"] for r in rows]),
            "total_ms": _q([r["total"] for r in rows]),
            "solver_ms_all_solves": _q([r["solver"] for r in rows]),
            "compile_ms": _q([r["compile"] for r in rows]),
            "solves_per_run_p50": statistics.median(r["solves"] for r in rows),
            "core_over_solver": _q([r["core_ratio"] for r in rows], 2, 1.0),
            "portal_over_solver": _q([r["total_ratio"] for r in rows], 2, 1.0),
            "compile_share_of_total_p50": round(
                statistics.median(r["compile_share"] for r in rows), 2
            ),
            "securities_p50_max": [
                statistics.median(r["securities"] for r in rows),
                max(r["securities"] for r in rows),
            ],
        }
    return out


# --------------------------------------------------------------------------------------------
# The demo firm's whole book through Celery: added by the portal layer (needs Django, the demo
# data and a worker). Keep this function's signature; return a dict of figures or None.
# --------------------------------------------------------------------------------------------
def bench_firm_book() -> dict[str, Any] | None:
    """The demo firm's whole book (26 households) through Celery: a Redis broker and a real
    ``celery worker`` (2 processes) when redis-server is installed, eager Celery otherwise, on
    the demo database (:func:`_demo_setup`); figures are per-run medians from the runs' recorded
    timings (``run_execute``: adapter, core, solver, forecast solver, compile, total) plus the
    wall time of the whole batch. Ratios over the solver time of all the run's solves (the
    forecast years' included)."""
    import subprocess

    from accounts.models import Firm
    from optimizer.management.commands._common import wait_for
    from optimizer.services import batch_request

    demo = _demo_setup()
    redis, port, tmp = demo["redis"], demo["port"], demo["tmp"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if redis:
            server = [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            procs.append(subprocess.Popen([*server, "--dir", str(tmp)], stdout=subprocess.DEVNULL))
            worker = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--concurrency"]
            options = ["2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
            procs.append(
                subprocess.Popen(
                    [*worker, *options],
                    cwd=_HERE.parent,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(3)
        firm = Firm.objects.get(slug="harbor-point")
        started = time.perf_counter()
        batch = batch_request(firm=firm, scenario="moderate", actor=None, as_of=AS_OF)
        runs = wait_for(list(batch.runs.values_list("pk", flat=True)), 1800)
        wall = time.perf_counter() - started
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
    done = [r for r in runs if r.status == "succeeded"]

    def solver_s(r: Any) -> float:
        return float(r.timings.get("solver_s", 0)) + float(r.timings.get("forecast_solver_s", 0))

    timed = [r for r in done if solver_s(r) > 0]

    def p50(key: str, digits: int = 3) -> float | None:
        values = [float(r.timings.get(key, 0)) for r in done]
        return round(statistics.median(values), digits) if values else None

    return {
        "path": "redis + celery worker x2" if redis else "eager",
        "households": len(runs),
        "statuses": {
            s: sum(1 for r in runs if r.status == s) for s in sorted({r.status for r in runs})
        },
        "wall_s": round(wall, 2),
        "per_run_total_s_p50": round(statistics.median(r.timings["total_s"] for r in runs), 3),
        "per_run_adapter_s_p50": p50("adapter_s"),
        "per_run_core_s_p50": p50("core_s"),
        "per_run_compile_s_p50": p50("compile_s"),
        "per_run_solver_s_p50": p50("solver_s", 4),
        "per_run_forecast_solver_s_p50": p50("forecast_solver_s", 4),
        "total_over_all_solves_p50": round(
            statistics.median(r.timings["total_s"] / solver_s(r) for r in timed), 2
        )
        if timed
        else None,
        "core_over_all_solves_p50": round(
            statistics.median(r.timings["core_s"] / solver_s(r) for r in timed), 2
        )
        if timed
        else None,
        "trades_p50": statistics.median(r.summary.get("trades", 0) for r in done) if done else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--no-book", action="store_true", help="skip the firm book through Celery")
    parser.add_argument(
        "--no-portal", action="store_true", help="skip the demo households' adapter + core path"
    )
    parser.add_argument(
        "--demo-db", help="DATABASE_URL of a database with the demo firm (default: a new one)"
    )
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    machine_before = _machine()
    # about 9 ms a run: a large sample (the ratio differs between price moves: a run that needs
    # two solves has more fixed work per solve than one that needs four)
    account = bench_account(max(repeat * 20, 60))
    transition = bench_transition(repeat)
    moderate = transition["per_scenario"]["moderate"]
    figures: dict[str, Any] = {
        "machine": {"before": machine_before},
        "account_30_150": account,
        "transition_500_2000": transition,
        "clarabel_vs_scs": bench_solvers(max(2, repeat // 2)),
        "ticket_fee_model": bench_tickets(),
    }
    if not (args.no_portal and args.no_book):
        _demo_setup(args.demo_db, broker=not args.no_book)
    portal = None if args.no_portal else bench_portal_path()
    figures["portal_path"] = portal
    ratios: dict[str, Any] = {
        "definitions": {
            "core": "core_time_s / (solve_time_s + forecast_solve_time_s): the whole solve() "
            "call over the solver-reported times of all its solves; per run, median",
            "portal": "(build_snapshot + validation + canonical text + solve() + result JSON) "
            "/ the same solver time; demo households, per run, median",
            "solve_calls": "solve_wall_time_s / solve_time_s: the run's solve calls only "
            "(parameter values in, primal and dual vectors out, through the compiled problem) "
            "over their solver-reported times; per run, median",
        },
        "target": 1.5,
        "core": {
            "account_30_150": account["end_to_end_over_solver_p50"],
            "account_30_150_solves_per_run": account["solves_per_run_p50"],
            "transition_moderate": moderate["end_to_end_over_solver_p50"],
            "transition_moderate_solves_per_run": moderate["solves_per_run_p50"],
        },
        "solve_calls": {
            "account_30_150": account["solve_calls_over_solver_p50"],
            "transition_moderate": moderate["solve_calls_over_solver_p50"],
        },
    }
    if portal is not None:
        for name in ("cold", "warm"):
            ratios["core"][f"demo_households_{name}"] = portal[name]["core_over_solver"]["p50"]
        ratios["portal"] = {
            name: {
                "p50": portal[name]["portal_over_solver"]["p50"],
                "solves_per_run": portal[name]["solves_per_run_p50"],
                "compile_share_of_total": portal[name]["compile_share_of_total_p50"],
            }
            for name in ("cold", "warm")
        }
    figures["end_to_end_over_solver"] = ratios
    figures["firm_book_celery"] = None if args.no_book else bench_firm_book()
    figures["machine"]["after"] = _machine()
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
