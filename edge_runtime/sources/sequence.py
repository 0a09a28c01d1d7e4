"""A recorded session (``.seq.nrrd``) as a source: re-score it with another model, frame by frame.

Input: a 3D Slicer volume sequence file (``--record-sequence`` output, or one Slicer or PLUS wrote):
a NRRD header (attached, or detached with ``data file:``), 8-bit gray 2-D frames on a ``list`` axis
(last, as sonomap and Slicer write it; first, as older Slicer did, uncompressed only), raw or gzip.
Output: one :class:`edge_runtime.frames.Frame` per frame, BGR, with the recorded time and geometry in
``meta`` the way the OpenIGTLink source gives them (``igtl_timestamp``, ``ijk_to_world``,
``igtl_layout``, ``device``, ``transforms``, ``mm_per_pixel``, ``default_roi: full``), so
``--igtl-out``/``--igtl-serve`` send the same timestamps and transforms as the session did, and
``pts`` = seconds since the first frame (``paced_by_pts``: ``live`` and ``replay --realtime`` keep the
recorded pace; ``replay`` alone runs as fast as it can). A frame recorded with its geometry unknown
(``IjkToWorldStatus`` INVALID) has no geometry keys but ``igtl_geometry_refused``, as the OpenIGTLink
source gave it, so no sink sends its prediction with a made-up pose. The header is read and checked
before any pixel (:mod:`edge_runtime.sources.sequence_header`); frames are read one at a time
(memory-mapped or streamed): memory stays flat however long the recording.
Any recorded sequence plays through :class:`RecordingSource`, from the :class:`Recording` its format's
reader gives: :func:`read_nrrd` here (:class:`SequenceSource`), PLUS's MetaImage in
:mod:`edge_runtime.sources.plus_metaimage`.
Errors: one line naming the file (and the frame) for a header that is not NRRD, a layout that is not
a 2-D gray sequence, a missing or truncated data file. Log lines name the source by its kind
(``Slicer sequence``), never by its path: file names may carry the patient's name (docs/privacy.md).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import recorded_time, source_kinds
from edge_runtime.errors import InputError
from edge_runtime.frames import DEFAULT_DEVICE, Frame, Source
from edge_runtime.igtl.geometry import GEOMETRY_REFUSED_KEY
from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sources.frame_rate import believable_fps
from edge_runtime.sources.sequence_header import (
    GZIP,
    FrameLayout,
    frame_fields,
    frame_layout,
    geometry,
    read_header,
)
from edge_runtime.sources.sequence_times import frame_times
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.sources")
GZIP_WBITS, ZLIB_WBITS = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS
READ_CHUNK = 1 << 20
GEOMETRY_UNKNOWN = "recorded with its geometry unknown (IjkToWorldStatus INVALID)"


def _matrix(text: str, path: Path, what: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in text.split()], np.float64).reshape(4, 4)
    except ValueError as exc:
        raise InputError(f"{path}: {what} is not 16 numbers ({text[:60]!r})") from exc


@dataclass(frozen=True)
class Recording:
    """A recorded sequence's header as :class:`RecordingSource` plays it, whatever the file's format, read
    and checked by that format's reader (:func:`read_nrrd`; :mod:`edge_runtime.sources.plus_metaimage`).

    ``path``: the header file, which every error names; ``kind``: the source's name in logs and frame
    metadata (:mod:`edge_runtime.source_kinds`, never the file name); ``header``: its fields, with the
    per-frame ``Seq_FrameNNNN_<field>`` keys; ``stored``: where and how the frames are stored, already
    passed through :func:`check_data`; ``matrix``, ``system``: IJK to world and its coordinate system
    (``ras`` or ``lps``); ``device``: the image's OpenIGTLink device name."""

    path: Path
    kind: str
    header: dict
    stored: FrameLayout
    matrix: np.ndarray
    system: str
    device: str


