"""`sonomap calibrate --method mask-filter`: choose the manifest's mask filter on a validation split.

Input: a checkpoint (``best.pt``) or a folded ONNX file with its manifest, and a dataset split
(default ``val``; never the test split you report). Output: the chosen
:class:`edge_runtime.mask_filter.MaskFilter` written into the artifact's manifest (``mask_filter``,
plus ``extra.mask_filter_fit``: the criterion before and after, and the split), and that record.
Run it after the probability calibration: the filter works on calibrated probabilities
(``min_peak``) and on the mask at the manifest's threshold, so a later temperature or curve fit
removes it (:func:`training.mask_filter_record.without_mask_filter`). An ONNX model's twin of the
other precision (``model.onnx`` <-> ``model.fp16.onnx``, :func:`twin_of`) gets the same filter in
the same run, or neither does: a backend may load either file, and must apply one filter.

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

What it reads: each image and label of the fitted split once (:func:`training.label_check.read_checked`,
which refuses a split without cancer before the model runs), each label of the train split once (the
label alone, one at a time: only its lesion's share is kept), and each file of the dataset once more,
as bytes, for the digest the manifest records (:func:`training.provenance.fitted_on`).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path, save_manifest
from edge_runtime.mask_filter import MaskFilter, filter_mask
from edge_runtime.stop_signals import signals_held
from training.data import CANCER, read_cases, read_label, select_split
from training.label_check import read_checked
from training.mask_filter_record import FIT_RECORD
from training.metrics import Counts, confusion_counts, is_cancer_free, is_unlabelled

PEAKS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
AREA_FRACTIONS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02)
ONNX_SUFFIX, FP16_SUFFIX = ".onnx", ".fp16.onnx"  # export's names for the two precisions
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
    clean = [c for c in counts if is_cancer_free(c)]
    return {
        "score": float(np.mean([image_score(c) for c in counts])) if counts else float("nan"),
        "dice_malignant_mean": float(np.mean(cancer)) if cancer else float("nan"),
        "negatives_with_fp": sum(c.fp > 0 for c in clean),
        "negatives": len(clean),
    }


def smallest_lesion(labels: Iterable[np.ndarray]) -> float:
    """The smallest share of its image that cancer takes, over the labels with any (1.0: none). LABELS
    may be a generator: each is counted as it comes, none is kept."""
    shares = [np.count_nonzero(label == CANCER) / label.size for label in labels]
    return min((share for share in shares if share > 0), default=1.0)


def choose(
    images: list[tuple[np.ndarray, np.ndarray]], threshold: float, lesions: Iterable[np.ndarray] | None = None
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


def twin_of(artifact: Path) -> Path | None:
    """The other precision of an exported ONNX model (``model.onnx`` <-> ``model.fp16.onnx``);
    None for any other artifact (a checkpoint has no twin)."""
    name = artifact.name
    if name.endswith(FP16_SUFFIX):
        return artifact.with_name(name[: -len(FP16_SUFFIX)] + ONNX_SUFFIX)
    if name.endswith(ONNX_SUFFIX):
        return artifact.with_name(name[: -len(ONNX_SUFFIX)] + FP16_SUFFIX)
    return None


def twin_manifest(artifact: Path, manifest: Manifest) -> tuple[Path, Manifest] | None:
    """The existing twin of ``artifact`` and its (verified) manifest, or None. ConfigError before any
    fitting when the FP16 file was not converted from this FP32 one: it is another model, and a
    filter fitted here says nothing about it."""
    twin = twin_of(artifact)
    if twin is None or not twin.is_file():
        return None
    other = load_manifest(twin)
    fp32, fp16 = (other, manifest) if artifact.name.endswith(FP16_SUFFIX) else (manifest, other)
    if fp16.source.get("fp32_onnx_sha256") != fp32.sha256:
        raise ConfigError(
            f"{twin}: not the other precision of {artifact.name} (source.fp32_onnx_sha256 differs); "
            "re-run 'sonomap export onnx --fp16' first, so both files get the filter"
        )
    return twin, other


def write_together(updates: list[tuple[Manifest, Path]]) -> None:
    """Save each manifest beside its artifact; when one write fails, put back the ones already
    written, so twins never end up with different filters. A Ctrl-C or SIGTERM arriving meanwhile acts
    once all are written (:func:`edge_runtime.stop_signals.signals_held`)."""
    before = {artifact: manifest_path(artifact).read_bytes() for _, artifact in updates}
    written = []
    with signals_held():
        try:
            for manifest, artifact in updates:
                save_manifest(manifest, artifact)
                written.append(artifact)
        except BaseException:  # a write failed (or a stop came in another way): none is kept
            for artifact in written:
                atomic_write_bytes(manifest_path(artifact), before[artifact])
            raise


def fit_mask_filter(artifact, data, split: str = "val", device: str = "cpu") -> dict:
    """Choose the filter on ``split`` of ``data`` and write it into ``artifact``'s manifest (and its
    twin's, :func:`twin_manifest`)."""
    # deferred: torch, which `sonomap --help` and setting up crossval folds (they import this) do not need
    from training.evaluate import served_probabilities
    from training.provenance import fitted_on

    artifact = Path(artifact)
    manifest, probs = served_probabilities(artifact, device)
    twin = twin_manifest(artifact, manifest)  # checked before the fit: a refusal costs no time
    cases = read_cases(data)
    samples = select_split(cases, split, data)
    # each pair read once, the labels checked on that read: without a cancer pixel every candidate scores
    # alike, and "no filter" would be written as if chosen; refused before the model runs
    pairs = deque(read_checked(samples, data, split, "so no mask filter can be chosen on it"))
    images = []
    while pairs:  # each image let go once its probability is taken: as much memory as before
        gray, label = pairs.popleft()
        images.append((probs(gray)[0], label))
    # the smallest lesion the training labels know of, too: more lesions than the split alone; each
    # train label is read alone (no image) and only counted
    known = (read_label(s) for s in select_split(cases, "train", data)) if split != "train" else ()
    lesions = itertools.chain(known, (label for _, label in images))
    rule, record = choose(images, manifest.threshold, lesions)
    record.update(fitted_on(data, split, cases))  # folder name + digest: the manifest goes to the cart
    chosen = rule if rule.active else None
    updates = [(manifest.derive(mask_filter=chosen, extra={**manifest.extra, FIT_RECORD: record}), artifact)]
    if twin is not None:
        path, other = twin
        # the twin's record says whose probabilities chose its filter
        fit = {**record, "fitted_with": artifact.name}
        updates.append((other.derive(mask_filter=chosen, extra={**other.extra, FIT_RECORD: fit}), path))
    write_together(updates)
    if twin is not None:
        # by file name, as the manifests name files: it lies beside --checkpoint
        print(f"also written to {manifest_path(twin[0]).name}: both precisions of the model apply one filter")
    return record
