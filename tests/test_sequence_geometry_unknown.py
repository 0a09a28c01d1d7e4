"""A frame whose OpenIGTLink geometry was refused (NaN, singular: ``igtl_geometry_refused``) is recorded
by ``--record-sequence`` with its geometry marked unknown, never with a made-up one (an axis-aligned
matrix at the ROI's scale or 1 mm), and replays without a geometry (docs/slicer-sequences.md)."""

from __future__ import annotations

import numpy as np
import pytest
from test_igtl_standin import image_matrix

from edge_runtime.frames import Frame
from edge_runtime.igtl.geometry import GEOMETRY_REFUSED_KEY
from edge_runtime.roi import Roi
from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sinks.sequence import SequenceRecorder
from edge_runtime.sources.sequence import SequenceSource

nrrd = pytest.importorskip("nrrd")
ROI = Roi(2, 1, 5, 4, 0.3)  # a scale from the config: no stand-in for the image's own geometry
GEOMETRY_KEYS = ("ijk_to_world", "ijk_to_ras", "mm_per_pixel", "spacing", "pixel_spacing")


def igtl_frame(n: int, refused: bool) -> Frame:
    image = np.full((6, 8, 3), 10 * n, np.uint8)
    meta = {"roi": ROI, "igtl_coordinate_system": "lps", "igtl_timestamp": 50.0 + n, "igtl_layout": (1, 6, 8)}
    if refused:
        meta[GEOMETRY_REFUSED_KEY] = "the matrix holds NaN or infinity"
    else:
        meta["ijk_to_world"] = image_matrix()
    return Frame(n, image, 0.0, None, meta)


def record(path, refused: list[bool]) -> SequenceRecorder:
    recorder = SequenceRecorder(path, live=False)
    for n, flag in enumerate(refused):
        frame = igtl_frame(n, flag)
        recorder.on_frame(frame, None, frame.image, {})
    recorder.close()
    assert recorder.error is None
    return recorder


def test_refused_geometry_is_recorded_unknown_and_replays_without_one(tmp_path):
    """Known, refused, known: the header holds the known geometry, the refused frame is marked
    IjkToWorldStatus INVALID (no IjkToWorld) and counted, and it replays with no geometry at all."""
    recorder = record(tmp_path / "s.seq.nrrd", [False, True, False])
    frames = list(SequenceSource(tmp_path / "s.seq.nrrd"))
    assert len(frames) == 3
    assert not set(GEOMETRY_KEYS) & set(frames[1].meta) and frames[1].meta[GEOMETRY_REFUSED_KEY]
    header = nrrd.read_header(str(tmp_path / "s.seq.nrrd"))
    assert layout.frame_key(1, "IjkToWorld") not in header
    assert header[layout.frame_key(1, "IjkToWorldStatus")] == "INVALID"
    assert header["sonomap geometry unknown frames"] == "1" and header["space"] == "left-posterior-superior"
    assert recorder.files == [tmp_path / "s.seq.nrrd"] and recorder.geometry_unknown == 1
    assert frames[1].meta["igtl_timestamp"] == 51.0
    expected = image_matrix()
    expected[:3, 3] += expected[:3, :3] @ [ROI.x, ROI.y, 0.0]
    for frame in (frames[0], frames[2]):
        assert GEOMETRY_REFUSED_KEY not in frame.meta
        np.testing.assert_allclose(frame.meta["ijk_to_world"], expected)


def test_a_recording_that_begins_unknown_has_no_geometry_until_a_new_file(tmp_path):
    """Refused first: that file's header has no space fields (NRRD's "no geometry") and every frame is
    marked; the first known geometry starts a new file whose header holds it."""
    recorder = record(tmp_path / "s.seq.nrrd", [True, True, False, True])
    assert not {"space", "space directions", "space origin"} & set(
        nrrd.read_header(str(tmp_path / "s.seq.nrrd"))
    )
    first, second = recorder.files
    assert first == tmp_path / "s.seq.nrrd" and second == tmp_path / "s-1.seq.nrrd"
    images, header = nrrd.read(str(first), index_order="C")
    assert images.shape == (2, 1, ROI.h, ROI.w)
    assert not {"space", "space directions", "space origin"} & set(header)
    assert [header[layout.frame_key(n, "IjkToWorldStatus")] for n in range(2)] == ["INVALID"] * 2
    assert all(GEOMETRY_REFUSED_KEY in f.meta and "ijk_to_world" not in f.meta for f in SequenceSource(first))
    header = nrrd.read_header(str(second))
    assert header["space"] == "left-posterior-superior" and header["sonomap geometry unknown frames"] == "1"
    assert [GEOMETRY_REFUSED_KEY in f.meta for f in SequenceSource(second)] == [False, True]
    assert recorder.geometry_unknown == 3


def test_itk_reads_a_recording_without_geometry(tmp_path):
    """The geometry-less header is a valid NRRD for ITK's reader (3D Slicer's): unit spacing, its default."""
    sitk = pytest.importorskip("SimpleITK")
    recorder = record(tmp_path / "s.seq.nrrd", [True, True])
    image = sitk.ReadImage(str(recorder.files[0]))
    assert image.GetSize()[:2] == (ROI.w, ROI.h) and image.GetSpacing()[:2] == (1.0, 1.0)
