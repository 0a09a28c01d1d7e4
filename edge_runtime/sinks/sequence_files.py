"""One recording's three session sequence files, written as the frames come (their layout, names and
header text: :mod:`edge_runtime.sinks.sequence_layout`; docs/slicer-sequences.md).

Input: the first frame's item (ROI image, geometry, device, ROI, dropped count), then per frame the
item, its labelmap and 8-bit probability. Output: ``NAME.seq.nrrd``, ``NAME.labelmap.seq.nrrd`` and
``NAME.probability.seq.nrrd``, each a detached NRRD header with its ``.seq.raw`` data file beside it.
The data files are written unbuffered, a frame at a time; a header (:class:`GrowingHeader`) keeps its
fixed fields, appends the per-frame fields and rewrites its tail (``sizes`` and the frames' times) at
each checkpoint, so a header never names a frame that is not on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.sinks.sequence_layout import (
    DEVICE_KEY,
    DROPPED_KEY,
    FRAME_INDEX,
    GEOMETRY_UNKNOWN_KEY,
    IJK_TO_WORLD,
    IMAGE,
    IMAGE_STATUS,
    LABELMAP,
    NO_PREDICTION,
    PREDICTION_OF,
    PROBABILITY,
    PROBABILITY_SCALE_KEY,
    ROI_KEY,
    STATUS_INVALID,
    STATUS_OK,
    STATUS_SUFFIX,
    TIMESTAMP,
    TRANSFORM_SUFFIX,
    UINT8_MAX,
    data_path,
    fixed_header,
    frame_key,
    number,
    numbers,
    sequence_paths,
    tail,
)
from edge_runtime.sinks.sequence_names import SafeNames


class GrowingHeader:
    """A detached NRRD header that grows with the recording.

    Layout: the fixed fields, then the per-frame ``key:=value`` lines (appended), then the tail
    (``sizes`` and the index values, rewritten in place at each :meth:`checkpoint`). NRRD puts no
    order on fields after ``dimension``, so the lines that change are the last ones: a checkpoint
    costs the tail and the new per-frame lines, never the whole header."""

    def __init__(self, path: Path, fixed: bytes):
        self.path = path
        self._fh = open(path, "wb")  # kept open for the session; closed in close()
        self._fh.write(fixed)
        self._body_end = self._fh.tell()
        self._pending = bytearray()

    def add(self, lines: str) -> None:
        self._pending += lines.encode("ascii")

    def checkpoint(self, tail_bytes: bytes) -> None:
        self._fh.seek(self._body_end)
        if self._pending:
            self._fh.write(self._pending)
            self._body_end = self._fh.tell()
            self._pending.clear()
        self._fh.write(tail_bytes)
        self._fh.truncate()
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _write_all(raw, view: memoryview) -> None:
    """An unbuffered file's write may take part of the bytes (a disk filling up): write the rest, so
    the error, if any, is raised here."""
    while view:
        written = raw.write(view)
        if not written:
            raise OSError(f"{raw.name}: nothing written")
        view = view[written:]


class SequenceFiles:
    """The three header + data file pairs of one recording file (one ROI size)."""

    def __init__(self, main: Path, first: dict):
        self.main = main
        self.shape = first["gray"].shape
        self.matrix, self.system = first["matrix"], first["system"]
        height, width = self.shape
        # names from the sender, made header-safe (sequence_names): one odd name never costs the recording
        self.transform_name = SafeNames("transform")
        extra = {DEVICE_KEY: SafeNames("device")(first["device"]), ROI_KEY: " ".join(map(str, first["roi"]))}
        self.headers: dict[str, GrowingHeader] = {}
        self.data: dict = {}
        main.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # patient images: private
        for kind, path in sequence_paths(main).items():
            data = data_path(path)
            keys = dict(extra)
            if kind == PROBABILITY:
                keys[PROBABILITY_SCALE_KEY] = f"1/{UINT8_MAX}"
            fixed = fixed_header(kind, width, height, self.matrix, self.system, data.name, keys)
            # unbuffered: a frame is a large write anyway, and a write error then surfaces in the
            # frame that caused it, before the headers count that frame
            self.data[kind] = open(data, "wb", buffering=0)  # open for the session; closed in close()
            self.headers[kind] = GrowingHeader(path, fixed)
        self.frames = 0
        self.geometry_unknown = 0
        self.first_timestamp: float | None = None
        self.index_values = bytearray()
        self.dropped_before = first["dropped"]

    def append(self, item: dict, label: np.ndarray, prob8: np.ndarray, prediction_of: str) -> None:
        n = self.frames
        for kind, plane in (
            (IMAGE, item["gray"]),
            (LABELMAP, label),
            (PROBABILITY, prob8),
        ):
            _write_all(self.data[kind], memoryview(np.ascontiguousarray(plane, np.uint8)).cast("B"))
        if self.first_timestamp is None:
            self.first_timestamp = item["timestamp"]
        key = frame_key
        lines = [
            f"{key(n, TIMESTAMP)}:={number(item['timestamp'])}",
            f"{key(n, FRAME_INDEX)}:={item['index']}",
            f"{key(n, IMAGE_STATUS)}:={STATUS_OK}",
        ]
        if item["matrix"] is None:  # refused by the source: unknown, marked so (never made up)
            lines.append(f"{key(n, IJK_TO_WORLD + STATUS_SUFFIX)}:={STATUS_INVALID}")
            self.geometry_unknown += 1
        elif not np.array_equal(item["matrix"], self.matrix):
            lines.append(f"{key(n, IJK_TO_WORLD)}:={numbers(item['matrix'])}")
        for name, matrix in sorted(item["transforms"].items()):
            field = f"{self.transform_name(name)}{TRANSFORM_SUFFIX}"
            lines.append(f"{key(n, field)}:={numbers(matrix)}")
            lines.append(f"{key(n, field + STATUS_SUFFIX)}:={STATUS_OK}")
        self.headers[IMAGE].add("".join(line + "\n" for line in lines))
        status = STATUS_OK if prediction_of != NO_PREDICTION else STATUS_INVALID
        for kind in (LABELMAP, PROBABILITY):
            self.headers[kind].add(
                f"{key(n, PREDICTION_OF)}:={prediction_of}\n{key(n, IMAGE_STATUS)}:={status}\n"
            )
        self.index_values += f"{item['timestamp'] - self.first_timestamp:.6f} ".encode("ascii")
        self.frames += 1

    def checkpoint(self, dropped: int) -> None:
        """The data is written unbuffered, so a header never names a frame not on disk."""
        height, width = self.shape
        dropped_line = (
            f"{DROPPED_KEY}:={dropped - self.dropped_before}\n"
            f"{GEOMETRY_UNKNOWN_KEY}:={self.geometry_unknown}\n"
        ).encode("ascii")
        end = dropped_line + tail(width, height, self.frames, self.index_values)
        for header in self.headers.values():
            header.checkpoint(end)

    def close(self, dropped: int) -> None:
        try:
            self.checkpoint(dropped)
        finally:
            for f in [*self.data.values(), *self.headers.values()]:
                f.close()
