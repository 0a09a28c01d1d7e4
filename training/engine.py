"""One training epoch and one validation pass.

``train_one_epoch``: loader of (x [N,1,h,w], y [N,h,w], index) -> mean loss; steps the
optimiser and the lr schedule every iteration, clips gradients, uses AMP/channels_last on
CUDA, and stops early when ``time_up()`` says the time budget is spent.
``validate``: loader -> per-image :class:`training.metrics.Counts` at the network's input
size (the final test evaluation in :mod:`training.evaluate` works at each image's own size).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from training.metrics import Counts, confusion_counts

try:
    from tqdm import tqdm
except ImportError:  # tqdm is in the train extra; progress bars are optional
    tqdm = None


def _bar(iterable, show: bool, desc: str):
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True) if (show and tqdm) else iterable


def train_one_epoch(
    model: nn.Module,
    loader,
    loss_fn: nn.Module,
    optimizer,
    schedule,
    scaler,
    device: torch.device,
    grad_clip: float,
    progress: Callable[[], float],
    time_up: Callable[[], bool],
    show_progress: bool = True,
    desc: str = "train",
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
    after_step: Callable[[], None] | None = None,
) -> dict:
    """``scaler`` set: CUDA float16 AMP. ``autocast_dtype`` set without a scaler: e.g. CPU bfloat16
    autocast (bfloat16 has float32's range, so no loss scaling is needed). ``after_step`` runs
    after every optimiser step (e.g. the weight average's update)."""
    model.train()
    total, count, start, stopped = 0.0, 0, time.monotonic(), False
    use_amp = scaler is not None
    for x, y, _ in _bar(loader, show_progress, desc):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            device_type=device.type, dtype=autocast_dtype, enabled=use_amp or autocast_dtype is not None
        ):
            out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        if use_amp:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if use_amp:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if after_step is not None:
            after_step()
        schedule.step(progress())
        total += float(loss.detach()) * x.shape[0]
        count += x.shape[0]
        if time_up():
            stopped = True
            break
    seconds = time.monotonic() - start
    return {
        "loss": total / max(count, 1),
        "images": count,
        "seconds": seconds,
        "images_per_s": count / max(seconds, 1e-9),
        "stopped": stopped,
    }


@torch.no_grad()
def validate(
    model: nn.Module, loader, device: torch.device, threshold: float, cancer_index: int = 1
) -> list[Counts]:
    model.eval()
    counts: list[Counts] = []
    for x, y, _ in loader:
        logits = model(x.to(device))
        if isinstance(logits, dict):
            logits = logits["out"]
        prob = logits.float().softmax(dim=1)[:, cancer_index].cpu().numpy()
        for p, lab in zip(prob, y.numpy(), strict=False):
            counts.append(confusion_counts(p >= threshold, lab.astype("uint8")))
    return counts
