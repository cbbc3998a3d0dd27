"""Input-only work of a run, done on a helper thread while the solver runs.

Clarabel releases the GIL while it solves (the first solve of a run takes about as long as all
the Python work around it on a small account), so what depends on the snapshot alone can be
computed meanwhile on a second core: the :class:`~optimizer.core.postprocess.Evaluator`, the
exact per-lot figures and the metrics before trading, the independent checker's index of the
snapshot, the per-lot facts of the trades, the review flags that need no trade and the input
hash. The run hands them to the helper as it enters the solver, asks for each result when it
needs it (:meth:`Prepared.get`) and waits if the helper is not done yet; the values are the
ones the run would have computed itself (same functions, same inputs, the caller's ``Decimal``
context and one BLAS thread), so the result is byte-identical either way.

One helper thread per process, started on first use (and again in a forked child: a Celery
worker forked from a parent that already used it starts its own). A run's steps are one job;
jobs of runs from several threads take turns. With ``OPTIMIZER_BACKGROUND=0`` in the
environment everything runs inline (on the caller's thread).
"""

from __future__ import annotations

import decimal
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from optimizer.core.blas import one_blas_thread

_lock = threading.Lock()
_queue: queue.SimpleQueue[Prepared] | None = None


def _reset_after_fork() -> None:
    # the helper thread does not exist in a forked child: start a new one there on first use
    global _queue, _lock
    _queue = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def enabled() -> bool:
    """False when ``OPTIMIZER_BACKGROUND=0`` (everything inline)."""
    return os.environ.get("OPTIMIZER_BACKGROUND", "1") != "0"


def _helper() -> queue.SimpleQueue[Prepared]:
    """The helper thread's queue of jobs (the thread is started on first use)."""
    global _queue
    with _lock:
        if _queue is None:
            jobs: queue.SimpleQueue[Prepared] = queue.SimpleQueue()
            threading.Thread(
                target=_serve, args=(jobs,), name="optimizer-prep", daemon=True
            ).start()
            _queue = jobs
        return _queue


def _serve(jobs: queue.SimpleQueue[Prepared]) -> None:
    while True:
        jobs.get()._run()


class Prepared:
    """Named steps run one after the other on the helper thread (one job per run: queuing a
    job costs more than a small step); :meth:`get` returns a step's value (or raises its
    exception), waiting for it if needed.

    The job goes to the helper when the run first enters the solver (a step the run asked for
    before that was run inline and is skipped). The helper starts a step only while the run
    does not need the interpreter: while it is inside the solver (between
    :meth:`solver_starts` and :meth:`solver_ends`) or waiting in :meth:`get`. A step it is
    running when the solver returns is finished first (one step is a fraction of a solve), so
    the run never waits for more than one step."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Any]]] = []
        self._done: dict[str, tuple[bool, Any]] = {}
        self._cond = threading.Condition()
        self._ready = False  # launched: handed to the helper when the run enters the solver
        self._launched = False  # handed to the helper
        self._run_idle = False  # the run is in the solver or waiting for a step
        self._closed = False  # the run is over: steps not started are skipped
        self._context = decimal.getcontext().copy()

    def start(self, name: str, fn: Callable[[], Any]) -> None:
        """Add a step (they start together, at :meth:`launch`)."""
        self._steps.append((name, fn))

    def launch(self) -> None:
        """The steps are all added: the helper thread takes them when the run first enters the
        solver (:meth:`solver_starts`); until then, or when the helper is disabled, :meth:`get`
        runs a step inline.

        Not earlier: a helper woken before the solver releases the GIL would wait for it and
        take it whenever the run's own Python releases it for a moment (numpy does, for large
        arrays), then hand it back: two thread switches each time, for nothing."""
        self._ready = bool(self._steps) and enabled()

    def solver_starts(self) -> None:
        """The run enters the solver (which releases the GIL): the helper may go on."""
        if not self._launched:
            if not self._ready:
                return
            with self._cond:
                self._run_idle = True
            self._launched = True
            _helper().put(self)
        elif len(self._done) < len(self._steps):
            with self._cond:
                self._run_idle = True
                self._cond.notify_all()

    def solver_ends(self) -> None:
        """The run is back in Python: the helper starts no new step."""
        if self._run_idle:
            with self._cond:
                self._run_idle = False

    def close(self) -> None:
        """The run is over (returned or raised): the helper starts no further step of it."""
        if self._launched:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _run(self) -> None:
        """The steps, on the helper thread: every outcome (value or error) is handed over."""
        try:
            with decimal.localcontext(self._context), one_blas_thread():
                for name, fn in self._steps:
                    with self._cond:
                        while not (self._run_idle or self._closed):
                            self._cond.wait()
                        if self._closed:
                            return
                        if name in self._done:
                            continue  # run inline before the job was handed over
                    try:
                        result: tuple[bool, Any] = (True, fn())
                    except Exception as exc:  # handed to the caller by get()
                        result = (False, exc)
                    with self._cond:
                        self._done[name] = result
                        self._cond.notify_all()
        except BaseException as exc:  # the helper itself failed: every step left gets it
            with self._cond:
                for name, _fn in self._steps:
                    self._done.setdefault(name, (False, exc))
                self._cond.notify_all()

    def get(self, name: str) -> Any:
        if not self._launched:  # inline (not handed to the helper): run the step now, once
            if name not in self._done:
                fn = dict(self._steps)[name]
                try:
                    self._done[name] = (True, fn())
                except Exception as exc:
                    self._done[name] = (False, exc)
        elif name not in self._done:
            with self._cond:
                idle = self._run_idle
                self._run_idle = True  # waiting: the helper may run every step it has left
                self._cond.notify_all()
                while name not in self._done:
                    self._cond.wait()
                self._run_idle = idle
        ok, value = self._done[name]
        if not ok:
            raise value
        return value
