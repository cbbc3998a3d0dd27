"""What the pipeline caches or shortcuts to cut its overhead around the solver changes nothing
in the result: the same bytes cold or warm, in this process or a fresh one."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from optimizer.core import blas, problem
from optimizer.core.engine import RunOptions, solve
from optimizer.core.model import build_problem_data, incidence
from optimizer.core.scenarios import resolve_settings
from optimizer.core.snapshot import snapshot_from_dict, snapshot_to_dict
from optimizer.core.synthetic import synthetic_snapshot
from tests.optimizer.core.builders import build, loss_only_portfolio


def _household():  # type: ignore[no-untyped-def]
    return synthetic_snapshot(n_stocks=25, n_lots=90, seed=7, ticket_fee="2", min_trade_value="100")


def test_a_fresh_process_gives_the_bytes_of_a_warm_one(tmp_path: Path) -> None:
    """Compiled problems, 0/1 matrices, covariance factors and snapshot texts are remembered
    within a process: a result computed with all of them warm (after other runs) equals, byte
    for byte, the one a new process computes from nothing (as a replay on another day does)."""
    snap = dataclasses.replace(build(loss_only_portfolio()), forecast_years=3)
    for other in (_household(), build(loss_only_portfolio())):
        solve(other)
    solve(snap)
    warm = solve(dataclasses.replace(snap)).to_json()
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot_to_dict(snap)))
    cold = subprocess.run(
        [sys.executable, "-m", "optimizer", "solve", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    ).stdout
    assert cold == warm


def test_canonical_json_is_the_dump_of_the_snapshot_dict() -> None:
    for snap in (build(loss_only_portfolio()), _household()):
        text = json.dumps(snapshot_to_dict(snap), sort_keys=True, separators=(",", ":"))
        assert snap.canonical_json() == text
        # a new snapshot sharing the risk model (re-priced) writes its own sections again
        moved = dataclasses.replace(snap, as_of=snap.as_of.replace(day=1))
        assert moved.risk_model is snap.risk_model
        text = json.dumps(snapshot_to_dict(moved), sort_keys=True, separators=(",", ":"))
        assert moved.canonical_json() == text
        assert moved.sha256() != snap.sha256()


def test_remembered_arrays_are_read_only_and_equal_a_fresh_computation() -> None:
    snap = build(loss_only_portfolio())
    sigma = snap.risk_model.matrix()
    assert not sigma.flags.writeable
    assert np.array_equal(sigma, np.array(snap.risk_model.covariance))
    assert snap.risk_model.matrix() is sigma
    pd = build_problem_data(snap, resolve_settings(snap))
    with pytest.raises(ValueError):
        pd.Gt[0, 0] = 1.0
    with pytest.raises(ValueError):
        pd.S.data[0] = 2.0
    again = build_problem_data(
        snapshot_from_dict(snapshot_to_dict(snap)), resolve_settings(snap)
    )  # new objects: nothing shared but the structure
    assert again.S is pd.S and again.DA is pd.DA
    assert again.Gt is not pd.Gt and np.array_equal(again.Gt, pd.Gt)
    assert np.array_equal(pd.DA.toarray(), (pd.D @ pd.A).toarray())
    assert np.array_equal(pd.K.toarray(), (pd.Mc @ pd.A).toarray())
    assert np.array_equal(pd.dev_of_pair, np.asarray(pd.D.argmax(axis=0)).ravel()[pd.pair_sec])


def test_incidence_is_remembered_by_its_rows() -> None:
    rows = np.array([2, 0, 1, 2])
    assert incidence(rows, 3) is incidence(rows.copy(), 3)
    assert incidence(rows, 4) is not incidence(rows, 3)


def test_one_blas_thread_sets_and_restores_the_thread_count() -> None:
    setter = blas._local_setter()
    # the pinned numpy wheels bundle OpenBLAS with the thread-local call: if it is not found,
    # the one-thread guard silently does nothing, which this test must not hide
    assert setter is not None, "numpy is not linked to an OpenBLAS with thread-local settings"
    before = setter(3)
    setter(before)
    with blas.one_blas_thread():
        assert setter(1) == 1
        with blas.one_blas_thread():  # nested: still one, and the outer value comes back
            pass
        assert setter(1) == 1
    assert setter(before) == before


def test_forecast_solves_and_compilation_are_accounted_for() -> None:
    problem.clear_cache()
    snap = dataclasses.replace(build(loss_only_portfolio()), forecast_years=3)
    cold = solve(snap).solver
    assert cold.forecast_solves >= 2 and cold.forecast_solve_time_s > 0
    assert cold.compile_time_s > 0
    assert cold.core_time_s > cold.solve_time_s + cold.forecast_solve_time_s + cold.compile_time_s
    warm = solve(dataclasses.replace(snap)).solver
    assert warm.compile_time_s == 0  # every structure (the forecast years' too) is compiled
    assert warm.forecast_solves == cold.forecast_solves
    timings = json.loads(solve(snap).to_json(timings=True))["solver"]
    assert {"compile_time_s", "forecast_solves", "forecast_solve_time_s"} <= set(timings)
    plain = json.loads(solve(snap).to_json())["solver"]
    assert "forecast_solve_time_s" not in plain and "compile_time_s" not in plain


def test_compiled_problem_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    problem.clear_cache()
    monkeypatch.setattr(problem, "_CACHE_SIZE", 2)
    snaps = [
        synthetic_snapshot(n_stocks=8 + i, n_lots=20, seed=i, ticket_fee="1") for i in range(4)
    ]
    for snap in snaps:
        solve(snap, options=RunOptions(forecast=False, explain="none"))
    assert len(problem._cache) == 2
    monkeypatch.setattr(problem, "_CACHE_BYTES", 1)
    solve(snaps[0], options=RunOptions(forecast=False, explain="none"))
    assert len(problem._cache) == 1  # the newest stays whatever its size
