"""The optimization pipeline: snapshot in, checked result out.

1. Resolve the scenario knobs and build the weight-scaled arrays (:mod:`model`).
2. Relaxed convex solve with every block but without the no-buy-and-sell rule.
3. Fix each identical group's direction from it and re-solve at lot level (:mod:`direction`);
   no re-solve when the relaxed optimum already obeys the directions (then it is optimal for
   the direction-fixed problem too).
4. Round to share units, repair, drop small or unprofitable orders and re-solve with them fixed
   to zero, keeping the best feasible trade list by the exact objective (:mod:`postprocess`).
5. Build the trades in exact Decimal and pass them through the independent checker; a failure
   raises :class:`CheckFailed` - it is never returned as feasible.
6. Metrics before/after, binding-constraint facts (costs estimated from the duals, or measured
   by re-solving when ``RunOptions(explain="resolve")``), flags and the multi-year forecast.

What depends on the input alone (the evaluator, the metrics before trading, the checker's index
of the snapshot, the input flags and hash) is prepared on a helper thread while the solver runs
(:mod:`optimizer.core.background`).

Every solve of one run (and of the four scenarios of :func:`solve_scenarios`) uses the same
compiled cvxpy problem: only parameter values change. ``Result.solver.solves`` counts them,
``solve_time_s`` adds up their solver-reported times and ``core_time_s`` is the whole call (the
forecast included: its years' solves are counted apart, ``forecast_solves`` and
``forecast_solve_time_s``; ``compile_time_s`` is the time spent building and compiling cvxpy
problems for structures seen for the first time).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NamedTuple

import cvxpy as cp
import numpy as np

from optimizer.core.background import Prepared
from optimizer.core.binding import (
    available_gains,
    binding_constraints,
    diagnose,
    flags,
    gain_lots,
    input_flags,
    nature_facts,
)
from optimizer.core.blas import one_blas_thread
from optimizer.core.bounds import base_bounds
from optimizer.core.checker import CheckIndex, CheckPolicy, check
from optimizer.core.direction import Directions, decide_directions, flip_ambiguous
from optimizer.core.errors import CheckFailed, Conflict, InfeasibleProblem, OptimizerError
from optimizer.core.metrics import portfolio_metrics
from optimizer.core.model import ProblemData, build_problem_data
from optimizer.core.postprocess import (
    FRACTION_UNIT,
    Discrete,
    Evaluator,
    Order,
    bump_small,
    drop_judged,
    improve_step,
    repair,
    round_step,
)
from optimizer.core.problem import (
    BoundsSolve,
    CompiledModel,
    ContinuousSolution,
    compiled_model,
    parameter_values,
    solver_options,
)
from optimizer.core.result import LotSale, Result, SolverInfo, Trade, cents
from optimizer.core.scenarios import PRESET_NAMES, Settings, resolve_settings
from optimizer.core.snapshot import Snapshot

MAX_ROUNDS = 4


@functools.cache
def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


EXPLAIN_MODES = ("duals", "resolve", "none")

# direction fixing: the relaxed solution is kept (no direction-fixed re-solve) when the flows the
# directions forbid add up to at most this (weights of V, i.e. $0.10 per $1M): solver noise
SKIP_FIXED_TOL = 1e-7


@dataclass
class RunOptions:
    """Switches of one run (not part of the snapshot: they do not change the trades).

    ``explain`` says how the binding constraints' costs are given: ``"duals"`` (default) estimates
    them from the shadow prices of the final solve, without any extra solve; ``"resolve"`` also
    measures the three most expensive by re-solving the continuous problem with each lifted
    (up to three more solves); ``"none"`` lists the binding constraints without either.
    ``True`` and ``False`` are accepted for ``"duals"`` and ``"none"``.
    """

    explain: str | bool = "duals"
    forecast: bool = True  # run the multi-year forecast when the snapshot asks for it
    use_ticket_proxy: bool = True  # convex proxy of the ticket fee in the continuous solves
    use_fee_test: bool = True  # drop orders whose benefit is below their cost
    # trades and metrics only (the forecast's further years): no input hash, binding
    # constraints, facts or flags, which nothing reads there
    summary_only: bool = False

    def __post_init__(self) -> None:
        if self.explain is True:
            self.explain = "duals"
        elif self.explain is False:
            self.explain = "none"
        if self.explain not in EXPLAIN_MODES:
            raise OptimizerError(f"unknown explain mode {self.explain!r}; use {EXPLAIN_MODES}")


class _Run:
    """State of one run: the compiled model, counters, and a solve function."""

    def __init__(self, pd: ProblemData, solver: str, options: dict[str, Any], opts: RunOptions):
        self.pd = pd
        self.prepared: Prepared | None = None  # told when the run enters and leaves the solver
        self.solver = solver
        self.options = options
        self.opts = opts
        from optimizer.core import problem as _problem

        key_before = len(_problem._cache)
        t0 = time.perf_counter()
        self.model: CompiledModel = compiled_model(pd, solver)
        self.reused = len(_problem._cache) == key_before and self.model.solves > 0
        # building the cvxpy problem (new structures only) and compiling it (first solve)
        self.compile_time = 0.0 if self.reused else time.perf_counter() - t0
        self.solves = 0
        self.iterations = 0
        self.solve_time = 0.0
        self.solve_wall = 0.0
        # a solve function per set of lifted constraints (see CompiledModel.solver_for)
        self._solvers: dict[frozenset[str], BoundsSolve] = {}

    def solve(
        self, xu: np.ndarray, bu: np.ndarray, relax: frozenset[str] = frozenset()
    ) -> ContinuousSolution:
        solve_fn = self._solvers.get(relax)
        if solve_fn is None:
            # every parameter but the bounds is the same for all solves of a run: computed once
            vals = parameter_values(
                self.pd, xu, bu, use_ticket_proxy=self.opts.use_ticket_proxy, relax=relax
            )
            t0 = time.perf_counter()
            solve_fn, compile_time = self.model.solver_for(vals, self.options)
            self.compile_time += compile_time
            self.solve_wall += time.perf_counter() - t0 - compile_time
            self._solvers[relax] = solve_fn
        t0 = time.perf_counter()
        prepared = self.prepared
        if prepared is not None:
            prepared.solver_starts()
        try:
            sol = solve_fn(xu, bu)
        finally:
            if prepared is not None:
                prepared.solver_ends()
        self.solve_wall += time.perf_counter() - t0
        self.solves += 1
        self.iterations += sol.iterations
        self.solve_time += sol.solve_time
        return sol


def _to_decimal_shares(
    value: float, unit: float, cap: Decimal | None = None, cap_f: float | None = None
) -> Decimal:
    """``value`` shares in whole ``unit`` s, exact; ``cap`` (a lot's quantity, ``cap_f`` its
    float) when it is above it or within 1e-9 of it."""
    if unit == 1.0:
        d = Decimal(round(value))
    else:
        d = Decimal(round(value / FRACTION_UNIT)) * Decimal(str(FRACTION_UNIT))
    if cap is not None:
        if cap_f is None:
            cap_f = float(cap)
        if d > cap or abs(cap_f - value) < 1e-9:
            d = cap
    return d


_BPS = Decimal(10000)


class TradeFacts(NamedTuple):
    """What a trade list's exact figures take from the snapshot alone, per lot (``lot_id``,
    quantity and its float, cost basis, term of a sale today, holding days, whether its account
    is taxable) and per pair (account id, symbol, price, cost in bps).
    :func:`trade_facts` makes them (on the helper thread while the solver runs)."""

    lots: list[tuple[str, Decimal, float, Decimal, str, int, bool]]
    pairs: list[tuple[str, str, Decimal, Decimal]]


def trade_facts(pd: ProblemData) -> TradeFacts:
    s = pd.snapshot
    as_of = s.as_of
    taxable = [a.taxable for a in s.accounts]
    lots = [
        (
            lot.lot_id,
            lot.quantity,
            q_f,
            lot.cost_basis,
            "long" if lt else "short",
            (as_of - lot.holding_period_start).days,
            taxable[a],
        )
        for lot, q_f, lt, a in zip(
            s.lots, pd.lot_q.tolist(), pd.lot_lt.tolist(), pd.lot_acc.tolist(), strict=True
        )
    ]
    bps = s.costs.bps
    pairs = []
    for a, i in zip(pd.pair_acc.tolist(), pd.pair_sec.tolist(), strict=True):
        sec = s.securities[i]
        pairs.append((s.accounts[a].id, sec.symbol, sec.price, bps + sec.cost_bps))
    return TradeFacts(lots, pairs)


def _lot_id(sale: LotSale) -> str:
    return sale.lot_id


def _trade_order(t: Trade) -> tuple[str, int, str]:
    return (t.account, 0 if t.side == "sell" else 1, t.symbol)


def build_trades(
    pd: ProblemData, ev: Evaluator, dz: Discrete, facts: TradeFacts | None = None
) -> list[Trade]:
    """Exact Decimal trades (with per-lot realized gains) from a discrete trade list.

    ``facts`` is :func:`trade_facts` of ``pd`` (computed when not given)."""
    if facts is None:
        facts = trade_facts(pd)
    lot_facts, pair_facts = facts
    fee = pd.snapshot.costs.ticket_fee
    trades: list[Trade] = []
    # element lookups on lists (an array's element is a numpy scalar each time)
    sell, buy = dz.sell.tolist(), dz.buy.tolist()
    unit_lot, unit_pair = ev.unit_lot.tolist(), ev.unit_pair.tolist()
    for o in ev.orders(dz):
        account, symbol, price, bps = pair_facts[o.pair]
        if o.side == "sell":
            sales: list[LotSale] = []
            for j in o.lots:
                lot_id, quantity, quantity_f, basis, term, days, taxable = lot_facts[j]
                sh = _to_decimal_shares(sell[j], unit_lot[j], quantity, quantity_f)
                proceeds = sh * price
                cost_basis = basis * sh / quantity
                sales.append(
                    LotSale.make(
                        lot_id,
                        sh,
                        proceeds,
                        cost_basis,
                        proceeds - cost_basis,
                        term,
                        days,
                        taxable,
                    )
                )
            sales.sort(key=_lot_id)
            shares = sum([x.shares for x in sales], Decimal(0))
        else:
            sales = []
            shares = _to_decimal_shares(buy[o.pair], unit_pair[o.pair])
        if shares <= 0:
            continue
        value = shares * price
        trades.append(
            Trade.make(
                account,
                symbol,
                o.side,
                shares,
                price,
                value,
                cents(value * bps / _BPS),
                fee,
                tuple(sales),
            )
        )
    trades.sort(key=_trade_order)
    return trades


def _infeasible(run: _Run, summary: str, extra: list[Conflict] | None = None) -> InfeasibleProblem:
    conflicts = diagnose(run.pd, run.solve)
    return InfeasibleProblem(summary, conflicts + (extra or []))


def _fixed_solve(
    run: _Run, sol0: ContinuousSolution, xu0: np.ndarray, bu0: np.ndarray
) -> tuple[ContinuousSolution, np.ndarray, np.ndarray]:
    pd = run.pd
    hold = max(1e-6, 0.5 * pd.min_trade_w)
    dirs = decide_directions(pd, sol0.x, sol0.b, hold_below=hold)
    xu, bu = dirs.bounds(pd, xu0, bu0)
    clipped = float(sol0.x[xu == 0].sum() + sol0.b[bu == 0].sum())
    if clipped <= SKIP_FIXED_TOL:
        # the relaxed optimum already obeys the directions (no group bought and sold, nothing
        # held back but solver noise): it is optimal for the direction-fixed problem too
        x, b = sol0.x.copy(), sol0.b.copy()
        x[xu == 0] = 0.0
        b[bu == 0] = 0.0
        return replace(sol0, x=x, b=b), xu, bu
    sol = run.solve(xu, bu)
    if sol.status != "infeasible":
        return sol, xu, bu
    # the fallbacks, tried in turn: no hold-back of small flows, then the ambiguous groups
    # the other way round
    fallbacks: list[Callable[[Directions], Directions]] = []
    if hold > 1e-6:
        fallbacks.append(lambda _d: decide_directions(pd, sol0.x, sol0.b, hold_below=1e-6))
    fallbacks.append(lambda d: flip_ambiguous(pd, sol0.x, sol0.b, d))
    d = dirs
    for make in fallbacks:
        d = make(d)
        xu, bu = d.bounds(pd, xu0, bu0)
        sol = run.solve(xu, bu)
        if sol.status != "infeasible":
            return sol, xu, bu
    raise _infeasible(
        run,
        "the constraints can only be met by buying and selling the same security",
        [
            Conflict(
                "no_buy_and_sell",
                "the rule against buying and selling one identical group in one run",
            )
        ],
    )


def _postprocess(
    run: _Run, ev: Evaluator, sol: ContinuousSolution, xu: np.ndarray, bu: np.ndarray
) -> tuple[Discrete, ContinuousSolution, float]:
    """The best whole-share trade list found over the rounding rounds, the continuous solution
    it was rounded from and its exact objective (``ev.objective``, weights)."""
    pd = run.pd
    min_value = float(pd.snapshot.costs.min_trade_value)
    best: tuple[float, Discrete, ContinuousSolution] | None = None
    xu, bu = xu.copy(), bu.copy()
    for round_no in range(MAX_ROUNDS):
        # round, repair if needed, improve, drop small and unprofitable orders, judge (one
        # compiled call when the rounded list needs no repair)
        dz, step = round_step(
            ev, sol.x, sol.b, xu, bu, min_trade_value=min_value, use_fee_test=run.opts.use_fee_test
        )
        removed: list[Order] = []
        if step is None and repair(ev, dz, xu, bu):
            dz, d = improve_step(ev, dz, xu, bu)
            step = drop_judged(
                ev, dz, min_trade_value=min_value, use_fee_test=run.opts.use_fee_test, deviation=d
            )
        if step is not None:
            dz2, removed, stuck = step.dz, step.removed, step.stuck
            ok, smallest, obj = step.feasible, step.smallest, step.objective
            if stuck:
                dz3 = bump_small(ev, dz2, stuck, xu, min_value)
                if repair(ev, dz3, xu, bu) and ev.smallest_order(dz3) >= min_value - 1e-9:
                    dz2 = dz3
                    ok, smallest, obj = ev.feasible(dz2), ev.smallest_order(dz2), ev.objective(dz2)
            good = ok and smallest >= min_value - 1e-9
            if good and (best is None or obj < best[0] - 1e-12):
                best = (obj, dz2, sol)
        if not removed:
            if best is not None:
                break
            # rounding could not be repaired: forbid the smallest order and re-solve
            orders = sorted(ev.orders(dz), key=lambda o: o.value)
            if not orders:
                break
            removed = orders[:1]
        if round_no == MAX_ROUNDS - 1 and best is not None:
            break  # a re-solve now would never be rounded: the best trade list stands
        sold_pairs = [o.pair for o in removed if o.side == "sell"]
        if sold_pairs:
            # every lot of a pair whose sale was removed (its sold lots among them)
            removed_pair = np.zeros(pd.P, dtype=bool)
            removed_pair[sold_pairs] = True
            xu[removed_pair[ev.lot_pair]] = 0.0
        for o in removed:
            if o.side == "buy":
                bu[o.pair] = 0.0
        sol = run.solve(xu, bu)
        if sol.status == "infeasible":
            break
    if best is None:
        zero = Discrete(np.zeros(pd.L), np.zeros(pd.P))
        if not ev.violations(zero):
            return zero, sol, ev.objective(zero)
        raise _infeasible(
            run,
            "no whole-share trade list meets every hard constraint",
            [
                Conflict(
                    "whole_shares", "whole-share rounding together with the minimum trade value"
                )
            ],
        )
    return best[1], best[2], best[0]


@one_blas_thread()
def solve(
    snapshot: Snapshot,
    *,
    scenario: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    solver: str | None = None,
    options: RunOptions | None = None,
) -> Result:
    """Optimize one snapshot; raises :class:`OptimizerError` subclasses on bad input."""
    t_start = time.perf_counter()
    opts = options or RunOptions()
    settings = resolve_settings(snapshot, scenario, overrides)
    pd = build_problem_data(snapshot, settings)
    solver_name = (solver or snapshot.solver.name).upper()
    if solver_name not in ("CLARABEL", "SCS"):
        raise OptimizerError(f"unknown solver {solver_name!r}; use CLARABEL or SCS")
    run = _Run(pd, solver_name, solver_options(solver_name, dict(snapshot.solver.options)), opts)
    # what depends on the input alone is prepared on a helper thread while the solver runs
    # (optimizer.core.background): the same values, in less wall time
    prep = Prepared()
    try:
        prep.start("evaluator", lambda: Evaluator(pd))
        # the metrics before trading, and what the metrics after take from the lots
        prep.start(
            "metrics_before",
            lambda: (pd.unrealized_lots, portfolio_metrics(pd, [], after=False))[1],
        )
        prep.start("check_index", lambda: CheckIndex(snapshot))
        prep.start("trade_facts", lambda: trade_facts(pd))
        if not opts.summary_only:
            prep.start("input_flags", lambda: input_flags(pd))
            prep.start("available_gains", lambda: (available_gains(pd), pd.lot_index)[0])
            prep.start("gain_lots", lambda: gain_lots(pd))
            prep.start("input_sha256", snapshot.sha256)
        prep.launch()
        run.prepared = prep
        policy = CheckPolicy(no_short_term_gains=settings.no_short_term_gains)

        xu0, bu0 = base_bounds(pd)
        final: ContinuousSolution
        sol0: ContinuousSolution
        ev: Evaluator
        if not xu0.any() and not bu0.any():
            ev = prep.get("evaluator")
            dz = Discrete(np.zeros(pd.L), np.zeros(pd.P))
            if ev.violations(dz):
                raise _infeasible(
                    run, "nothing may be traded but the current portfolio breaks a hard constraint"
                )
            sol0 = final = ContinuousSolution(
                "optimal", np.zeros(pd.L), np.zeros(pd.P), 0.0, 0.0, 0
            )
            objective = ev.objective(dz)
        else:
            sol0 = run.solve(xu0, bu0)
            if sol0.status == "infeasible":
                raise _infeasible(run, "no trade list satisfies every hard constraint")
            sol1, xu1, bu1 = _fixed_solve(run, sol0, xu0, bu0)
            ev = prep.get("evaluator")
            dz, final, objective = _postprocess(run, ev, sol1, xu1, bu1)
        trades = build_trades(pd, ev, dz, prep.get("trade_facts"))
        violations = check(snapshot, trades, policy, prep.get("check_index"))
        if violations:
            raise CheckFailed(violations)

        metrics = {
            "before": prep.get("metrics_before"),
            "after": portfolio_metrics(pd, trades, after=True),
        }
        binding: list[dict[str, Any]] = []
        facts: list[dict[str, Any]] = []
        review_flags: list[dict[str, Any]] = []
        if not opts.summary_only:
            explain_fn = run.solve if opts.explain == "resolve" and run.solves else None
            binding = binding_constraints(
                pd,
                final,
                sol0,
                trades,
                explain_fn,
                estimate=opts.explain != "none",
                available=prep.get("available_gains"),
            )
            facts = nature_facts(pd, trades, prep.get("gain_lots"))
            review_flags = flags(pd, trades, prep.get("input_flags"))
        # the last of the helper's steps: taken before the forecast's runs queue theirs
        input_sha256 = "" if opts.summary_only else prep.get("input_sha256")
        forecast_rows: list[dict[str, Any]] = []
        forecast_info: list[SolverInfo] = []
        if opts.forecast and snapshot.forecast_years > 0:
            from optimizer.core.forecast import forecast

            forecast_rows = forecast(
                snapshot, trades, metrics, settings, solver_name, opts, solved=forecast_info
            )
        info = SolverInfo(
            name=solver_name,
            solver_version=_pkg_version(solver_name.lower()),
            cvxpy_version=cp.__version__,
            status=final.status,
            iterations=run.iterations,
            objective=objective * pd.V,
            solves=run.solves,
            compiled_reused=run.reused,
            solve_time_s=run.solve_time,
            core_time_s=time.perf_counter() - t_start,
            compile_time_s=run.compile_time + sum(f.compile_time_s for f in forecast_info),
            forecast_solves=sum(f.solves for f in forecast_info),
            forecast_solve_time_s=sum(f.solve_time_s for f in forecast_info),
            solve_wall_time_s=run.solve_wall,
        )
        return Result(
            status="optimal" if trades else "nothing_to_do",
            mode=snapshot.mode,
            scenario=settings.scenario,
            as_of=snapshot.as_of.isoformat(),
            input_sha256=input_sha256,
            trades=trades,
            metrics=metrics,
            binding_constraints=binding,
            facts=facts,
            flags=review_flags,
            solver=info,
            forecast=forecast_rows,
            settings=_settings_dict(settings),
        )

    finally:
        prep.close()  # the helper skips what the run no longer needs


def _settings_dict(st: Settings) -> dict[str, Any]:
    return {
        "risk_aversion": st.risk_aversion,
        "tax_weight": st.tax_weight,
        "loss_value_beyond_offset": st.loss_value_beyond_offset,
        "no_short_term_gains": st.no_short_term_gains,
    }


def solve_scenarios(
    snapshot: Snapshot,
    names: Iterable[str] = PRESET_NAMES,
    *,
    solver: str | None = None,
    options: RunOptions | None = None,
) -> dict[str, Result | OptimizerError]:
    """Run several scenarios (by default the four presets) on one snapshot, in one call.

    The scenarios share the problem structure, so the compiled problem is built once and every
    scenario only assigns new parameter values. A scenario that fails (e.g. infeasible) maps to
    its error instead of stopping the others.
    """
    out: dict[str, Result | OptimizerError] = {}
    for name in names:
        try:
            out[name] = solve(snapshot, scenario=name, solver=solver, options=options)
        except OptimizerError as exc:
            out[name] = exc
    return out


def realized_net(result: Result) -> Decimal:
    """Net realized gain of a result in taxable accounts (dollars)."""
    return sum((ls.realized_gain for t in result.trades for ls in t.lots if ls.taxable), Decimal(0))
