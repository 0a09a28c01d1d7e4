"""`sonomap evaluate`: checkpoint + dataset split -> report folder.

Each test image goes through the runtime's :func:`preprocess_for` at the manifest's
input size; the cancer probability is resized back to the image's own size, thresholded
at the manifest threshold, and counted against the label over labelled pixels (255
ignored), then the manifest's mask filter (:mod:`edge_runtime.mask_filter`, as the runtime
applies it). Outputs in REPORT/: ``metrics.csv`` (one row per image), ``pred/<id>.png``
(0/255 mask, image size), ``summary.json``, ``report.md`` and PNG plots
(:mod:`training.report`), plus calibration over the decision band and per image
(:mod:`training.calibration`): ``calibration.json``, ``reliability.png`` and ``band_sums.npz``
(each image's band-pixel bin sums, which cross-validation pools); for a checkpoint
whose manifest carries a temperature, also the uncalibrated figures (T = 1) for comparison.
The model is a training checkpoint (torch) or an exported folded ONNX file, which runs
through the runtime's ONNX Runtime backend (what a cart runs). Each model's report is built by a
:class:`training.report_scorer.ReportScorer`. ``compare`` evaluates two checkpoints into REPORT/A and
REPORT/B, both on the same read of each image, and writes the paired statistics (:mod:`training.stats`,
on per-image scores taken again from each image's exact counts in metrics.csv, never its rounded score
columns) to REPORT/compare.csv and REPORT/report.md.

REPORT is written whole or not at all: the report is built in a hidden folder beside it, which
replaces REPORT only when everything is written. REPORT may be new, empty or an earlier report of
evaluate, which is replaced as a whole; any other folder, a training run's above all, and a REPORT
that is, lies inside or contains the dataset, is refused before anything is written
(:mod:`training.report_folder`, :func:`training.output_checks.check_apart`). So is a split without a
cancer pixel whose labels look like lesion masks saved as 0/255 (:mod:`training.label_check`), and a
label or image that breaks the dataset contract (:func:`training.data.read_pair`): REPORT is left as it
was and the one line names the file.

One read per file: each image and its label are read, decoded and validated once, in the scoring
loop (:func:`score_reports`), and scored there by every model (both of ``compare``'s); the label check
counts that same label array before the image is inferred, so a broken label stops the run at its
image, and a split refused as a whole (0/255 masks, no cancer pixel) is refused once its last label is
counted, before any report file is kept. Only one image's arrays are held at a time, plus the few each
model's gallery shows (:class:`training.report.GalleryPicks`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from edge_runtime.atomic import check_apart
from edge_runtime.backends import create_backend
from edge_runtime.errors import InputError
from edge_runtime.manifest import load_manifest
from edge_runtime.preprocess import preprocess_for
from training.checkpoint import load_model
from training.compare_report import checkpoint_label, write_compare_report
from training.data import Sample, read_cases, read_pair, select_split
from training.distributed import pick_device
from training.isotonic import served_prob
from training.label_check import SplitCheck
from training.metrics_csv import exact_scores, read_metrics_csv
from training.report import read_training_curves
from training.report_folder import check_report_folder, run_curves_csv, staged_report
from training.report_scorer import ReportScorer
from training.stats import compare_models
from training.temperature import calibrated_prob

# Why a split of 0/255 lesion masks is refused: every figure would be computed, and wrong.
EVALUATE_MASKS = "so every lesion would be ignored and no cancer could be scored"


@torch.no_grad()
def predict_logits(model, manifest, gray: np.ndarray, device: torch.device | None = None) -> np.ndarray:
    """gray uint8 (H, W) -> logits float32 (C, h, w) at the model's input size."""
    x = torch.from_numpy(preprocess_for(gray, manifest))[None]
    return model(x.to(device) if device is not None else x).float()[0].cpu().numpy()


