"""OpenIGTLink through the real `sonomap` command: live, replay and bench.

A pyigtl server on loopback stands in for PLUS and streams real BUSI frames at 30 fps.
`sonomap live --source igtl://... --igtl-out ...` must send back labelmaps that equal,
frame for frame, the masks `sonomap replay --save-masks` writes for the same images with
the same model and ROI; `sonomap bench --source igtl://...` must report the round-trip
latency p50/p99; against a dead server `live` keeps showing NO SIGNAL and `bench` gives a
one-line error.

Model: the shipped default model when it exists, else a real ONNX graph built here with
the export contract (uint8 ``frame`` in, ``prob``/``mask`` out at input size) that marks
hypoechoic (dark) tissue: prob = sigmoid((DARK_LEVEL - pixel) / SOFTNESS).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap as run_cli
from loopback import SONOMAP, free_port
from runtime_model import folded_manifest, save_graph_model
from test_igtl_standin import DEVICE, FRAME_WH, SPACING_MM, PlusStandIn, busi_images, image_matrix, pyigtl

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "edge_runtime" / "models" / "default" / "model.onnx"
DARK_LEVEL, SOFTNESS = 70.0, 12.0
N_FRAMES = 3
LIVE_SECONDS = 3.0
POLL_S = 0.01
PROC_TIMEOUT_S = 25
DARK_BAND_ROWS = 48
BENCH_FRAMES = 45  # 1.5 s of a 30 fps stream


def build_dark_tissue_onnx(out_dir: Path) -> Path:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["frame"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["level", "x"], ["d"]),
        helper.make_node("Div", ["d", "softness"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["prob"]),
        helper.make_node("Greater", ["prob", "half"], ["hit"]),
        helper.make_node("Cast", ["hit"], ["mask"], to=TensorProto.UINT8),
    ]
    consts = [
        helper.make_tensor("level", TensorProto.FLOAT, [], [DARK_LEVEL]),
        helper.make_tensor("softness", TensorProto.FLOAT, [], [SOFTNESS]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
    ]
    manifest = folded_manifest("dark-tissue-test", "threshold", FRAME_WH[1], FRAME_WH[0])
    return save_graph_model(nodes, out_dir, "dark_tissue", manifest, consts)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_dark_tissue_onnx(tmp_path_factory.mktemp("igtl-model"))


@pytest.fixture(scope="module", params=["dark-tissue", "shipped-default"])
def any_model(request, model) -> Path:
    if request.param == "dark-tissue":
        return model
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"shipped default model {DEFAULT_MODEL} not built yet")
    return DEFAULT_MODEL


def streamed_images(busi_sample: Path) -> list[np.ndarray]:
    """BUSI frames with a black band on top, as scanners put around the sector: the ROI
    auto-detection would cut it off, so a labelmap equal to `replay --roi full` proves the
    igtl source's whole-image ROI is used (the dark-tissue model marks the band)."""
    images = [im.copy() for _, im in busi_images(busi_sample, N_FRAMES)]
    for im in images:
        im[:DARK_BAND_ROWS] = 0
    return images


@pytest.fixture()
def frames(busi_sample):
    return streamed_images(busi_sample)


def sonomap(*args, timeout: float = PROC_TIMEOUT_S) -> subprocess.CompletedProcess:
    return run_cli(*args, check=False, timeout=timeout)


def collect(plus: PlusStandIn, proc: subprocess.Popen, device: str) -> list:
    """Every labelmap the stand-in gets while `sonomap live` runs (it keeps the newest per
    device, so poll faster than the 30 fps stream)."""
    got = []
    while proc.poll() is None:
        msg = plus.received(device, POLL_S)
        if msg is not None:
            got.append(msg)
    msg = plus.received(device, POLL_S)
    return got + ([msg] if msg is not None else [])


