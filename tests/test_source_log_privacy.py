"""Video files, image folders, image files and capture devices are named by their kind in every log
line (the journal) and in their frames' metadata, never by a path that may carry the patient's name;
a one-line error still names the file, for whoever gave the path.

Inputs are named after a patient (``DOE_JANE_1970``) in a folder of that name, with no patient data
inside them, so only keeping the name out passes. Real clips with real corrupt packets (bytes of one
packet overwritten, as a bad sector leaves them), real unreadable images, the real command
(`tests/cli.py`, ``-v``: every log line on stderr) or the real sources.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import av
import pytest
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.errors import InputError
from edge_runtime.sources.opener import open_source, reconnecting_source

PATIENT = "DOE_JANE_1970"
PARTS = ("DOE", "JANE", "1970")  # each part alone: none may be in a log line
CLIP_FRAMES = 20
LONG_CLIP_FRAMES = 45  # room for a run of corrupt packets longer than a source tolerates
CLIP_SIZE = "320x180"
GLITCHES = (5, 9)  # two corrupt packets apart: skipped with a warning each, the replay goes on
BROKEN = range(5, 40)  # 35 corrupt packets in a row: more than the 30 a source skips
IMAGES = 3


def corrupt(clip: Path, out: Path, packets) -> Path:
    """``clip`` copied to ``out`` with the given video packets overwritten by garbage."""
    with av.open(str(clip)) as c:
        where = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(clip.read_bytes())
    for k in packets:
        pos, size = where[k]
        data[pos : pos + size] = b"\xff" * size
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))
    return out


def log_lines(stderr: str) -> list[str]:
    """The log lines of a ``sonomap -v`` run: everything on stderr but the command's one-line error."""
    return [line for line in stderr.splitlines() if line and not line.startswith("sonomap ")]


def assert_no_name(text: str) -> None:
    for part in PARTS:
        assert part not in text, text[-2000:]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    out = {}
    for name, frames in (("short", CLIP_FRAMES), ("long", LONG_CLIP_FRAMES)):
        out[name] = folder / f"{name}.mp4"
        sonomap("make-clip", "--out", out[name], "--frames", frames, "--size", CLIP_SIZE, "--noise", 0)
    return out


def test_a_glitchy_video_file_logs_its_kind_not_its_name(clips, tmp_path):
    clip = corrupt(clips["short"], tmp_path / PATIENT / f"{PATIENT}.mp4", GLITCHES)
    summary = tmp_path / "summary.json"
    result = sonomap(
        "-v", "replay", clip, "--model", dark_onnx(), "--out", tmp_path / "out.mp4", "--summary", summary
    )
    logs = log_lines(result.stderr)
    skipped = [line for line in logs if "skipped corrupt packet" in line]
    assert len(skipped) == len(GLITCHES), result.stderr[-2000:]
    assert all("video file: skipped corrupt packet after frame" in line for line in skipped), skipped
    assert_no_name(result.stderr)
    assert_no_name(result.stdout)
    assert_no_name(summary.read_text())
    assert json.loads(summary.read_text())["frames"] == CLIP_FRAMES - len(GLITCHES)


