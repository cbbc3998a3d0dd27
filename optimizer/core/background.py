"""Input-only work of a run, done on a helper thread while the solver runs.

Clarabel releases the GIL while it solves (the first solve of a run takes about as long as all
the Python work around it on a small account), so what depends on the snapshot alone can be
computed meanwhile on a second core: the :class:`~optimizer.core.postprocess.Evaluator`, the
exact per-lot figures and the metrics before trading, the independent checker's index of the
snapshot and the input hash. The run asks for each result when it needs it
(:meth:`Prepared.get`) and waits if the helper is not done yet; the values are the ones the run
would have computed itself (same functions, same inputs, the caller's ``Decimal`` context and
one BLAS thread), so the result is byte-identical either way.

One helper thread per process, made on first use (and again in a forked child: a Celery worker
forked from a parent that already used it starts its own). Steps are queued in the order the
run needs them; a run whose steps wait behind another run's still gets the same values. With
``OPTIMIZER_BACKGROUND=0`` in the environment everything runs inline (on the caller's thread).
"""

from __future__ import annotations

import decimal
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from optimizer.core.blas import one_blas_thread

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _reset_after_fork() -> None:
    # the helper thread does not exist in a forked child: start a new pool there on first use
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def enabled() -> bool:
    """False when ``OPTIMIZER_BACKGROUND=0`` (everything inline)."""
    return os.environ.get("OPTIMIZER_BACKGROUND", "1") != "0"


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optimizer-prep")
        return _pool


class Prepared:
    """Named steps run one after the other on the helper thread (one job per run: queuing a
    job costs more than a small step); :meth:`get` returns a step's value (or raises its
    exception), waiting for it if needed."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Any]]] = []
        self._done: dict[str, tuple[bool, Any]] = {}
        self._cond = threading.Condition()
        self._job: Future[None] | None = None
        self._context = decimal.getcontext().copy()

    def start(self, name: str, fn: Callable[[], Any]) -> None:
        """Add a step (they start together, at :meth:`launch`)."""
        self._steps.append((name, fn))

    def launch(self) -> None:
        """Start the steps on the helper thread (or leave them to :meth:`get`, inline, when
        the helper is disabled)."""
        if self._steps and enabled():
            self._job = _executor().submit(self._run)

    def _run(self) -> None:
        with decimal.localcontext(self._context), one_blas_thread():
            for name, fn in self._steps:
                try:
                    result: tuple[bool, Any] = (True, fn())
                except BaseException as exc:  # handed to the caller by get()
                    result = (False, exc)
                with self._cond:
                    self._done[name] = result
                    self._cond.notify_all()

    def get(self, name: str) -> Any:
        if self._job is None:  # inline: run the step now (once)
            if name not in self._done:
                fn = dict(self._steps)[name]
                try:
                    self._done[name] = (True, fn())
                except Exception as exc:
                    self._done[name] = (False, exc)
        else:
            with self._cond:
                while name not in self._done:
                    if self._job.done() and name not in self._done:
                        self._job.result()  # the job itself failed: raise its error
                        raise RuntimeError(f"helper step {name!r} did not run")
                    self._cond.wait(0.05)
        ok, value = self._done[name]
        if not ok:
            raise value
        return value
