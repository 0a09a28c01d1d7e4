"""Where a run's CPU goes, thread by thread (Linux /proc), for ``sonomap bench``.

:class:`ThreadCpu` samples ``/proc/self/task/<tid>/stat`` on a background thread while a run
lasts, keeping each thread's last CPU time (user + system), so threads that end before the run
does still count. Python threads are named by their ``threading`` name (``decode``, ``sinks``,
``render_0``, ``sink-video``; the thread that called :meth:`ThreadCpu.start` is ``caller``, or
the name given);
native threads (ONNX Runtime's pool, codec threads) are grouped by their kernel name.
A thread's CPU after its last sample is lost when it ends (at most one interval's worth); the
process's own CPU clock counts it, so the difference is reported as ``unattributed`` and the
total stays exact. That total against the cores the process may use gives the CPU-bound ceiling
of the frame rate: at that CPU cost per frame no schedule can beat ``cores * 1000 / cpu_ms_per_frame``.
"""

from __future__ import annotations

import os
import threading
import time

from edge_runtime.units import MS_PER_S

SAMPLE_S = 0.05
JOIN_S = 5.0  # the sampler wakes every SAMPLE_S; never wait longer than this for it
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
UTIME_FIELD, STIME_FIELD = 11, 12  # after the ")" that closes the command name in /proc/.../stat


def _task_cpu_s() -> dict[int, tuple[float, str]]:
    """tid -> (CPU seconds so far, kernel thread name) for every thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended between listdir and open
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 1 :].split()
        out[int(tid)] = ((int(rest[UTIME_FIELD]) + int(rest[STIME_FIELD])) / TICKS_PER_S, comm)
    return out


class ThreadCpu:
    """``start()``, run the work, ``stop()``; then ``per_frame_ms(frames)``."""

    def __init__(self, caller: str = "caller", interval_s: float = SAMPLE_S):
        self.caller = caller
        self.interval_s = interval_s
        self._base: dict[int, tuple[float, str]] = {}
        self._process_s = 0.0
        self._last: dict[int, tuple[float, str]] = {}
        self._names: dict[int, str] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self._last.update(_task_cpu_s())
        for t in threading.enumerate():
            if t.native_id is not None and t is not self._thread:
                self._names.setdefault(t.native_id, t.name)

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            self._sample()

    def start(self) -> ThreadCpu:
        self._process_s = -time.process_time()  # all threads, ended ones included
        self._base = _task_cpu_s()
        self._names[threading.get_native_id()] = self.caller
        self._thread = threading.Thread(target=self._loop, name="threadcpu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_S)
        self._sample()
        self._process_s += time.process_time()

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        """CPU ms per frame by thread name, largest first, plus ``unattributed`` (see above); the
        values add up to the process's CPU over the run. The sampler itself is left out."""
        seconds: dict[str, float] = {}
        sampler = 0.0
        for tid, (cpu, comm) in self._last.items():
            used = cpu - self._base.get(tid, (0.0, comm))[0]
            if self._thread is not None and tid == self._thread.native_id:
                sampler = used
            elif used > 0:
                name = self._names.get(tid, f"native:{comm}")
                seconds[name] = seconds.get(name, 0.0) + used
        rest = self._process_s - sampler - sum(seconds.values())
        if rest > 0:
            seconds["unattributed"] = rest
        per_frame = MS_PER_S / max(frames, 1)
        return dict(sorted(((k, round(v * per_frame, 2)) for k, v in seconds.items()), key=lambda kv: -kv[1]))
