"""Start training from an earlier model's weights (``sonomap train --init-from CK``): fine-tuning.

Input: a checkpoint (``best.pt``, e.g. one rebuilt from an exported ONNX file by
:mod:`training.recover`) with the same ``model_config`` as the run's config, and the run's train
loader. Output: the model's weights replaced in place; nothing is written.

Why the BatchNorm step: a checkpoint rebuilt from a folded ONNX graph carries each BatchNorm as the
identity plus a bias (running mean 0, variance 1 - eps, weight 1). That is exact in eval mode, but
in train mode BatchNorm normalises by the batch's own statistics, so the first training step would
rescale every layer and throw the learned function away. :func:`restandardize_batchnorm` measures
each BatchNorm input's mean m and standard deviation s on training images and rewrites the layer as
running mean m, variance s^2 - eps, weight s, bias m + b: still the same function in eval mode
(exactly), and in train mode it normalises batches back to where the weights expect them. Every
BatchNorm kind counts (SyncBatchNorm too, which torchrun on GPUs trains). Under torchrun each rank
measures its own shard, so rank 0's weights and statistics are then copied to every rank: DDP
synchronises gradients, not weights, and ranks that started apart would stay apart.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from edge_runtime.errors import ConfigError
from training.checkpoint import read_checkpoint

log = logging.getLogger("sonomap.train")
STATS_BATCHES = 8  # training batches used to measure BatchNorm input statistics
NORM_TOLERANCE = 1e-3  # relative: a pretraining normalisation this close counts as the same
MIN_VARIANCE = 1e-6  # a dead channel (constant input) keeps a tiny positive variance
AUX_HEADS = ("aux_head", "aux_classifier")  # training-only heads (training/unet.py, torchvision's)
PRETEXT_FREE_HEADS = ("head", "classifier")  # segmentation heads a pretext checkpoint does not carry
ALL_HEADS = (*AUX_HEADS, *PRETEXT_FREE_HEADS)
# the public BatchNorm classes (torch's common base class is private)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def in_heads(key: str, heads: tuple[str, ...]) -> bool:
    """Whether state-dict ``key`` belongs to one of the modules named ``heads`` (at any depth)."""
    return any(f".{h}." in f".{key}" for h in heads)


def _is_folded(bn: nn.Module) -> bool:
    """True for a BatchNorm rebuilt from a fused graph: zero mean, unit weight, variance 1 - eps."""
    return (
        bool(torch.all(bn.running_mean == 0))
        and bool(torch.all(bn.weight == 1))
        and bool(torch.allclose(bn.running_var, torch.full_like(bn.running_var, 1.0 - bn.eps)))
    )


@torch.no_grad()
def restandardize_batchnorm(model: nn.Module, loader, device: torch.device) -> int:
    """Rewrite every folded BatchNorm from measured input statistics; returns how many changed."""
    folded = [m for m in model.modules() if isinstance(m, BATCH_NORMS) and _is_folded(m)]
    if not folded:
        return 0
    sums: dict[nn.Module, list[torch.Tensor]] = {bn: [] for bn in folded}

    def hook(module, inputs, _output):
        x = inputs[0].double()
        dims = [d for d in range(x.dim()) if d != 1]  # all but the channels
        sums[module].append(torch.stack([x.mean(dim=dims), (x * x).mean(dim=dims)]))

    handles = [bn.register_forward_hook(hook) for bn in folded]
    was_training = model.training
    model.eval()  # folded layers are exact in eval mode, so every layer's input is the original's
    try:
        for i, (x, _y, _idx) in enumerate(loader):
            if i >= STATS_BATCHES:
                break
            model(x.to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for bn in folded:
        moments = torch.stack(sums[bn]).mean(dim=0)
        mean = moments[0]
        var = (moments[1] - mean * mean).clamp(min=MIN_VARIANCE + bn.eps)
        std = var.sqrt()
        bn.bias.copy_((bn.bias.double() + mean).to(bn.bias.dtype))
        bn.weight.copy_(std.to(bn.weight.dtype))
        bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
        bn.running_var.copy_((var - bn.eps).to(bn.running_var.dtype))
    return len(folded)


def load_initial_weights(
    model: nn.Module,
    checkpoint: str | Path,
    model_config: dict,
    loader,
    device,
    norm_used: tuple[float, float],
) -> None:
    """Copy ``checkpoint``'s weights into ``model`` (same architecture required), then re-standardise
    folded BatchNorm layers on ``loader``'s images. ``norm_used``: this run's (mean, std); a
    pretext checkpoint pretrained with another normalisation is loaded with a warning."""
    state = read_checkpoint(checkpoint)
    theirs = state.get("model_config") or {}
    keys = ("arch", "num_classes", "width")
    if any(theirs.get(k) != model_config.get(k) for k in keys):
        raise ConfigError(
            f"--init-from {checkpoint}: model {dict((k, theirs.get(k)) for k in keys)} does not match the "
            f"config's {dict((k, model_config.get(k)) for k in keys)}"
        )
    # An auxiliary head (deep supervision, torchvision's aux classifier) is used by training only, so
    # a run with one may start from a checkpoint without one (the head starts fresh), and the
    # other way round the checkpoint's head is dropped. Any other key that does not fit is refused.
    # A self-supervised checkpoint (`sonomap pretrain`, key "pretext") has no segmentation head:
    # the head starts fresh, as an aux head does.
    fresh = ALL_HEADS if state.get("pretext") else AUX_HEADS
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    misfits = [k for k in (*missing, *unexpected) if not in_heads(k, fresh)]
    if misfits:
        raise ConfigError(
            f"--init-from {checkpoint}: its weights do not fit the model ({len(misfits)} keys, "
            f"e.g. {misfits[0]!r})"
        )
    norm = trained_normalisation(state)
    if norm and not all(
        math.isclose(a, b, rel_tol=NORM_TOLERANCE) for a, b in zip(norm, norm_used, strict=True)
    ):
        log.warning(
            "--init-from %s was %s with mean/std %.4f/%.4f, this run uses %.4f/%.4f: its weights see "
            "other input values at first (set data.mean and data.std to its values to fine-tune it as is)",
            Path(checkpoint).name,  # log lines name no folder: one above may be the patient's
            "pretrained" if state.get("pretext") else "trained",
            *norm,
            *norm_used,
        )
    changed = restandardize_batchnorm(model, loader, device)
    _rank0_everywhere(model)
    log.info(
        "initial weights from %s (%d folded BatchNorm layers re-standardised)", Path(checkpoint).name, changed
    )


def trained_normalisation(state: dict) -> tuple[float, float] | None:
    """(mean, std) a checkpoint's weights were trained with: a pretext checkpoint's own record, else
    its copy of the manifest's normalisation; None when it records neither (an older checkpoint)."""
    pretext = state.get("pretext")
    if pretext:
        return float(pretext["mean"]), float(pretext["std"])
    manifest = state.get("manifest")
    norm = manifest.get("normalisation") if isinstance(manifest, dict) else None
    if (
        isinstance(norm, dict)
        and isinstance(norm.get("mean"), (int, float))
        and isinstance(norm.get("std"), (int, float))
    ):
        return float(norm["mean"]), float(norm["std"])
    return None


@torch.no_grad()
def _rank0_everywhere(model: nn.Module) -> None:
    """Under torchrun, copy rank 0's weights and buffers into ``model`` on every rank (all ranks call
    this, in the same order); one process: nothing to do."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    for tensor in model.state_dict().values():  # views of the model's own tensors: filled in place
        dist.broadcast(tensor, src=0)
