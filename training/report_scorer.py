"""One model's evaluation report of a split, built one image at a time (:mod:`training.evaluate`).

Input: a model (its manifest and the probabilities function of
:func:`training.evaluate.served_probabilities`), then each image of the split with its label, already
read and validated by the caller (:meth:`ReportScorer.add`), so that several models can be scored on
one read of each file (``evaluate --compare``). Output, in the report folder: ``pred/<id>.png`` as each
image is scored, then (:meth:`ReportScorer.write`) ``metrics.csv``, ``calibration.json``,
``reliability.png``, ``band_sums.npz``, ``summary.json``, ``report.md`` and the plots.

Memory: per image, only its confusion counts and its calibration figures are kept, plus the few images
the gallery shows (:class:`training.report.GalleryPicks`), never the split's arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_write_png
from edge_runtime.jsonfile import atomic_write_json
from edge_runtime.mask_filter import filter_mask
from training.calibration import (
    BAND_SUMS_FILE,
    CalibrationAccumulator,
    write_band_sums,
    write_reliability_png,
)
from training.calibration_intervals import calibration_intervals
from training.data import Sample
from training.intervals import headline_intervals
from training.metrics import EMPTY_POLICY, cancer_free_marked, confusion_counts, scores, summarize
from training.metrics_csv import ImageResult, write_metrics_csv
from training.provenance import dataset_name
from training.report import GalleryPicks, write_report
from training.temperature import refuse_non_finite

MASK_ON = 255


class ReportScorer:
    """Scores one model image by image into the report folder OUT (new; made here).
    CHECKPOINT: the model's file, as the summary names it; MODEL: (manifest, probabilities function)."""

    def __init__(self, checkpoint: str | Path, model, out: Path):
        self.checkpoint, self.out = checkpoint, out
        self.manifest, self.probs = model
        (out / "pred").mkdir(parents=True)
        self.results: list[ImageResult] = []
        self.gallery = GalleryPicks()
        self.cal = CalibrationAccumulator(self.manifest.threshold)
        # uncalibrated figures, where the model gives logits (a checkpoint with a temperature)
        self.raw_cal: CalibrationAccumulator | None = None

    def add(self, sample: Sample, gray: np.ndarray, label: np.ndarray) -> None:
        """Score SAMPLE's image GRAY against its LABEL (both read and validated by the caller, and left
        unchanged here: another model may score the same arrays); writes its ``pred/<id>.png``."""
        manifest = self.manifest
        prob, raw = self.probs(gray)
        _check_finite(self.checkpoint, sample, prob, raw)
        thresholded = prob >= manifest.threshold
        # calibration is of the probability, so its band follows the threshold, not the filter
        self.cal.add(prob, label, thresholded)
        if raw is not None:
            self.raw_cal = self.raw_cal or CalibrationAccumulator(manifest.threshold)
            self.raw_cal.add(raw, label, thresholded)
        pred = filter_mask(thresholded, float(prob.max()), manifest.mask_filter)
        atomic_write_png(self.out / "pred" / f"{sample.id}.png", pred.astype(np.uint8) * MASK_ON)
        counts = confusion_counts(pred, label)
        self.results.append(ImageResult(sample.id, sample.case_id, counts, scores(counts)))
        self.gallery.offer(counts, sample.id, gray, label, pred)  # kept only if the gallery shows it

    def write(self, data, split: str, seed: int, curves: list | None) -> dict:
        """Every report file of the images added, for split SPLIT of dataset DATA (named in the
        summary); SEED: the bootstraps' (:mod:`training.intervals`); CURVES: the run's log rows for the
        training curves, or None. Returns the summary (also ``summary.json``)."""
        out, manifest, results = self.out, self.manifest, self.results
        write_metrics_csv(out / "metrics.csv", results)
        per_image, cases = [r.counts for r in results], [r.case_id for r in results]
        summary = summarize(per_image)
        summary.update(
            {
                # named as the model manifests name inputs: a folder above them may be the patient's
                "checkpoint": Path(self.checkpoint).name,
                # the digest the model was loaded against (its manifest's, checked then against the
                # file's bytes): the model scored, with no second read of a file that may be large
                "checkpoint_sha256": manifest.sha256,
                "data": dataset_name(data),
                "split": split,
                "arch": manifest.arch,
                "threshold": manifest.threshold,
                "mask_filter": manifest.mask_filter.describe() if manifest.mask_filter else "none",
                "empty_mask_policy": EMPTY_POLICY,
                **cancer_free_marked(per_image),
            }
        )
        summary.update(headline_intervals(per_image, cases, seed))
        summary.update(_calibration_keys(_write_calibration(out, self.cal, self.raw_cal, manifest, split)))
        band_sums = self.cal.image_bin_sums()
        raw_sums = self.raw_cal and self.raw_cal.image_bin_sums()
        write_band_sums(out / BAND_SUMS_FILE, [r.id for r in results], band_sums, raw_sums)
        cal_ci, cal_reasons = calibration_intervals(band_sums, cases, seed)
        summary["ci95"].update(cal_ci)
        summary["ci95_undefined_reason"].update(cal_reasons)
        atomic_write_json(out / "summary.json", summary)
        write_report(out, summary, results, self.gallery, curves)
        return summary


def _check_finite(checkpoint, sample, prob: np.ndarray, raw: np.ndarray | None) -> None:
    """A NaN/inf probability (a model whose weights diverged) is no score: it would count as "no
    cancer" in the masks and break the calibration bins, so the whole evaluation is refused (the
    same one line as ``calibrate``'s)."""
    refuse_non_finite(checkpoint, sample, (prob, raw), "cancer probability", "evaluated")


def _write_calibration(
    out: Path, cal: CalibrationAccumulator, raw: CalibrationAccumulator | None, manifest, split: str
) -> dict:
    result = {
        "temperature": manifest.temperature,
        "calibration_curve": manifest.calibration_curve,
        "calibrated": cal.summary(),
    }
    if raw is not None:
        result["uncalibrated"] = raw.summary()
        write_reliability_png(
            out / "reliability_uncalibrated.png",
            result["uncalibrated"],
            f"split {split}, uncalibrated (T = 1)",
        )
    write_reliability_png(
        out / "reliability.png",
        result["calibrated"],
        f"split {split}, as served (T = {manifest.temperature:.3f}"
        + (", calibration curve)" if manifest.calibration_curve else ")"),
    )
    atomic_write_json(out / "calibration.json", result)
    return result


def _calibration_keys(result: dict) -> dict:
    """The headline calibration figures for summary.json."""
    keys = {"temperature": result["temperature"], "calibration_curve": result.get("calibration_curve")}
    for name, summ in (("", result["calibrated"]), ("uncalibrated_", result.get("uncalibrated"))):
        if summ is None:
            continue
        for part in ("pixel", "image_max", "image_mean"):
            keys[f"{name}ece_{part}"] = summ[part]["ece"]
            keys[f"{name}brier_{part}"] = summ[part]["brier"]
    keys["calibration_band_px"] = result["calibrated"]["band_px"]
    return keys
