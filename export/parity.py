"""Parity between two runs of the same model (torch vs ONNX Runtime, FP32 vs FP16, ORT vs TensorRT).

Count first, score second: each frame gives pixel counts (pixels, agreeing mask pixels,
cancer pixels in each run, their intersection), the same counts for the *served* masks (the
thresholded cancer mask after the manifest's ``mask_filter``, :func:`edge_runtime.mask_filter.filter_mask`:
what the cart shows), each run's served verdict (does the frame show a finding at all) and the
largest probability difference. The summary pools the counts over all frames (agreement = sum
agree / sum pixels) and also reports the worst frame.

A check passes only when all of these hold (``failures`` names each one that does not):

- pooled mask agreement and pooled served-mask agreement at or above the bar;
- no frame whose served verdict differs: a finding shown by one run and not the other is the
  error that matters at the cart, however few pixels it takes (a peak just under the filter's
  ``min_peak`` wipes a whole lesion);
- the largest |prob difference| at most :data:`MAX_PROB_DIFF` (a candidate a few percent lower
  everywhere keeps its masks but moves every peak toward the filter's cut-off);
- no NaN/inf probability in the candidate (FP16 overflow).

Empty-mask policy: pixels of an empty mask count like any other, so two empty masks agree fully;
the cancer-pixel counts are reported beside the agreement so a model that marks nothing is
visible as such.

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
from edge_runtime.manifest import PARITY_SUFFIX  # appended to the model's file name
from edge_runtime.mask_filter import MaskFilter, filter_mask

FP32_AGREEMENT_BAR = 0.999  # torch FP32 vs ONNX Runtime FP32
FP16_AGREEMENT_BAR = 0.995  # FP16 (ONNX or TensorRT) vs FP32
# Largest |prob difference| any pixel may show, for every pair checked. Measured on the shipped
# model (ONNX Runtime CPU): FP16 vs FP32 8.4e-4 on the 8 default parity frames and 3.5e-3 at most
# over all 30 vendored BUSI frames; torch vs ONNX Runtime FP32 3.6e-6. 0.02 leaves about 6x the
# worst FP16 figure, and is well under the 0.05-0.06 a candidate 6 % lower shows at a finding's
# peak (0.9-1.0), where the mask filter's min_peak decides whether the finding is shown.
MAX_PROB_DIFF = 0.02
# keys of a check kept in the manifest's ``extra.parity`` (the full section is in MODEL.parity.json)
RECORD_KEYS = (
    "reference",
    "candidate",
    "frames",
    "mask_agreement",
    "served_mask_agreement",
    "verdict_flips",
    "max_prob_diff",
    "max_prob_diff_limit",
    "bar",
    "failures",
    "passed",
)


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
    served_agree: int = 0  # pixels where the served (filtered) cancer masks agree
    served_ref: int = 0  # cancer pixels the cart would show, per run
    served_test: int = 0
    finding_ref: bool = False  # the served verdict: does the frame show a finding at all
    finding_test: bool = False


def served_cancer(cancer: np.ndarray, prob: np.ndarray, mask_filter: MaskFilter | None) -> np.ndarray:
    """A run's cancer mask (bool) -> the one the cart shows: the manifest's mask filter applied
    with the frame's peak probability, as the runtime's stages do."""
    return filter_mask(cancer, float(prob.max()), mask_filter)


def count_frame(
    frame_id: str,
    mask_ref: np.ndarray,
    mask_test: np.ndarray,
    prob_ref: np.ndarray,
    prob_test: np.ndarray,
    cancer_id: int,
    mask_filter: MaskFilter | None = None,
) -> FrameCounts:
    """Masks uint8 (H, W) and probabilities float (H, W) of one frame -> counts. ``mask_filter``
    is the manifest's (None: the served mask is the thresholded one)."""
    if mask_ref.shape != mask_test.shape or prob_ref.shape != prob_test.shape:
        raise InputError(f"frame {frame_id}: output shapes differ ({mask_ref.shape} vs {mask_test.shape})")
    ref_c = mask_ref == cancer_id
    test_c = mask_test == cancer_id
    diff = np.abs(prob_ref.astype(np.float64) - prob_test.astype(np.float64))
    served_ref = served_cancer(ref_c, prob_ref, mask_filter)
    served_test = served_cancer(test_c, prob_test, mask_filter)
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
        served_agree=int(np.count_nonzero(served_ref == served_test)),
        served_ref=int(np.count_nonzero(served_ref)),
        served_test=int(np.count_nonzero(served_test)),
        finding_ref=bool(served_ref.any()),
        finding_test=bool(served_test.any()),
    )


