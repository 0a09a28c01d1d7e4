"""This process's memory, from /proc (Linux: carts and Jetsons).

``rss_bytes``: resident set size now (the soak test's growth trace). ``peak_rss_bytes``: the high-water
mark of this process's own address space (VmHWM). Unlike ``getrusage``'s ``ru_maxrss``, VmHWM starts
afresh at exec, so a child started by a large parent (``subprocess`` forks it from the parent's
memory) reports its own peak, not the parent's.
"""

from __future__ import annotations

import os

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
KIB = 1024
GIB = 1024**3


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's address space (VmHWM in /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KIB
    raise OSError("/proc/self/status has no VmHWM line")
