"""Device and transform names an OpenIGTLink sender chose freely (a newline, ``:=``, non-ASCII) are
recorded under header-safe names by ``--record-sequence``: the recording stays readable, every frame is
kept, and two different names stay two transforms (docs/slicer-sequences.md, *Names*)."""

from __future__ import annotations

import numpy as np
import pytest
from test_igtl_standin import image_matrix

from edge_runtime.frames import Frame
from edge_runtime.roi import Roi
from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sinks.sequence import SequenceRecorder
from edge_runtime.sinks.sequence_names import SafeNames
from edge_runtime.sources.sequence import SequenceSource

nrrd = pytest.importorskip("nrrd")
FRAMES = 3
ROI = Roi(0, 0, 8, 6, 0.3)
# name as sent -> name recorded; "a:b" comes before "a_b" in sorted order, so the literal one is moved
TRANSFORMS = {
    "Probe\n\nX": "Probe__X",  # a blank line would end the NRRD header
    "a:=b": "a__b",  # would split the key on reading: a duplicate field
    "SondeToTracké": "SondeToTrack_",  # not ASCII: the header could not be written
    "ProbeToTracker": "ProbeToTracker",  # a PLUS name stays as it is
    "a:b": "a_b",
    "a_b": "a_b_2",  # two names never become one transform
}


def frame(n: int, device: str) -> Frame:
    meta = {
        "roi": ROI,
        "igtl_coordinate_system": "ras",
        "igtl_timestamp": 10.0 + n,
        "ijk_to_world": image_matrix(),
        "device": device,
        "transforms": {name: np.eye(4) * (i + 1) + n for i, name in enumerate(TRANSFORMS)},
    }
    return Frame(n, np.full((6, 8, 3), n, np.uint8), 0.0, None, meta)


def test_odd_names_are_recorded_safe_and_distinct(tmp_path):
    path = tmp_path / "s.seq.nrrd"
    recorder = SequenceRecorder(path, live=False)
    for n in range(FRAMES):
        item = frame(n, "Imagé")
        recorder.on_frame(item, None, item.image, {})
    recorder.close()
    assert recorder.error is None and recorder.frames == FRAMES
    header = nrrd.read_header(str(path))  # pynrrd refuses a duplicate field
    assert header[layout.DEVICE_KEY] == "Imag_"
    frames = list(SequenceSource(path))
    assert len(frames) == FRAMES
    for n, got in enumerate(frames):
        assert got.meta["device"] == "Imag_"
        assert set(got.meta["transforms"]) == set(TRANSFORMS.values())
        for i, (sent, written) in enumerate(TRANSFORMS.items()):
            np.testing.assert_array_equal(got.meta["transforms"][written], np.eye(4) * (i + 1) + n, sent)


def test_itk_reads_a_recording_with_odd_names(tmp_path):
    """ITK's NRRD reader (3D Slicer's) reads the header with the renamed fields."""
    sitk = pytest.importorskip("SimpleITK")
    path = tmp_path / "s.seq.nrrd"
    recorder = SequenceRecorder(path, live=False)
    item = frame(0, "Image\nX")
    recorder.on_frame(item, None, item.image, {})
    recorder.close()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    assert reader.GetMetaData(layout.frame_key(0, "Probe__XTransform")).split()[0] == "1.0"
    assert reader.GetMetaData(layout.DEVICE_KEY) == "Image_X"


def test_a_name_keeps_its_written_name_and_an_empty_one_gets_one():
    names = SafeNames("transform")
    assert [names("x y"), names("x:y"), names("x y"), names(""), names("x_y")] == [
        "x_y",
        "x_y_2",
        "x_y",
        "_",
        "x_y_3",
    ]
