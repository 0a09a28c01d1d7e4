"""Checkpoint files: ``RUN/best.pt`` (+ ``best.pt.yaml`` manifest) and ``RUN/last.pt``.

A checkpoint is a dict with ``model`` (state dict), ``model_config`` (arch, num_classes,
aux), ``manifest`` (dict, see :mod:`edge_runtime.manifest`), and for resuming
``optimizer``, ``scheduler``, ``scaler``, ``epoch``, ``rng`` and ``best``.
Writes are atomic (temp file + rename) so a crash never leaves a half-written file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edge_runtime.atomic import atomic_path
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import Manifest, load_manifest, save_manifest
from training.models import build_model


def save_checkpoint(payload: dict[str, Any], path: str | Path, manifest: Manifest | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    if manifest is not None:
        save_manifest(manifest.derive(format="checkpoint"), path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt/foreign files
        raise InputError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "model_config"):
        if key not in payload:
            raise InputError(f"{path}: checkpoint lacks key {key!r}; not written by sonomap train")
    return payload


def load_model(path: str | Path, verify_manifest: bool = True):
    """Checkpoint -> (eval-mode model on CPU, manifest).

    The manifest beside the file wins over the copy embedded in the checkpoint; the two
    must agree on architecture and classes, or the pair came from different runs.
    """
    path = Path(path)
    payload = read_checkpoint(path)
    cfg = payload["model_config"]
    if verify_manifest:
        manifest = load_manifest(path)
    else:
        manifest = Manifest.from_dict(payload["manifest"], origin=f"{path}[manifest]")
    if manifest.arch != cfg["arch"] or manifest.num_classes != cfg["num_classes"]:
        raise ConfigError(
            f"{path}: checkpoint is {cfg['arch']} with {cfg['num_classes']} classes but its manifest says "
            f"{manifest.arch} with {manifest.num_classes}"
        )
    model = build_model(cfg["arch"], cfg["num_classes"], aux=cfg.get("aux", False), width=cfg.get("width"))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not fit {cfg['arch']} ({str(exc).splitlines()[0]})") from exc
    model.eval()
    return model, manifest