def summarise(
    counts: list[FrameCounts],
    bar: float,
    reference: str,
    candidate: str,
    mask_filter: MaskFilter | None = None,
) -> dict[str, Any]:
    """Pool per-frame counts into the parity section; ``passed`` when every gate in the module doc
    holds. ``mask_filter`` (the one the counts were made with) is only named in the section."""
    if not counts:
        raise InputError("parity: no frames were compared")
    pixels = sum(c.pixels for c in counts)
    union = sum(c.cancer_ref + c.cancer_test - c.cancer_both for c in counts)
    both = sum(c.cancer_both for c in counts)
    agreement = sum(c.agree for c in counts) / pixels
    served = sum(c.served_agree for c in counts) / pixels
    nonfinite = sum(c.nonfinite_test for c in counts)
    flips = [c.id for c in counts if c.finding_ref != c.finding_test]
    max_diff = max(c.max_prob_diff for c in counts)
    failures = _failures(agreement, served, flips, max_diff, nonfinite, bar)
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
        "mask_filter": mask_filter.describe() if mask_filter is not None else "none",
        "served_mask_agreement": served,
        "worst_frame_served_agreement": min(c.served_agree / c.pixels for c in counts),
        "served_cancer_pixels_reference": sum(c.served_ref for c in counts),
        "served_cancer_pixels_candidate": sum(c.served_test for c in counts),
        "frames_with_finding_reference": sum(c.finding_ref for c in counts),
        "frames_with_finding_candidate": sum(c.finding_test for c in counts),
        "verdict_flips": len(flips),
        "verdict_flip_frames": flips,
        "max_prob_diff": max_diff,
        "max_prob_diff_limit": MAX_PROB_DIFF,
        "nonfinite_prob_candidate": nonfinite,
        "bar": bar,
        "failures": failures,
        "passed": not failures,
        "per_frame": [asdict(c) for c in counts],
    }


def _failures(
    agreement: float, served: float, flips: list[str], max_diff: float, nonfinite: int, bar: float
) -> list[str]:
    """One short phrase per gate that fails (empty: the check passes)."""
    failures = []
    if not agreement >= bar:
        failures.append(f"mask agreement {agreement:.5f} < {bar}")
    if not served >= bar:
        failures.append(f"served mask agreement {served:.5f} < {bar}")
    if flips:
        failures.append(f"finding shown by one run only on {len(flips)} frame(s): {', '.join(flips)}")
    if not max_diff <= MAX_PROB_DIFF:
        failures.append(f"max |dprob| {max_diff:.3g} > {MAX_PROB_DIFF}")
    if nonfinite:
        failures.append(f"{nonfinite} non-finite candidate probabilities")
    return failures


def manifest_record(section: dict[str, Any]) -> dict[str, Any]:
    """The part of a parity section kept in a manifest's ``extra.parity`` (the verdict and its
    headline figures; the frames' details stay in MODEL.parity.json)."""
    return {key: section[key] for key in RECORD_KEYS if key in section}


def unchecked_record(reference: str, candidate: str, note: str) -> dict[str, str | bool]:
    """The record of a step whose parity was never compared: it did not pass, and ``note`` says why,
    so nothing downstream reads the model as checked (edge_runtime.parity_record)."""
    return {"reference": reference, "candidate": candidate, "passed": False, "note": note}


def chain_record(links: list[dict[str, Any]]) -> dict[str, Any]:
    """The parity record of a model made through several checked steps (torch -> ONNX Runtime
    FP32 -> FP16): it passed only when every step passed, and each step's record is kept, so a
    twin of a failed export can never read as checked."""
    return {
        "reference": links[0].get("reference", "?"),
        "candidate": links[-1].get("candidate", "?"),
        "passed": all(link.get("passed") is True for link in links),
        "chain": links,
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
    failures = section.get("failures") or []
    verdict = "PASS" if section["passed"] else f"FAIL ({'; '.join(failures) or 'see the report'})"
    return (
        f"{section['candidate']} vs {section['reference']}: mask agreement "
        f"{100 * section['mask_agreement']:.3f}% over {section['frames']} frames "
        f"(worst frame {100 * section['worst_frame_agreement']:.3f}%, bar {100 * section['bar']:.1f}%, "
        f"cancer px {section['cancer_pixels_reference']}/{section['cancer_pixels_candidate']}), "
        f"served masks [filter {section['mask_filter']}] {100 * section['served_mask_agreement']:.3f}% "
        f"(findings {section['frames_with_finding_reference']}/{section['frames_with_finding_candidate']} "
        f"frames, verdict flips {section['verdict_flips']}), max |dprob| {section['max_prob_diff']:.2e} "
        f"(limit {section['max_prob_diff_limit']:g}), non-finite {section['nonfinite_prob_candidate']} "
        f"-> {verdict}"
    )