def replay_masks(tmp: Path, busi_sample: Path, model: Path) -> list[np.ndarray]:
    """What `sonomap replay --roi full --save-masks` gives for the streamed images (0/255)."""
    folder = tmp / "frames"
    folder.mkdir()
    for i, image in enumerate(streamed_images(busi_sample)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    replay = sonomap("replay", folder, "--model", model, "--roi", "full", "--save-masks", tmp / "replay")
    assert replay.returncode == 0, replay.stderr
    expected = [
        cv2.imread(str(tmp / "replay" / f"{i:06d}_mask.png"), cv2.IMREAD_GRAYSCALE) for i in range(N_FRAMES)
    ]
    assert all(m is not None for m in expected)
    if model != DEFAULT_MODEL:  # ours must make the comparison non-trivial
        assert any(0 < (m > 0).mean() < 1 for m in expected), "the model marks nothing or everything"
    return expected


def check_labelmaps(labelmaps: list, plus: PlusStandIn, expected: list[np.ndarray]) -> None:
    """Each labelmap: input size, matrix, spacing, and the replay mask of the very frame
    whose timestamp it carries."""
    assert len(labelmaps) >= N_FRAMES, f"only {len(labelmaps)} labelmaps came back"
    seen = set()
    for msg in labelmaps:
        index = plus.index_for(msg.timestamp)  # the input's timestamp is kept on the output
        seen.add(index)
        assert msg.image.shape == (1, FRAME_WH[1], FRAME_WH[0]) and msg.image.dtype == np.uint8
        np.testing.assert_allclose(msg.ijk_to_world_matrix, image_matrix(), atol=1e-4)
        assert np.linalg.norm(msg.ijk_to_world_matrix[:3, 0]) == pytest.approx(SPACING_MM, rel=1e-5)
        np.testing.assert_array_equal(
            np.where(msg.image[0] > 0, 255, 0),
            expected[index],
            err_msg=f"labelmap of frame {index} differs from replay",
        )
    assert len(seen) >= 2, "the stream's frames did not all come back"


@pytest.mark.timeout(60)
def test_live_igtl_out_labelmaps_equal_replay_masks(tmp_path, busi_sample, frames, any_model):
    model = any_model
    expected = replay_masks(tmp_path, busi_sample, model)
    plus = PlusStandIn(frames)
    try:
        proc = subprocess.Popen(
            [
                *SONOMAP,
                "live",
                "--source",
                f"igtl://127.0.0.1:{plus.port}?device={DEVICE}&timeout=10",
                "--igtl-out",
                f"127.0.0.1:{plus.port}",
                "--headless",
                "--roi",  # the whole PLUS image, as replay --roi full: the equality proves a configured ROI is used
                "full",
                "--mode",
                "strict",
                "--duration",
                str(LIVE_SECONDS),
                "--model",
                str(model),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        labelmaps = collect(plus, proc, "Prediction_Reference")
        _, err = proc.communicate(timeout=PROC_TIMEOUT_S)
    finally:
        plus.stop()
    assert proc.returncode == 0, err
    check_labelmaps(labelmaps, plus, expected)


@pytest.mark.timeout(60)
def test_live_igtl_serve_in_latest_mode_sends_each_mask_with_its_own_frame(
    tmp_path, busi_sample, frames, model
):
    """'latest' draws a mask over later frames; what goes out must still carry the
    timestamp (and geometry) of the frame the mask was computed on."""
    expected = replay_masks(tmp_path, busi_sample, model)
    plus = PlusStandIn(frames)
    port = free_port()
    viewer = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=port)
    try:
        proc = subprocess.Popen(
            [
                *SONOMAP,
                "live",
                "--source",
                f"igtl://127.0.0.1:{plus.port}?device={DEVICE}&timeout=10",
                "--igtl-serve",
                str(port),
                "--headless",
                "--roi",
                "full",
                "--mode",
                "latest",
                "--duration",
                str(LIVE_SECONDS),
                "--model",
                str(model),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        labelmaps = []
        while proc.poll() is None:
            msg = viewer.wait_for_message("Prediction_Reference", timeout=POLL_S)
            if msg is not None:
                labelmaps.append(msg)
        _, err = proc.communicate(timeout=PROC_TIMEOUT_S)
    finally:
        viewer.stop()
        plus.stop()
    assert proc.returncode == 0, err
    check_labelmaps(labelmaps, plus, expected)


def test_bench_reports_igtl_round_trip_latency(tmp_path, frames, model):
    plus = PlusStandIn(frames)
    try:
        result = sonomap(
            "bench",
            "--frames",
            BENCH_FRAMES,
            "--model",
            model,
            "--json",
            tmp_path / "bench.json",
            "--source",
            f"igtl://127.0.0.1:{plus.port}?device={DEVICE}",
            timeout=60,
        )
    finally:
        plus.stop()
    assert result.returncode == 0, result.stderr
    assert "round trip (input stamp -> labelmap at viewer)" in result.stdout
    report = json.loads((tmp_path / "bench.json").read_text())
    rt = report["round_trip_ms"]
    assert rt["n"] >= 10 and 0 < rt["p50"] <= rt["p99"] <= rt["max"]
    assert report["received_to_sent_ms"]["p50"] < rt["p50"]  # a part of the round trip
    assert report["counters"]["images"] >= rt["n"]


def test_live_against_a_dead_server_keeps_running_and_bench_fails_clearly(model, tmp_path):
    """Under systemd `live` must never stop the display: it shows NO SIGNAL and keeps reconnecting
    (the server may start after the cart). At a terminal a server that never answers is a typo'd
    address: one line naming it, exit 2. `bench` has nothing to measure: one line, exit 2."""
    port = free_port()
    spec = f"igtl://127.0.0.1:{port}?timeout=1"
    argv = [*SONOMAP, "live", "--source", spec, "--headless", "--duration", "2.5", "--model", str(model)]
    service_env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    live = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=service_env)
    assert live.returncode == 0, live.stderr
    assert "cannot connect" in live.stderr and "NO SIGNAL" in live.stderr
    assert "Traceback" not in live.stderr, live.stderr
    terminal = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env={**os.environ, "NOTIFY_SOCKET": ""}
    )
    assert terminal.returncode == 2, terminal.stderr
    error = terminal.stderr.strip().splitlines()[-1]  # before it: the logged connect warnings
    assert (
        error.startswith("sonomap live: error: ")
        and f"127.0.0.1:{port}" in error
        and "before its first frame" in error
    )
    assert "Traceback" not in terminal.stderr, terminal.stderr
    bench = sonomap("bench", "--source", spec, "--model", model)
    assert bench.returncode == 2
    error = bench.stderr.strip().splitlines()[-1]  # before it: the logged reconnect warnings
    assert error.startswith("sonomap bench: error: ") and "no IMAGE" in error and f"127.0.0.1:{port}" in error
    assert "Traceback" not in bench.stderr, bench.stderr
