"""Writing a checkpoint: ``RUN/best.pt`` (+ ``best.pt.yaml`` manifest), ``RUN/last.pt``, weights-only.

A checkpoint is a dict with ``model`` (state dict), ``model_config`` (arch, num_classes, aux),
``manifest`` (dict, see :mod:`edge_runtime.manifest`), and for resuming ``optimizer``,
``scheduler``, ``scaler``, ``epoch``, ``rng`` and ``best``. :func:`plain` turns it into tensors and
plain values (dict, list, tuple, str, int, float, bool, None) before it is written, so that
``torch.load(weights_only=True)`` reads it back (:mod:`training.checkpoint`); a value that could
not be read so is a TypeError at save time. Writes are atomic (temp file + rename), the checkpoint
and its manifest renamed back to back with SIGINT/SIGTERM held: a crash, a full disk or a stop
never leaves a half-written file, nor new weights beside an older manifest.

Inputs: a payload dict, a :class:`edge_runtime.manifest.Manifest`. Outputs: the checkpoint file and
its manifest. Files: ``PATH`` and ``PATH.yaml``.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from edge_runtime.atomic import atomic_path
from edge_runtime.manifest import Manifest, manifest_path, sha256_file
from edge_runtime.stop_signals import signals_held

PLAIN_SCALARS = (str, int, float, bool, type(None))


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
            held.enter_context(signals_held())
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
