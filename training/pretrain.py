"""`sonomap pretrain`: self-supervised pretraining on unlabelled images -> RUN/pretrained.pt.

Inputs: a training config (the model, normalisation and augmentation of the run that will start
from these weights), a dataset in the layout of :mod:`training.data` (its **train split's images**;
labels are not read) and, optionally, folders of further unlabelled images (``--images``). Images
of the validation and test splits are never used, so a later choice by validation stays honest.

The task is image restoration (:mod:`training.pretext`, Models Genesis): each epoch every image is
augmented as in training, distorted, and the network restores the clean image through its first
output channel (sigmoid, mean squared error). Every layer but the segmentation head learns.

Outputs in RUN/:
- ``pretrained.pt``: the weights without the segmentation head(s), the ``model_config`` and a
  ``pretext`` record (method, images, epochs, normalisation). Written after every epoch, so a run
  stopped by hand keeps its last epoch. Start training from it with ``sonomap train --init-from
  RUN/pretrained.pt`` (the head starts fresh; :mod:`training.warmstart`). It is not a segmentation
  model: export and evaluate refuse it.
- ``metrics.csv``: one row per epoch (restoration loss, lr, seconds); ``summary.json`` (rewritten
  after every epoch with the three files in step; ``finished`` true once the run ended normally).
An earlier pretraining run in RUN is replaced, epoch by epoch: a new run stopped early leaves no file
of the old run's beside its own; a RUN holding a training run (or another command's metrics.csv /
summary.json), or that is a file, is refused before the dataset is read. A NaN/inf loss or weight
stops the run with a one-line error naming the epoch (and iteration); the last good epoch's files stay.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edge_runtime.atomic import check_apart, check_output_file
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.jsonfile import atomic_write_json
from edge_runtime.preprocess import preprocess
from edge_runtime.source_kinds import IMAGE_SUFFIXES
from training.checkpoint_save import save_checkpoint
from training.config import load_config, model_config, use_cpu_bf16
from training.config_schema import AugmentConfig, TrainingConfig
from training.data import read_cases, read_unlabelled, select_split
from training.engine import check_finite_loss, check_finite_weights
from training.models import build_model
from training.pretext import distort
from training.provenance import resolve_norm
from training.rng import seed_all
from training.run_setup import RUN_FILES, RUN_LOGS, check_run_folder, refuse_files
from training.tblog import write_history_csv
from training.transforms import UINT8_MAX, augment_gray
from training.warmstart import ALL_HEADS, in_heads

log = logging.getLogger("sonomap.train")
PRETEXT = "models_genesis"
PRETRAINED = "pretrained.pt"  # the run's one checkpoint
WARMUP_FRACTION = 0.02  # of the run: linear lr warmup, then cosine to zero
SECONDS_PER_MINUTE = 60.0
CSV_FIELDS = ("epoch", "lr", "loss", "images", "epoch_seconds", "elapsed_s")


def pretext_images(data: str | Path, extra: list[str | Path] = ()) -> list[Path]:
    """The train split's image files (first, in cases.csv order) plus every image under each ``extra``
    folder (sorted)."""
    paths = [s.image for s in select_split(read_cases(data), "train", data)]
    for folder in extra:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"--images {folder}: not a folder")
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise InputError(f"--images {folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        paths.extend(found)
    return paths


class RestorationDataset(Dataset):
    """Items: (distorted input float32 [1,h,w] as the runtime preprocesses it, clean target float32
    [1,h,w] in [0, 1], index), from GRAYS, the images already decoded (:func:`training.data.read_unlabelled`). Each item's
    RNG is seeded from (seed, epoch, index)."""

    def __init__(self, grays, size, mean: float, std: float, augment: AugmentConfig, seed: int = 0):
        self.grays = list(grays)
        self.size, self.mean, self.std = size, mean, std
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.grays)

    def __getitem__(self, index: int):
        h, w = self.size
        rng = np.random.default_rng((self.seed, self.epoch, index))
        gray = self.grays[index]
        if self.augment.enabled:
            img, _warp = augment_gray(gray, self.size, rng, self.augment)
        else:
            img = cv2.resize(gray, (w, h), interpolation=cv2.INTER_LINEAR)
        clean = img.astype(np.float32) / UINT8_MAX
        broken = np.clip(distort(clean, rng) * UINT8_MAX + 0.5, 0, UINT8_MAX).astype(np.uint8)
        x = preprocess(broken, h, w, self.mean, self.std)  # the runtime's own input contract
        return torch.from_numpy(x), torch.from_numpy(clean[None]), index


def lr_factor(progress: float) -> float:
    """Linear warmup over the first :data:`WARMUP_FRACTION`, then cosine to zero at progress 1."""
    if progress < WARMUP_FRACTION:
        return max(progress / WARMUP_FRACTION, 0.01)
    p = (progress - WARMUP_FRACTION) / (1.0 - WARMUP_FRACTION)
    return 0.5 * (1.0 + math.cos(math.pi * min(p, 1.0)))


def encoder_decoder_state(model: torch.nn.Module) -> dict:
    """The model's weights without its segmentation head(s) (never pretrained)."""
    return {k: v for k, v in model.state_dict().items() if not in_heads(k, ALL_HEADS)}


