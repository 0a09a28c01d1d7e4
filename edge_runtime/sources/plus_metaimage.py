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
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_runtime import source_kinds
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.sources.frame_size import check_frame_size
from edge_runtime.sources.sequence import SequenceSource
from edge_runtime.sources.sequence_header import RAW, ZLIB

log = logging.getLogger("sonomap.sources")
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


class PlusMetaImageSource(SequenceSource):
    """Frames of a PLUS ``.mha``/``.mhd`` sequence (see module docstring)."""

    def __init__(self, path: str | Path, loop: bool = False):
        self.path = Path(path)
        self.name = source_kinds.PLUS_SEQUENCE  # not the file name: recordings may be named after the patient
        self.loop = loop
        sitk = require_simpleitk(self.path)
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(self.path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:  # SimpleITK's one exception type; its text is ITK's
            reason = str(exc).strip().splitlines()[-1][:200]
            raise InputError(f"{self.path}: not a readable MetaImage sequence ({reason})") from exc
        self.header = {key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()}
        if reader.GetDimension() != SPATIAL or reader.GetNumberOfComponents() != 1:
            raise self._bad(
                f"{reader.GetDimension()}-D, {reader.GetNumberOfComponents()} component(s): 2-D gray frames expected"
            )
        if reader.GetPixelID() != sitk.sitkUInt8:
            raise self._bad(
                f"pixel type {reader.GetPixelIDTypeAsString()}: only 8-bit gray sequences are read"
            )
        self.width, self.height, self.frames = (int(v) for v in reader.GetSize())
        check_frame_size(self.width, self.height, str(self.path), 0)  # before any pixel is mapped or inflated
        self.list_first = False
        text, data_at = _text_header(self.path)
        self._data_location(text, data_at)
        orientation = self.header.get("UltrasoundImageOrientation", "MF").upper()
        if orientation not in FLIPS:
            raise self._bad(
                f"UltrasoundImageOrientation {orientation}: only 2-D B-mode orientations {', '.join(FLIPS)}"
            )
        self.flips = FLIPS[orientation]
        self._check_data()
        spacing, direction = reader.GetSpacing(), np.array(reader.GetDirection(), np.float64).reshape(3, 3)
        matrix = np.eye(4)
        matrix[:3, 0] = direction[:, 0] * spacing[0]
        matrix[:3, 1] = direction[:, 1] * spacing[1]
        matrix[:3, 2] = direction[:, 2]
        matrix[:3, 3] = reader.GetOrigin()
        self.matrix, self.system = matrix, "lps"  # ITK's physical space
        self.device = "Image_Reference"  # PLUS's name for the image in its reference frame
        self._per_frame()
        # the kind, not the path, as SequenceSource logs it: the file name may carry the patient's name
        log.info("%s: %d frame(s) of %dx%d", self.name, self.frames, self.width, self.height)

    def _data_location(self, text: dict[str, str], data_at: int) -> None:
        data_file = text[DATA_FILE_KEY]
        if data_file.upper() == "LOCAL":
            self.data_path, self.offset = self.path, data_at
        elif " " in data_file or data_file.upper().startswith("LIST"):
            raise self._bad(f"{DATA_FILE_KEY} {data_file!r}: only one data file is supported")
        else:
            self.data_path = self.path.parent / data_file
            self.offset = int(text.get("HeaderSize", "0") or 0)
            if self.offset < 0:
                raise self._bad("HeaderSize -1 (data at the end of the file) is not supported")
        compressed = text.get("CompressedData", "False").lower() == "true"
        self.encoding = ZLIB[0] if compressed else RAW[0]

    def images(self) -> Iterator[np.ndarray]:
        for gray in super().images():
            yield np.ascontiguousarray(np.flip(gray, self.flips)) if self.flips else gray
