"""The AUC's patient-bootstrap interval needs at least two patients on each side: AUC compares the
cancer cores with the benign ones, so with all benign cores from one patient every resample holds
that patient's cores or none, and the interval would only repeat the point value."""

from __future__ import annotations

import math

from training.concordance.core_stats import contributing_patients, group_summary
from training.concordance.cores import Core
from training.metrics import Counts

BAND_PX = 100
THRESHOLD = 0.05


def _core(case_id: str, patient: str, cancer_px: int, predicted_px: int) -> Core:
    """A core whose band holds ``cancer_px`` cancer pixels (pathology) and ``predicted_px`` predicted
    ones, the prediction covering the cancer first."""
    tp = min(cancer_px, predicted_px)
    fp, fn = predicted_px - tp, cancer_px - tp
    counts = Counts(tp=tp, fp=fp, fn=fn, tn=BAND_PX - tp - fp - fn)
    return Core(case_id, patient, "m 000000000000", counts, prob_mean=0.5, quality=0.9)


def _cores(benign_patients: list[str]) -> list[Core]:
    cancer = [_core(f"c{i}", p, 60, 40 + i) for i, p in enumerate(("p1", "p1", "p2", "p3"))]
    benign = [_core(f"b{i}", p, 0, i) for i, p in enumerate(benign_patients)]
    return cancer + benign


def test_auc_has_no_interval_when_one_patient_has_every_benign_core():
    cores = _cores(["p9", "p9"])
    assert contributing_patients(cores)["auc"] == 1
    auc = group_summary(cores, THRESHOLD, seed=0)["core_scores"]["auc"]
    assert auc["value"] == 1.0
    assert math.isnan(auc["ci_low"]) and math.isnan(auc["ci_high"])
    assert auc["reason"] == (
        "cores with cancer come from 3 patient(s), cores without from 1; a patient bootstrap needs at least 2 on each side"
    )


def test_auc_has_an_interval_with_two_patients_on_each_side():
    cores = _cores(["p8", "p9"])
    assert contributing_patients(cores) == {"sensitivity": 3, "specificity": 2, "auc": 2}
    auc = group_summary(cores, THRESHOLD, seed=0)["core_scores"]["auc"]
    assert auc["reason"] == "" and auc["ci_low"] <= auc["value"] <= auc["ci_high"]
