"""The parity record a model's manifest carries (``extra.parity``), read before the model is served.

Every export step compares its output with the network it came from and records the verdict.
Both the backends and the TensorRT build read it: a model, or the FP16 twin an engine is built
from, whose record says the check failed is refused here, once for all of them.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import ConfigError


def refuse_failed_parity(model_path: str | Path, manifest) -> None:
    """A model whose export recorded a failed parity check (``extra.parity.passed: false``) draws
    masks that differ from the network that was validated; serving it would show unvalidated
    output as if it were the model's, so it is refused with the figures that failed. A model made
    through several checked steps (an FP16 twin: torch -> FP32 -> FP16) records each step under
    ``chain``; the message names the first step that did not pass."""
    parity = manifest.extra.get("parity") if isinstance(manifest.extra, dict) else None
    if isinstance(parity, dict) and parity.get("passed") is False:
        links = parity.get("chain") if isinstance(parity.get("chain"), list) else []
        failed = next((x for x in links if isinstance(x, dict) and x.get("passed") is not True), parity)
        raise ConfigError(
            f"{model_path}: its manifest records a failed parity check "
            f"({failed.get('candidate', '?')} vs {failed.get('reference', '?')}: {_why_failed(failed)}); "
            "re-export the model, or choose one whose parity passed"
        )


def _why_failed(step: dict) -> str:
    """The figures and reasons of one failed parity step, for the refusal's one line."""
    parts = []
    if "mask_agreement" in step:  # a step never run has no figures, only a note saying so
        parts.append(f"mask agreement {step['mask_agreement']}, bar {step.get('bar', '?')}")
    reasons = step.get("failures") or ([step["note"]] if "note" in step else [])
    parts.extend(str(reason) for reason in reasons)
    return "; ".join(parts) or "no figures recorded"