def test_a_broken_video_file_is_an_error_naming_the_file_but_its_warnings_do_not(clips, tmp_path):
    clip = corrupt(clips["long"], tmp_path / PATIENT / f"{PATIENT}.mp4", BROKEN)
    result = sonomap("-v", "replay", clip, "--model", dark_onnx(), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sonomap replay: error: {clip}: 31 corrupt frames in a row"), error
    logs = log_lines(result.stderr)
    assert any("video file: skipped corrupt packet" in line for line in logs), logs
    assert_no_name("\n".join(logs))


def test_video_frames_carry_the_kind_not_the_path(clips, tmp_path, caplog):
    clip = corrupt(clips["short"], tmp_path / PATIENT / f"{PATIENT}.mp4", GLITCHES)
    caplog.set_level(logging.INFO)
    source = open_source(str(clip))
    frames = list(source)
    assert source.name == "video file" and {f.meta["source"] for f in frames} == {"video file"}
    assert caplog.records and all(PATIENT not in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match=f"^{tmp_path / 'missing' / PATIENT}.mp4: file not found"):
        open_source(str(tmp_path / "missing" / f"{PATIENT}.mp4"))


def patient_folder(busi_sample: Path, root: Path, bad: int = 1) -> Path:
    """A folder named after the patient: readable images named after the patient, then ``bad``
    unreadable ones (a PNG cut short)."""
    folder = root / PATIENT
    folder.mkdir(parents=True)
    sources = sorted((busi_sample / "images").glob("*.png"))[:IMAGES]
    for i, image in enumerate(sources):
        shutil.copy(image, folder / f"{PATIENT}_{i:02d}.png")
    for i in range(bad):
        (folder / f"{PATIENT}_{IMAGES + i:02d}.png").write_bytes(sources[0].read_bytes()[:100])
    return folder


def test_an_image_folder_logs_its_kind_not_its_name(busi_sample, tmp_path):
    folder = patient_folder(busi_sample, tmp_path)
    summary = tmp_path / "summary.json"
    result = sonomap(
        "-v", "replay", folder, "--model", dark_onnx(), "--out", tmp_path / "out.mp4", "--summary", summary
    )
    skipped = [line for line in log_lines(result.stderr) if "skipped corrupt" in line]
    assert (
        len(skipped) == 1
        and f"image folder: skipped corrupt image {IMAGES + 1} of {IMAGES + 1}" in (skipped[0])
    ), result.stderr[-2000:]
    assert_no_name(result.stderr)
    assert_no_name(result.stdout)
    assert_no_name(summary.read_text())
    assert json.loads(summary.read_text())["frames"] == IMAGES


def test_an_image_folder_of_unreadable_images_is_an_error_naming_it(busi_sample, tmp_path):
    folder = tmp_path / PATIENT
    folder.mkdir()
    for i in range(2):
        (folder / f"{PATIENT}_{i}.png").write_bytes(b"not a png")
    result = sonomap("-v", "replay", folder, "--model", dark_onnx(), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error == f"sonomap replay: error: {folder}: none of its 2 images is readable", error
    assert_no_name("\n".join(log_lines(result.stderr)))


def test_a_run_of_unreadable_images_names_the_folder_and_the_last_in_the_error_only(
    busi_sample, tmp_path, caplog
):
    folder = patient_folder(busi_sample, tmp_path, bad=31)
    caplog.set_level(logging.WARNING)
    source = open_source(str(folder))
    assert source.name == "image folder"
    frames = []
    with pytest.raises(InputError) as raised:
        frames.extend(source)
    assert str(raised.value).startswith(f"{folder}: 31 corrupt frames in a row at image {IMAGES + 31} of")
    assert str(raised.value).endswith(f"the last: {PATIENT}_{IMAGES + 30:02d}.png)")
    assert {f.meta["source"] for f in frames} == {"image folder"} and len(frames) == IMAGES
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings and all(m.startswith("image folder: skipped corrupt image") for m in warnings)
    assert all(PATIENT not in m for m in warnings)


def test_an_image_file_logs_nothing_of_its_name_and_its_error_names_it(busi_sample, tmp_path, caplog):
    image = tmp_path / PATIENT / f"{PATIENT}.png"
    image.parent.mkdir()
    shutil.copy(sorted((busi_sample / "images").glob("*.png"))[0], image)
    result = sonomap("-v", "replay", image, "--model", dark_onnx(), "--out", tmp_path / "out.mp4")
    assert_no_name(result.stderr)
    source = open_source(str(image))
    assert source.name == "image file" and next(iter(source)).meta["source"] == "image file"
    image.write_bytes(b"not a png")
    result = sonomap("-v", "replay", image, "--model", dark_onnx(), check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"sonomap replay: error: {image}: not a readable")
    )


@pytest.mark.parametrize(
    ("device", "name"),
    [("/dev/video7", "capture device /dev/video7"), ("3", "capture device /dev/video3")],
)
def test_a_capture_device_is_named_by_its_kind_and_path(device, name):
    """The reconnecting wrapper's log lines and NO SIGNAL screen name the device (no patient there);
    a stream keeps its URL without ``user:password@``."""
    assert reconnecting_source(build_config({"source": {"input": device}})).name == name
    url = "rtsp://jdoe:secret@127.0.0.1:9/live"
    stream = reconnecting_source(build_config({"source": {"input": url}})).name
    assert stream.startswith("rtsp://") and stream.endswith("@127.0.0.1:9/live")
    assert "jdoe" not in stream and "secret" not in stream


@pytest.mark.parametrize("password", ["p/ss", "s3cr@t", "pa[ss"])
def test_a_password_typed_without_url_escapes_never_reaches_the_error_line(password):
    """A stream password holding a / (read by a URL parser as the path), an @ or a [ (refused by the
    parser) is taken out of the one-line error as the escaped ones are: all up to the URL's last @."""
    url = f"rtsp://jdoe:{password}@127.0.0.1:9/live"
    result = sonomap("live", "--source", url, "--duration", 2, "--headless", check=False)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sonomap live: error: rtsp://[REDACTED]@127.0.0.1:9/live: "), last
    assert password not in result.stderr and "jdoe" not in result.stderr, result.stderr[-2000:]
