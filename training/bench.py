"""`sonomap bench-train`: training throughput and peak memory, sonomap vs torchvision's reference loop.

Both variants train the *same* model (config arch), on the same train split, batch size,
input size and machine, for ``iters`` timed iterations after ``warmup``; each runs in its own
spawned process (:mod:`training.bench_process`, which ends it with a stop) so peak memory (CPU: max
RSS; CUDA: max allocated) is its own.

- ``reference``: torchvision ``references/segmentation`` style: PIL images decoded from disk in
  ``__getitem__``, RandomResize(0.5-2.0 x size) + RandomHorizontalFlip + RandomCrop(pad 0/255) +
  tensor + Normalize, CE (ignore 255, +0.5 aux), SGD, per-iteration poly LambdaLR.
- ``sonomap``: :class:`training.dataset.SegDataset` (decoded once, one affine warp, B-mode
  intensity augmentation, the runtime's preprocess) + :func:`training.engine.train_one_epoch`
  (grad clipping, AMP/channels_last on CUDA).
Output: images/s and peak memory of each, and the ratios sonomap / reference.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import sha256_file
from training.bench_process import run_worker
from training.config import load_config, use_cpu_bf16
from training.data import IGNORE_INDEX, read_cases, select_split
from training.dataset import SegDataset
from training.distributed import pick_device
from training.engine import train_one_epoch
from training.losses import build_loss
from training.models import build_model
from training.optim import PolySchedule, build_optimizer
from training.provenance import resolve_norm
from training.run_setup import lone_sample_error, pooled_batchnorms

KIB = 1024.0
RESIZE_RANGE = (0.5, 2.0)  # torchvision reference: RandomResize(0.5 x base, 2.0 x base)
ROUNDS = 3  # alternate reference/sonomap; report each variant's median round (shared CPUs are noisy)


class ReferenceDataset(Dataset):
    """torchvision-reference-style item: decode PIL from disk, random resize, flip, crop, normalise."""

    def __init__(self, samples, size: tuple[int, int], mean: float, std: float):
        self.samples, self.size, self.mean, self.std = samples, size, mean, std

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        # deferred: only the reference loop of bench-train decodes with PIL and torchvision
        import torchvision.transforms.functional as TF
        from PIL import Image

        s = self.samples[index]
        img, target = Image.open(s.image).convert("L"), Image.open(s.label)
        base = min(self.size)
        side = random.randint(int(RESIZE_RANGE[0] * base), int(RESIZE_RANGE[1] * base))
        img = TF.resize(img, side)
        target = TF.resize(target, side, interpolation=TF.InterpolationMode.NEAREST)
        if random.random() < 0.5:
            img, target = TF.hflip(img), TF.hflip(target)
        h, w = self.size
        pad_w, pad_h = max(w - img.size[0], 0), max(h - img.size[1], 0)
        if pad_w or pad_h:
            img = TF.pad(img, [0, 0, pad_w, pad_h], fill=0)
            target = TF.pad(target, [0, 0, pad_w, pad_h], fill=IGNORE_INDEX)
        top = random.randint(0, img.size[1] - h)
        left = random.randint(0, img.size[0] - w)
        img, target = TF.crop(img, top, left, h, w), TF.crop(target, top, left, h, w)
        x = TF.normalize(
            TF.convert_image_dtype(TF.pil_to_tensor(img), torch.float32), [self.mean], [self.std]
        )
        return x, torch.as_tensor(np.array(target), dtype=torch.int64), index


def _reference_steps(model, loader, device, iters: int, warmup: int) -> tuple[int, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    total = iters + warmup
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 - it / total) ** 0.9)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    criterion = torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    model.train()
    _require_batches(loader)
    done, images, start = 0, 0, time.perf_counter()
    while done < total:
        for x, y, _ in loader:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device_type=device.type, enabled=scaler is not None):
                out = model(x)
                loss = (
                    criterion(out["out"], y) + 0.5 * criterion(out["aux"], y)
                    if isinstance(out, dict)
                    else criterion(out, y)
                )
            optimizer.zero_grad()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            sched.step()
            images += x.shape[0]
            done += 1
            if done == warmup:  # timing starts after the warmup steps, data loading included (as sonomap's)
                _sync(device)
                images, start = 0, time.perf_counter()
            if done == total:
                break
    _sync(device)
    return images, time.perf_counter() - start


def _sonomap_steps(model, loader, cfg, device, iters: int, warmup: int) -> tuple[int, float]:
    tc = cfg.train
    optimizer = build_optimizer(model, tc)
    schedule = PolySchedule(optimizer, int(tc.warmup_iters), float(tc.poly_power))
    scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda" and tc.amp) else None
    loss_fn = build_loss(tc).to(device)
    channels_last = device.type == "cuda" and bool(tc.channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    total = iters + warmup
    counter = {"n": 0}
    images, start = 0, time.perf_counter()

    def progress() -> float:
        counter["n"] += 1
        return counter["n"] / total

    def time_up() -> bool:
        nonlocal images, start
        if counter["n"] == warmup:
            _sync(device)
            images, start = 0, time.perf_counter()
        elif counter["n"] > warmup:
            images += int(loader.batch_size)
        return counter["n"] >= total

    epoch = 0
    _require_batches(loader)
    while counter["n"] < total:
        loader.dataset.set_epoch(epoch)
        cpu_bf16 = torch.bfloat16 if (device.type == "cpu" and use_cpu_bf16(tc.amp_cpu_bf16)) else None
        train_one_epoch(
            model,
            loader,
            loss_fn,
            optimizer,
            schedule,
            scaler,
            device,
            float(tc.grad_clip),
            progress,
            time_up,
            show_progress=False,
            channels_last=channels_last,
            autocast_dtype=cpu_bf16,
        )
        epoch += 1
    _sync(device)
    return images, time.perf_counter() - start


def _require_batches(loader) -> None:
    """Each loop repeats epochs until its iterations are done: an empty loader would never end."""
    if len(loader) == 0:
        raise SonomapError(
            f"bench-train: {len(loader.dataset)} train images make no full batch of {loader.batch_size}"
        )


def _refuse_batches_of_one(cfg, config) -> None:
    """``train.batch_size: 1`` on a model whose BatchNorm follows a global pooling (DeepLabV3's ASPP):
    each worker's first step would fail with torch's error; refused here in one line, as train does."""
    mc = cfg.model
    model = build_model(mc.arch, int(mc.num_classes), bool(mc.aux), width=mc.width)
    size = (int(cfg.data.input_height), int(cfg.data.input_width))
    layers = pooled_batchnorms(model, size, torch.device("cpu"))
    if layers:
        why = "so each training batch holds one sample"
        raise lone_sample_error(cfg, config, why, layers[0], "set train.batch_size to 2 or more")


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _worker(variant: str, config: str, data: str, iters: int, warmup: int, device: str, queue) -> None:
    torch.manual_seed(0)
    random.seed(0)
    cfg = load_config(config)
    dev = pick_device(device)
    samples = select_split(read_cases(data), "train", data)
    size = (int(cfg.data.input_height), int(cfg.data.input_width))
    mean, std = resolve_norm(cfg.data, samples)
    mc = cfg.model
    model = build_model(mc.arch, int(mc.num_classes), bool(mc.aux), width=mc.width).to(dev)
    bs, workers = int(cfg.train.batch_size), int(cfg.data.num_workers)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if variant == "reference":
        loader = DataLoader(
            ReferenceDataset(samples, size, mean, std),
            batch_size=bs,
            shuffle=True,
            num_workers=workers,
            drop_last=True,
        )
        images, seconds = _reference_steps(model, loader, dev, iters, warmup)
    else:
        ds = SegDataset(samples, size, mean, std, cfg.augment, seed=0)
        loader = DataLoader(ds, batch_size=bs, shuffle=True, num_workers=workers, drop_last=True)
        images, seconds = _sonomap_steps(model, loader, cfg, dev, iters, warmup)
    peak = (
        torch.cuda.max_memory_allocated() / KIB**2
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB
    )
    queue.put({"images_per_s": images / seconds, "peak_mib": peak, "images": images, "seconds": seconds})


def bench_train(
    config: str, data: str, iters: int = 10, warmup: int = 2, device: str = "auto", rounds: int = ROUNDS
) -> dict:
    """Run both variants ``rounds`` times, alternating; returns per-variant medians and the ratios."""
    # a bad config or dataset is reported here, in one line, before any worker starts
    cfg = load_config(config)
    batch = int(cfg.train.batch_size)
    images = len(select_split(read_cases(data), "train", data))
    if batch == 1:
        _refuse_batches_of_one(cfg, config)
    if images < batch:  # both loops drop the ragged batch: no full batch would be an endless loop
        raise ConfigError(
            f"{config}: train.batch_size {batch} is larger than the {images} images of {data}'s train "
            "split; a benchmark needs at least one full batch: lower train.batch_size"
        )
    ctx = mp.get_context("spawn")
    results: dict[str, list[dict]] = {"reference": [], "sonomap": []}
    for _ in range(rounds):
        for variant in ("reference", "sonomap"):
            args = (config, data, iters, warmup, device)
            results[variant].append(run_worker(ctx, _worker, variant, args))
    best = {
        v: {k: float(np.median([x[k] for x in r])) for k in ("images_per_s", "peak_mib")}
        for v, r in results.items()
    }
    return {
        "config": Path(config).name,  # as the model manifests name it: a folder above may be the patient's
        "config_sha256": sha256_file(config),
        "device": device,
        "iters": iters,
        "warmup": warmup,
        "rounds": results,
        "reference": best["reference"],
        "sonomap": best["sonomap"],
        "throughput_ratio": best["sonomap"]["images_per_s"] / best["reference"]["images_per_s"],
        "peak_memory_ratio": best["sonomap"]["peak_mib"] / best["reference"]["peak_mib"],
    }
