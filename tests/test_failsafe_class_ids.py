"""A mask holding a class id the model does not have (0/255 from a graph built with another mask
convention) is a fault like NaN: AI ERROR and the raw frame, the id named. Before, the overlay
coloured no pixel of it and every frame showed raw ultrasound under a green AI ON badge."""

from __future__ import annotations

from pathlib import Path

import pytest
from clips import write_bar_clip
from onnx import TensorProto, helper
from runtime_model import folded_manifest, save_graph_model
from state_log import States

from edge_runtime import config as cfg
from edge_runtime.errors import SonomapError
from edge_runtime.pipeline.graph import Pipeline

CLIP_FRAMES = 12
MASK_VALUES = {"0/1": 1, "0/255": 255}  # what the graph writes for a cancer pixel


def bright_is_cancer_onnx(out_dir: Path, cancer_value: int) -> Path:
    """A folded ONNX model: probability = brightness / 255; mask = ``cancer_value`` where it is > 0.5."""

    def const(name: str, value: float, dtype=TensorProto.FLOAT):
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name + "_t", dtype, [], [value])
        )

    nodes = [
        helper.make_node("Cast", ["frame"], ["f"], to=TensorProto.FLOAT),
        const("scale", 1.0 / 255.0),
        helper.make_node("Mul", ["f", "scale"], ["prob"]),
        const("half", 0.5),
        helper.make_node("Greater", ["prob", "half"], ["hit"]),
        helper.make_node("Cast", ["hit"], ["one"], to=TensorProto.UINT8),
        const("value", cancer_value, TensorProto.UINT8),
        helper.make_node("Mul", ["one", "value"], ["mask"]),
    ]
    manifest = folded_manifest("bright-is-cancer", "bright_is_cancer", 64, 64)
    return save_graph_model(nodes, out_dir, "bright_is_cancer", manifest)


@pytest.mark.parametrize("convention", list(MASK_VALUES))
def test_a_mask_with_a_class_id_the_model_lacks_reads_ai_error(tmp_path, convention):
    model = bright_is_cancer_onnx(tmp_path / "model", MASK_VALUES[convention])
    clip = write_bar_clip(tmp_path / "bar.mp4", CLIP_FRAMES, step=1)  # a white bar: cancer on every frame
    config = cfg.build_config(
        {"source": {"input": str(clip)}, "roi": {"rect": "full"}, "inference": {"model": str(model)}}
    )
    states = States()
    if convention == "0/1":  # the model's own ids: drawn under AI ON
        summary = Pipeline(config, observers=[states]).run()
        assert states.seen == [("ON", True)] * CLIP_FRAMES and summary["errors"] == 0
        return
    with pytest.raises(SonomapError, match="class id 255 in its mask; the model has 2 classes"):
        Pipeline(config, observers=[states]).run()  # a replay the AI never answered is an error
    assert states.seen == [("ERROR", False)] * CLIP_FRAMES
