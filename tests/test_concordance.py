"""`sonomap concordance` on hand-made captured + registered cores whose counts are known by
construction: counts first (per core, then per core call), scores second, grouped per model version,
with pending cases skipped and the report folder's files written."""

from __future__ import annotations

import csv
import json
import math

import cv2
import numpy as np
import pytest
import yaml
from captured_cases import SHAPE, write_captured_case
from cli import sonomap

from edge_runtime.manifest import sha256_file
from training.concordance.core_stats import auc, group_summary
from training.concordance.cores import Core
from training.metrics import Counts

BAND_ROWS, BAND_COLS = slice(50, 70), slice(20, 180)  # the registered band's known pixels
BAND_PX = 20 * 160
SHA_A, SHA_B = "a" * 64, "b" * 64


def _mask(cols: slice) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[:, cols] = True
    return m


def _register(ds, case_id: str, patient: str, cancer_cols: slice | None, held: bool = False) -> None:
    """What register-batch leaves for one case: label.png (255 outside the band) and report.json."""
    reg = ds / "registration" / case_id
    reg.mkdir(parents=True)
    label = np.full(SHAPE, 255, np.uint8)
    label[BAND_ROWS, BAND_COLS] = 0
    if cancer_cols is not None:
        label[BAND_ROWS, cancer_cols] = 1
    cv2.imwrite(str(reg / "label.png"), label)
    case_file = {"sha256": sha256_file(ds.parent / "cases" / case_id / "case.yaml")}
    (reg / "report.json").write_text(
        json.dumps(
            {"case_id": case_id, "patient_id": patient, "case_file": case_file, "quality": {"score": 0.9}}
        )
    )
    (ds / "images").mkdir(exist_ok=True)
    if not held:  # a case held for review (register-batch --min-quality) has no dataset image
        (ds / "images" / f"{case_id}.png").write_bytes(b"")


def _held_by_the_last_batch(ds, case_id: str) -> None:
    """The batch_report.json of a register-batch --min-quality run that held ``case_id`` for review."""
    held = {"id": case_id, "case": "case 1 of 1", "quality": 0.4, "qa": f"registration/{case_id}/qa.png"}
    (ds / "batch_report.json").write_text(json.dumps({"failures": [], "low_quality": [held]}))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("conc")
    cases, ds = root / "cases", root / "ds"
    # A: cancer cols 100-180, predicted 120-200 -> tp 20x60, fn 20x20, tn 20x80 (fp only outside the band)
    write_captured_case(cases / "A1", _mask(slice(120, 200)), SHA_A)
    _register(ds, "A1", "p1", slice(100, 180))
    write_captured_case(cases / "B1", _mask(slice(0, 0)), SHA_A)  # no cancer, none predicted
    _register(ds, "B1", "p2", None)
    write_captured_case(cases / "C1", _mask(slice(20, 40)), SHA_B)  # no cancer, 20x20 false positive
    _register(ds, "C1", "p3", None)
    write_captured_case(cases / "D1", _mask(slice(0, 50)), SHA_A)  # pending: never registered
    write_captured_case(cases / "E1", _mask(slice(0, 50)), SHA_A)
    _register(ds, "E1", "p4", None, held=True)
    _held_by_the_last_batch(ds, "E1")
    out = root / "report"
    printed = sonomap("concordance", cases, "--dataset", ds, "--out", out).stdout
    return out, json.loads((out / "concordance.json").read_text()), printed


def test_per_core_counts_and_fractions(report):
    out, _, _ = report
    rows = {r["id"]: r for r in csv.DictReader(open(out / "cores.csv"))}
    assert set(rows) == {"A1", "B1", "C1"}
    a, b, c = rows["A1"], rows["B1"], rows["C1"]
    assert (int(a["tp"]), int(a["fp"]), int(a["fn"]), int(a["tn"])) == (1200, 0, 400, 1600)
    assert float(a["dice"]) == pytest.approx(2400 / 2800)
    assert float(a["sensitivity"]) == pytest.approx(0.75) and float(a["specificity"]) == 1.0
    assert float(a["predicted_fraction"]) == pytest.approx(1200 / BAND_PX)
    assert float(a["observed_fraction"]) == pytest.approx(1600 / BAND_PX)
    assert float(a["prob_mean"]) == pytest.approx((1200 * 52000 + 2000 * 6000) / BAND_PX / 65535)
    assert a["pathology_cancer"] == "True" and a["called_cancer"] == "True"
    assert int(b["tn"]) == BAND_PX and float(b["dice"]) == 1.0 and b["sensitivity"] == "nan"  # empty policy
    assert int(c["fp"]) == 400 and c["called_cancer"] == "True" and c["pathology_cancer"] == "False"


