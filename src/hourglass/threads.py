"""How many CPU threads torch uses while hourglass trains.

On a machine that is busy with anything else, torch's OpenMP threads collapse: each parallel region
waits at a barrier for the thread whose core another process holds, and the others spin meanwhile.
Measured on a 2-core machine (``benchmarks/threads.py``), the main job's training took 1.8 s alone
and 10 s beside one busy process with two threads, 1.9 s with one.

``threads=N`` (``--threads N``) fixes the count. The default (``None``) is automatic:

* at most the number of usable cores (``os.sched_getaffinity``: a ``taskset`` or container limit
  counts), shared out among the processes ``torchrun`` started on this machine (``LOCAL_WORLD_SIZE``),
  and at most torch's own setting (``torch.set_num_threads`` in your program, or
  ``OMP_NUM_THREADS``, is respected as a ceiling);
* while training, the CPU time other processes take is measured from ``/proc/stat`` (total busy
  time minus this process's own, every half second or so) and torch is given only the cores they
  leave free, at least one. When they finish, the threads come back.

Outside Linux (no ``/proc/stat``) the automatic count is the ceiling. The previous thread count is
restored when training ends, so nothing leaks into the caller's program.
"""

from __future__ import annotations

import math
import os
import time

INTERVAL = 0.5  # seconds between measurements while training
START_WINDOW = 0.05  # seconds measured before the first epoch
# A core counts as free while other processes take less than this share of it: a second thread beside
# a process that takes half a core already loses more at the barriers than it gains.
SHARE = 0.3


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; a ``taskset`` or container limit counts)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _local_processes() -> int:
    """Training processes torchrun started on this machine (1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _busy_seconds() -> float | None:
    """Seconds of CPU time spent busy by the whole machine so far (``/proc/stat``), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy
    values = [int(v) for v in fields[1:9]]
    busy = sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class ThreadGovernor:
    """Sets torch's thread count for a training run and keeps it matched to the free cores.

    ``start()`` before training, ``tick()`` now and then (the trainer calls it when it reads losses
    back), ``stop()`` at the end (restores the previous count)."""

    def __init__(self, threads: int | None):
        self.fixed = threads
        self.previous: int | None = None
        self.ceiling = 1
        self.current = 1
        self._mark: tuple[float, float, float] | None = None

    def start(self) -> int:
        import torch

        self.previous = torch.get_num_threads()
        if self.fixed is not None:
            self.current = self.fixed
        else:
            self.ceiling = max(1, min(usable_cores() // _local_processes(), self.previous))
            self.current = self.ceiling
            if self.ceiling > 1 and self._measure() is not None:
                time.sleep(START_WINDOW)
                self.current = self._free_cores()
        torch.set_num_threads(self.current)
        return self.current

    def tick(self) -> None:
        """Re-measure (at most every ``INTERVAL`` seconds) and follow the free cores (automatic mode)."""
        if self.fixed is not None or self.ceiling <= 1 or self._mark is None:
            return
        if time.monotonic() - self._mark[0] < INTERVAL:
            return
        free = self._free_cores()
        if free != self.current:
            import torch

            self.current = free
            torch.set_num_threads(free)

    def stop(self) -> None:
        if self.previous is not None:
            import torch

            torch.set_num_threads(self.previous)
            self.previous = None

    # -- measuring ---------------------------------------------------------------------------------
    def _measure(self) -> tuple[float, float, float] | None:
        busy = _busy_seconds()
        if busy is None:
            return None
        self._mark = (time.monotonic(), busy, _own_seconds())
        return self._mark

    def _free_cores(self) -> int:
        """Cores left by other processes since the last mark (and a new mark)."""
        before = self._mark
        now = self._measure()
        if before is None or now is None or now[0] <= before[0]:
            return self.ceiling
        elapsed = now[0] - before[0]
        others = max(0.0, (now[1] - before[1]) - (now[2] - before[2])) / elapsed
        return max(1, min(self.ceiling, math.floor(self.ceiling - others + SHARE)))
