"""A Slicer sequence's NRRD header (``.seq.nrrd``, ``.nhdr``) read and checked before any pixel is read,
for :class:`edge_runtime.sources.sequence.SequenceSource`.

Input: the header file. Output: the header's fields (pynrrd's parse), the frames' layout
(:class:`FrameLayout`: the list axis first or last, the frame count and size, the encoding, the data
file and where its first frame starts, :mod:`edge_runtime.sources.sequence_data`), the geometry (IJK to
world and its coordinate system) and the per-frame ``Seq_FrameNNNN_<field>`` fields by frame.
Errors: one line naming the header file for a header that is not NRRD, a layout that is not a 2-D 8-bit
gray sequence, a frame beyond the frame-size limit, an encoding other than raw or gzip, a gzip sequence
with the list axis first, several data files, ``line skip`` and unusable space directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sources.frame_size import check_frame_size
from edge_runtime.sources.sequence_data import data_offset

SPATIAL_AXES = 3
GRAY_TYPES = ("uint8", "unsigned char", "uchar", "unsigned int8", "uint8_t")
RAW, GZIP, ZLIB = ("raw",), ("gzip", "gz"), ("zlib",)  # zlib: MetaImage's CompressedData


@dataclass(frozen=True)
class FrameLayout:
    """Where and how a sequence's frames are stored."""

    list_first: bool  # the frame axis first (older Slicer), else last
    frames: int
    width: int
    height: int
    encoding: str  # raw or gzip (NRRD), zlib (MetaImage's CompressedData)
    data_path: Path  # the header file itself when the data is attached
    offset: int  # of the first frame in data_path


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"{path}: {what}")


def read_header(path: Path) -> tuple[dict, int]:
    """The NRRD header of ``path`` (pynrrd's fields) and where its attached data would start."""
    nrrd = layout.require_pynrrd("reading a .seq.nrrd")
    try:
        with open(path, "rb") as fh:
            header = nrrd.read_header(fh)
            return header, fh.tell()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (nrrd.NRRDError, ValueError, TypeError, UnicodeDecodeError, StopIteration) as exc:
        raise InputError(f"{path}: not a readable NRRD sequence header ({exc})") from exc


def frame_layout(h: dict, path: Path, attached_at: int) -> FrameLayout:
    """The frames' layout the header ``h`` of ``path`` declares, checked (see module docstring);
    ``attached_at``: where the header's own data starts, for a header without ``data file``."""
    kinds = [str(k).lower() for k in h.get("kinds", [])]
    sizes = [int(s) for s in h.get("sizes", [])]
    if int(h.get("dimension", 0)) != SPATIAL_AXES + 1 or len(kinds) != 4 or len(sizes) != 4:
        raise _bad(
            path, f"expected a 4-D sequence (i, j, k, list), got kinds {kinds or '?'} sizes {sizes or '?'}"
        )
    if kinds.count("list") != 1 or kinds.index("list") not in (0, SPATIAL_AXES):
        raise _bad(path, f"expected one 'list' axis, first or last, got kinds {' '.join(kinds)}")
    if str(h.get("type", "")).lower() not in GRAY_TYPES:
        raise _bad(path, f"pixel type {h.get('type')!r}: only 8-bit gray ultrasound sequences are read")
    list_first = kinds[0] == "list"
    spatial = sizes[1:] if list_first else sizes[:SPATIAL_AXES]
    frames = sizes[0] if list_first else sizes[SPATIAL_AXES]
    width, height, depth = spatial
    if min(spatial) < 1:  # an empty frame (0 px wide) would reach the pipeline as an empty image
        raise _bad(path, f"sizes: {' '.join(map(str, sizes))}: a frame axis must hold at least 1 pixel")
    if depth != 1:
        raise _bad(path, f"frames of {width}x{height}x{depth}: a sequence of 2-D images expected")
    check_frame_size(width, height, str(path), 0)  # before any pixel is mapped or inflated
    encoding = str(h.get("encoding", "raw")).lower()
    if encoding not in RAW + GZIP:
        raise _bad(path, f"encoding {encoding!r} not supported (raw or gzip)")
    if list_first and encoding != "raw":
        raise _bad(
            path,
            "a gzip sequence with the list axis first cannot be read frame by frame; re-save it in Slicer",
        )
    data_file = h.get("data file", h.get("datafile"))  # NRRD allows both spellings
    if data_file is not None and (" " in str(data_file).strip() or str(data_file).upper() == "LIST"):
        raise _bad(path, f"data file {data_file!r}: only one data file is supported")
    data_path = path.parent / str(data_file) if data_file else path
    offset = data_offset(
        path,
        data_path,
        int(h.get("byte skip", 0)),
        0 if data_file else attached_at,
        encoding in RAW,
        frames * width * height,
    )
    if h.get("line skip"):
        raise _bad(path, "'line skip' is not supported")
    return FrameLayout(list_first, frames, width, height, encoding, data_path, offset)


def geometry(h: dict, path: Path) -> tuple[np.ndarray, str]:
    """The header's IJK-to-world matrix (identity without ``space directions``) and its coordinate
    system (``ras`` or ``lps``; RAS when the header names none or another)."""
    directions = h.get("space directions")
    space = str(h.get("space", "right-anterior-superior"))
    system = layout.SYSTEMS.get(space, "ras")
    matrix = np.eye(4)
    if directions is not None:
        rows = [
            np.asarray(r, np.float64) for r in np.asarray(directions, np.float64) if not np.isnan(r).all()
        ]
        if len(rows) != SPATIAL_AXES or any(r.shape != (SPATIAL_AXES,) for r in rows):
            raise _bad(path, "space directions: expected three 3-D axis vectors and 'none'")
        matrix[:3, :3] = np.array(rows).T
    if h.get("space origin") is not None:
        matrix[:3, 3] = np.asarray(h["space origin"], np.float64)
    return matrix, system


def frame_fields(header: dict) -> dict[int, dict[str, str]]:
    """``Seq_FrameNNNN_Field:=value`` keys -> {frame: {field: value}}."""
    out: dict[int, dict[str, str]] = {}
    for key, value in header.items():
        match = layout.FRAME_KEY.match(key)
        if match:
            out.setdefault(int(match.group(1)), {})[match.group(2)] = str(value)
    return out
