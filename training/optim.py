"""Optimiser (SGD or AdamW) and the warmup + poly or cosine-with-restarts learning-rate schedule.

Parameter groups follow torchvision's reference recipe: network at the base lr, the aux
head (when present) at ``aux_lr_mult`` x lr. The schedule is per iteration:
lr = base x warmup(it) x (1 - progress)^power, where progress is the fraction of the
iteration budget, or of the time budget (``--max-minutes``) when that ends sooner, so a
time-limited run still anneals to zero instead of stopping at a high lr.
``train.schedule: cosine`` splits the same progress into ``train.cycles`` equal cycles, each a
cosine from the base lr down to zero (SGDR, Loshchilov & Hutter 2017; one cycle is plain cosine
annealing); the end of each cycle is a low-lr point worth keeping as a snapshot.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config_schema import TrainConfig

WARMUP_START = 0.01  # warmup ramps lr linearly from 1% of base


def build_optimizer(model: nn.Module, train_cfg: TrainConfig) -> torch.optim.Optimizer:
    main, aux = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (aux if ".aux_classifier." in f".{name}" else main).append(param)
    lr = float(train_cfg.lr)
    groups = [{"params": main, "lr": lr}]
    if aux:
        groups.append({"params": aux, "lr": lr * float(train_cfg.aux_lr_mult)})
    wd = float(train_cfg.weight_decay)
    if train_cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(train_cfg.momentum), weight_decay=wd)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)


class PolySchedule:
    """Warmup + poly decay; ``step(progress)`` sets each group's lr. Checkpointable."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_iters: int, power: float):
        self.optimizer = optimizer
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.warmup_iters, self.power = int(warmup_iters), float(power)
        self.iteration = 0
        self.apply(0.0)

    def warm(self) -> float:
        if self.iteration < self.warmup_iters:
            return WARMUP_START + (1.0 - WARMUP_START) * self.iteration / self.warmup_iters
        return 1.0

    def cycle(self, progress: float) -> int:
        """Index of the schedule cycle ``progress`` falls in (always 0 for poly)."""
        return 0

    def factor(self, progress: float) -> float:
        return self.warm() * max(0.0, 1.0 - min(progress, 1.0)) ** self.power

    def apply(self, progress: float) -> None:
        f = self.factor(progress)
        for group, base in zip(self.optimizer.param_groups, self.base, strict=False):
            group["lr"] = base * f

    def step(self, progress: float) -> None:
        self.iteration += 1
        self.apply(progress)

    def state_dict(self) -> dict:
        return {
            "base": self.base,
            "warmup_iters": self.warmup_iters,
            "power": self.power,
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict) -> None:
        self.base = list(state["base"])
        self.warmup_iters, self.power, self.iteration = (
            state["warmup_iters"],
            state["power"],
            state["iteration"],
        )


class CosineRestarts(PolySchedule):
    """Warmup, then ``cycles`` cosine decays from the base lr to zero over the progress budget."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_iters: int, cycles: int):
        self.cycles = int(cycles)
        super().__init__(optimizer, warmup_iters, 1.0)

    def cycle(self, progress: float) -> int:
        return min(int(min(max(progress, 0.0), 1.0) * self.cycles), self.cycles - 1)

    def factor(self, progress: float) -> float:
        within = min(max(progress, 0.0), 1.0) * self.cycles - self.cycle(progress)
        return self.warm() * 0.5 * (1.0 + math.cos(math.pi * within))


def build_schedule(optimizer: torch.optim.Optimizer, train_cfg: TrainConfig) -> PolySchedule:
    if train_cfg.schedule == "cosine":
        return CosineRestarts(optimizer, int(train_cfg.warmup_iters), int(train_cfg.cycles))
    return PolySchedule(optimizer, int(train_cfg.warmup_iters), float(train_cfg.poly_power))
