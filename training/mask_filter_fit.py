"""`sonomap calibrate --method mask-filter`: choose the manifest's mask filter on a validation split.

Input: a checkpoint (``best.pt``) or a folded ONNX file with its manifest, and a dataset split
(default ``val``; never the test split you report). Output: the chosen
:class:`edge_runtime.mask_filter.MaskFilter` written into the artifact's manifest (``mask_filter``,
plus ``extra.mask_filter_fit``: the criterion before and after, and the split), and that record.
Run it after the probability calibration: the filter works on calibrated probabilities
(``min_peak``) and on the mask at the manifest's threshold.

Count first, score second: each image's probability (as served, at its own size) is thresholded,
filtered by every candidate of :data:`GRID`, and counted against its label
(:func:`training.metrics.confusion_counts`); a candidate is then scored by the **mean over images**
of each image's score, with an explicit empty-mask policy: an image with cancer scores its Dice, an
image without cancer scores 1 when no pixel is called cancer and 0 otherwise. The criterion so
weighs "finds the lesion" against "leaves a benign image clean", the two ways a filter can help or
hurt. Candidates run from weak to strong and only a strictly better score replaces the best so far,
so the filter stays off unless it helps. Size rules stay below half the smallest lesion in the
train and fitted splits' labels (:func:`smallest_lesion`; in BUSI the smallest malignant lesion is
0.5 % of its image, and 5 % of malignant lesions are under 2.8 %): a handful of validation images
cannot show that a larger cut is safe.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from edge_runtime.mask_filter import MaskFilter, filter_mask
from training.data import CANCER, read_cases, read_pair, select_split
from training.metrics import Counts, confusion_counts, is_unlabelled

PEAKS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
AREA_FRACTIONS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02)
LESION_SHARE_KEPT = 0.5  # a size rule must keep a part half as large as the smallest known lesion
GRID = [
    MaskFilter(min_peak=p, min_area_fraction=a, largest_only=largest)
    for p, a, largest in itertools.product(PEAKS, AREA_FRACTIONS, (False, True))
]


def image_score(counts: Counts) -> float:
    """Dice on an image with cancer; on one without, 1 if nothing was called cancer, else 0."""
    if counts.positives == 0:
        return float(counts.fp == 0)
    return 2 * counts.tp / (2 * counts.tp + counts.fp + counts.fn)


def criterion(counts: list[Counts]) -> dict[str, float]:
    """Per-image counts of one candidate -> its score and the figures reported beside it. An image
    with no labelled pixel says nothing about the filter and is left out (as evaluate leaves it out
    of its images without cancer)."""
    counts = [c for c in counts if not is_unlabelled(c)]
    cancer = [image_score(c) for c in counts if c.positives > 0]
    clean = [c for c in counts if c.positives == 0]
    return {
        "score": float(np.mean([image_score(c) for c in counts])) if counts else float("nan"),
        "dice_malignant_mean": float(np.mean(cancer)) if cancer else float("nan"),
        "negatives_with_fp": sum(c.fp > 0 for c in clean),
        "negatives": len(clean),
    }


def smallest_lesion(labels: list[np.ndarray]) -> float:
    """The smallest share of its image that cancer takes, over the labels with any (1.0: none)."""
    shares = [np.count_nonzero(label == CANCER) / label.size for label in labels]
    return min((share for share in shares if share > 0), default=1.0)


def choose(
    images: list[tuple[np.ndarray, np.ndarray]], threshold: float, lesions: list[np.ndarray] | None = None
) -> tuple[MaskFilter, dict]:
    """(served probability, label) per image -> the best filter of :data:`GRID` and its record.

    Size rules that could hide half of the smallest lesion in ``lesions`` (labels; default: those of
    ``images``) are not tried: a few validation images cannot show that such a rule is safe, and a
    lesion the model finds only half of would vanish."""
    if not images:
        raise ValueError("no images to fit the mask filter on")
    masks = [(prob >= threshold, float(prob.max()), label) for prob, label in images]
    cap = LESION_SHARE_KEPT * smallest_lesion(lesions or [label for _, label in images])
    grid = [rule for rule in GRID if rule.min_area_fraction < cap]
    best, best_fig, before = GRID[0], None, None
    for rule in grid:
        figures = criterion([confusion_counts(filter_mask(m, peak, rule), label) for m, peak, label in masks])
        before = before or figures  # GRID[0] is the filter that does nothing
        if best_fig is None or figures["score"] > best_fig["score"]:
            best, best_fig = rule, figures
    record = {"before": before, "after": best_fig, "filter": best.describe(), "candidates": len(grid)}
    return best, {**record, "largest_size_rule_tried_below": float(cap)}


def fit_mask_filter(artifact, data, split: str = "val", device: str = "cpu") -> dict:
    """Choose the filter on ``split`` of ``data`` and write it into ``artifact``'s manifest."""
    from edge_runtime.manifest import save_manifest
    from training.evaluate import served_probabilities
    from training.provenance import fitted_on

    manifest, probs = served_probabilities(Path(artifact), device)
    cases = read_cases(data)
    images = []
    for sample in select_split(cases, split, data):
        gray, label = read_pair(sample)
        images.append((probs(gray)[0], label))
    # the smallest lesion the training labels know of, too: more lesions than the split alone
    known = [read_pair(s)[1] for s in select_split(cases, "train", data)] if split != "train" else []
    rule, record = choose(images, manifest.threshold, known + [label for _, label in images])
    record.update(fitted_on(data, split, cases))  # folder name + digest: the manifest goes to the cart
    updated = manifest.derive(
        mask_filter=rule if rule.active else None,
        extra={**manifest.extra, "mask_filter_fit": record},
    )
    save_manifest(updated, artifact)
    return record
