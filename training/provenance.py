"""What a trained model came from: normalisation, dataset/config hashes, the manifest.

``make_manifest`` fills :class:`edge_runtime.manifest.Manifest` for ``best.pt``: input size,
mean/std, classes (:data:`DEFAULT_CLASSES`), threshold, validation metrics, and ``source``
(the dataset folder's base name + sha256 over cases.csv and every image/label, the config's file
name + sha256, the initial checkpoint's file name). The manifest travels with every exported
model to the cart, so it never holds a path: a folder above the dataset may name a patient.
``fitted_on`` gives calibrate and mask-filter the same way of naming the data they fitted on.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path

import torch

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import DEFAULT_CLASSES, Manifest
from training.config_schema import DataConfig, TrainingConfig
from training.data import Sample, image_stats
from training.run_summary import has_best

HASH_CHUNK = 1 << 20
# Validation metrics logged each epoch (metrics.csv, val_*) and recorded in the manifest.
VAL_METRICS = (
    "dice_pos_mean",
    "dice_pooled",
    "dice_mean",
    "recall_pooled",
    "precision_pooled",
    "pixel_accuracy_pooled",
)
MANIFEST_METRICS = (*VAL_METRICS, "n_images", "n_positive")


def _update(digest, path: Path) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            digest.update(chunk)


def dataset_hash(root: str | Path, samples: list[Sample]) -> str:
    """sha256 over cases.csv and all image/label bytes, in id order."""
    digest = hashlib.sha256()
    _update(digest, Path(root) / "cases.csv")
    for s in sorted(samples, key=lambda s: s.id):
        _update(digest, s.image)
        _update(digest, s.label)
    return digest.hexdigest()


def dataset_name(root: str | Path) -> str:
    """The dataset folder's base name (``.`` resolved to the folder's name), never its path."""
    return Path(root).resolve().name


def fitted_on(root: str | Path, split: str, samples: list[Sample]) -> dict:
    """What a fit recorded in a manifest ran on: ``{"fitted_on": "<dataset name> split <split>",
    "dataset_sha256": <dataset_hash of samples>}`` (samples: every sample of the dataset)."""
    return {"fitted_on": f"{dataset_name(root)} split {split}", "dataset_sha256": dataset_hash(root, samples)}


def resolve_norm(data_cfg: DataConfig, train_samples: list[Sample], grays=None) -> tuple[float, float]:
    """Config mean/std, or measured on the train split when set to 'auto' (on GRAYS, its images
    already read, when given: :func:`training.data.image_stats`)."""
    mean, std = data_cfg.mean, data_cfg.std
    if mean == "auto" or std == "auto":
        m, s = image_stats(train_samples, grays)
        mean = m if mean == "auto" else mean
        std = s if std == "auto" else std
    if float(std) <= 0:
        raise ConfigError(f"data.std must be > 0, got {std}")
    return float(mean), float(std)


def make_manifest(
    cfg: TrainingConfig,
    mean: float,
    std: float,
    data: str | Path,
    data_sha: str,
    config: str | Path,
    config_sha: str,
    best: dict,
    val_summary: dict,
    init_from: str | Path | None = None,
) -> Manifest:
    mc, dc = cfg.model, cfg.data
    metrics = {
        f"val_{k}": (int(val_summary[k]) if k.startswith("n_") else float(val_summary[k]))
        for k in MANIFEST_METRICS
        if k in val_summary
    }
    if has_best(best):  # last.pt before its first validation has no best epoch to name (not -1)
        metrics["best_epoch"] = int(best["epoch"])
    metrics["select_metric"] = best["metric"]
    return Manifest(
        name=str(cfg.name),
        arch=str(mc.arch),
        format="checkpoint",
        input_height=int(dc.input_height),
        input_width=int(dc.input_width),
        mean=float(mean),
        std=float(std),
        classes=list(DEFAULT_CLASSES),
        threshold=float(cfg.eval.threshold),
        source={
            "dataset": dataset_name(data),
            "dataset_sha256": data_sha,
            "config": Path(config).name,
            "config_sha256": config_sha,
            **({"init_from": Path(init_from).name} if init_from else {}),
        },
        versions={"torch": str(torch.__version__), "torchvision": version("torchvision")},
        metrics=metrics,
        extra={
            "model_config": {
                "arch": mc.arch,
                "num_classes": int(mc.num_classes),
                "aux": bool(mc.aux),
                "width": mc.width,
            }
        },
    )