def test_core_level_scores_over_all_and_per_model(report):
    out, s, printed = report
    everything = s["all"]
    assert everything["core_counts"] == {"tp": 1, "fp": 1, "fn": 0, "tn": 1}
    assert everything["core_scores"]["sensitivity"]["value"] == 1.0
    assert everything["core_scores"]["specificity"]["value"] == 0.5
    assert everything["core_scores"]["auc"]["value"] == 1.0  # A's fraction is above both negatives
    ci = everything["core_scores"]["specificity"]
    assert 0.0 <= ci["ci_low"] <= ci["value"] <= ci["ci_high"] <= 1.0
    ba = everything["fraction_agreement"]
    assert ba["bias"] == pytest.approx(0.0, abs=1e-12) and ba["loa_low"] < 0 < ba["loa_high"]
    models = s["models"]
    assert set(models) == {"test-model aaaaaaaaaaaa", "test-model bbbbbbbbbbbb"}
    only_c = models["test-model bbbbbbbbbbbb"]
    assert only_c["core_counts"] == {"tp": 0, "fp": 1, "fn": 0, "tn": 0}
    # undefined: NaN in memory, null in concordance.json (strict JSON)
    assert only_c["core_scores"]["sensitivity"]["value"] is None
    assert only_c["core_scores"]["auc"]["value"] is None
    assert [x["case"] for x in s["skipped"]] == ["D1", "E1"] and "not registered" in s["skipped"][0]["reason"]
    assert "held for review: quality below --min-quality" in s["skipped"][1]["reason"]
    assert "not scored: 2 case(s): D1: " in printed
    assert f"; E1: {s['skipped'][1]['reason']} (report.md lists each)" in printed
    md = (out / "report.md").read_text()
    assert "| called cancer | 1 (tp) | 0 (fp) |" in md and "## model test-model bbbbbbbbbbbb" in md
    for png in ("scatter.png", "bland_altman.png"):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape[0] > 200


def test_a_damaged_or_stale_report_skips_its_core_naming_the_file(tmp_path):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    for name in ("A1", "F1", "G1"):
        write_captured_case(cases / name, _mask(slice(120, 200)), SHA_A)
        _register(ds, name, f"p_{name}", slice(100, 180))
    (ds / "registration" / "F1" / "report.json").write_text('{"patient_id": ')
    g = cases / "G1" / "case.yaml"
    g.write_text(g.read_text() + "patient_id: corrected\n")  # the report's patient is now stale
    r = sonomap("concordance", cases, "--dataset", ds, "--out", tmp_path / "report")
    assert "Traceback" not in r.stderr
    skipped = {
        x["case"]: x["reason"]
        for x in json.loads((tmp_path / "report" / "concordance.json").read_text())["skipped"]
    }
    assert set(skipped) == {"F1", "G1"}
    assert "F1/report.json: damaged report.json" in skipped["F1"]
    assert skipped["G1"].startswith("case.yaml: changed since it was registered")  # the skip names the case


def test_auc_counts_ties_half():
    truth = np.array([True, True, False, False])
    assert auc(np.array([0.5, 0.9, 0.5, 0.1]), truth) == pytest.approx(0.875)
    assert math.isnan(auc(np.array([0.5, 0.9]), np.array([True, True])))


def test_a_core_without_a_known_pixel_is_skipped_with_the_reason(tmp_path):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    for name in ("A1", "U1"):
        write_captured_case(cases / name, _mask(slice(120, 200)), SHA_A)
        _register(ds, name, f"p_{name}", slice(100, 180))
    cv2.imwrite(str(ds / "registration" / "U1" / "label.png"), np.full(SHAPE, 255, np.uint8))
    r = sonomap("concordance", cases, "--dataset", ds, "--out", tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "concordance.json").read_text())
    assert [x["case"] for x in summary["skipped"]] == ["U1"]
    assert "no known pixel" in summary["skipped"][0]["reason"] and "Traceback" not in r.stderr


def _core(i: int, patient: str, counts: Counts) -> Core:
    return Core(str(i), patient, "m", counts, 0.5, None)


def test_group_summary_leaves_out_unknown_cores_and_one_patient_gets_no_ci():
    cores = [
        _core(1, "A1", Counts(30, 0, 10, 60)),
        _core(2, "B1", Counts(0, 0, 0, 100)),
        _core(3, "C1", Counts(0, 20, 0, 80)),
    ]
    with_unknown = group_summary([*cores, _core(4, "D1", Counts(0, 0, 0, 0))], 0.05, 0)
    without = group_summary(cores, 0.05, 0)
    assert with_unknown["n_cores_no_known_pixel"] == 1 and with_unknown["n_cores"] == 3
    assert with_unknown["core_counts"] == without["core_counts"] == {"tp": 1, "fp": 1, "fn": 0, "tn": 1}
    assert with_unknown["pixel"]["dice_mean"] == pytest.approx(without["pixel"]["dice_mean"])
    # sensitivity rests on patient A alone: no CI, with the reason; specificity has two patients
    sens = without["core_scores"]["sensitivity"]
    assert math.isnan(sens["ci_low"]) and math.isnan(sens["ci_high"])
    assert (
        sens["reason"]
        == "cores with cancer come from 1 patient(s); a patient bootstrap needs at least 2 to vary"
    )
    assert without["core_scores"]["specificity"]["reason"] == ""
    one_patient = group_summary([_core(i, "A1", c.counts) for i, c in enumerate(cores)], 0.05, 0)
    assert math.isnan(one_patient["fraction_agreement"]["bias_ci_low"])


