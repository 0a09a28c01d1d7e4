"""Parity between two runs of the same model (torch vs ONNX Runtime, FP32 vs FP16, ORT vs TensorRT).

Count first, score second: each frame gives pixel counts (pixels, agreeing mask pixels,
cancer pixels in each run, their intersection) and the largest probability difference;
the summary pools the counts over all frames (agreement = sum agree / sum pixels) and
also reports the worst frame. Any NaN/inf probability in the candidate (FP16 overflow) fails
the check whatever the agreement, since the runtime would show a wrong overlay.
Empty-mask policy: pixels of an empty mask count like any
other, so two empty masks agree fully; the cancer-pixel counts are reported beside the
agreement so a model that marks nothing is visible as such.

Writes ``MODEL.parity.json`` beside the model, named after it (``model.onnx.parity.json``), so
models exported into one folder keep a report each. Each export writes its report whole (atomically),
never merged with an older one: a section left from a previous export would describe another model.
Each section names the file it checked and its sha256 (``model``, ``model_sha256``).
No torch import here: selfcheck uses this on the cart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.jsonfile import atomic_write_json

FP32_AGREEMENT_BAR = 0.999  # torch FP32 vs ONNX Runtime FP32
FP16_AGREEMENT_BAR = 0.995  # FP16 (ONNX or TensorRT) vs FP32
PARITY_SUFFIX = ".parity.json"  # appended to the model's file name


@dataclass
class FrameCounts:
    id: str
    height: int
    width: int
    pixels: int
    agree: int
    cancer_ref: int
    cancer_test: int
    cancer_both: int
    max_prob_diff: float
    nonfinite_test: int  # NaN/inf probabilities in the candidate (FP16 overflow): always a failure


def count_frame(
    frame_id: str,
    mask_ref: np.ndarray,
    mask_test: np.ndarray,
    prob_ref: np.ndarray,
    prob_test: np.ndarray,
    cancer_id: int,
) -> FrameCounts:
    """Masks uint8 (H, W) and probabilities float (H, W) of one frame -> counts."""
    if mask_ref.shape != mask_test.shape or prob_ref.shape != prob_test.shape:
        raise InputError(f"frame {frame_id}: output shapes differ ({mask_ref.shape} vs {mask_test.shape})")
    ref_c = mask_ref == cancer_id
    test_c = mask_test == cancer_id
    diff = np.abs(prob_ref.astype(np.float64) - prob_test.astype(np.float64))
    return FrameCounts(
        id=frame_id,
        height=int(mask_ref.shape[0]),
        width=int(mask_ref.shape[1]),
        pixels=int(mask_ref.size),
        agree=int(np.count_nonzero(mask_ref == mask_test)),
        cancer_ref=int(ref_c.sum()),
        cancer_test=int(test_c.sum()),
        cancer_both=int(np.count_nonzero(ref_c & test_c)),
        max_prob_diff=float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0,
        nonfinite_test=int(np.count_nonzero(~np.isfinite(prob_test))),
    )


def summarise(counts: list[FrameCounts], bar: float, reference: str, candidate: str) -> dict[str, Any]:
    """Pool per-frame counts into the parity section; ``passed`` compares pooled agreement to ``bar``."""
    if not counts:
        raise InputError("parity: no frames were compared")
    pixels = sum(c.pixels for c in counts)
    agree = sum(c.agree for c in counts)
    union = sum(c.cancer_ref + c.cancer_test - c.cancer_both for c in counts)
    both = sum(c.cancer_both for c in counts)
    agreement = agree / pixels
    nonfinite = sum(c.nonfinite_test for c in counts)
    return {
        "reference": reference,
        "candidate": candidate,
        "frames": len(counts),
        "pixels": pixels,
        "mask_agreement": agreement,
        "worst_frame_agreement": min(c.agree / c.pixels for c in counts),
        "cancer_pixels_reference": sum(c.cancer_ref for c in counts),
        "cancer_pixels_candidate": sum(c.cancer_test for c in counts),
        # IoU of the cancer class between the two runs; None when neither marks any pixel.
        "cancer_iou": (both / union) if union else None,
        "max_prob_diff": max(c.max_prob_diff for c in counts),
        "nonfinite_prob_candidate": nonfinite,
        "bar": bar,
        "passed": bool(agreement >= bar and nonfinite == 0),
        "per_frame": [asdict(c) for c in counts],
    }


def ort_session(model_path: str | Path, providers: list[str] | None = None):
    """An ONNX Runtime session (CPU unless ``providers`` says otherwise)."""
    # deferred: loaded only when a parity check runs
    import onnxruntime as ort

    path = Path(model_path)
    if not path.is_file():
        raise InputError(f"{path}: ONNX model not found")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: FP16 graphs warn about every inserted cast
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception classes for invalid graphs
        raise InputError(f"{path}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})") from exc


def run_ort(session, gray: np.ndarray, input_name: str = "frame") -> tuple[np.ndarray, np.ndarray]:
    """gray uint8 (H, W) -> (prob float32 (H, W), mask uint8 (H, W)) from a folded ONNX model."""
    prob, mask = session.run(["prob", "mask"], {input_name: gray[None, None]})
    return prob[0, 0].astype(np.float32), mask[0, 0]


def parity_path(model_path: str | Path) -> Path:
    """The parity report of a model: ``MODEL.parity.json`` beside it (model.onnx -> model.onnx.parity.json)."""
    path = Path(model_path)
    return path.with_name(path.name + PARITY_SUFFIX)


def write_parity(model_path: str | Path, sections: dict[str, Any]) -> Path:
    """Write ``sections`` as the model's whole report, ``MODEL.parity.json`` beside it (atomic
    replace): an older report, of an earlier export to the same name, is replaced, never merged."""
    return atomic_write_json(parity_path(model_path), sections)


def checked_file(path: str | Path, sha256: str, section: dict[str, Any]) -> dict[str, Any]:
    """``section`` with the file it checked, by name and sha256, first: a report beside a model
    tells whether it describes that very file."""
    return {"model": Path(path).name, "model_sha256": sha256, **section}


def describe(section: dict[str, Any]) -> str:
    """One line for the console."""
    return (
        f"{section['candidate']} vs {section['reference']}: mask agreement "
        f"{100 * section['mask_agreement']:.3f}% over {section['frames']} frames "
        f"(worst frame {100 * section['worst_frame_agreement']:.3f}%, bar {100 * section['bar']:.1f}%, "
        f"cancer px {section['cancer_pixels_reference']}/{section['cancer_pixels_candidate']}, "
        f"max |dprob| {section['max_prob_diff']:.2e}, non-finite {section['nonfinite_prob_candidate']}) "
        f"-> {'PASS' if section['passed'] else 'FAIL'}"
    )
