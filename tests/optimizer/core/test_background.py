"""The input-only work of a run on the helper thread (optimizer.core.background) gives the
same result as doing it inline, hands errors over, never leaves a run waiting on a step that
cannot start, and uses the caller's Decimal context."""

from __future__ import annotations

import dataclasses
import decimal
import threading
from decimal import Decimal

import numpy as np
import pytest

from optimizer.core import background
from optimizer.core.background import Prepared
from optimizer.core.binding import flags, gain_lots, input_flags, nature_facts
from optimizer.core.checker import CheckIndex, CheckPolicy, check
from optimizer.core.engine import RunOptions, solve
from optimizer.core.errors import InfeasibleProblem
from optimizer.core.result import LotSale, Trade
from optimizer.core.snapshot import Snapshot, snapshot_from_dict
from optimizer.core.synthetic import synthetic_dict


def _snapshot(
    *, seed: int = 31, forecast_years: int = 3, cash_floor: str | None = None
) -> Snapshot:
    raw = synthetic_dict(
        n_stocks=20,
        n_lots=60,
        seed=seed,
        gain_cap="5000",
        ticket_fee="3",
        min_trade_value="150",
        accounts=("taxable", "deferred"),
    )
    raw["forecast_years"] = forecast_years
    if cash_floor is not None:
        raw["accounts"][0]["cash_floor"] = cash_floor
    return snapshot_from_dict(raw)


@pytest.mark.parametrize("explain", ["duals", "resolve"])
def test_helper_thread_and_inline_give_byte_identical_results(
    monkeypatch: pytest.MonkeyPatch, explain: str
) -> None:
    snap = _snapshot()
    monkeypatch.setenv("OPTIMIZER_BACKGROUND", "1")
    with_helper = [
        solve(snap, scenario=name, options=RunOptions(explain=explain)).to_json()
        for name in ("moderate", "tax_sensitive")
    ]
    monkeypatch.setenv("OPTIMIZER_BACKGROUND", "0")
    inline = [
        solve(snap, scenario=name, options=RunOptions(explain=explain)).to_json()
        for name in ("moderate", "tax_sensitive")
    ]
    assert with_helper == inline
    assert '"forecast"' in with_helper[0] and '"input_sha256": ""' not in with_helper[0]


def test_runs_from_several_threads_at_once_get_their_own_values() -> None:
    snaps = [_snapshot(seed=40 + i, forecast_years=2) for i in range(4)]
    want = [solve(s).to_json() for s in snaps]
    got: dict[int, str] = {}

    def work(i: int) -> None:
        got[i] = solve(snaps[i]).to_json()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [got[i] for i in range(4)] == want


def _hand_over(prep: Prepared) -> None:
    """What a run's solve does: the job goes to the helper as the run enters the solver."""
    prep.solver_starts()
    prep.solver_ends()


def test_a_step_error_is_raised_by_get_and_the_next_run_is_not_held_up() -> None:
    prep = Prepared()
    prep.start("fails", lambda: 1 / 0)
    prep.start("works", lambda: "value")
    prep.launch()
    _hand_over(prep)
    with pytest.raises(ZeroDivisionError):
        prep.get("fails")
    assert prep.get("works") == "value"
    prep.close()
    # a run that raises before asking for its steps closes them; the helper goes on
    with pytest.raises(InfeasibleProblem):
        solve(_snapshot(cash_floor="1000000000"))
    assert solve(_snapshot()).trades


def test_steps_start_only_while_the_run_waits_and_are_skipped_after_close() -> None:
    ran: list[tuple[str, bool]] = []

    def step(name: str) -> str:
        ran.append((name, threading.current_thread() is threading.main_thread()))
        return name.upper()

    prep = Prepared()
    prep.start("a", lambda: step("a"))
    prep.start("b", lambda: step("b"))
    prep.start("c", lambda: step("c"))
    prep.launch()
    # not handed over before the run enters the solver: nothing starts
    threading.Event().wait(0.05)
    assert ran == []
    assert prep.get("a") == "A"  # asked for before: run inline, on the caller's thread
    assert ran == [("a", True)]
    prep.solver_starts()  # the run "solves": the helper takes the rest (not "a" again)
    threading.Event().wait(0.2)
    prep.solver_ends()
    assert ran == [("a", True), ("b", False), ("c", False)]
    assert prep.get("b") == "B" and prep.get("c") == "C"
    prep.close()
    # a job closed before its steps ran skips them; the helper is free for the next one
    skipped = Prepared()
    skipped.start("d", lambda: step("d"))
    skipped.launch()
    skipped.solver_starts()
    skipped.close()
    later = Prepared()
    later.start("e", lambda: step("e"))
    later.launch()
    _hand_over(later)
    assert later.get("e") == "E"  # waiting lets the helper run
    assert ("e", False) in ran
    assert [r for r in ran if r[0] == "d"] in ([], [("d", False)])