def run(
    config: str | Path,
    data: str | Path,
    out: str | Path,
    images: list[str | Path] = (),
    epochs: int = 200,
    max_minutes: float | None = None,
    lr: float = 1e-3,
) -> dict:
    """Pretrain; returns the summary (also RUN/summary.json). Ends after ``epochs`` or at
    ``max_minutes``, whichever comes first; the lr reaches zero at that end."""
    if epochs < 1:  # the command line refuses it too; a caller in Python gets the same one line
        raise ConfigError(f"--epochs {epochs}: must be a whole number >= 1")
    cfg = load_config(config)
    tc, dc = cfg.train, cfg.data
    seed_all(int(tc.seed), False)
    out = Path(out)
    _check_out(out, data, images)
    train = select_split(read_cases(data), "train", data)
    # each image decoded once, held for every epoch; a measured normalisation ('auto') is taken on the
    # train split's images among them (listed first), as train measures it on the pairs it holds
    grays = [read_unlabelled(p) for p in pretext_images(data, images)]
    mean, std = resolve_norm(dc, train, grays[: len(train)])
    size = (int(dc.input_height), int(dc.input_width))
    ds = RestorationDataset(grays, size, mean, std, cfg.augment, seed=int(tc.seed))
    gen = torch.Generator().manual_seed(int(tc.seed))
    loader = DataLoader(ds, batch_size=int(tc.batch_size), shuffle=True, drop_last=True, generator=gen)
    if len(loader) == 0:
        raise InputError(f"{data}: {len(ds)} images are fewer than one batch of {tc.batch_size}")
    mc = cfg.model
    model = build_model(mc.arch, int(mc.num_classes), aux=False, width=mc.width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=float(tc.weight_decay))
    bf16 = use_cpu_bf16(tc.amp_cpu_bf16)
    budget_s = max_minutes * SECONDS_PER_MINUTE if max_minutes else None
    total_iters = epochs * len(loader)
    # OUT is made by the first epoch's files (a run that fails before leaves no empty folder behind)
    check_output_file(out / PRETRAINED, "--out")
    log.info("pretraining %s on %d unlabelled images (%s)", mc.arch, len(ds), PRETEXT)
    history, it, t0, epoch = [], 0, time.monotonic(), -1
    stopped = False
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        model.train()
        total, count, e0 = 0.0, 0, time.monotonic()
        for iteration, (x, target, _) in enumerate(loader, start=1):
            progress = it / total_iters
            if budget_s:
                progress = max(progress, (time.monotonic() - t0) / budget_s)
            if progress >= 1.0:
                stopped = True
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(progress)
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
                restored = torch.sigmoid(model(x)[:, :1].float())
            loss = torch.nn.functional.mse_loss(restored, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(tc.grad_clip) or math.inf)
            optimizer.step()
            value = loss.item()
            check_finite_loss(value, f"epoch {epoch}, iteration {iteration}")
            total, count, it = total + value * len(x), count + len(x), it + 1
        if count:
            check_finite_weights(model, f"epoch {epoch}")  # never replace a good pretrained.pt
            row = {
                "epoch": epoch,
                "lr": optimizer.param_groups[0]["lr"],
                "loss": total / count,
                "images": count,
                "epoch_seconds": time.monotonic() - e0,
                "elapsed_s": time.monotonic() - t0,
            }
            history.append(row)
            _save(out, model, cfg, len(ds), epoch, mean, std, row["loss"])
            write_history_csv(out / "metrics.csv", history, CSV_FIELDS)
            # every epoch, so an interrupted run never leaves an earlier run's summary beside its files
            _write_summary(out, _summary(out, len(ds), history, t0, mean, std, finished=False))
            log.info("pretext epoch %d loss %.5f %.0fs", epoch, row["loss"], row["elapsed_s"])
        if stopped:
            break
    if not history:
        raise InputError(f"{out}: the time budget ended before one pretraining epoch")
    summary = _summary(out, len(ds), history, t0, mean, std, finished=True)
    _write_summary(out, summary)
    return summary


def _summary(out: Path, n_images: int, history: list[dict], t0: float, mean, std, finished: bool) -> dict:
    """The run so far; ``finished`` False while epochs remain (a run stopped by hand keeps that)."""
    return {
        "run": out.name,  # not its path: a folder above the run may be named after the patient
        "pretext": PRETEXT,
        "images": n_images,
        "epochs_done": len(history),
        "finished": finished,
        "final_loss": history[-1]["loss"],
        "first_loss": history[0]["loss"],
        "elapsed_s": time.monotonic() - t0,
        "mean": mean,
        "std": std,
    }


def _write_summary(out: Path, summary: dict) -> None:
    atomic_write_json(out / "summary.json", summary)


def _check_out(out: Path, data, images) -> None:
    """Refuse an OUT that is, lies inside or contains the dataset DATA or one of the IMAGES folders,
    one that is a file (the one line train gives), and one whose files pretrain would replace without
    having written them: a training run's (checkpoints, metrics.csv, summary.json) or, where no
    pretrained.pt shows an earlier pretraining run, any metrics.csv or summary.json. An earlier
    pretraining run is replaced."""
    check_apart(data, out, "--data")
    for folder in images:
        check_apart(folder, out, "--images")
    check_run_folder(out)
    refuse_files(
        out,
        [name for name in RUN_FILES if name != PRETRAINED],
        "so it holds a training run, whose metrics.csv and summary.json pretraining would replace; "
        "give a new --out folder",
    )
    if not (out / PRETRAINED).exists():
        refuse_files(out, RUN_LOGS, "which pretrain did not write and would replace; give a new --out folder")


def _save(out: Path, model, cfg: TrainingConfig, n_images: int, epoch: int, mean, std, loss) -> None:
    pretext = {
        "method": PRETEXT,
        "images": n_images,
        "epoch": epoch,
        "loss": loss,
        "mean": mean,
        "std": std,
        "input_size": [int(cfg.data.input_height), int(cfg.data.input_width)],
    }
    payload = {"model": encoder_decoder_state(model), "model_config": model_config(cfg), "pretext": pretext}
    save_checkpoint(payload, out / PRETRAINED)
