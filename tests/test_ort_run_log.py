"""A model whose every run fails costs the log one line per cause, not one per frame: sonomap's fail-safe
logs the fault once, and ONNX Runtime's own error line for each failed run (printed to stderr past
sonomap's logging) is kept out."""

from __future__ import annotations

from pathlib import Path

from cli import sonomap
from clips import write_bar_clip
from onnx import TensorProto, helper
from runtime_model import folded_manifest, save_graph_model

CLIP_FRAMES = 20
EXIT_USER_ERROR = 2
MODEL_SIDE = 64  # the graph reshapes the frame to 64 x 64: every run on the 48 x 64 bar clip fails
ORT_OWN_LINE = "[E:onnxruntime"


def reshape_fails_onnx(out_dir: Path) -> Path:
    """A folded model that reshapes ``frame`` to 1 x 1 x 64 x 64, so it runs only on a 64 x 64 ROI."""
    shape = helper.make_tensor("shape_t", TensorProto.INT64, [4], [1, 1, MODEL_SIDE, MODEL_SIDE])
    nodes = [
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("Reshape", ["frame", "shape"], ["square"]),
        helper.make_node("Cast", ["square"], ["prob"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["square"], ["mask"], to=TensorProto.UINT8),
    ]
    manifest = folded_manifest("reshape-fails", "reshape_fails", MODEL_SIDE, MODEL_SIDE)
    return save_graph_model(nodes, out_dir, "reshape_fails", manifest)


def test_a_model_failing_on_every_frame_logs_its_fault_once(tmp_path):
    model = reshape_fails_onnx(tmp_path / "model")
    clip = write_bar_clip(tmp_path / "bar.mp4", CLIP_FRAMES, step=1)
    res = sonomap(
        "replay", clip, "--model", model, "--roi", "full", "--out", tmp_path / "out.mp4", check=False
    )
    assert res.returncode == EXIT_USER_ERROR  # the AI answered no frame
    assert "the AI gave no answer on any of the 20 frame(s)" in res.stderr
    faults = [line for line in res.stderr.splitlines() if "inference fault #" in line]
    assert len(faults) == 1 and "Reshape" in faults[0], res.stderr
    ort_lines = [line for line in res.stderr.splitlines() if ORT_OWN_LINE in line]
    assert not ort_lines, f"{len(ort_lines)} lines of ONNX Runtime's own, e.g. {ort_lines[0]}"
