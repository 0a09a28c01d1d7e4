"""One row per registered biopsy core: the live pre-fire prediction against the registered label.

Input: a folder of captured cases (``<case>/case.yaml``, ``prefire_mask.png``, ``prefire_prob.png``;
docs/biopsy-capture.md) and the ``register-batch --out`` folder that holds each registered case's
``registration/<id>/label.png`` and ``report.json``. Output: one :class:`Core` per case
(:func:`load_core`), or an InputError saying why the case's core cannot be scored. Going over a
whole cases folder, and the reasons the report shares: cases_folder.py.

The comparison region is the core's band as registration modelled it (the notch's segment of the
tract, its core width across) where the label is known: ``label.png`` is 0 (no cancer) or 1
(cancer) there and 255 everywhere else, including stretches of the band whose position along the
tract is uncertain. The prediction is the decision the operator saw (``prefire_mask.png``, class
``capture.prediction.cancer_class``); ``prefire_prob.png`` gives the probability.

Counts first: the per-core confusion counts over those pixels (training/metrics.py), then the
fractions and scores derived from them. Cases not registered yet (pending, broken, held for review),
cases whose registration is out of date (case.yaml or an input file it names changed since),
cases without a saved prediction (a mark before the first prediction), cases whose capture values
cannot be used (a ``capture.expected_yield`` that is no mapping, a fraction that is no number in
[0, 1]) and cores whose band has no known pixel (nothing to score) are refused with the reason,
which the report lists for the skipped case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.batch_report import BATCH_REPORT, LastBatch
from edge_runtime.case_report import (
    REPORT,
    changed_reason,
    changed_since,
    read_report,
)
from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.manifest import SHA_SHOWN
from edge_runtime.prediction_pngs import MAX_CLASS, MAX_PROB_SCALE, PROB_SCALE
from edge_runtime.typed_config import shown
from edge_runtime.yamlfile import read_yaml_mapping
from training.concordance.case_ids import case_id_of
from training.data import IGNORE_INDEX
from training.metrics import Counts, confusion_counts, scores

UNKNOWN_MODEL = "unknown"
DEFAULT_CANCER_CLASS = 1  # capture.prediction.cancer_class of a case written before it was recorded
DEFAULT_PROB_SCALE = PROB_SCALE  # capture.prediction.prob_scale likewise: the capture's own scale
UNKNOWN_WHY = "held for review or removed from the dataset; which is unknown"  # no readable batch_report.json
# how batch_report.json names a case in its error: its place among register-batch's case files, which
# need not be the concordance's cases folder (another day's captures), so it is said whose place it is
BATCH_PLACE = re.compile(r"(case [0-9]+ of [0-9]+): ")


@dataclass
class Core:
    id: str
    patient_id: str
    model: str  # "<name> <sha256[:12]>": the model version that made the prediction
    counts: Counts  # pixels of the known band, cancer positive
    prob_mean: float  # mean predicted cancer probability over the known band
    quality: float | None  # registration quality score
    extra: dict = field(default_factory=dict)

    @property
    def known_px(self) -> int:
        c = self.counts
        return c.tp + c.fp + c.fn + c.tn

    @property
    def predicted_fraction(self) -> float:
        return (self.counts.tp + self.counts.fp) / self.known_px if self.known_px else float("nan")

    @property
    def observed_fraction(self) -> float:
        return self.counts.positives / self.known_px if self.known_px else float("nan")

    @property
    def pathology_positive(self) -> bool:
        """The core contains cancer by pathology: some cancer was registered into its band."""
        return self.counts.positives > 0

    def scores(self) -> dict[str, float]:
        """Dice, sensitivity (recall) and specificity along the tract (training/metrics.py policy)."""
        s = scores(self.counts)
        return {"dice": s["dice"], "sensitivity": s["recall"], "specificity": s["specificity"]}


def _read(path: Path, flags: int, where: str) -> np.ndarray:
    """The image at ``path`` decoded from its bytes: OpenCV's imread crashes on a path that is not
    valid UTF-8 and names an unreadable file past the log filters. InputError naming ``where``."""
    try:
        return read_image(path, flags)
    except UnreadableImage as exc:
        raise InputError(f"{where}: {path.name}: {exc.reason}") from exc


def _own_file(pred: dict, key: str, where: str) -> str:
    """``capture.prediction.KEY``, a file name in the case's own folder; a path (another case's prediction)
    is refused: the core would be scored against another biopsy's, perhaps another patient's."""
    name = str(pred.get(key))
    if Path(name).name != name or name in ("", ".", ".."):
        raise InputError(
            f"{where}: capture.prediction.{key} must name a file in the case's own folder, got a path"
        )
    return name


def model_version(capture: dict) -> str:
    model = capture.get("model") if isinstance(capture.get("model"), dict) else {}
    sha = str(model.get("sha256") or "")
    if not sha:
        return UNKNOWN_MODEL
    return f"{model.get('name') or 'model'} {sha[:SHA_SHOWN]}"


def _report(path: Path, case_yaml: Path, case: dict) -> dict:
    """The registered case's report.json, made from case_yaml (mapping ``case``) and the input files
    it names as they read now (their SHA-256; edge_runtime/case_report.py); InputError naming the
    file when it is damaged, or naming what changed since: a corrected patient_id, a revised
    annotation or slide would make the stored label stale, and register-batch registers such a case
    again."""
    report = read_report(path)
    changed = changed_since(report, path, case, case_yaml)
    if "case.yaml" in changed:
        raise InputError(f"{case_yaml}: changed since it was registered ({path}); run register-batch again")
    if changed:
        raise InputError(f"{case_yaml}: {changed_reason(changed)} ({path}); run register-batch again")
    return report


def _why_not_in_dataset(dataset: Path, case_id: str, last_of: Callable[[], LastBatch]) -> str:
    """Why the registered case ``case_id`` has no image in ``dataset``, by the last register-batch
    run's record that ``last_of()`` reads (edge_runtime/batch_report.py), or why that is unknown (no
    batch_report.json, or a damaged one, named)."""
    try:
        last = last_of()
    except InputError as exc:
        return f"{UNKNOWN_WHY}: {exc}"
    if not last.found:
        return f"{UNKNOWN_WHY} without its {BATCH_REPORT} (register-batch writes it at the end of a run)"
    if case_id in last.failures:  # before held: a case registered again that failed keeps its old report
        error = last.failures[case_id]
        place = BATCH_PLACE.match(error)
        if place:
            error = f"{error[place.end() :]} (the batch's {place.group(1)})"
        return f"its registration failed in the last register-batch run: {error}"
    if case_id in last.held:
        return (
            f"held for review: quality below --min-quality ({BATCH_REPORT}: low_quality; "
            f"registration/{case_id}/qa.png shows it)"
        )
    return (
        "removed from the dataset by the last register-batch run, or never registered "
        f"into it; not held for review (`sonomap cases CASES --dataset {dataset}` says why)"
    )


def load_core(case_yaml: Path, dataset: Path, last_of: Callable[[], LastBatch]) -> Core:
    """The :class:`Core` of one captured, registered case (case.yaml path, register-batch folder, and
    ``last_of``, which reads that folder's last register-batch record: called only for a core missing
    from the dataset's images, so the caller reads it once a run by caching it); InputError naming what
    is missing or why the core cannot be scored (no known pixel)."""
    where = str(case_yaml)
    case = read_yaml_mapping(case_yaml, "case file")
    case_id = case_id_of(case_yaml, case)
    reg = dataset / "registration" / case_id
    if not (reg / REPORT).is_file():
        raise InputError(f"{where}: not registered in {dataset} (no registration/{case_id}/report.json)")
    # before the report's inputs are checked: a case the last run took out has the reason in its
    # batch_report.json, not "changed since it was registered, run register-batch again"
    if not (dataset / "images" / f"{case_id}.png").is_file():
        raise InputError(
            f"{where}: not in {dataset}/images: {_why_not_in_dataset(dataset, case_id, last_of)}"
        )
    report = _report(reg / REPORT, case_yaml, case)
    capture = case.get("capture") if isinstance(case.get("capture"), dict) else {}
    pred = capture.get("prediction") if isinstance(capture.get("prediction"), dict) else None
    if not pred:
        raise InputError(f"{where}: no live prediction was saved with this capture (capture.prediction)")
    expected_yield = _expected_yield(capture, where)
    folder = case_yaml.parent
    mask = _read(folder / _own_file(pred, "mask", where), cv2.IMREAD_UNCHANGED, where)
    prob16 = _read(folder / _own_file(pred, "prob", where), cv2.IMREAD_UNCHANGED, where)
    label = _read(reg / "label.png", cv2.IMREAD_UNCHANGED, str(reg))
    if not (mask.shape == prob16.shape == label.shape):
        raise InputError(
            f"{where}: prediction {mask.shape[::-1]} and registered label {label.shape[::-1]} differ in size"
        )
    known = label != IGNORE_INDEX
    if not known.any():
        raise InputError(
            f"{where}: no known pixel in the core's band (registration/{case_id}/label.png is all "
            f"{IGNORE_INDEX}): nothing to score"
        )
    predicted = mask == _whole(pred, "cancer_class", DEFAULT_CANCER_CLASS, 0, where, most=MAX_CLASS)
    scale = _whole(pred, "prob_scale", DEFAULT_PROB_SCALE, 1, where, most=MAX_PROB_SCALE)
    if int(prob16.max(initial=0)) > scale:
        raise InputError(
            f"{where}: capture.prediction.prob holds values above prob_scale {scale} (a probability above 1)"
        )
    prob = prob16.astype(np.float64) / scale
    return Core(
        id=case_id,
        patient_id=str(report.get("patient_id") or case_id),
        model=model_version(capture),
        counts=confusion_counts(predicted, label),
        prob_mean=float(prob[known].mean()),
        quality=report["quality"].get("score") if isinstance(report.get("quality"), dict) else None,
        extra={"expected_yield": expected_yield},
    )


def _expected_yield(capture: dict, where: str) -> float | None:
    """``capture.expected_yield.fraction`` (None when either is absent): a number in [0, 1], or an
    InputError naming the key (a hand-edited note, a date YAML read from the value), so the core is
    skipped in one line instead of crashing the report or reaching concordance.json as a non-number."""
    block = capture.get("expected_yield")
    if block is None:
        return None
    if not isinstance(block, dict):
        raise InputError(
            f"{where}: capture.expected_yield must be a mapping (fraction, needle_frame, gauge, band), "
            f"got {type(block).__name__}"
        )
    fraction = block.get("fraction")
    if fraction is None:
        return None
    number = isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
    if not number or not 0 <= fraction <= 1:  # NaN fails the range too
        got = repr(fraction) if number else type(fraction).__name__
        raise InputError(f"{where}: capture.expected_yield.fraction must be a number in [0, 1], got {got}")
    return float(fraction)


def _whole(pred: dict, key: str, default: int, least: int, where: str, most: int | None = None) -> int:
    """``capture.prediction.<key>``, an integer in [``least``, ``most``] (``default`` when absent);
    InputError naming the key otherwise, so the core is skipped in one line, never scored with a NaN."""
    value = pred.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < least
        or (most is not None and value > most)
    ):
        rule = f">= {least}" if most is None else f"in [{least}, {most}]"
        raise InputError(f"{where}: capture.prediction.{key} must be an integer {rule}, got {shown(value)}")
    return value
