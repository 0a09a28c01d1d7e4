"""Sources (DICOM cine, image folder, video file, synthetic) and bad-input errors via the CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from cli import sonomap as run_cli
from runtime_model import dark_onnx

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest, save_manifest
from edge_runtime.roi import Roi, detect_roi, parse_roi, resolve_roi
from edge_runtime.sources.opener import DicomCineSource, ImageFolderSource, SyntheticSource, open_source

EXIT_USER_ERROR = 2


def sonomap(*args):
    return run_cli(*args, check=False)


@pytest.fixture(scope="module")
def dicom_cine():
    pydicom_data = pytest.importorskip("pydicom.data")
    return pydicom_data.get_testdata_file("examples_ybr_color.dcm")


def test_dicom_cine_source_yields_all_frames_with_mm_scale(dicom_cine):
    src = open_source(dicom_cine)
    assert isinstance(src, DicomCineSource) and not src.live
    frames = list(src)
    assert len(frames) == 30
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].meta["mm_per_pixel"] == pytest.approx(0.5105, abs=1e-3)  # 0.05105 cm per pixel
    assert not any(k for k in frames[0].meta if "patient" in k.lower())
    assert not np.array_equal(frames[0].image, frames[29].image)


def test_replay_dicom_cine_via_cli(dicom_cine, tmp_path):
    out = sonomap(
        "replay",
        dicom_cine,
        "--model",
        dark_onnx(),
        "--out",
        tmp_path / "o.mp4",
        "--roi",
        "full",
        "--max-frames",
        6,
        "--summary",
        tmp_path / "s.json",
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "o.mp4").stat().st_size > 0 and '"frames": 6' in (tmp_path / "s.json").read_text()


def test_image_folder_and_video_sources(busi_sample, tmp_path):
    folder = ImageFolderSource(busi_sample / "images")
    frames = list(folder)
    assert len(frames) == 30 and all(f.image.ndim == 3 for f in frames)
    video = tmp_path / "v.mp4"
    assert sonomap("make-clip", "--out", video, "--frames", 5, "--size", "320x180").returncode == 0
    decoded = list(open_source(str(video)))
    assert [f.index for f in decoded] == [0, 1, 2, 3, 4] and decoded[0].image.shape == (180, 320, 3)
    assert decoded[1].pts == pytest.approx(1 / 30, abs=1e-3)


def test_synthetic_source_paces_and_carries_scale():
    src = SyntheticSource(fps=30, frames=3, live=False, width=640, height=360)
    frames = list(src)
    assert len(frames) == 3 and frames[0].image.shape == (360, 640, 3)
    assert frames[0].meta["mm_per_pixel"] > 0
    roi = detect_roi(frames[0].image)
    assert abs(roi.x - src.sim.roi.x) <= 2 and abs(roi.w - src.sim.roi.w) <= 4


def test_roi_parsing_and_outside_frame():
    assert parse_roi("1,2,30,40") == Roi(1, 2, 30, 40)
    assert parse_roi("auto") is None
    with pytest.raises(ConfigError, match="x,y,w,h"):
        parse_roi("1,2,3")
    with pytest.raises(ConfigError, match="outside"):
        resolve_roi("600,0,100,100", np.zeros((480, 640, 3), np.uint8))
    for empty in ("10,10,0,0", "10,10,-5,20", "-1,0,10,10"):  # no frame makes these an area: said so
        with pytest.raises(
            ConfigError, match=rf"^--roi: x,y must be >= 0 and w,h > 0 \(an area of the frame\), got {empty}$"
        ):
            parse_roi(empty)


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "unreadable",
        "roi",
        "device",
        "pixfmt",
        "config_key",
        "manifest_vs_config",
        "manifest_vs_model",
    ],
)
def test_bad_input_gives_one_line_error_exit_2(case, tmp_path, busi_sample):
    model = dark_onnx()
    image = busi_sample / "images" / "malignant_002.png"
    args = ["replay", image, "--model", model]
    culprit = None
    if case == "missing":
        args, culprit = ["replay", tmp_path / "nope.mp4", "--model", model], "nope.mp4"
    elif case == "unreadable":
        bad = tmp_path / "broken.mp4"
        bad.write_bytes(b"\x00\x01not a video" * 100)
        args, culprit = ["replay", bad, "--model", model], "broken.mp4"
    elif case == "roi":
        args, culprit = args + ["--roi", "500,400,200,200"], "outside"
    elif case == "device":
        args, culprit = ["live", "--source", "/dev/video97", "--model", model, "--headless"], "/dev/video97"
    elif case == "pixfmt":
        deep = tmp_path / "deep.png"
        cv2.imwrite(str(deep), np.full((64, 64), 1000, np.uint16))
        args, culprit = ["replay", deep, "--model", model], "unsupported pixel format"
    elif case == "config_key":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("overlay:\n  alpha: 0.3\n  colour_typo: 1\n")
        args, culprit = args + ["--config", cfg], "colour_typo"
    elif case == "manifest_vs_config":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("overlay:\n  classes:\n    lesion: {alpha: 0.5}\n")
        args, culprit = args + ["--config", cfg], "lesion"
    else:  # the manifest claims float input, the ONNX file takes uint8
        copy = tmp_path / "m.onnx"
        copy.write_bytes(model.read_bytes())
        manifest = load_manifest(model)
        manifest.preprocessing_in_graph = False
        save_manifest(manifest, copy)
        args, culprit = ["replay", image, "--model", copy], "preprocessing_in_graph"
    out = sonomap(*args)
    assert out.returncode == EXIT_USER_ERROR, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert culprit in lines[0]


def test_unsupported_v4l2_device_errors_are_input_errors():
    with pytest.raises(InputError, match="not found"):
        open_source("/dev/video97")


def test_network_stream_source_over_loopback_http(tmp_path):
    """A real network stream (HTTP on loopback) through the same PyAV path as rtsp://: live flag,
    threaded decode, frames in order."""
    import functools
    import http.server
    import threading

    clip = tmp_path / "clip.mp4"
    assert sonomap("make-clip", "--out", clip, "--frames", 6, "--size", "320x180").returncode == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        src = open_source(f"http://127.0.0.1:{server.server_address[1]}/clip.mp4")
        assert src.live
        frames = list(src)
    finally:
        server.shutdown()
    assert [f.index for f in frames] == list(range(6)) and frames[0].image.shape == (180, 320, 3)


def test_close_from_another_thread_waits_for_the_read_in_flight():
    """Video/V4L2 sources free their native handle only on the reading thread: close() from another
    thread (Pipeline.stop, SIGTERM) while a read is in flight must not free it under the read
    (that crashed FFmpeg's RTSP demuxer); the reader frees it when its read returns."""
    import threading

    from edge_runtime.sources.capture import ReaderReleases

    class BlockingRead(ReaderReleases):
        def __init__(self):
            self.in_read, self.proceed = threading.Event(), threading.Event()
            self.released_by: list[str] = []
            self.reads = 0

        def __iter__(self):
            self._reading()
            try:
                while not self._closing:
                    self.in_read.set()
                    self.proceed.wait(5)  # a blocking read on the native handle
                    assert not self.released_by, "handle freed during a read"
                    self.reads += 1
                    if self._closing:
                        return
                    yield self.reads
            finally:
                self._done_reading()

        def _release(self):
            self.released_by.append(threading.current_thread().name)

    src = BlockingRead()
    reader = threading.Thread(target=lambda: list(src), name="reader")
    reader.start()
    assert src.in_read.wait(5)
    src.close()  # from the main thread, mid-read
    assert src.released_by == []  # not freed under the read
    src.proceed.set()
    reader.join(5)
    assert not reader.is_alive() and src.released_by == ["reader"]
    src.close()  # nobody reads now: frees at once (idempotent)
    assert src.released_by == ["reader", "MainThread"]