def test_patients_come_from_the_datasets_cases_csv(tmp_path):
    """register-batch writes in cases.csv the patient each core belongs to after joining cores that
    share a patient or study id; the bootstrap resamples those patients, not each report's own id."""
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    for name, patient in (("A1", "p1"), ("B1", "BX-0042"), ("C1", "p3")):
        write_captured_case(cases / name, _mask(slice(0, 0)), SHA_A)
        _register(ds, name, patient, None)
    out = tmp_path / "report"
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    assert json.loads((out / "concordance.json").read_text())["all"]["n_patients"] == 3
    (ds / "cases.csv").write_text("id,case_id,split\nA1,p1,train\nB1,p1,train\nC1,p3,val\n")
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    assert json.loads((out / "concordance.json").read_text())["all"]["n_patients"] == 2


def test_auc_equals_the_mann_whitney_u_over_the_pairs():
    """The counted AUC is scipy's Mann-Whitney U / (n1 n2), ties included, on scores with repeats."""
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(7)
    for n in (2, 5, 40):
        score = rng.integers(0, 6, size=n).astype(float) / 5  # few levels: many ties
        truth = np.arange(n) % 2 == 0
        u = mannwhitneyu(score[truth], score[~truth], alternative="two-sided").statistic
        assert auc(score, truth) == pytest.approx(u / (truth.sum() * (~truth).sum()), abs=1e-12)


def test_the_reasons_for_skipped_cores_name_no_folder_above_the_cases(tmp_path):
    """report.md and concordance.json are made to be shared: a folder named after the patient above
    the cases and the dataset must not reach them through a skipped core's reason."""
    root = tmp_path / "Doe_Jane_1970-01-01"
    cases, ds = root / "cases", root / "ds"
    write_captured_case(cases / "A1", _mask(slice(120, 200)), SHA_A)
    _register(ds, "A1", "p1", slice(100, 180))
    write_captured_case(cases / "D1", _mask(slice(0, 50)), SHA_A)  # pending: never registered
    write_captured_case(cases / "E1", _mask(slice(0, 50)), SHA_A)
    _register(ds, "E1", "p4", None, held=True)
    _held_by_the_last_batch(ds, "E1")
    sonomap("concordance", cases, "--dataset", ds, "--out", tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "concordance.json").read_text())
    assert [x["case"] for x in summary["skipped"]] == ["D1", "E1"]
    assert summary["skipped"][0]["reason"].startswith("case.yaml: not registered in ds")
    for name in ("report.md", "concordance.json", "cores.csv"):
        assert "Doe_Jane" not in (tmp_path / "report" / name).read_text(), name


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("cancer_class", None, "capture.prediction.cancer_class must be an integer"),
        ("cancer_class", "1", "capture.prediction.cancer_class must be an integer"),
        ("prob_scale", "abc", "capture.prediction.prob_scale must be an integer"),
        ("prob_scale", 0, "capture.prediction.prob_scale must be an integer in [1, 65535], got 0"),
        ("prob_scale", 70000, "capture.prediction.prob_scale must be an integer in [1, 65535], got 70000"),
        (
            "prob_scale",
            255,
            "capture.prediction.prob holds values above prob_scale 255",
        ),  # the PNG holds 52000
    ],
)
def test_a_bad_prediction_value_skips_its_core_naming_the_key(tmp_path, key, value, reason):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    for name in ("A1", "B1"):
        write_captured_case(cases / name, _mask(slice(120, 200)), SHA_A)
    case_yaml = cases / "B1" / "case.yaml"
    case = yaml.safe_load(case_yaml.read_text())
    case["capture"]["prediction"][key] = value
    case_yaml.write_text(yaml.safe_dump(case))
    for name in ("A1", "B1"):
        _register(ds, name, f"p_{name}", slice(100, 180))
    r = sonomap("concordance", cases, "--dataset", ds, "--out", tmp_path / "report")
    assert "Traceback" not in r.stderr
    summary = json.loads((tmp_path / "report" / "concordance.json").read_text())
    assert [x["case"] for x in summary["skipped"]] == ["B1"]
    assert reason in summary["skipped"][0]["reason"], summary["skipped"]
