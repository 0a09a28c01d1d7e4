"""A file that declares a frame rate no scanner delivers (0.001 fps: one frame every 1000 s; 100000
fps) is not paced by it: its rate is outside the range ``source.fps`` accepts, so replay and ``live``
play it at ``source.fps``, else 30 fps, and one warning says so. ``replay --realtime`` of a 0.001 fps
clip otherwise waited 1000 s a frame and wrote a 0.001 fps overlay video. Real clips written with
PyAV, real DICOM files written with pydicom, the real CLI."""

from __future__ import annotations

import logging
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.config_schema import MAX_FPS, MIN_FPS
from edge_runtime.pipeline.pacing import Pacer
from edge_runtime.sources.opener import DicomCineSource, open_source
from edge_runtime.units import DEFAULT_FPS

FRAMES = 5
ABSURD_RATES = [Fraction(1, 1000), Fraction(1, 2), 100000, MAX_FPS + 10]
REPLAY_BOUND_S = 120  # 5 frames at 30 fps take 0.13 s; at 0.001 fps they took over an hour


def clip(path, rate, frames=FRAMES):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), i * 40, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(str(path)) as check:  # the fixture really declares the rate
        assert check.streams.video[0].average_rate == rate
    return path


def warnings_about_rate(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "frame rate" in r.getMessage()]


@pytest.mark.parametrize("rate", ABSURD_RATES)
def test_a_video_declaring_an_absurd_rate_falls_back_with_one_warning(tmp_path, caplog, rate):
    path = clip(tmp_path / "clip.mp4", rate)
    with caplog.at_level(logging.WARNING, logger="sonomap"):
        source = open_source(str(path), loop=False)
        frames = list(source)
    assert source.fps is None  # unknown: the pipeline's source.fps, else DEFAULT_FPS, applies
    assert len(frames) == FRAMES
    lines = warnings_about_rate(caplog)
    assert len(lines) == 1, lines
    assert f"{MIN_FPS}" in lines[0] and f"{MAX_FPS}" in lines[0] and str(path) not in lines[0]
    # the interval replay --realtime waits between frames: 1/30 s, not 1000 s
    pacer = Pacer(by_pts=False)
    fps = source.fps or DEFAULT_FPS
    step = pacer.due_at(frames[1], fps) - pacer.due_at(frames[0], fps)
    assert step == pytest.approx(1 / DEFAULT_FPS)


@pytest.mark.parametrize("rate", [MIN_FPS, 25, MAX_FPS])
def test_a_video_within_the_range_keeps_its_own_rate_quietly(tmp_path, caplog, rate):
    path = clip(tmp_path / "clip.mp4", rate)
    with caplog.at_level(logging.WARNING, logger="sonomap"):
        source = open_source(str(path))
        assert len(list(source)) == FRAMES
    assert source.fps == pytest.approx(rate)
    assert warnings_about_rate(caplog) == []


def test_a_looping_video_warns_once_not_every_pass(tmp_path, caplog):
    path = clip(tmp_path / "clip.mp4", Fraction(1, 1000))
    with caplog.at_level(logging.WARNING, logger="sonomap"):
        source = open_source(str(path), loop=True)
        for frame in source:
            if frame.index >= 3 * FRAMES:
                break
        source.close()
    assert len(warnings_about_rate(caplog)) == 1


def test_realtime_replay_of_a_0_001_fps_clip_plays_at_the_default_rate(tmp_path):
    path = clip(tmp_path / "slow.mp4", Fraction(1, 1000))
    out = tmp_path / "out.mp4"
    t0 = time.monotonic()
    sonomap(
        "replay", path, "--model", dark_onnx(), "--roi", "full", "--realtime", "--out", out,
        timeout=REPLAY_BOUND_S,
    )  # fmt: skip
    assert time.monotonic() - t0 < REPLAY_BOUND_S
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == DEFAULT_FPS


# --------------------------------------------------------------------- DICOM cine


@pytest.fixture
def cine(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm")), tmp_path / "cine.dcm"


@pytest.mark.parametrize(
    "keyword,value",
    [("CineRate", "100000"), ("FrameTime", "1000000"), ("RecommendedDisplayFrameRate", "500")],
)
def test_a_cine_declaring_an_absurd_rate_plays_at_the_default_with_one_warning(cine, caplog, keyword, value):
    ds, path = cine
    setattr(ds, keyword, value)  # FrameTime 1000000 ms: 0.001 fps
    ds.save_as(path)
    with caplog.at_level(logging.WARNING, logger="sonomap"):
        source = DicomCineSource(path)
        frames = list(source)
    assert source.fps == DEFAULT_FPS
    assert frames[1].pts == pytest.approx(1 / DEFAULT_FPS)
    lines = warnings_about_rate(caplog)
    assert len(lines) == 1 and keyword in lines[0] and str(path) not in lines[0], lines


@pytest.mark.parametrize("index_values,expected", [("0 1000 2000", DEFAULT_FPS), ("0 0.1 0.2", 10.0)])
def test_a_sequence_whose_times_give_an_absurd_rate_writes_outputs_at_the_default(
    tmp_path, caplog, index_values, expected
):
    """A recorded sequence is paced by its own times; its mean rate is its outputs' rate."""
    nrrd = pytest.importorskip("nrrd")
    from edge_runtime.sources.sequence import SequenceSource

    frames = np.zeros((4, 5, 3), np.uint8)  # (height, width, frames)
    header = {
        "kinds": ["list", "domain", "domain", "domain"],
        "encoding": "raw",
        "axis 0 index values": index_values,
    }
    path = tmp_path / "slow.seq.nrrd"
    nrrd.write(str(path), frames[None], header, index_order="C")
    with caplog.at_level(logging.WARNING, logger="sonomap"):
        source = SequenceSource(path)
        assert len(list(source)) == 3
    assert source.fps == pytest.approx(expected)
    assert len(warnings_about_rate(caplog)) == (expected == DEFAULT_FPS)
