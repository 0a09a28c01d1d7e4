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
from loopback import SONOMAP, free_port
from test_igtl_pipeline import build_dark_tissue_onnx
from test_igtl_standin import pyigtl

from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sources.sequence import SequenceSource

nrrd = pytest.importorskip("nrrd")
LIVE_SECONDS = 2.5
POLL_S = 0.01
PROC_TIMEOUT_S = 60
LIVE_NAMES = {"Prediction", "ProbMap"}  # docs/openigtlink.md: frames from non-IGTL sources
pytestmark = pytest.mark.timeout(180)


def image_devices(args: list, port: int) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``sonomap ARGS --igtl-serve PORT``; the device names of the IMAGE messages a viewer got."""
    viewer = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=port)
    names: set[str] = set()

    def drain() -> None:
        names.update(m.device_name for m in viewer.get_latest_messages() if m.message_type == "IMAGE")

    try:
        proc = subprocess.Popen(
            [*SONOMAP, *map(str, args), "--igtl-serve", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while proc.poll() is None:
            drain()
            time.sleep(POLL_S)
        out, err = proc.communicate(timeout=PROC_TIMEOUT_S)
        drain()
    finally:
        viewer.stop()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), names


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, Path, set[str]]:
    """(model, recording, IMAGE device names sent) of a `sonomap live` run on a video file that
    records a sequence and serves OpenIGTLink."""
    work = tmp_path_factory.mktemp("seq-devices")
    model = build_dark_tissue_onnx(work / "model")
    clip, recording = work / "clip.mp4", work / "rec" / "session.seq.nrrd"
    sonomap("make-clip", "--out", clip, "--frames", 150, "--size", "320x240", "--noise", 0)
    live, names = image_devices(
        [
            "live",
            "--source",
            clip,
            "--headless",
            "--roi",
            "full",
            "--mode",
            "strict",
            "--duration",
            LIVE_SECONDS,
            "--model",
            model,
            "--record-sequence",
            recording,
        ],
        free_port(),
    )
    assert live.returncode == 0, live.stderr[-3000:]
    assert SequenceSource(recording).frames >= 2, "too few frames recorded"
    return model, recording, names


def test_replay_of_a_recorded_non_igtl_session_sends_the_live_device_names(session):
    model, recording, live_names = session
    assert live_names == LIVE_NAMES
    replay, replay_names = image_devices(["replay", recording, "--realtime", "--model", model], free_port())
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
    replay, names = image_devices(["replay", older, "--realtime", "--model", model], free_port())
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert names == {"Prediction_Reference", "ProbMap_Reference"}
