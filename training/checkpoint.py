"""Checkpoint files: ``RUN/best.pt`` (+ ``best.pt.yaml`` manifest) and ``RUN/last.pt``.

A checkpoint is a dict with ``model`` (state dict), ``model_config`` (arch, num_classes,
aux), ``manifest`` (dict, see :mod:`edge_runtime.manifest`), and for resuming
``optimizer``, ``scheduler``, ``scaler``, ``epoch``, ``rng`` and ``best``. Writes are atomic (temp
file + rename): a crash never leaves a half-written file, nor a checkpoint beside an older manifest.

Only tensors and plain values (dict, list, tuple, str, int, float, bool, None) are stored, so
every file is read with ``torch.load(weights_only=True)``: loading a checkpoint never runs code
from it. A file that needs more (an older sonomap format, or one from elsewhere) is refused with
a one-line error; ``sonomap upgrade-checkpoint FILE --trust-checkpoint`` converts it once, for a
file whose origin the user vouches for. A file that is no torch checkpoint at all (an ONNX or
TorchScript model, a TensorRT engine, the manifest) is named as what it is, before torch reads it
(:mod:`training.checkpoint_kind`).
"""

from __future__ import annotations

import logging
import pickle
import shutil
import signal
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from edge_runtime.atomic import atomic_path, same_file
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path, save_manifest, sha256_file
from training.checkpoint_kind import not_a_checkpoint
from training.models import build_from_config
from training.output_checks import refuse_manifest_clash

log = logging.getLogger("sonomap.checkpoint")
PLAIN_SCALARS = (str, int, float, bool, type(None))
BACKUP_SUFFIX = ".orig"
SHOWN_CHARS = 80  # of a bad value quoted in an error
MISMATCH_CHARS = 400  # of the keys a checkpoint lacks or has of another shape: the first few name the problem
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # a stop waits while a checkpoint and manifest are renamed