def check_data(path: Path, found: FrameLayout) -> None:
    """The data file ``found`` names exists and, uncompressed, holds every frame it names; errors name
    ``path``, the header file. A reader calls it before it reads the geometry."""
    if found.frames < 1:
        raise InputError(f"{path}: the sequence holds no frames")
    if not found.data_path.is_file():
        raise InputError(f"{path}: data file {found.data_path.name} not found beside it")
    frame_bytes = found.width * found.height
    if found.encoding == "raw":
        present = found.data_path.stat().st_size - found.offset
        if present < found.frames * frame_bytes:
            whole = max(0, present) // frame_bytes
            raise InputError(
                f"{path}: data ends in frame {whole} of {found.frames} ({found.data_path.name} holds "
                f"{max(0, present)} of {found.frames * frame_bytes} bytes): truncated"
            )


def read_nrrd(path: Path) -> Recording:
    """A ``.seq.nrrd``/``.nhdr`` header and its data file, read and checked (see module docstring)."""
    header, attached_at = read_header(path)
    found = frame_layout(header, path, attached_at)
    check_data(path, found)
    matrix, system = geometry(header, path)
    device = str(header.get(layout.DEVICE_KEY) or DEFAULT_DEVICE)
    return Recording(path, source_kinds.SLICER_SEQUENCE, header, found, matrix, system, device)


