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
    """Named steps started on the helper thread; :meth:`get` returns a step's value (or raises
    its exception), waiting for it if needed."""

    def __init__(self) -> None:
        self._steps: dict[str, Future[Any] | Callable[[], Any]] = {}
        self._values: dict[str, Any] = {}
        self._background = enabled()
        self._context = decimal.getcontext().copy()

    def start(self, name: str, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` (run later on the caller's thread when the helper is disabled)."""
        if not self._background:
            self._steps[name] = fn
            return
        context = self._context

        def step() -> Any:
            with decimal.localcontext(context), one_blas_thread():
                return fn()

        self._steps[name] = _executor().submit(step)

    def get(self, name: str) -> Any:
        if name not in self._values:
            step = self._steps.pop(name)
            self._values[name] = step.result() if isinstance(step, Future) else step()
        return self._values[name]

    def wait(self) -> None:
        """Wait for every step still running (their errors are raised by :meth:`get`)."""
        for step in self._steps.values():
            if isinstance(step, Future):
                step.exception()
