"""`sonomap evaluate`: checkpoint + dataset split -> report folder.

Each test image goes through the runtime's :func:`preprocess_for` at the manifest's
input size; the cancer probability is resized back to the image's own size, thresholded
at the manifest threshold, and counted against the label over labelled pixels (255
ignored). Outputs in REPORT/: ``metrics.csv`` (one row per image), ``pred/<id>.png``
(0/255 mask, image size), ``summary.json``, ``report.md`` and PNG plots
(:mod:`training.report`). ``compare`` evaluates two checkpoints into REPORT/A and
REPORT/B and writes the paired statistics (:mod:`training.stats`) to REPORT/compare.csv
and REPORT/report.md.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from edge_runtime.errors import InputError
from edge_runtime.preprocess import preprocess_for
from training.checkpoint import load_model
from training.data import read_cases, read_pair, select_split
from training.distributed import pick_device
from training.metrics import COUNTS, EMPTY_POLICY, METRICS, Counts, confusion_counts, scores, summarize
from training.report import write_compare_report, write_report
from training.stats import compare_models

MASK_ON = 255


@dataclass
class ImageResult:
    id: str
    case_id: str
    counts: Counts
    scores: dict[str, float]


@torch.no_grad()
def predict_prob(model, manifest, gray: np.ndarray, device: torch.device | None = None) -> np.ndarray:
    """gray uint8 (H, W) -> cancer probability float32 (H, W) at the image's own size."""
    x = torch.from_numpy(preprocess_for(gray, manifest))[None]
    logits = model(x.to(device) if device is not None else x)
    prob = logits.float().softmax(dim=1)[0, manifest.cancer_index].cpu().numpy()
    return cv2.resize(prob, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)


def _write_metrics_csv(path: Path, results: list[ImageResult]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "case_id", *COUNTS, *METRICS])
        for r in results:
            writer.writerow([r.id, r.case_id, *(getattr(r.counts, k) for k in COUNTS),
                             *(f"{r.scores[m]:.8f}" for m in METRICS)])


def evaluate(checkpoint: str | Path, data: str | Path, split: str, out: str | Path, device: str = "cpu") -> dict:
    """Evaluate one checkpoint; returns the summary (also REPORT/summary.json)."""
    out = Path(out)
    model, manifest = load_model(checkpoint)
    dev = pick_device(device)
    model = model.to(dev)
    samples = select_split(read_cases(data), split, data)
    (out / "pred").mkdir(parents=True, exist_ok=True)
    results, gallery = [], []
    for s in samples:
        gray, label = read_pair(s)
        prob = predict_prob(model, manifest, gray, dev)
        pred = prob >= manifest.threshold
        cv2.imwrite(str(out / "pred" / f"{s.id}.png"), pred.astype(np.uint8) * MASK_ON)
        counts = confusion_counts(pred, label)
        results.append(ImageResult(s.id, s.case_id, counts, scores(counts)))
        gallery.append((s.id, gray, label, pred))  # kept for the overlay gallery plot
    _write_metrics_csv(out / "metrics.csv", results)
    summary = summarize([r.counts for r in results])
    summary.update({"checkpoint": str(checkpoint), "data": str(data), "split": split, "arch": manifest.arch,
                    "threshold": manifest.threshold, "empty_mask_policy": EMPTY_POLICY})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    run_csv = Path(checkpoint).parent / "metrics.csv"
    write_report(out, summary, results, gallery, run_csv if run_csv.is_file() else None)
    return summary


def _per_image(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def compare(ck_a: str | Path, ck_b: str | Path, data: str | Path, split: str, out: str | Path,
            seed: int = 0, device: str = "cpu") -> str:
    """Evaluate A and B on the same images, then paired tests. Returns the markdown table."""
    out = Path(out)
    sum_a = evaluate(ck_a, data, split, out / "A", device)
    sum_b = evaluate(ck_b, data, split, out / "B", device)
    rows_a, rows_b = _per_image(out / "A" / "metrics.csv"), _per_image(out / "B" / "metrics.csv")
    if rows_a.keys() != rows_b.keys():
        raise InputError(f"{out}: A and B were scored on different images")
    ids = sorted(rows_a)
    cases = [rows_a[i]["case_id"] for i in ids]
    per_a = {m: np.array([float(rows_a[i][m]) for i in ids]) for m in METRICS}
    per_b = {m: np.array([float(rows_b[i][m]) for i in ids]) for m in METRICS}
    table = compare_models(per_a, per_b, cases, seed)
    return write_compare_report(out, str(ck_a), str(ck_b), sum_a, sum_b, table, len(ids), len(set(cases)))