class OnnxPredictor:
    """A folded ONNX model through the runtime's ONNX Runtime backend: gray -> calibrated prob."""

    def __init__(self, path: Path):
        self.manifest = load_manifest(path)
        if not self.manifest.preprocessing_in_graph:
            raise InputError(f"{path}: evaluate takes folded ONNX models (preprocessing_in_graph: true)")
        # the runtime's own factory: a model the runtime refuses (a failed parity check) is refused here
        # too, so evaluate never measures a model the cart would not serve
        self.backend = create_backend("onnxruntime", path, self.manifest, device="cpu")

    def prob(self, gray: np.ndarray) -> np.ndarray:
        prob = self.backend.infer(gray).prob
        if prob.shape != gray.shape:
            prob = cv2.resize(prob, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
        return prob


def served_probabilities(checkpoint: Path, device: str):
    """-> (manifest, function gray -> (calibrated prob, uncalibrated prob or None)), both at the
    image's size: what the runtime thresholds (before the manifest's mask filter)."""
    if checkpoint.suffix == ".onnx":
        predictor = OnnxPredictor(checkpoint)
        return predictor.manifest, lambda gray: (predictor.prob(gray), None)
    model, manifest = load_model(checkpoint)
    dev = pick_device(device)
    model = model.to(dev)
    calibrated = manifest.temperature != 1.0 or bool(manifest.calibration_curve)

    def probs(gray):
        logits = predict_logits(model, manifest, gray, dev)
        prob = served_prob(logits, manifest, gray.shape)
        raw = calibrated_prob(logits, 1.0, manifest.cancer_index, gray.shape) if calibrated else None
        return prob, raw

    return manifest, probs


def load_inputs(checkpoints, data, split: str, device: str) -> tuple[list, list[Sample], list]:
    """What scoring CHECKPOINTS on SPLIT of DATA needs, each read and checked before anything is
    written: (each checkpoint's (manifest, probabilities function), the split's samples, each
    checkpoint's training-log rows for the curves or None)."""
    models = [served_probabilities(Path(ck), device) for ck in checkpoints]
    samples = select_split(read_cases(data), split, data)
    curves = []
    for ck in checkpoints:
        run_csv = run_curves_csv(Path(ck))
        # a damaged log is an error now, not after every image is scored; read once, plotted from these rows
        curves.append(read_training_curves(run_csv) if run_csv is not None else None)
    return models, samples, curves


def evaluate(
    checkpoint: str | Path,
    data: str | Path,
    split: str,
    out: str | Path,
    device: str = "cpu",
    seed: int = 0,
) -> dict:
    """Evaluate one checkpoint (or folded ONNX); returns the summary (also REPORT/summary.json),
    with 95 % intervals of the headline figures (:mod:`training.intervals`; ``seed``: the bootstrap's).
    ``out``: REPORT, new, empty or an earlier report (replaced whole, only once this one is written)."""
    out = Path(out)
    # every input is read and checked before anything is written; the run's metrics.csv (for the
    # training curves) stays untouched, as OUT is never the run's folder
    check_apart(data, out, "--data")  # a report inside the dataset would mix with its files
    check_report_folder(out)
    inputs = load_inputs([checkpoint], data, split, device)
    with staged_report(out) as stage:
        return score_reports([checkpoint], data, split, [stage], inputs, seed)[0]


def score_reports(checkpoints, data, split: str, outs, inputs, seed: int) -> list[dict]:
    """Score each of CHECKPOINTS on SPLIT of DATA into its new report folder in OUTS (same order),
    reading each image and label once for all of them; INPUTS: from :func:`load_inputs`; SEED: the
    bootstraps'. Returns each checkpoint's summary."""
    models, samples, curves = inputs
    scorers = [ReportScorer(ck, model, out) for ck, model, out in zip(checkpoints, models, outs, strict=True)]
    labels = SplitCheck(data, split, EVALUATE_MASKS, always=False)
    for s in samples:
        gray, label = read_pair(s)  # the one read of both files, validated; checked before inference
        labels.add(s, label)
        for scorer in scorers:  # every model scores the same arrays: no second read for the second model
            scorer.add(s, gray, label)
    labels.finish()  # a split of 0/255 masks without cancer: refused, the staged report discarded
    return [scorer.write(data, split, seed, rows) for scorer, rows in zip(scorers, curves, strict=True)]


def compare(
    ck_a: str | Path,
    ck_b: str | Path,
    data: str | Path,
    split: str,
    out: str | Path,
    seed: int = 0,
    device: str = "cpu",
) -> str:
    """Evaluate A and B on the same images, then paired tests. Returns the markdown table.
    ``out``: REPORT with A/, B/, compare.csv and report.md, replaced whole as in :func:`evaluate`."""
    out = Path(out)
    check_apart(data, out, "--data")
    check_report_folder(out)
    checkpoints = (ck_a, ck_b)
    inputs = load_inputs(checkpoints, data, split, device)
    with staged_report(out) as stage:
        sum_a, sum_b = score_reports(checkpoints, data, split, (stage / "A", stage / "B"), inputs, seed)
        rows_a = read_metrics_csv(stage / "A" / "metrics.csv")
        rows_b = read_metrics_csv(stage / "B" / "metrics.csv")
        if rows_a.keys() != rows_b.keys():
            raise InputError(f"{out}: A and B were scored on different images")
        ids = sorted(rows_a)
        cases = [rows_a[i]["case_id"] for i in ids]
        per_a, per_b = exact_scores(rows_a, ids), exact_scores(rows_b, ids)
        table = compare_models(per_a, per_b, cases, seed)
        labels = checkpoint_label(sum_a), checkpoint_label(sum_b)
        return write_compare_report(stage, *labels, sum_a, sum_b, table, len(ids), len(set(cases)), split)
