"""The run's summary is redacted string by string, never as JSON text: a patient ID made of digits
("204") also appears inside measured figures (``"elapsed_s": 0.2045``), and cutting it out of the
serialised text broke the file (``0.[REDACTED]5``), so a replay of a real DICOM cine left a summary
no reader could parse. Real PNG frames, a real ONNX Runtime backend, the real summary file."""

from __future__ import annotations

import json
import re
from itertools import product

from clips import write_noise_screens
from runtime_model import dark_onnx

from edge_runtime import privacy
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline

FRAMES = 4
NAME = ("Sorensen", "Ingrid")
EVERY_THREE_DIGITS = [
    "".join(d) for d in product("0123456789", repeat=3)
]  # any number of 3+ digits holds one


def numbers(obj) -> list:
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in numbers(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in numbers(v)]
    return [obj] if isinstance(obj, (int, float)) and not isinstance(obj, bool) else []


def test_a_summary_keeps_its_figures_whole_and_names_no_registered_identifier(tmp_path):
    folder, masks, summary_path = (
        tmp_path / "frames",
        tmp_path / f"{'_'.join(NAME)}_masks",
        tmp_path / "s.json",
    )
    write_noise_screens(folder, FRAMES)
    privacy.REDACTOR.register([*NAME, *EVERY_THREE_DIGITS])
    config = build_config(
        {"source": {"input": str(folder)}, "sinks": {"masks": str(masks), "summary": str(summary_path)}}
    )
    backend = OnnxRuntimeBackend(dark_onnx(), load_manifest(dark_onnx()), device="cpu")
    returned = Pipeline(config, backend=backend).run()

    text = summary_path.read_text()
    written = json.loads(text)  # parses: no figure was cut
    assert written["frames"] == FRAMES
    assert numbers(written) == numbers(returned), written
    assert any(re.search(r"\d{3}", repr(n)) for n in numbers(written)), (
        written
    )  # some figure held a registered value
    for part in NAME:
        assert part not in text, text
    assert privacy.REDACTED in written["outputs"]["masks"], written["outputs"]
