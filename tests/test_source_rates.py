"""The frame rate a source gives replay and live (its ``fps``): a video file's from its stream's
average rate (PyAV), a DICOM cine's from CineRate, RecommendedDisplayFrameRate or FrameTime
(0018,1063), the attribute ultrasound cines use. Without it a 10 fps clip replayed to an output three
times as fast. Real clips written with PyAV, real DICOM files written with pydicom, the real CLI."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from cli import sonomap
from clips import write_bar_clip
from runtime_model import dark_onnx

from edge_runtime.errors import InputError
from edge_runtime.sources.capture import VideoFileSource
from edge_runtime.sources.dicom_cine import DicomCineSource
from edge_runtime.sources.opener import open_source
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

CLIP_FRAMES = 20
STEP_PX = 2  # the bar's move a frame: 20 frames stay inside the 64 px clip
CLIP_RATES = (10, 25)
SLOW_FPS = 10
CINE_FRAMES = 30  # in pydicom's examples_ybr_color.dcm
BUNDLED_FRAME_TIME_MS = 33.333  # examples_ybr_color.dcm's own FrameTime


def clip(tmp_path: Path, fps: int) -> Path:
    return write_bar_clip(tmp_path / f"clip{fps}.mp4", CLIP_FRAMES, STEP_PX, fps=fps)


@pytest.mark.parametrize("fps", CLIP_RATES)
def test_a_video_file_gives_its_stream_s_rate_before_its_first_frame(tmp_path, fps):
    source = open_source(str(clip(tmp_path, fps)))
    assert isinstance(source, VideoFileSource)
    assert source.fps == pytest.approx(fps)  # replay paces and opens its outputs before frame 0
    frames = list(source)
    assert len(frames) == CLIP_FRAMES
    assert frames[1].pts - frames[0].pts == pytest.approx(1 / fps)
    assert source.fps == pytest.approx(fps)


def test_a_video_file_without_an_average_rate_gives_none(tmp_path):
    """VP8 in IVF: the container gives a time base but no average rate, so the rate is unknown (the
    pipeline then uses the configured or default rate), never 0."""
    if "libvpx" not in av.codecs_available:
        pytest.skip("this PyAV build has no libvpx encoder")
    path = tmp_path / "clip.ivf"
    with av.open(str(path), "w", format="ivf") as c:
        stream = c.add_stream("libvpx", rate=SLOW_FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            image = np.full((48, 64, 3), i * 60, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    source = open_source(str(path))
    assert source.fps is None
    assert len(list(source)) == 3


def test_an_unreadable_video_file_is_an_error_naming_it_when_opened(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(InputError, match="broken.mp4: unreadable video"):
        open_source(str(bad))


def test_replay_keeps_a_slow_clip_s_rate_and_duration(tmp_path):
    out = tmp_path / "out.mp4"
    sonomap("replay", clip(tmp_path, SLOW_FPS), "--model", dark_onnx(), "--roi", "full", "--out", out)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == SLOW_FPS
        assert sum(1 for _ in c.decode(stream)) == CLIP_FRAMES
        assert c.duration / av.time_base == pytest.approx(CLIP_FRAMES / SLOW_FPS, abs=1 / SLOW_FPS)


# --------------------------------------------------------------------- DICOM cine


@pytest.fixture
def cine(tmp_path):
    """A writable copy of pydicom's examples_ybr_color.dcm (FrameTime only) and where to save it."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    assert "CineRate" not in ds and "RecommendedDisplayFrameRate" not in ds
    return ds, tmp_path / "cine.dcm"


def test_the_bundled_cine_s_frame_time_gives_its_rate(cine):
    ds, path = cine
    ds.save_as(path)
    assert DicomCineSource(path).fps == pytest.approx(MS_PER_S / BUNDLED_FRAME_TIME_MS)


def test_frame_time_gives_the_rate_and_the_frame_times(cine):
    ds, path = cine
    ds.FrameTime = "100"  # ms: 10 fps
    ds.save_as(path)
    source = DicomCineSource(path)
    assert source.fps == pytest.approx(SLOW_FPS)
    frames = list(source)
    assert len(frames) == CINE_FRAMES
    assert frames[-1].pts == pytest.approx((CINE_FRAMES - 1) / SLOW_FPS)


def test_cine_rate_comes_before_frame_time(cine):
    ds, path = cine
    ds.FrameTime, ds.CineRate = "100", 25
    ds.save_as(path)
    assert DicomCineSource(path).fps == pytest.approx(25)


def test_a_frame_time_of_zero_is_not_given(cine):
    ds, path = cine
    ds.FrameTime = "0"
    ds.save_as(path)
    assert DicomCineSource(path).fps == DEFAULT_FPS


@pytest.mark.parametrize("keyword,value", [("FrameTime", "-100"), ("FrameTime", "inf"), ("CineRate", -5)])
def test_a_negative_or_infinite_rate_is_an_error_naming_the_file_and_the_attribute(cine, keyword, value):
    ds, path = cine
    with warnings.catch_warnings():  # pydicom warns that "inf" is no valid DS; files carry such values
        warnings.simplefilter("ignore")
        setattr(ds, keyword, value)
    ds.save_as(path)
    with pytest.raises(InputError) as caught:
        DicomCineSource(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {keyword} must be a positive number") and "\n" not in message
