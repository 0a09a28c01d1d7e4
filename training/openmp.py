"""OpenMP's wait policy for the training commands (train, evaluate, calibrate, bench-train).

GNU OpenMP threads spin while waiting; on a small CPU shared with other processes the spinning
threads steal the cores the work needs (measured here: 0.8 vs 3.0 images/s on 2 contended cores).
PASSIVE makes waiting threads sleep. It only works when set before torch loads, so each command
sets it before its first torch import; a value the user set is kept.
"""

from __future__ import annotations

import os

OMP_WAIT_ENV = "OMP_WAIT_POLICY"


def passive_openmp() -> None:
    os.environ.setdefault(OMP_WAIT_ENV, "PASSIVE")