class RecordingSource(Source):
    """Frames of a :class:`Recording` (see module docstring), whatever its file format. A format with its
    own reader gives it here; one whose frames need turning overrides :meth:`images`. Not live: replay
    takes every frame."""

    paced_by_pts = True  # live and `replay --realtime` pace by the recorded times, not a nominal rate

    def __init__(self, recording: Recording, loop: bool = False):
        self.path = recording.path
        self.name = recording.kind  # not the file name: recordings may be named after the patient
        self.loop = loop
        self.header = recording.header
        found = recording.stored
        self.list_first, self.frames = found.list_first, found.frames
        self.width, self.height = found.width, found.height
        self.encoding, self.data_path, self.offset = found.encoding, found.data_path, found.offset
        self.frame_bytes = self.width * self.height
        self.matrix, self.system, self.device = recording.matrix, recording.system, recording.device
        self._per_frame()
        # the kind, not the path: a sequence has no patient header whose identifiers would redact its name
        log.info("%s: %d frame(s) of %dx%d", self.name, self.frames, self.width, self.height)

    def _bad(self, what: str) -> InputError:
        return InputError(f"{self.path}: {what}")

    def _per_frame(self) -> None:
        fields = frame_fields(self.header)
        index_values = (
            str(self.header.get(f"axis {layout.LIST_AXIS} index values") or "").split()
            or str(self.header.get("axis 0 index values") or "").split()
        )
        stamps = {
            n: f[layout.TIMESTAMP] for n, f in fields.items() if layout.TIMESTAMP in f and n < self.frames
        }
        self.timestamps = times = frame_times(self.frames, stamps, index_values, str(self.path), self.name)
        self.recorded = recorded_time.epoch_start(times[0]) if times else {}  # a start since 1970 only
        self.fields = fields
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        mean = (len(times) - 1) / span if span > 0 else None  # frames are paced by their times; this
        # rate is the outputs': a recorder's clock that makes it 0.001 or 100000 fps is not believed
        self.fps = believable_fps(mean, self.name, "its timestamps", f"{DEFAULT_FPS:g} fps") or DEFAULT_FPS

    # --- frames -------------------------------------------------------------------
    def frame_meta(self, n: int) -> dict:
        fields = self.fields.get(n, {})
        transforms = self._transforms(n, fields)
        meta = {
            **self.recorded,  # when the first frame was recorded, if the file says (a biopsy's time)
            "source": self.name,
            "igtl_coordinate_system": self.system,
            "igtl_layout": (1, self.height, self.width),
            "device": self.device,
            "igtl_timestamp": self.timestamps[n],
            "transforms": transforms,
            "default_roi": "full",
            "sequence_frame": n,
        }
        if fields.get(layout.IJK_TO_WORLD + layout.STATUS_SUFFIX, layout.STATUS_OK) != layout.STATUS_OK:
            # recorded with its geometry unknown (refused by the OpenIGTLink source): replayed as the
            # source gave it, with no geometry, so no sink sends its prediction with a made-up pose
            meta[GEOMETRY_REFUSED_KEY] = GEOMETRY_UNKNOWN
            return meta
        matrix = (
            _matrix(fields[layout.IJK_TO_WORLD], self.path, f"frame {n} {layout.IJK_TO_WORLD}")
            if layout.IJK_TO_WORLD in fields
            else self.matrix
        )
        col_mm = float(np.linalg.norm(matrix[:3, 0]))
        row_mm = float(np.linalg.norm(matrix[:3, 1]))
        ijk_to_ras = matrix if self.system == "ras" else np.diag([-1.0, -1.0, 1.0, 1.0]) @ matrix
        meta.update(
            mm_per_pixel=(row_mm + col_mm) / 2.0,
            spacing=(col_mm, row_mm, float(np.linalg.norm(matrix[:3, 2]))),
            pixel_spacing=(row_mm, col_mm),
            ijk_to_ras=ijk_to_ras,
            ijk_to_world=matrix,
        )
        return meta

    def _transforms(self, n: int, fields: dict[str, str]) -> dict[str, np.ndarray]:
        """Frame ``n``'s PLUS transforms whose status is OK, by name (``ProbeToTracker``)."""
        transforms = {}
        for field, value in fields.items():
            if (
                field.endswith(layout.TRANSFORM_SUFFIX)
                and fields.get(field + layout.STATUS_SUFFIX, "OK") == "OK"
            ):
                name = field[: -len(layout.TRANSFORM_SUFFIX)]
                transforms[name] = _matrix(value, self.path, f"frame {n} {field}").astype(np.float32)
        return transforms

    def images(self) -> Iterator[np.ndarray]:
        """The frames' gray pixels (H, W) uint8, in order, one at a time."""
        if self.encoding == "raw":
            data = np.memmap(
                self.data_path, np.uint8, "r", offset=self.offset, shape=(self.frames * self.frame_bytes,)
            )
            if self.list_first:
                frames = data.reshape(self.height, self.width, self.frames)
                for n in range(self.frames):
                    yield np.ascontiguousarray(frames[:, :, n])
            else:
                frames = data.reshape(self.frames, self.height, self.width)
                for n in range(self.frames):
                    yield np.array(frames[n])
            return
        with open(self.data_path, "rb") as fh:
            fh.seek(self.offset)
            inflate = zlib.decompressobj(GZIP_WBITS if self.encoding in GZIP else ZLIB_WBITS)
            buffer = bytearray()
            for n in range(self.frames):
                while len(buffer) < self.frame_bytes:
                    data = inflate.unconsumed_tail or fh.read(READ_CHUNK)
                    if not data or inflate.eof:
                        raise self._bad(f"data ends in frame {n} of {self.frames}: truncated")
                    try:  # at most a frame out per call: a run of zeros never balloons in memory
                        buffer += inflate.decompress(data, self.frame_bytes)
                    except zlib.error as exc:
                        raise self._bad(f"frame {n} of {self.frames} cannot be decompressed ({exc})") from exc
                yield np.frombuffer(bytes(buffer[: self.frame_bytes]), np.uint8).reshape(
                    self.height, self.width
                )
                del buffer[: self.frame_bytes]

    def __iter__(self) -> Iterator[Frame]:
        index, offset = 0, 0.0
        while True:
            for n, gray in enumerate(self.images()):
                if self.fields.get(n, {}).get(layout.IMAGE_STATUS, layout.STATUS_OK) != layout.STATUS_OK:
                    continue  # PLUS marks frames without a valid image: nothing to score
                bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
                pts = offset + self.timestamps[n] - self.timestamps[0]
                yield Frame(index, bgr, time.monotonic(), pts, self.frame_meta(n))
                index += 1
            if not self.loop or self.frames == 0:
                return
            offset += (
                self.timestamps[-1] - self.timestamps[0] + 1.0 / self.fps
            )  # pts go on rising: pacing holds


class SequenceSource(RecordingSource):
    """Frames of a ``.seq.nrrd``/``.nhdr`` (see module docstring)."""

    def __init__(self, path: str | Path, loop: bool = False):
        super().__init__(read_nrrd(Path(path)), loop)
