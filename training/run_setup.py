"""What one training run is built from: the data loaders of its splits and the model it trains.

Input: the training config, the dataset's samples and directory, the process's place in the run
(:class:`training.distributed.DistInfo`: one process, or a rank under torchrun) and its device.
Output: the normalisation, the train dataset, its sampler and loader, the validation loader; and
the model (DDP-wrapped with SyncBatchNorm on GPUs under torchrun) with the bare model to save.
The loaders refuse, naming the dataset's cases.csv, a train split in which no label holds a cancer
pixel, a val split without cancer whose labels look like 0/255 lesion masks
(:func:`training.label_check.check_split_cancer`) and a val split without any labelled pixel.

Also the guards on a run's folder, checked before anything is written: :func:`refuse_files` (an
``--out`` holding files another run or command wrote, which this one would replace; the run's
marks are :data:`RUN_FILES`) and :func:`check_resume_dataset` (``--resume`` on the dataset the run
was trained on, by the sha256 its checkpoint's manifest records).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from edge_runtime.case_split import CASES_CSV
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import SHA_SHOWN
from training import distributed as D
from training.config_schema import TrainingConfig
from training.data import IGNORE_INDEX, read_pair, select_split
from training.dataset import SegDataset
from training.label_check import check_split_cancer
from training.models import build_model
from training.provenance import resolve_norm
from training.warmstart import BATCH_NORMS

# The files that mark a folder as holding a training or pretraining run.
RUN_FILES = ("last.pt", "best.pt", "best.pt.yaml", "pretrained.pt")
# What `sonomap train` writes at the top of RUN besides its checkpoints: a new run would replace them.
RUN_LOGS = ("metrics.csv", "summary.json")
# What a train split without cancer, and a val split of 0/255 masks, would cost the run.
TRAIN_NEEDS_CANCER = "so the model would never learn cancer"
VAL_MASKS = "so validation would score no lesion when choosing best.pt"


def check_run_folder(out: Path) -> None:
    """Refuse an ``--out`` that is a file in the one line evaluate, crossval and prepare-busi give,
    before anything reads or writes under it (the TensorBoard writer would name ``OUT/tb``)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a run folder")


def refuse_files(out: Path, names, why: str) -> None:
    """Raise ConfigError naming ``--out`` OUT and the first of NAMES it holds, followed by WHY."""
    for name in names:
        if (out / name).exists():
            raise ConfigError(f"--out {out}: holds {name}, {why}")


def resume_advice(out: Path) -> str:
    """What to do instead of a new run in OUT: --resume continues only from a last.pt (a run stopped
    in its first epoch may have written best.pt but no last.pt yet)."""
    if (out / "last.pt").is_file():
        return "or add --resume to continue the run there"
    return f"or delete {out} (it holds no last.pt, so it cannot be resumed)"


def check_resume_dataset(last: Path, state: dict, data, data_sha: str) -> None:
    """Refuse to resume LAST (its payload STATE) on a dataset other than the one it was trained on:
    the manifest in STATE records the dataset's path and sha256 (:func:`training.provenance.dataset_hash`);
    DATA with sha256 DATA_SHA is the one given now. A checkpoint that records none is not checked."""
    source = (state.get("manifest") or {}).get("source") or {}
    trained_sha = source.get("dataset_sha256")
    if trained_sha and trained_sha != data_sha:
        raise ConfigError(
            f"{last}: was trained on dataset {source.get('dataset', '?')} (sha256 "
            f"{trained_sha[:SHA_SHOWN]}...) but --data {data} differs (sha256 {data_sha[:SHA_SHOWN]}...); "
            "resume with the same dataset, or train a new RUN"
        )


def build_loaders(cfg: TrainingConfig, samples, data, info: D.DistInfo, dev: torch.device):
    """Train/val splits -> (mean, std, train dataset, sampler, train loader, val loader)."""
    dc, tc = cfg.data, cfg.train
    train_s, val_s = select_split(samples, "train", data), select_split(samples, "val", data)
    # the train split read once: its measured normalisation ('auto') and the dataset share the pairs
    train_pairs = [read_pair(s) for s in train_s]
    mean, std = resolve_norm(dc, train_s, (gray for gray, _label in train_pairs))
    size = (int(dc.input_height), int(dc.input_width))
    train_ds = SegDataset(train_s, size, mean, std, cfg.augment, seed=int(tc.seed), pairs=train_pairs)
    val_ds = SegDataset(val_s, size, mean, std, None)
    # a lesion saved as 0/255 reads as "unknown": refused, naming the label file, before any epoch
    check_split_cancer(
        train_s, data, "train", TRAIN_NEEDS_CANCER, True, (label for _gray, label in train_ds.pairs)
    )
    check_split_cancer(val_s, data, "val", VAL_MASKS, False, (label for _gray, label in val_ds.pairs))
    if all((label == IGNORE_INDEX).all() for _gray, label in val_ds.pairs):
        # every validation metric would be NaN: no epoch could be selected, and no best.pt written
        raise InputError(
            f"{Path(data) / CASES_CSV}: split 'val' has no labelled pixel (every label is 255), "
            "so there is nothing to select a checkpoint by; label some val pixels 0 or 1"
        )
    bs, workers = int(tc.batch_size), int(dc.num_workers)
    # one process: a world of 1, so the seeded per-epoch shuffle is the same code path as DDP's
    sampler = DistributedSampler(
        train_ds,
        num_replicas=info.world,
        rank=info.rank,
        shuffle=True,
        seed=int(tc.seed),
        drop_last=info.enabled,
    )
    # drop the ragged last batch as torchvision's reference does, and at any size when it would hold
    # one sample: BatchNorm after a global pooling (DeepLabV3's ASPP) cannot train on a lone sample;
    # a set smaller than two batches keeps any other ragged batch (dropping it could leave out most
    # of the split)
    n = len(sampler)
    drop_last = n >= 2 * bs or (n > bs and n % bs == 1)
    loader = DataLoader(
        train_ds,
        batch_size=bs,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
    )
    val_loader = DataLoader(val_ds, batch_size=bs, shuffle=False, num_workers=workers)
    return mean, std, train_ds, sampler, loader, val_loader


