"""Cross-validation's pooled figures: every fold's out-of-fold images scored as one set.

Input: OUT/fold<k>/eval/ of each fold (``sonomap evaluate``'s metrics.csv, summary.json,
calibration.json and band_sums.npz) and OUT/fold<k>/run/summary.json. Output in OUT:

- ``metrics.csv``: every image once, with its fold, its exact counts and its scores;
- ``summary.json``: the pooled figures of :func:`training.metrics.summarize`, their 95 %
  case-bootstrap intervals (:mod:`training.intervals`), the share of images without cancer marked
  (Wilson interval), the decision-band ECE and Brier as served and uncalibrated with their own case
  intervals (:mod:`training.calibration_intervals`), and per fold its figures and fitted settings;
- ``reliability.png`` and ``report.md``.

Count first, score second: the pooled figures come from the per-image counts and per-image band
sums of all folds, never from averaging the folds' scores; the folds' own figures are listed beside
them, with their spread, to show how much one test split of 1/K of the cases can vary.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_path, atomic_write_text
from edge_runtime.errors import InputError
from edge_runtime.jsonfile import atomic_write_json, read_json
from edge_runtime.stop_signals import signals_held
from training.calibration import (
    BAND_SUMS_FILE,
    ece_brier,
    read_band_sums,
    reliability_of_sums,
    sums_of,
    write_reliability_png,
)
from training.calibration_intervals import calibration_intervals
from training.crossval_layout import FOLD_EVAL, FOLD_RUN, SETUP_FILE, fold_dir
from training.intervals import headline_intervals
from training.metrics import EMPTY_POLICY, cancer_free_marked, scores, summarize
from training.metrics_csv import ImageResult, read_metrics_csv, row_counts, write_metrics_csv
from training.report_text import interval_text

FOLD_FIGURES = ("dice_pos_mean", "dice_pooled", "dice_mean", "ece_pixel")
NEGATIVE_KEYS = ("n_negative_with_fp", "n_negative")  # what a fold's line reads of its summary.json
SERVED = "calibrated"  # calibration.json's figures as served
RELIABILITY_KEYS = {"band_px", "pixel", "image_max", "image_mean"}  # what the pooled reliability sums
POOLED_FILES = ("report.md", "summary.json", "reliability.png", "metrics.csv")  # written as one set
REDO = "damaged, or not written by sonomap crossval"


def _fold(out: Path, k: int) -> dict:
    """One fold's evaluation: its images (ImageResult), band sums and figures."""
    ev = fold_dir(out, k) / FOLD_EVAL
    rows = read_metrics_csv(ev / "metrics.csv")
    results = []
    for image_id, row in rows.items():
        counts = row_counts(row, ev / "metrics.csv")
        results.append(ImageResult(image_id, row["case_id"], counts, scores(counts)))
    bands = read_band_sums(ev / BAND_SUMS_FILE)
    if list(bands["ids"]) != list(rows):
        raise InputError(f"{ev / BAND_SUMS_FILE}: its images are not those of {ev / 'metrics.csv'}")
    summary = _json_object(ev / "summary.json", NEGATIVE_KEYS)
    trained = _json_object(fold_dir(out, k) / FOLD_RUN / "summary.json")
    line = {
        "fold": k,
        "images": len(results),
        "with_cancer": sum(r.counts.positives > 0 for r in results),
        "without_cancer_marked": f"{summary['n_negative_with_fp']} of {summary['n_negative']}",
        **{name: summary.get(name) for name in FOLD_FIGURES},
        "epochs": trained.get("epochs_done"),
        "best_epoch": (trained.get("best") or {}).get("epoch"),
        "temperature": summary.get("temperature"),
        "threshold": summary.get("threshold"),
        "mask_filter": summary.get("mask_filter"),
    }
    calibration = _json_object(ev / "calibration.json", (SERVED,))
    if not isinstance(calibration[SERVED], dict) or not RELIABILITY_KEYS <= calibration[SERVED].keys():
        raise InputError(
            f"{ev / 'calibration.json'}: '{SERVED}' lacks {', '.join(sorted(RELIABILITY_KEYS))} ({REDO})"
        )
    return {"results": results, "bands": bands, "line": line, "calibration": calibration}


def _json_object(path: Path, keys: tuple[str, ...] = ()) -> dict:
    """A fold's JSON file as a mapping holding ``keys``; an InputError naming the file (and the key)
    when it is damaged or not the file evaluate or train wrote."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a JSON object ({REDO})")
    missing = [key for key in keys if key not in value]
    if missing:
        raise InputError(f"{path}: missing key '{missing[0]}' ({REDO})")
    return value


def _band_figures(folds: list[dict], key: str, cases: list[str], seed: int) -> dict | None:
    """Pooled band ECE and Brier of ``key`` ("calibrated" or "uncalibrated"), with case intervals;
    None when some fold has no such sums (a model without logits has no uncalibrated figures)."""
    if any(key not in f["bands"] for f in folds):
        return None
    per_image = np.concatenate([f["bands"][key] for f in folds])
    ece, brier = ece_brier(per_image.sum(axis=0))
    ci, reasons = calibration_intervals(per_image, cases, seed)
    return {"ece_pixel": ece, "brier_pixel": brier, "ci95": ci, "ci95_undefined_reason": reasons}


def _pooled_reliability(folds: list[dict]) -> dict:
    """calibration.json's served parts (band pixels, image max and mean), summed over the folds."""
    first = folds[0]["calibration"]["calibrated"]
    pooled = {"band_px": first["band_px"]}
    for part in ("pixel", "image_max", "image_mean"):
        pooled[part] = reliability_of_sums(sum(sums_of(f["calibration"]["calibrated"][part]) for f in folds))
    return pooled


