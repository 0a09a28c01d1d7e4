"""Seeding a training run, and the random states a resumed run restores (torch, numpy, Python, CUDA).

Input: the config's seed and ``--deterministic``. Output: every generator seeded (and, deterministic,
torch's deterministic algorithms on); :func:`rng_state` is what ``RUN/last.pt`` keeps, and
:func:`set_rng_state` puts it back, so ``--resume`` continues with the same random draws.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from training.checkpoint_save import numpy_rng_state


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": numpy_rng_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_all(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
