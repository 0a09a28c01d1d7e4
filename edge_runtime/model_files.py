"""The files that travel with a served model, which no output of a run may replace.

Input: the model a run serves (``--model``, ``inference.model``), or nothing for the shipped
default. Output: those files by their names in messages (``--model``, ``the model's manifest``,
``the model's parity record``), for the commands' output checks (replay, live, bench, soak).
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.manifest import PARITY_SUFFIX, manifest_path


def model_files(model: str | Path | None) -> dict[str, Path]:
    """``model`` (else the shipped default), its manifest, without which it cannot load, and its parity
    record (MODEL.parity.json, the export's evidence that the model agrees with its checkpoint)."""
    model = Path(model or DEFAULT_MODEL)
    return {
        "--model": model,
        "the model's manifest": manifest_path(model),
        "the model's parity record": model.with_name(model.name + PARITY_SUFFIX),
    }
