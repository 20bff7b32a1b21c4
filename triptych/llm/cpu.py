"""CPU time of the local model servers, so a local answer can be priced by what it used.

A meter is any callable returning the CPU seconds (user + system) each server process has used so
far, by process id (`LocalModels.cpu_seconds`). An answer's share is the difference between a reading
before and one after its generation, taken while it holds the local model's queue: with one slot,
nothing else generates meanwhile, so the difference is that answer's alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import psutil

CpuMeter = Callable[[], Mapping[int, float]]


def process_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each of `pids` that is still alive."""
    used: dict[int, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:  # exited (or stopped) since it was listed: it used nothing more for this answer
            continue
        used[pid] = times.user + times.system
    return used


def cpu_used(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds used between two readings by the processes present in both.

    A server started in between (its model load) or stopped in between is left out: neither is the answer's work.
    """
    return sum(max(0.0, after[pid] - before[pid]) for pid in before.keys() & after.keys())
