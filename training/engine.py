"""One training epoch and one validation pass.

``train_one_epoch``: loader of (x [N,1,h,w], y [N,h,w], index) -> mean loss; steps the
optimiser and the lr schedule every iteration, clips gradients, uses AMP/channels_last on
CUDA, and stops early when ``time_up()`` says the time budget is spent. A loss that is not a
finite number (NaN/inf: an lr far too high, all-zero class weights) stops the run with
:class:`NonFiniteLoss` before anything of that epoch is saved; :func:`check_finite_weights` guards
every save, so weights that went non-finite are never written over a good checkpoint.
``selected_metric``: a validation summary -> the metric that selects the epoch, and its value.
``validate``: loader -> per-image :class:`training.metrics.Counts` at the network's input
size (the final test evaluation in :mod:`training.evaluate` works at each image's own size).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from edge_runtime.errors import SonomapError
from training.metrics import Counts, confusion_counts

try:
    from tqdm import tqdm
except ImportError:  # tqdm is in the train extra; progress bars are optional
    tqdm = None


def _bar(iterable, show: bool, desc: str):
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True) if (show and tqdm) else iterable


NON_FINITE_HINT = (
    "lower train.lr, keep train.grad_clip > 0, check train.class_weights and data.std; "
    "checkpoints already written are kept"
)


class NonFiniteLoss(SonomapError):
    """The training loss or the weights became NaN or infinite: the run cannot recover from it."""


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise :class:`NonFiniteLoss` naming ``where`` (e.g. "epoch 3") when any floating-point
    weight or buffer of ``model`` is NaN or infinite: such a model validates to Dice 0, which
    would still beat the initial best of -1 and be saved as best.pt."""
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise NonFiniteLoss(
                f"{where}: weight {name!r} is not finite (NaN or inf); not saved; {NON_FINITE_HINT}"
            )


def check_finite_loss(value: float, where: str) -> None:
    """Raise :class:`NonFiniteLoss` naming ``where`` (epoch and iteration) for a NaN/inf loss."""
    if not math.isfinite(value):
        raise NonFiniteLoss(f"{where}: the training loss is {value} (not finite); stopped; {NON_FINITE_HINT}")


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
    after every optimiser step (e.g. the weight average's update). A non-finite loss raises
    :class:`NonFiniteLoss` naming ``desc`` and the iteration (1-based, within the epoch); the
    caller saves nothing of that epoch."""
    model.train()
    total, count, start, stopped = 0.0, 0, time.monotonic(), False
    use_amp = scaler is not None
    for iteration, (x, y, _) in enumerate(_bar(loader, show_progress, desc), start=1):
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
        # read (one host sync) after the step, where it always was, so CUDA keeps queueing work;
        # the weights that step changed are never saved: the run ends here
        value = float(loss.detach())
        check_finite_loss(value, f"{desc}, iteration {iteration}")
        total += value * x.shape[0]
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


# What selects an epoch when the configured metric is undefined on the validation split: the per-image
# Dice mean is defined on any split with a labelled pixel (train refuses a val split without one),
# since an image without cancer where nothing is predicted scores 1.0 (training.metrics).
FALLBACK_SELECT_METRIC = "dice_mean"


def selected_metric(summary: dict, metric: str) -> tuple[str, float]:
    """A validation summary (:func:`training.metrics.summarize`) and the configured select metric ->
    (the metric that scores this epoch, its value). A NaN metric (``dice_pos_mean`` on a split
    without a cancer pixel; ``dice_pooled`` there when nothing is predicted either) gives way to
    :data:`FALLBACK_SELECT_METRIC`, returned by name, so best.pt's manifest, summary.json and the
    epoch line never credit the configured metric with the fallback's value."""
    value = float(summary[metric])
    if math.isnan(value):
        return FALLBACK_SELECT_METRIC, float(summary[FALLBACK_SELECT_METRIC])
    return metric, value


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