def test_steps_use_the_callers_decimal_context(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in ("1", "0"):
        monkeypatch.setenv("OPTIMIZER_BACKGROUND", setting)
        with decimal.localcontext() as ctx:
            ctx.prec = 6
            prep = Prepared()
            prep.start("third", lambda: Decimal(1) / Decimal(3))
            prep.launch()
            _hand_over(prep)
            assert str(prep.get("third")) == "0.333333"
            prep.close()


def test_the_helper_is_started_again_in_a_forked_child() -> None:
    background._helper()  # the parent has one
    assert background._queue is not None
    background._reset_after_fork()  # what os.register_at_fork runs in a child
    assert background._queue is None
    prep = Prepared()
    prep.start("x", lambda: 42)
    prep.launch()
    _hand_over(prep)
    assert background._queue is not None  # a new helper took the job
    assert prep.get("x") == 42


def test_prepared_pieces_equal_the_ones_computed_on_the_spot() -> None:
    snap = _snapshot(seed=33)
    result = solve(snap)
    from optimizer.core.model import build_problem_data
    from optimizer.core.scenarios import resolve_settings

    pd = build_problem_data(snap, resolve_settings(snap))
    assert flags(pd, result.trades, input_flags(pd)) == flags(pd, result.trades)
    assert flags(pd, result.trades) == result.flags
    assert nature_facts(pd, result.trades, gain_lots(pd)) == result.facts
    policy = CheckPolicy(no_short_term_gains=False)
    index = CheckIndex(snap)
    assert check(snap, result.trades, policy, index) == [] == check(snap, result.trades, policy)
    # an index of another snapshot is not used
    other = _snapshot(seed=34)
    bad = [*result.trades]
    assert check(snap, bad, policy, CheckIndex(other)) == []
    # the index is not changed by a check (holdings after trading are the check's own)
    held_before = dict(index.held)
    check(snap, result.trades, policy, index)
    assert index.held == held_before
    # the per-lot facts of the trades, prepared, give the same trades; the fast constructors
    # make the objects the dataclasses' own would
    from optimizer.core.engine import build_trades, trade_facts
    from optimizer.core.postprocess import Discrete, Evaluator

    ev = Evaluator(pd)
    assert result.trades and any(t.lots for t in result.trades)
    index_of = {lot.lot_id: j for j, lot in enumerate(snap.lots)}
    sell = np.zeros(pd.L)
    buy = np.zeros(pd.P)
    for t in result.trades:
        for ls in t.lots:
            sell[index_of[ls.lot_id]] = float(ls.shares)
        if t.side == "buy":
            a = [x.id for x in snap.accounts].index(t.account)
            i = [x.symbol for x in snap.securities].index(t.symbol)
            buy[a * pd.n + i] = float(t.shares)
    dz = Discrete(sell, buy)
    again = build_trades(pd, ev, dz, trade_facts(pd))
    assert again == build_trades(pd, ev, dz) == result.trades
    for t in result.trades:
        plain = Trade(**{f.name: getattr(t, f.name) for f in dataclasses.fields(Trade)})
        assert plain == t and hash(plain) == hash(t) and plain.as_dict() == t.as_dict()
        for ls in t.lots:
            made = LotSale(**{f.name: getattr(ls, f.name) for f in dataclasses.fields(LotSale)})
            assert made == ls and made.as_dict() == ls.as_dict()
        with pytest.raises(dataclasses.FrozenInstanceError):
            t.shares = Decimal(1)  # type: ignore[misc]
