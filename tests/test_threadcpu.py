"""ThreadCpu: per-thread CPU from /proc, threads that ended before the run did still counted."""

from __future__ import annotations

import hashlib
import threading
import time

from edge_runtime.tools.threadcpu import ThreadCpu

BURN_S = 0.3
TICK_MS = 10  # /proc counts CPU in clock ticks
INTERVAL_S = 0.02
CHUNK = bytes(1 << 20)


def burn(seconds: float) -> None:
    """Busy for ``seconds`` of this thread's CPU, mostly without the GIL (hashing 1 MB releases it),
    like the runtime's codec and inference threads."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        hashlib.sha256(CHUNK).digest()


def test_cpu_by_thread_counts_a_finished_thread_and_the_caller():
    cpu = ThreadCpu(caller="inference", interval_s=INTERVAL_S).start()
    worker = threading.Thread(target=burn, args=(BURN_S,), name="decode")
    worker.start()
    worker.join()  # ends well before stop(): what was sampled of it must survive
    burn(BURN_S / 2)
    cpu.stop()
    by_thread = cpu.per_frame_ms(frames=1)
    # The ended thread's last interval or so goes unsampled (more if the sampler is starved on a
    # busy machine); it shows up as unattributed, so the two add up exactly.
    assert BURN_S * 500 <= by_thread["decode"] <= BURN_S * 1000 + 2 * TICK_MS
    assert abs(by_thread["inference"] - BURN_S * 500) <= 2 * TICK_MS
    decode_and_rest = by_thread["decode"] + by_thread.get("unattributed", 0.0)
    # process clock vs ticks: three threads' counts are each rounded to a tick (the worker, the
    # caller and the sampler, whose CPU is subtracted from the process's)
    assert abs(decode_and_rest - BURN_S * 1000) <= 3 * TICK_MS + 5
    assert "threadcpu" not in by_thread  # the sampler is not part of the run
    assert list(by_thread) == sorted(by_thread, key=by_thread.get, reverse=True)
    assert abs(cpu.per_frame_ms(frames=10)["decode"] - by_thread["decode"] / 10) <= 0.01
