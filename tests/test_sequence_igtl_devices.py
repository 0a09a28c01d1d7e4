"""A session from a non-OpenIGTLink source (a video file, as a capture card gives frames without a device
name) and the replay of its `--record-sequence` recording send their predictions under the same
OpenIGTLink device names, so a 3D Slicer scene set up against the live stream also receives the replay.
A recording whose header names `Image_Reference` (an OpenIGTLink session from PLUS, or a recording made
before the names were shared) replays under `Prediction_Reference` and `ProbMap_Reference`.

Everything is real: `sonomap live` and `sonomap replay` in subprocesses, the clip decoded by PyAV, the
model run by ONNX Runtime, the recording on disk and a pyigtl viewer on a loopback socket.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from cli import sonomap
from loopback import free_port
from test_igtl_pipeline import build_dark_tissue_onnx
from test_sequences import recording_session, run_with_viewer

from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sources.sequence import SequenceSource

nrrd = pytest.importorskip("nrrd")
LIVE_SECONDS = 2.5
POLL_S = 0.01
LIVE_NAMES = {"Prediction", "ProbMap"}  # docs/openigtlink.md: frames from non-IGTL sources
pytestmark = pytest.mark.timeout(180)


def image_devices(viewer, proc: subprocess.Popen) -> set[str]:
    """The device names of the IMAGE messages ``viewer`` got while ``proc`` ran, and once it ended."""
    names: set[str] = set()

    def drain() -> None:
        names.update(m.device_name for m in viewer.get_latest_messages() if m.message_type == "IMAGE")

    while proc.poll() is None:
        drain()
        time.sleep(POLL_S)
    drain()
    return names


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, Path, set[str]]:
    """(model, recording, IMAGE device names sent) of a `sonomap live` run on a video file that
    records a sequence and serves OpenIGTLink."""
    work = tmp_path_factory.mktemp("seq-devices")
    model = build_dark_tissue_onnx(work / "model")
    clip, recording = work / "clip.mp4", work / "rec" / "session.seq.nrrd"
    sonomap("make-clip", "--out", clip, "--frames", 150, "--size", "320x240", "--noise", 0)
    live, names = run_with_viewer(
        recording_session(clip, model, recording, LIVE_SECONDS), free_port(), gather=image_devices
    )
    assert live.returncode == 0, live.stderr[-3000:]
    assert SequenceSource(recording).frames >= 2, "too few frames recorded"
    return model, recording, names


def test_replay_of_a_recorded_non_igtl_session_sends_the_live_device_names(session):
    model, recording, live_names = session
    assert live_names == LIVE_NAMES
    replay, replay_names = run_with_viewer(
        ["replay", recording, "--realtime", "--model", model], free_port(), gather=image_devices
    )
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert replay_names == live_names


def test_a_recording_that_names_image_reference_replays_as_prediction_reference(session, tmp_path):
    model, recording, _ = session
    older = tmp_path / recording.name
    for path in layout.sequence_paths(recording).values():  # the three header/data pairs, copied
        for part in (path, layout.data_path(path)):
            (tmp_path / part.name).write_bytes(part.read_bytes())
    header = layout.sequence_paths(older)[layout.IMAGE]
    text = header.read_text()
    key = f"{layout.DEVICE_KEY}:="
    assert text.count(key) == 1
    start = text.index(key) + len(key)
    header.write_text(text[:start] + "Image_Reference" + text[text.index("\n", start) :])
    assert SequenceSource(older).device == "Image_Reference"
    replay, names = run_with_viewer(
        ["replay", older, "--realtime", "--model", model], free_port(), gather=image_devices
    )
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert names == {"Prediction_Reference", "ProbMap_Reference"}
