"""The session sequence files: 3D Slicer volume sequences (``.seq.nrrd``) with PLUS per-frame fields.

Shared by the recorder (:mod:`edge_runtime.sinks.sequence`) and the reader
(:mod:`edge_runtime.sources.sequence`); docs/slicer-sequences.md describes every field.

``--record-sequence rec/session.seq.nrrd`` writes three sequences, one frame each per rendered frame:

- ``session.seq.nrrd``: the gray ROI image the model saw (uint8), with the per-frame PLUS fields
  ``Seq_FrameNNNN_Timestamp`` / ``_FrameIndex`` / ``_ImageStatus`` / ``_<From>To<To>Transform`` (+``Status``);
- ``session.labelmap.seq.nrrd``: the model's class ids (uint8, ``vtkMRMLLabelMapVolumeNode``);
- ``session.probability.seq.nrrd``: the cancer probability as round(255 p) (uint8, as the
  OpenIGTLink ``ProbMap`` image).

Each ``.seq.nrrd`` is a *detached* NRRD header (``data file:``) for a raw data file beside it
(``.seq.raw``): the data file only ever grows by whole frames, so a session streams to disk, and
the header, which names the frame count (``sizes``) and the frames' times (``axis 3 index values``),
is brought up to date at checkpoints. Axes (fastest first): i (width), j (height), k (1), list
(frames). This module names the files, fields and keys and composes the header's text;
:mod:`edge_runtime.sinks.sequence_files` writes one recording's three header/data pairs.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path

import numpy as np

from edge_runtime.errors import SonomapError
from edge_runtime.sinks import recordings

log = logging.getLogger("sonomap.sequence")

IMAGE, LABELMAP, PROBABILITY = "image", "labelmap", "probability"
KIND_INFIX = {IMAGE: "", LABELMAP: ".labelmap", PROBABILITY: ".probability"}
DATA_NODE_CLASS = {
    IMAGE: "vtkMRMLScalarVolumeNode",
    LABELMAP: "vtkMRMLLabelMapVolumeNode",
    PROBABILITY: "vtkMRMLScalarVolumeNode",
}
HEADER_SUFFIX, DATA_SUFFIX = ".seq.nrrd", ".seq.raw"
NRRD_MAGIC = b"NRRD0005"
LIST_AXIS = 3  # sizes are i, j, k, frames: the list (frame) axis is the slowest, so frames append
FRAME_PREFIX = "Seq_Frame"
FRAME_KEY = re.compile(r"^Seq_Frame(\d+)_(.+)$")
TIMESTAMP, FRAME_INDEX, IMAGE_STATUS, PREDICTION_OF = "Timestamp", "FrameIndex", "ImageStatus", "PredictionOf"
IJK_TO_WORLD = "IjkToWorld"  # per frame only when the image geometry moved since the header's
# IjkToWorldStatus INVALID: the frame's geometry is unknown (refused by the OpenIGTLink source), as a
# PLUS transform's <Name>TransformStatus marks one not to be used
TRANSFORM_SUFFIX, STATUS_SUFFIX = "Transform", "Status"
STATUS_OK, STATUS_INVALID = "OK", "INVALID"
NO_PREDICTION = "none"
DEVICE_KEY, CONTENT_KEY, ROI_KEY = "sonomap device", "sonomap content", "sonomap roi"
PROBABILITY_SCALE_KEY, DROPPED_KEY = "sonomap probability scale", "sonomap dropped frames"
GEOMETRY_UNKNOWN_KEY = "sonomap geometry unknown frames"
SPACES = {"ras": "right-anterior-superior", "lps": "left-posterior-superior"}
SYSTEMS = {v: k for k, v in SPACES.items()} | {"RAS": "ras", "LPS": "lps"}
UINT8_MAX = 255


def require_pynrrd(what: str):
    """The ``nrrd`` module (pynrrd), or a one-line SonomapError saying how to install it."""
    try:
        return importlib.import_module("nrrd")  # deferred: the cart runtime works without it
    except ImportError as exc:
        raise SonomapError(f"{what} needs pynrrd: pip install 'sonomap[sequences]' ({exc})") from exc


def sequence_paths(main: str | Path) -> dict[str, Path]:
    """``rec/session.seq.nrrd`` -> the three header paths by kind (image, labelmap, probability)."""
    main = Path(main)
    name = main.name
    base = name[: -len(HEADER_SUFFIX)] if name.endswith(HEADER_SUFFIX) else Path(name).stem
    return {kind: main.with_name(f"{base}{infix}{HEADER_SUFFIX}") for kind, infix in KIND_INFIX.items()}


def session_main(template: str | Path, keep_existing: bool) -> Path:
    """The image header this session writes: ``template`` with its strftime fields filled in and
    named ``*.seq.nrrd``; with ``keep_existing`` (live) the first ``-1``, ``-2``, ... name none of whose
    three headers exists yet, so a restarted service never writes over a recording."""
    main = sequence_paths(recordings.expand(template))[IMAGE]
    base = main.name[: -len(HEADER_SUFFIX)]
    for n in range(recordings.MAX_SUFFIX + 1):
        candidate = main if n == 0 else main.with_name(f"{base}-{n}{HEADER_SUFFIX}")
        if not keep_existing or not any(p.exists() for p in sequence_paths(candidate).values()):
            if n:
                log.warning("%s already holds a recording; keeping it and recording to %s", main, candidate)
            return candidate
    raise SonomapError(
        f"{main}: {recordings.MAX_SUFFIX} earlier recordings of this name; name them by time (%Y%m%d-%H%M%S)"
    )


def data_path(header: Path) -> Path:
    name = header.name
    base = name[: -len(HEADER_SUFFIX)] if name.endswith(HEADER_SUFFIX) else Path(name).stem
    return header.with_name(base + DATA_SUFFIX)


def frame_key(frame: int, field: str) -> str:
    return f"{FRAME_PREFIX}{frame:04d}_{field}"


def number(value: float) -> str:
    """Shortest text that reads back to the same float64 (a float32 transform stays exact too)."""
    return repr(float(value))


def numbers(values) -> str:
    return " ".join(number(v) for v in np.asarray(values, np.float64).ravel())


def fixed_header(
    kind: str,
    width: int,
    height: int,
    ijk_to_world: np.ndarray | None,
    system: str,
    data_file: str,
    extra: dict,
) -> bytes:
    """Everything but the frame count, the frames' times and the per-frame fields. ``ijk_to_world``
    None (the first frame's geometry unknown): no ``space`` fields at all, as NRRD allows, rather
    than a made-up geometry."""
    nrrd = require_pynrrd("--record-sequence")
    fields = ["type: unsigned char", "dimension: 4"]
    if ijk_to_world is not None:
        matrix = np.asarray(ijk_to_world, np.float64)
        directions = np.vstack([matrix[:3, :3].T, np.full(3, np.nan)])  # rows: i, j, k axes, then the list
        fields += [
            f"space: {SPACES[system]}",
            f"space directions: {nrrd.formatters.format_optional_matrix(directions)}",
        ]
    fields += ["kinds: domain domain domain list", 'labels: "" "" "" "time"', "encoding: raw"]
    if ijk_to_world is not None:
        fields.append(f"space origin: {nrrd.formatters.format_vector(matrix[:3, 3])}")
    fields.append(f"data file: {data_file}")
    keys = {
        "DataNodeClassName": DATA_NODE_CLASS[kind],
        f"axis {LIST_AXIS} index type": "numeric",
        "ultrasound image orientation": "MF",
        "ultrasound image type": "BRIGHTNESS",
        CONTENT_KEY: kind,
        **extra,
    }
    lines = [
        NRRD_MAGIC.decode(),
        "# sonomap session: a 3D Slicer volume sequence with PLUS per-frame fields (docs/slicer-sequences.md)",
        *fields,
        *(f"{k}:={v}" for k, v in keys.items()),
    ]
    _check_ascii_lines(lines, width, height)
    return ("\n".join(lines) + "\n").encode("ascii")


def _check_ascii_lines(lines: list[str], width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"empty ROI {width}x{height}")
    for line in lines:
        if "\n" in line or not line.isascii():
            raise ValueError(f"header line {line[:40]!r} is not one ASCII line")


def tail(width: int, height: int, frames: int, index_values: bytes | bytearray) -> bytes:
    """The lines rewritten at each checkpoint, and the blank line that ends the header."""
    return (
        f"sizes: {width} {height} 1 {frames}\n".encode("ascii")
        + f"axis {LIST_AXIS} index values:=".encode("ascii")
        + bytes(index_values).strip()
        + b"\n\n"
    )
