"""PLUS sequence files (``.igs.mha``, ``.seq.mha``, ``.mhd`` + data) as a source.

Input: a MetaImage of 2-D 8-bit gray frames stacked on its third axis (``Kinds = domain domain list``),
as PLUS (and SlicerIGT's recordings through it) write them, uncompressed or ``CompressedData = True``
(zlib), with PLUS's per-frame fields: ``Seq_FrameNNNN_Timestamp`` (PLUS's clock, seconds),
``_ImageStatus`` (frames not ``OK`` are skipped), ``_<From>To<To>Transform`` + ``Status``.
Output: what :class:`edge_runtime.sources.sequence.SequenceSource` gives for a ``.seq.nrrd``: BGR frames
with the timestamp, geometry and transforms in ``meta``, paced by the recorded times. Frames are turned to
PLUS's display orientation ``MF`` (``UltrasoundImageOrientation`` UF/MN/UN: flipped).

The header and its fields are read by SimpleITK (ITK's MetaImageIO); the pixels are read one frame at a
time here (a memory map, or one zlib stream), because ITK's per-frame extraction inflates a compressed
file from its start for every frame (measured: 0.7 s a frame at frame 200 of a 640x480 file).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_runtime import source_kinds
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.sources.frame_size import check_frame_size
from edge_runtime.sources.sequence import Recording, RecordingSource, check_data
from edge_runtime.sources.sequence_header import RAW, ZLIB, FrameLayout

DATA_FILE_KEY = "ElementDataFile"
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a header beyond this is not a PLUS sequence
FLIPS = {"MF": (), "UF": (1,), "MN": (0,), "UN": (0, 1)}  # axes to flip (rows 0, columns 1) to reach MF
SPATIAL = 3


def require_simpleitk(path: Path):
    try:
        return importlib.import_module("SimpleITK")  # deferred: optional, and large
    except ImportError as exc:
        raise SonomapError(
            f"{path}: reading a PLUS MetaImage sequence needs SimpleITK: pip install 'sonomap[plus]'"
        ) from exc


def _text_header(path: Path) -> tuple[dict[str, str], int]:
    """``Key = Value`` lines up to ``ElementDataFile`` (the last header line) and where the data starts."""
    fields: dict[str, str] = {}
    with open(path, "rb") as fh:
        while fh.tell() < MAX_HEADER_BYTES:
            line = fh.readline()
            if not line:
                break
            key, sep, value = line.decode("latin-1").partition("=")
            if sep:
                fields[key.strip()] = value.strip()
            if key.strip() == DATA_FILE_KEY:
                return fields, fh.tell()
    raise InputError(f"{path}: no {DATA_FILE_KEY} line: not a MetaImage header")


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"{path}: {what}")


def _data_location(path: Path, text: dict[str, str], data_at: int) -> tuple[Path, int, str]:
    """The data file, where its first frame starts and its encoding, from the text header of ``path``."""
    data_file = text[DATA_FILE_KEY]
    if data_file.upper() == "LOCAL":
        data_path, offset = path, data_at
    elif " " in data_file or data_file.upper().startswith("LIST"):
        raise _bad(path, f"{DATA_FILE_KEY} {data_file!r}: only one data file is supported")
    else:
        data_path = path.parent / data_file
        offset = int(text.get("HeaderSize", "0") or 0)
        if offset < 0:
            raise _bad(path, "HeaderSize -1 (data at the end of the file) is not supported")
    compressed = text.get("CompressedData", "False").lower() == "true"
    return data_path, offset, ZLIB[0] if compressed else RAW[0]


def read_metaimage(path: Path) -> tuple[Recording, tuple[int, ...]]:
    """A PLUS sequence's header and its data file, read and checked (see module docstring), and the
    axes each frame is flipped on to reach the display orientation ``MF``."""
    sitk = require_simpleitk(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:  # SimpleITK's one exception type; its text is ITK's
        reason = str(exc).strip().splitlines()[-1][:200]
        raise InputError(f"{path}: not a readable MetaImage sequence ({reason})") from exc
    header = {key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()}
    if reader.GetDimension() != SPATIAL or reader.GetNumberOfComponents() != 1:
        raise _bad(
            path,
            f"{reader.GetDimension()}-D, {reader.GetNumberOfComponents()} component(s): 2-D gray frames expected",
        )
    if reader.GetPixelID() != sitk.sitkUInt8:
        raise _bad(path, f"pixel type {reader.GetPixelIDTypeAsString()}: only 8-bit gray sequences are read")
    width, height, frames = (int(v) for v in reader.GetSize())
    check_frame_size(width, height, str(path), 0)  # before any pixel is mapped or inflated
    text, data_at = _text_header(path)
    data_path, offset, encoding = _data_location(path, text, data_at)
    orientation = header.get("UltrasoundImageOrientation", "MF").upper()
    if orientation not in FLIPS:
        raise _bad(
            path, f"UltrasoundImageOrientation {orientation}: only 2-D B-mode orientations {', '.join(FLIPS)}"
        )
    found = FrameLayout(
        list_first=False,
        frames=frames,
        width=width,
        height=height,
        encoding=encoding,
        data_path=data_path,
        offset=offset,
    )
    check_data(path, found)
    spacing, direction = reader.GetSpacing(), np.array(reader.GetDirection(), np.float64).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, 0] = direction[:, 0] * spacing[0]
    matrix[:3, 1] = direction[:, 1] * spacing[1]
    matrix[:3, 2] = direction[:, 2]
    matrix[:3, 3] = reader.GetOrigin()
    # ITK's physical space is LPS; Image_Reference: PLUS's name for the image in its reference frame
    recording = Recording(path, source_kinds.PLUS_SEQUENCE, header, found, matrix, "lps", "Image_Reference")
    return recording, FLIPS[orientation]


class PlusMetaImageSource(RecordingSource):
    """Frames of a PLUS ``.mha``/``.mhd`` sequence (see module docstring), in the display orientation."""

    def __init__(self, path: str | Path, loop: bool = False):
        recording, self.flips = read_metaimage(Path(path))
        super().__init__(recording, loop)

    def images(self) -> Iterator[np.ndarray]:
        for gray in super().images():
            yield np.ascontiguousarray(np.flip(gray, self.flips)) if self.flips else gray