def _spread(values: list) -> dict:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "mean": float(np.mean(vals)),
        "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"),
        "min": float(min(vals)),
        "max": float(max(vals)),
    }


def write_pooled_report(out: Path, folds: int, seed: int) -> dict:
    """Pool OUT's K evaluated folds into OUT/metrics.csv, summary.json, reliability.png and
    report.md, written as one set: a failure (a full disk, a stop) leaves an earlier pooled report
    as it was, never new files beside old ones; returns the summary."""
    out = Path(out)
    read = [_fold(out, k) for k in range(1, folds + 1)]
    results = [r for f in read for r in f["results"]]
    fold_of = [f["line"]["fold"] for f in read for _ in f["results"]]
    ids = [r.id for r in results]
    if len(set(ids)) != len(ids):
        raise InputError(f"{out}: an image is in the test split of two folds; the folds do not partition it")
    counts, cases = [r.counts for r in results], [r.case_id for r in results]
    summary = summarize(counts)
    summary.update(headline_intervals(counts, cases, seed))
    summary.update(
        {
            "folds": folds,
            "seed": seed,
            "calibration": bool(read_json(out / SETUP_FILE).get("calibration")),
            **cancer_free_marked(counts),
            "empty_mask_policy": EMPTY_POLICY,
            "served": _band_figures(read, "calibrated", cases, seed),
            "uncalibrated": _band_figures(read, "uncalibrated", cases, seed),
            "per_fold": [f["line"] for f in read],
            "fold_spread": {name: _spread([f["line"][name] for f in read]) for name in FOLD_FIGURES},
        }
    )
    reliability = _pooled_reliability(read)
    how = "as served" if summary["calibration"] else "as trained, not calibrated"
    # one set: each file under a hidden name first, renamed into place only once all four are whole
    # (report.md, entered first, is renamed last); SIGINT/SIGTERM wait from the first rename to the
    # last (held exits after renames), not while the files are written
    with ExitStack() as held, ExitStack() as renames:
        staged = {name: renames.enter_context(atomic_path(out / name)) for name in POOLED_FILES}
        write_metrics_csv(staged["metrics.csv"], results, {"fold": fold_of})
        write_reliability_png(staged["reliability.png"], reliability, f"{folds}-fold cross-validation, {how}")
        atomic_write_json(staged["summary.json"], summary)
        atomic_write_text(staged["report.md"], _report_md(summary))
        held.enter_context(signals_held())
    return summary


def _band_line(name: str, figures: dict | None) -> str:
    if figures is None:
        return f"| band ECE, {name} | (not calibrated: the figure above is the models' own) |"
    ci = figures["ci95"]["ece_pixel"]
    return f"| band ECE, {name} | {figures['ece_pixel']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] |"


def _report_md(s: dict) -> str:
    share = s["ci95"]["benign_fp_share"]
    lines = [
        f"# {s['folds']}-fold cross-validation by case, out-of-fold images pooled",
        "",
        f"{s['n_images']} images ({s['n_positive']} with cancer) from {s['ci95_cases']} cases, each "
        "scored once by the model whose training never saw its case, "
        + (
            "as served (its calibration and mask filter fitted on its own validation fold)."
            if s["calibration"]
            else "as trained (not calibrated: threshold 0.5, no temperature, curve or mask filter)."
        ),
        "",
        "| figure | pooled, 95 % interval over cases |",
        "|---|---|",
        f"| Dice, mean over images with cancer | {s['dice_pos_mean']:.4f} [{interval_text(s, 'dice_pos_mean', 3, ', ')}] |",
        f"| Dice, pooled pixels | {s['dice_pooled']:.4f} [{interval_text(s, 'dice_pooled', 3, ', ')}] |",
        f"| Dice, mean over all images | {s['dice_mean']:.4f} [{interval_text(s, 'dice_mean', 3, ', ')}] |",
        f"| recall, pooled pixels | {s['recall_pooled']:.4f} [{interval_text(s, 'recall_pooled', 3, ', ')}] |",
        f"| images without cancer with a false cancer pixel | {s['n_negative_with_fp']} of "
        f"{s['n_negative']} [{share[0]:.3f}, {share[1]:.3f}] |",
        _band_line("served", s["served"]),
        _band_line("uncalibrated (T = 1)", s["uncalibrated"]),
        "",
        "| fold | images (with cancer) | Dice malignant mean | Dice pooled | without cancer marked | "
        "band ECE | epochs (best) | temperature | threshold | mask filter |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in s["per_fold"]:
        lines.append(
            f"| {f['fold']} | {f['images']} ({f['with_cancer']}) | {_num(f['dice_pos_mean'])} | "
            f"{_num(f['dice_pooled'])} | {f['without_cancer_marked']} | {_num(f['ece_pixel'])} | "
            f"{f['epochs']} ({f['best_epoch']}) | {_num(f['temperature'])} | {_num(f['threshold'])} | "
            f"{f['mask_filter']} |"
        )
    spread, ece = s["fold_spread"]["dice_pos_mean"], s["fold_spread"]["ece_pixel"]
    lines += [
        "",
        f"Across folds, Dice (malignant mean) ranges {_num(spread['min'])}–{_num(spread['max'])} "
        f"(sd {_num(spread['sd'])}): what one test split of 1/{s['folds']} of the cases can show.",
        f"The pooled band ECE lets the folds' calibration errors cancel; one fold's model on its own "
        f"test fold shows {_num(ece['min'])}–{_num(ece['max'])} (mean {_num(ece['mean'])}).",
        "",
        s["ci95_method"] + ".",
        "",
        f"Empty-mask policy: {s['empty_mask_policy']}.",
        "",
    ]
    return "\n".join(lines)


def _num(v) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
