"""Per-image confusion counts first, scores second, with an explicit empty-mask policy.

Counts are taken over *labelled* pixels only (label 255 is ignored), for the cancer class
as positive: tp, fp, fn, tn. Scores per image: pixel_accuracy, dice, recall, precision,
iou, specificity. Pooled scores apply the same formulas to counts summed over images.

Empty-mask policy (:data:`EMPTY_POLICY`): an image with no labelled pixel at all (every label
pixel is the ignore index) has nothing to score: every score is NaN, and it is no image "without
cancer" either (:func:`is_unlabelled`; callers leave it out of such counts and report how many).
Otherwise, when truth and prediction are both empty (tp+fp+fn = 0, tn > 0) Dice and IoU are 1.0,
the model agreed there is no cancer. Recall with no cancer in the truth, precision with nothing
predicted and specificity with no tissue pixels are undefined: NaN, left out of means and counted
in the report. (scikit-learn: f1/jaccard ``zero_division=1.0``, others ``zero_division=nan``.)

That 1.0 is a per-image convention. A set of images scored as one (:func:`pooled_scores`: a split's
pooled figures in :func:`summarize`, a bootstrap resample) with no cancer pixel and no predicted
pixel at all has no Dice or IoU: NaN, as its recall is, so neither a cancer-free split nor a resample
of cancer-free cases can score a perfect pooled Dice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from training.data import CANCER, IGNORE_INDEX

METRICS = ("pixel_accuracy", "dice", "recall", "precision", "iou", "specificity")
COUNTS = ("tp", "fp", "fn", "tn")
EMPTY_POLICY = (
    "an image with no labelled pixel scores NaN everywhere and is left out (counted); both-empty "
    "images score Dice = IoU = 1.0; recall/precision/specificity with a zero denominator are NaN "
    "and left out of means (counted); pooled Dice and IoU of a set with neither a cancer nor a "
    "predicted pixel are NaN"
)
NAN = float("nan")


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def positives(self) -> int:
        return self.tp + self.fn


def confusion_counts(
    pred: np.ndarray, label: np.ndarray, positive: int = CANCER, ignore: int = IGNORE_INDEX
) -> Counts:
    """pred (H,W) class ids or bool, label (H,W) uint8 -> Counts over labelled pixels."""
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} != label shape {label.shape}")
    valid = label != ignore
    p = (pred == positive) if pred.dtype != bool else pred
    p, t = p[valid], label[valid] == positive
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Counts(tp, fp, fn, int(t.size - tp - fp - fn))


def _ratio(num: float, den: float, empty: float = NAN) -> float:
    return num / den if den > 0 else empty


def is_unlabelled(c: Counts) -> bool:
    """True when the counts hold no labelled pixel (every pixel was the ignore index)."""
    return c.tp + c.fp + c.fn + c.tn == 0


def is_cancer_free(c: Counts) -> bool:
    """True for an image without cancer: labelled pixels, none of them cancer. An image with no
    labelled pixel is neither with nor without cancer (it is counted in ``n_unlabelled``)."""
    return c.positives == 0 and not is_unlabelled(c)


def cancer_free_marked(counts: list[Counts]) -> dict[str, int]:
    """``n_negative`` (images without cancer) and ``n_negative_with_fp`` (those of them with any
    false cancer pixel), as summary.json reports them."""
    clean = [c for c in counts if is_cancer_free(c)]
    return {"n_negative": len(clean), "n_negative_with_fp": sum(c.fp > 0 for c in clean)}


def scores(c: Counts) -> dict[str, float]:
    """Counts -> the six metrics under :data:`EMPTY_POLICY` (all NaN without a labelled pixel)."""
    if is_unlabelled(c):
        return dict.fromkeys(METRICS, NAN)
    total = c.tp + c.fp + c.fn + c.tn
    return {
        "pixel_accuracy": _ratio(c.tp + c.tn, total),
        "dice": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, empty=1.0),
        "recall": _ratio(c.tp, c.tp + c.fn),
        "precision": _ratio(c.tp, c.tp + c.fp),
        "iou": _ratio(c.tp, c.tp + c.fp + c.fn, empty=1.0),
        "specificity": _ratio(c.tn, c.tn + c.fp),
    }


def pooled(counts: list[Counts]) -> Counts:
    total = Counts()
    for c in counts:
        total = total + c
    return total


def pooled_scores(counts: list[Counts]) -> dict[str, float]:
    """Scores of the counts summed over a set of images scored as one (a bootstrap resample): as
    :func:`scores`, except that Dice and IoU are NaN when the set has neither a cancer pixel nor a
    predicted one. The per-image 1.0 says one image agreed there is no cancer; over a whole set
    that is no overlap figure at all, and scoring it 1.0 would pull a resample's interval to 1."""
    total = pooled(counts)
    out = scores(total)
    if total.tp + total.fp + total.fn == 0:
        out["dice"] = out["iou"] = NAN
    return out


def nanmean(values) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else NAN


def summarize(counts: list[Counts]) -> dict[str, float]:
    """Per-image counts -> per-image means (all images; cancer-positive images only), pooled scores,
    per metric the images where it is undefined, and ``n_unlabelled`` (images with no labelled
    pixel, undefined in every metric)."""
    per = [scores(c) for c in counts]
    pos = [s for s, c in zip(per, counts, strict=False) if c.positives > 0]
    out: dict[str, float] = {
        "n_images": len(counts),
        "n_positive": len(pos),
        "n_unlabelled": sum(is_unlabelled(c) for c in counts),
    }
    for m in METRICS:
        out[f"{m}_mean"] = nanmean(s[m] for s in per)
        out[f"{m}_pos_mean"] = nanmean(s[m] for s in pos)
        out[f"{m}_n_undefined"] = sum(math.isnan(s[m]) for s in per)
    # pooled_scores, as the bootstrap's resamples (training.intervals): one policy for every pooled
    # figure, so a cancer-free split with nothing predicted has no pooled Dice, not a perfect 1.0
    for m, v in pooled_scores(counts).items():
        out[f"{m}_pooled"] = v
    return out


def confusion_matrix(c: Counts) -> np.ndarray:
    """2x2 matrix, rows = truth (tissue, cancer), columns = prediction (as torchvision/sklearn)."""
    return np.array([[c.tn, c.fp], [c.fn, c.tp]], dtype=np.int64)
