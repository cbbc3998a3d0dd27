"""One BLAS thread for the optimizer's numerical work.

The core's matrices are small (a few hundred rows at most): BLAS threads only add
synchronization. Worse, OpenBLAS threads wait for each other by spinning, so when every core is
busy (Celery runs one worker process per core; a shared machine) a 131 x 131 eigendecomposition
that takes 1.5 ms on one thread was measured at 230-430 ms with numpy's default of one thread
per core. :func:`one_blas_thread` sets numpy's OpenBLAS to one thread for the calling thread
(``openblas_set_num_threads_local``) and restores the previous value on exit.

One thread also makes results independent of the machine: a threaded BLAS may split a sum
between threads, and how it splits depends on the number of cores, so the last bits of a
product could differ between the machine that ran a proposal and the one that replays it. When
numpy is not linked to an OpenBLAS that has the call (another BLAS, another platform), this
does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


@functools.cache
def _local_setter() -> Callable[[int], int] | None:
    """``openblas_set_num_threads_local`` of the OpenBLAS numpy has loaded, or None."""
    no_load = getattr(os, "RTLD_NOLOAD", None)
    if no_load is None:
        return None
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("*openblas*")) if libs.is_dir() else []:
        try:
            lib = ctypes.CDLL(str(path), mode=no_load | os.RTLD_LAZY)  # only if already loaded
            fn = lib.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with one BLAS thread in this thread (usable as a decorator too)."""
    setter = _local_setter()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)
