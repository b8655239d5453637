"""Wall-clock timing: the one helper the studies, benchmarks and scripts time code with.

:func:`time_runs` is the primitive (warm-up calls, then ``repeats`` timed calls, each
bracketed by an optional ``synchronize`` such as ``torch.cuda.synchronize`` so that
asynchronous devices are timed fully); :func:`fastest` and :func:`fastest_interleaved`
take the minimum, the least disturbed estimate: other load on the machine only ever adds
time (a median of 3 moved by 3x under load here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np


def time_runs(
    fn: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
    synchronize: Callable[[], object] | None = None,
) -> np.ndarray:
    """Wall-clock seconds of ``repeats`` calls of ``fn()`` after ``warmup`` calls.

    ``synchronize`` (e.g. ``torch.cuda.synchronize``) is called before starting and
    after stopping each clock, so asynchronous devices are timed fully.
    """
    for _ in range(warmup):
        fn()
    sync = synchronize or (lambda: None)
    times = []
    for _ in range(max(1, repeats)):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def fastest(
    fn: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
    synchronize: Callable[[], object] | None = None,
) -> float:
    """The minimum of :func:`time_runs`, in seconds."""
    return float(np.min(time_runs(fn, repeats, warmup, synchronize)))


def fastest_interleaved(
    fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 0
) -> dict[str, float]:
    """The minimum time of each function, the calls interleaved round by round so that a
    change of load on the machine hits every function alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: float("inf") for name in fns}
    for _ in range(max(1, repeats)):
        for name, fn in fns.items():
            times[name] = min(times[name], fastest(fn, 1, 0))
    return times
