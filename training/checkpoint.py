"""Reading a checkpoint: ``RUN/best.pt`` (+ ``best.pt.yaml`` manifest) or ``RUN/last.pt`` -> its
payload, or the eval-mode model it holds.

Every file is read with ``torch.load(weights_only=True)`` (tensors and plain values only, as
:mod:`training.checkpoint_save` writes them): loading a checkpoint never runs code from it. A file
that needs more (an older sonomap format, or one from elsewhere) is refused with a one-line error;
``sonomap upgrade-checkpoint FILE --trust-checkpoint`` converts it once, for a file whose origin
the user vouches for (:mod:`training.checkpoint_upgrade`). A file that is no torch checkpoint at all
(an ONNX or TorchScript model, a TensorRT engine, the manifest) is named as what it is, before
torch reads it (:mod:`training.checkpoint_kind`). The manifest beside the file must agree with the
checkpoint on architecture and classes.

Inputs: a checkpoint file and its manifest. Outputs: the payload dict; (model, manifest[, model
config]). Files: read only.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import Manifest, load_manifest
from training.checkpoint_kind import not_a_checkpoint
from training.checkpoint_manifest import check_embedded_manifest
from training.models import build_from_config

SHOWN_CHARS = 80  # of a bad value quoted in an error
MISMATCH_CHARS = 400  # of the keys a checkpoint lacks or has of another shape: the first few name the problem


def checkpoint_bytes(path: str | Path) -> bytes:
    """The whole checkpoint file, read once, after the checks :func:`read_checkpoint` makes before
    torch reads anything (for a caller that loads the same bytes twice: ``upgrade-checkpoint``)."""
    path = Path(path)
    _check_file(path)
    return path.read_bytes()


def _check_file(path: Path) -> None:
    """InputError naming the file when it is a folder, missing, or no torch checkpoint (told from
    its first bytes), before torch is given it."""
    if path.is_dir():  # a run folder given for its best.pt
        raise InputError(f"{path}: is a folder, not a checkpoint file (e.g. {path / 'best.pt'})")
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    foreign = not_a_checkpoint(path)  # an exported model, an engine, ...: named, with what to give instead
    if foreign:
        raise InputError(f"{path}: {foreign}")


def read_checkpoint(path: str | Path, trust: bool = False, data: bytes | None = None) -> dict[str, Any]:
    """Checkpoint file -> its payload, read weights-only (tensors and plain values, no code).

    ``trust=True`` (``upgrade-checkpoint --trust-checkpoint`` only) unpickles everything: the
    caller vouches for the file, since unpickling can run any code the file carries. ``data``: the
    file's bytes from :func:`checkpoint_bytes`, loaded instead of the file (errors still name it)."""
    path = Path(path)
    if data is None:
        _check_file(path)
    source = path if data is None else io.BytesIO(data)
    try:
        payload = torch.load(source, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if trust:
            raise InputError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0]})") from exc
        raise InputError(
            f"{path}: holds Python objects besides tensors and plain values (an older sonomap "
            "checkpoint, or not one of sonomap's); it is not loaded, as unpickling it could run code. "
            f"If you trust its origin: sonomap upgrade-checkpoint {path} --trust-checkpoint"
        ) from exc
    except Exception as exc:  # torch raises many types for corrupt/foreign files
        raise InputError(
            f"{path}: not a readable torch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    if not isinstance(payload, dict):
        raise InputError(f"{path}: checkpoint holds a {type(payload).__name__}, not sonomap's dict")
    for key in ("model", "model_config"):
        if key not in payload:
            raise InputError(f"{path}: checkpoint lacks key {key!r}; not written by sonomap train")
    if not isinstance(payload["model"], dict):
        raise InputError(
            f"{path}: checkpoint's 'model' is a {type(payload['model']).__name__}, not a state dict"
        )
    if not isinstance(payload["model_config"], dict):
        raise InputError(f"{path}: {_not_a_model_config(payload['model_config'])}")
    return payload


def _not_a_model_config(config) -> str:
    return (
        f"checkpoint's 'model_config' is {_short(config)}, not the mapping sonomap train writes "
        "(arch, num_classes, ...)"
    )


def _state_dict_mismatch(exc: RuntimeError) -> str:
    """torch's load_state_dict error on one line: its first line only says 'Error(s) in loading
    state_dict for X:', the keys (missing, unexpected, of another shape) follow, one kind a line."""
    lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    text = "; ".join(lines) or str(exc).strip()
    return text if len(text) <= MISMATCH_CHARS else text[: MISMATCH_CHARS - 3] + "..."


def _short(value, limit: int = SHOWN_CHARS) -> str:
    """A value for a one-line error: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_model(path: str | Path, verify_manifest: bool = True):
    """Checkpoint -> (eval-mode model on CPU, manifest).

    The manifest beside the file wins over the copy embedded in the checkpoint (its threshold,
    temperature, calibration curve and mask filter are the ones used); the two must agree on
    architecture, classes (ids and names), input size and channels and normalisation, or the pair
    came from different runs (:func:`training.checkpoint_manifest.check_embedded_manifest`).
    """
    model, manifest, _config = load_model_and_config(path, verify_manifest)
    return model, manifest


def load_model_and_config(path: str | Path, verify_manifest: bool = True):
    """:func:`load_model` plus the checkpoint's ``model_config``, from one read of the file (for
    tools that write a new checkpoint from loaded ones)."""
    path = Path(path)
    payload = read_checkpoint(path)
    cfg = payload["model_config"]
    if not (isinstance(cfg.get("arch"), str) and "num_classes" in cfg):  # what the model is built from
        raise InputError(f"{path}: {_not_a_model_config(cfg)}")
    if payload.get("pretext"):
        raise InputError(
            f"{path}: a self-supervised pretraining checkpoint (no segmentation head), not a model; "
            f"train from it with: sonomap train --init-from {path}"
        )
    if verify_manifest:
        manifest = load_manifest(path)
    else:
        manifest = Manifest.from_dict(payload["manifest"], origin=f"{path}[manifest]")
    if manifest.arch != cfg["arch"] or manifest.num_classes != cfg["num_classes"]:
        raise ConfigError(
            f"{path}: checkpoint is {cfg['arch']} with {cfg['num_classes']} classes but its manifest says "
            f"{manifest.arch} with {manifest.num_classes}"
        )
    if verify_manifest:  # the classes, input and normalisation the weights were trained with
        check_embedded_manifest(path, manifest, payload.get("manifest"))
    try:
        model = build_from_config(cfg)
    except (KeyError, TypeError, ValueError) as exc:  # e.g. a member without 'arch', a width "wide"
        raise InputError(
            f"{path}: checkpoint's model_config {_short(cfg)} cannot be built ({exc!r})"
        ) from None
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not fit {cfg['arch']}: {_state_dict_mismatch(exc)}") from exc
    model.eval()
    return model, manifest, cfg