def pooled_batchnorms(model: torch.nn.Module, size: tuple[int, int], dev: torch.device) -> list[str]:
    """Names of ``model``'s BatchNorm layers that see one value per channel when a batch holds one
    sample of ``size`` (after a global pooling, e.g. DeepLabV3's ASPP; at a tiny input size, any
    layer whose map is 1 x 1). Training mode cannot normalise them: torch raises on such a batch.
    Found by one forward pass of a single blank sample in eval mode, without gradients."""
    seen: list[str] = []

    def watch(name: str):
        def check(_module, inputs) -> None:
            if inputs[0][0].numel() == inputs[0].shape[1]:  # a sample's values: one per channel
                seen.append(name)

        return check

    norms = [(n, m) for n, m in model.named_modules() if isinstance(m, BATCH_NORMS)]
    handles = [m.register_forward_pre_hook(watch(n)) for n, m in norms]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1, 1, *size), device=dev))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return seen


def refuse_lone_samples(cfg: TrainingConfig, config, data, loader, model, info: D.DistInfo, dev) -> None:
    """Refuse, naming ``config``'s key 'train.batch_size', a run whose training batches hold one sample
    (``train.batch_size: 1``, or a train split of one image a process) when ``model`` has a BatchNorm
    that would see one value per channel in them (:func:`pooled_batchnorms`): training would stop
    at its first step with torch's error. BatchNorm synchronised over several GPUs (torchrun on CUDA)
    normalises over every process's samples, so a lone sample per process trains there."""
    bs, n = int(cfg.train.batch_size), len(loader.sampler)
    if (bs > 1 and n != 1) or (info.enabled and info.world > 1 and dev.type == "cuda"):
        return
    size = (int(cfg.data.input_height), int(cfg.data.input_width))
    layers = pooled_batchnorms(model, size, dev)
    if not layers:
        return
    if bs == 1:
        why = "so each training batch holds one sample"
    else:  # the sampler's share: the whole split in one process, a rank's part under torchrun
        share = f" for each of {info.world} processes" if info.enabled else ""
        why = f"but {Path(data) / CASES_CSV} gives split 'train' 1 image{share}, so its only batch holds one sample"
    raise lone_sample_error(
        cfg,
        config,
        why,
        layers[0],
        "set train.batch_size to 2 or more" if bs == 1 else "add images to the train split",
    )


def lone_sample_error(cfg: TrainingConfig, config, why: str, layer: str, fix: str) -> ConfigError:
    """The one-line refusal of a run whose training batches hold one sample (``why``) when the
    model's BatchNorm ``layer`` then sees one value per channel (shared by train and bench-train)."""
    return ConfigError(
        f"{config}: config key 'train.batch_size' is {int(cfg.train.batch_size)}, {why}, and "
        f"{cfg.model.arch}'s BatchNorm layer {layer} then sees one value per channel, which it cannot "
        f"normalise in training; {fix}"
    )


def build_run_model(cfg: TrainingConfig, backbone_weights, info: D.DistInfo, dev: torch.device):
    """Config -> (model to train: DDP-wrapped under torchrun, bare model to save, channels_last)."""
    mc, tc = cfg.model, cfg.train
    model = build_model(
        mc.arch,
        int(mc.num_classes),
        bool(mc.aux),
        backbone_weights,
        bool(mc.pretrained_backbone),
        width=mc.width,
    ).to(dev)
    channels_last = dev.type == "cuda" and bool(tc.channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    bare = model
    if info.enabled:
        if dev.type == "cuda":  # PyTorch's SyncBatchNorm runs on GPUs only; on CPU/gloo each process
            # keeps its own batch statistics and DDP broadcasts rank 0's running stats every step
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        bare = model
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    return model, bare, channels_last