def plain(value, where: str = "checkpoint"):
    """``value`` with numpy scalars/arrays turned into Python numbers/tensors; anything else that
    ``torch.load(weights_only=True)`` would refuse raises TypeError (a bug: caught at save time,
    not when someone tries to load the file)."""
    # before the scalars: np.float64 is a float subclass yet pickles as numpy
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (torch.Tensor, torch.Size)) or type(value) in PLAIN_SCALARS:
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, OrderedDict):  # a state dict: keep its per-module version metadata
        out = OrderedDict((k, plain(v, f"{where}[{k!r}]")) for k, v in value.items())
        if hasattr(value, "_metadata"):
            out._metadata = value._metadata
        return out
    if isinstance(value, dict):
        return {k: plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a weights-only checkpoint")


def numpy_rng_state() -> dict:
    """NumPy's global RNG state as plain values (its own form holds an ndarray)."""
    return numpy_rng_plain(np.random.get_state(legacy=False))


def numpy_rng_plain(state) -> dict:
    """A NumPy RNG state (dict form, or the legacy tuple of older checkpoints) -> plain values."""
    if isinstance(state, tuple):  # ('MT19937', key, pos, has_gauss, gauss)
        name, key, pos, has_gauss, gauss = state
        state = {
            "bit_generator": name,
            "state": {"key": key, "pos": pos},
            "has_gauss": has_gauss,
            "gauss": gauss,
        }
    return {
        "bit_generator": str(state["bit_generator"]),
        "state": {"key": [int(v) for v in state["state"]["key"]], "pos": int(state["state"]["pos"])},
        "has_gauss": int(state["has_gauss"]),
        "gauss": float(state["gauss"]),
    }


def save_checkpoint(payload: dict[str, Any], path: str | Path, manifest: Manifest | None = None) -> Path:
    """Write ``payload`` to ``path`` (and ``manifest`` to ``path.yaml``); returns ``path``. Both go to temp
    files first, then are renamed back to back with SIGINT/SIGTERM held: a full disk or a stop leaves
    the earlier pair as it was, never new weights beside the old manifest (which would not load)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = plain(payload)
    if manifest is None:
        with atomic_path(path) as tmp:
            _write_payload(payload, tmp)
        return path
    # the renames run as atomic_path's blocks end, inner (manifest) then outer (checkpoint): both
    # after every byte is written, with SIGINT/SIGTERM held from the first rename to the second
    with ExitStack() as held, atomic_path(path) as tmp:
        _write_payload(payload, tmp)
        # the manifest names the final file and hashes the bytes that will be there
        final = manifest.derive(format="checkpoint", file=path.name, sha256=sha256_file(tmp))
        with atomic_path(manifest_path(path)) as yaml_tmp:
            yaml_tmp.write_text(yaml.safe_dump(final.to_dict(), sort_keys=False))
            held.enter_context(_signals_held())
    return path


def _write_payload(payload: dict[str, Any], tmp: Path) -> None:
    with open(tmp, "wb", buffering=0) as file:
        writer = _RecordingWriter(file)
        try:
            torch.save(payload, writer)
        except RuntimeError:
            # torch reports a failed write (full disk, file size limit) as a RuntimeError ("unexpected
            # pos ..."); the OSError underneath names the cause, and the caller names the target
            if writer.error is None:
                raise
            error = writer.error
            raise OSError(error.errno, f"{error.strerror} (writing the checkpoint)") from error


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM arriving within the block act when it ends. Their handlers are swapped, not the
    signals blocked: a Python handler runs in the main thread whichever thread receives the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers raise in the main thread only, never inside this block
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])


class _RecordingWriter:
    """A file object for torch.save that writes everything it is given (retrying short writes) and
    keeps the OSError of a failed write, which torch would otherwise replace with a RuntimeError."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        try:
            while view:
                view = view[self.file.write(view) :]
        except OSError as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        self.file.flush()


def read_checkpoint(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """Checkpoint file -> its payload, read weights-only (tensors and plain values, no code).

    ``trust=True`` (``upgrade-checkpoint --trust-checkpoint`` only) unpickles everything: the
    caller vouches for the file, since unpickling can run any code the file carries."""
    path = Path(path)
    if path.is_dir():  # a run folder given for its best.pt
        raise InputError(f"{path}: is a folder, not a checkpoint file (e.g. {path / 'best.pt'})")
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    foreign = not_a_checkpoint(path)  # an exported model, an engine, ...: named, with what to give instead
    if foreign:
        raise InputError(f"{path}: {foreign}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=not trust)
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


def upgrade_checkpoint(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite a trusted older-format checkpoint as tensors and plain values (readable weights-only).

    In place by default, keeping the original as ``FILE.orig``; the manifest beside it follows.
    An ``out`` that is a manifest, or whose manifest would land on ``path``, is refused first."""
    path = Path(path)
    target = Path(out) if out else path
    refuse_manifest_clash(path, target)
    payload = read_checkpoint(path, trust=True)
    rng = payload.get("rng")
    if isinstance(rng, dict) and "numpy" in rng:
        rng["numpy"] = numpy_rng_plain(rng["numpy"])
    try:
        payload = plain(payload)
    except TypeError as exc:
        raise InputError(f"{path}: cannot be converted to a weights-only checkpoint ({exc})") from exc
    # the manifest beside it is checked against the old file's sha256, then re-signed for the new one
    manifest = load_manifest(path) if manifest_path(path).is_file() else None
    if same_file(target, path):  # any spelling of the same file (relative, absolute, a link) is in place
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.exists():
            raise InputError(f"{backup}: exists already; move it away or give --out")
        shutil.copy2(path, backup)
    save_checkpoint(payload, target)
    if manifest is not None:
        save_manifest(manifest, target)
    log.warning("%s: rewritten weights-only as %s (trusted by the user)", path, target)
    return target


def load_model(path: str | Path, verify_manifest: bool = True):
    """Checkpoint -> (eval-mode model on CPU, manifest).

    The manifest beside the file wins over the copy embedded in the checkpoint; the two
    must agree on architecture and classes, or the pair came from different runs.
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
