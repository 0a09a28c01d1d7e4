"""`sonomap crossval`: folds by case, each fold trained, calibrated and evaluated for real on the
vendored BUSI sample, and the out-of-fold images pooled from their counts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from export_fixtures import shared_checkpoint
from file_size_limit import sonomap_with_file_size_limit

from edge_runtime.cli import main as sonomap
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest, save_manifest
from training.calibration import BAND_SUMS_FILE, ece_brier, read_band_sums, sums_of
from training.crossval import (
    assign_folds,
    case_strata,
    crossvalidate,
    fold_split,
    write_fold_dataset,
    write_setup,
)
from training.crossval_layout import FOLD_DATA, FOLD_EVAL, FOLD_RUN, SETUP_FILE, fold_dir
from training.crossval_report import write_pooled_report
from training.data import read_cases
from training.metrics import Counts, pooled_scores, scores
from training.metrics_csv import ImageResult, read_metrics_csv, row_counts, write_metrics_csv
from training.temperature import TemperatureAtBound

TINY = {
    "name": "tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3},
}
FOLDS = 3


def _config(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _args(cfg: Path, data: Path, out: Path, *more: str) -> list[str]:
    return [
        "crossval",
        "--config",
        str(cfg),
        "--data",
        str(data),
        "--out",
        str(out),
        "--folds",
        str(FOLDS),
        *more,
    ]


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, busi_dataset):
    """Fold 2 alone first (as a second process would run it), then the command for all folds."""
    folder = tmp_path_factory.mktemp("cv")
    cfg, out = _config(folder), folder / "cv"
    assert sonomap(_args(cfg, busi_dataset, out, "--fold", "2", "--no-calibration")) == 0
    assert not (out / "report.md").exists()  # folds 1 and 3 are still to run
    fold2_best = (fold_dir(out, 2) / FOLD_RUN / "best.pt").stat().st_mtime_ns
    assert sonomap(_args(cfg, busi_dataset, out, "--no-calibration")) == 0
    assert (fold_dir(out, 2) / FOLD_RUN / "best.pt").stat().st_mtime_ns == fold2_best  # not retrained
    return cfg, out


def test_folds_are_stratified_by_cancer_and_seeded(busi_dataset):
    strata = case_strata(read_cases(busi_dataset))
    assert sorted(set(strata.values())) == ["cancer", "no cancer"]
    folds = assign_folds(strata, FOLDS, seed=0)
    assert set(folds) == set(strata) and set(folds.values()) == {1, 2, 3}
    for stratum in ("cancer", "no cancer"):
        sizes = [sum(1 for c, k in folds.items() if k == f and strata[c] == stratum) for f in (1, 2, 3)]
        assert max(sizes) - min(sizes) <= 1, (stratum, sizes)
    assert assign_folds(strata, FOLDS, seed=0) == folds
    assert assign_folds(strata, FOLDS, seed=1) != folds
    # fold k tests, the next fold validates, the rest train
    assert [fold_split(f, 3, 5) for f in (1, 2, 3, 4, 5)] == ["train", "train", "test", "val", "train"]
    assert [fold_split(f, 5, 5) for f in (1, 2, 3, 4, 5)] == ["val", "train", "train", "train", "test"]


def test_a_case_of_several_images_stays_in_one_split_of_every_fold(tmp_path, busi_dataset):
    data = tmp_path / "grouped"
    shutil.copytree(busi_dataset, data)
    # two images of one patient (a near-duplicate group): same case id
    text = (data / "cases.csv").read_text().replace(",malignant_018,", ",malignant_002,")
    (data / "cases.csv").write_text(text)
    samples = read_cases(data)
    folds = write_setup(tmp_path / "cv", _config(tmp_path), data, samples, FOLDS, seed=0, calibrate=False)
    assert "malignant_018" not in folds
    for k in range(1, FOLDS + 1):
        fold = write_fold_dataset(data, samples, folds, k, FOLDS, tmp_path / f"f{k}")
        split = {s.id: s.split for s in read_cases(fold)}
        assert split["malignant_002"] == split["malignant_018"]
        assert sorted(split) == sorted(s.id for s in read_cases(data))  # the same images, linked
        assert not Path(os.readlink(tmp_path / f"f{k}" / "images")).is_absolute()
        assert {s.split for s in read_cases(fold)} == {"train", "val", "test"}


def test_pooled_report_is_every_image_once_from_its_folds_counts(cv_run, busi_dataset):
    _cfg, out = cv_run
    setup = json.loads((out / SETUP_FILE).read_text())
    rows = read_metrics_csv(out / "metrics.csv")
    assert sorted(rows) == sorted(s.id for s in read_cases(busi_dataset))
    cases = {s.id: s.case_id for s in read_cases(busi_dataset)}
    counts = []
    for image_id, row in rows.items():
        k = int(row["fold"])
        assert setup["fold_of_case"][cases[image_id]] == k
        fold_rows = read_metrics_csv(fold_dir(out, k) / FOLD_EVAL / "metrics.csv")
        assert row_counts(row) == row_counts(fold_rows[image_id])  # counts copied exactly
        counts.append(row_counts(row))
        fold_cases = {s.id: s.split for s in read_cases(fold_dir(out, k) / FOLD_DATA)}
        assert fold_cases[image_id] == "test"  # scored by the model that never trained on it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dice_pooled"] == pytest.approx(pooled_scores(counts)["dice"], nan_ok=True)
    assert summary["n_images"] == len(rows) and summary["ci95_cases"] == len(set(cases.values()))
    assert [f["fold"] for f in summary["per_fold"]] == [1, 2, 3]
    assert sum(f["images"] for f in summary["per_fold"]) == len(rows)
    # the band ECE from the images' own sums equals the one from the folds' reliability tables
    per_image = np.concatenate(
        [read_band_sums(fold_dir(out, k) / FOLD_EVAL / BAND_SUMS_FILE)["calibrated"] for k in (1, 2, 3)]
    )
    tables = sum(
        sums_of(
            json.loads((fold_dir(out, k) / FOLD_EVAL / "calibration.json").read_text())["calibrated"]["pixel"]
        )
        for k in (1, 2, 3)
    )
    assert summary["served"]["ece_pixel"] == pytest.approx(ece_brier(per_image.sum(axis=0))[0], abs=1e-12)
    assert ece_brier(tables)[0] == pytest.approx(summary["served"]["ece_pixel"], abs=1e-9)
    assert summary["uncalibrated"] is None  # --no-calibration: no temperature, so no second figure
    report = (out / "report.md").read_text()
    assert "3-fold cross-validation" in report and "not calibrated" in report
    eces = [f["ece_pixel"] for f in summary["per_fold"]]
    assert f"shows {min(eces):.4f}–{max(eces):.4f} (mean {np.mean(eces):.4f})" in report
    assert (out / "reliability.png").stat().st_size > 0


def test_a_finished_cross_validation_is_pooled_again_without_training(cv_run, busi_dataset, capsys):
    cfg, out = cv_run
    before = {k: (fold_dir(out, k) / FOLD_RUN / "best.pt").stat().st_mtime_ns for k in (1, 2, 3)}
    summary = json.loads((out / "summary.json").read_text())
    assert sonomap(_args(cfg, busi_dataset, out, "--no-calibration")) == 0
    assert "out-of-fold images" in capsys.readouterr().out
    assert {k: (fold_dir(out, k) / FOLD_RUN / "best.pt").stat().st_mtime_ns for k in (1, 2, 3)} == before
    assert json.loads((out / "summary.json").read_text()) == summary


def test_other_settings_for_the_same_folder_are_refused(cv_run, busi_dataset, tmp_path):
    cfg, out = cv_run
    setup = (out / SETUP_FILE).read_text()
    with pytest.raises(ConfigError, match=r"another seed.*crossval.json"):
        crossvalidate(cfg, busi_dataset, out, folds=FOLDS, seed=1, calibrate=False)
    with pytest.raises(ConfigError, match="another calibration"):
        crossvalidate(cfg, busi_dataset, out, folds=FOLDS, seed=0, calibrate=True)
    assert (out / SETUP_FILE).read_text() == setup
    with pytest.raises(ConfigError, match="--fold 4"):
        crossvalidate(cfg, busi_dataset, tmp_path / "new", folds=FOLDS, only_fold=4)
    # 6 images without cancer: 7 folds cannot each hold one
    with pytest.raises(InputError, match=r"cases.csv.*fewer than 7"):
        crossvalidate(cfg, busi_dataset, tmp_path / "seven", folds=7)
    assert not (tmp_path / "seven").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "model": {"arch": "unet_small", "depth": 9}}))
    with pytest.raises(ConfigError, match=rf"{bad}: unknown key 'model.depth'"):
        crossvalidate(bad, busi_dataset, tmp_path / "bad", folds=FOLDS)
    assert not (tmp_path / "bad").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        crossvalidate(cfg, busi_dataset, tmp_path / "other", folds=FOLDS)


def _trained_folds(out: Path, cfg: Path, data: Path, seed: int) -> None:
    """OUT set up for calibration, each fold's run a real trained checkpoint that finished training
    (the export tests' model: unlike a 2-epoch U-Net, its logits carry enough to fit a temperature)."""
    samples = read_cases(data)
    folds = write_setup(out, cfg, data, samples, FOLDS, seed=seed, calibrate=True)
    for k in range(1, FOLDS + 1):
        write_fold_dataset(data, samples, folds, k, FOLDS, fold_dir(out, k) / FOLD_DATA)
        run = fold_dir(out, k) / FOLD_RUN
        run.mkdir()
        shutil.copy2(shared_checkpoint(), run / "best.pt")
        save_manifest(load_manifest(shared_checkpoint()), run / "best.pt")
        (run / "summary.json").write_text(json.dumps({"epochs_done": 25, "best": {"epoch": 24}}))


def test_each_fold_is_calibrated_on_its_validation_fold_as_the_shipped_model(tmp_path, busi_dataset):
    cfg, out = _config(tmp_path), tmp_path / "cv"
    # seed 2: every 10-image validation fold pins the tiny model's temperature down
    _trained_folds(out, cfg, busi_dataset, seed=2)
    assert crossvalidate(cfg, busi_dataset, out, folds=FOLDS, seed=2) == []
    for k in range(1, FOLDS + 1):
        manifest = load_manifest(fold_dir(out, k) / FOLD_RUN / "best.pt")
        assert manifest.temperature != 1.0 and manifest.calibration_curve
        assert manifest.extra["calibration"]["fitted_on"] == "data split val"
        assert manifest.extra["mask_filter_fit"]["fitted_on"] == "data split val"
    summary = write_pooled_report(out, FOLDS, seed=2)
    per_image = np.concatenate(
        [read_band_sums(fold_dir(out, k) / FOLD_EVAL / BAND_SUMS_FILE)["uncalibrated"] for k in (1, 2, 3)]
    )
    assert summary["uncalibrated"]["ece_pixel"] == pytest.approx(ece_brier(per_image.sum(axis=0))[0])
    assert [f["temperature"] for f in summary["per_fold"]] == [
        load_manifest(fold_dir(out, k) / FOLD_RUN / "best.pt").temperature for k in (1, 2, 3)
    ]
    assert "as served (its calibration and mask filter" in (out / "report.md").read_text()


def _flip_val_labels(data: Path, fold: Path) -> None:
    """Swap cancer and tissue in the labels of ``fold``'s validation images (in ``data``, a copy):
    the model is then confidently wrong there, so no temperature fits (it runs to its bound)."""
    import cv2

    for sample in read_cases(fold / FOLD_DATA):
        if sample.split == "val":
            path = data / "labels" / Path(sample.label).name
            label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(path), np.where(label < 2, 1 - label, label).astype(np.uint8))


def test_a_fold_that_cannot_be_calibrated_is_named_and_earlier_folds_are_kept(tmp_path, busi_dataset):
    cfg, out, data = _config(tmp_path), tmp_path / "cv", tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    _trained_folds(out, cfg, data, seed=0)
    _flip_val_labels(data, fold_dir(out, 2))  # fold 2 validates on fold 3's images; fold 1's stay
    failing = fold_dir(out, 2) / FOLD_RUN / "best.pt"
    with pytest.raises(TemperatureAtBound, match=rf"{failing}.*{fold_dir(out, 2) / FOLD_DATA} split val"):
        crossvalidate(cfg, data, out, folds=FOLDS, seed=0)
    assert (fold_dir(out, 1) / FOLD_EVAL / "summary.json").is_file()  # fold 1 was done and stays
    assert load_manifest(failing).temperature == load_manifest(shared_checkpoint()).temperature
    assert not (out / "summary.json").exists()


def test_a_damaged_fold_report_is_an_error_naming_the_file(cv_run, tmp_path):
    _cfg, out = cv_run
    copy = tmp_path / "cv"
    shutil.copytree(out, copy, symlinks=True)
    metrics = fold_dir(copy, 1) / FOLD_EVAL / "metrics.csv"
    lines = metrics.read_text().splitlines()
    fields = lines[1].split(",")
    fields[2] = "12.5"  # tp
    metrics.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    with pytest.raises(InputError, match=rf"{metrics}.*{fields[0]}.*whole numbers"):
        write_pooled_report(copy, FOLDS, seed=0)
    bands = fold_dir(copy, 2) / FOLD_EVAL / BAND_SUMS_FILE
    bands.write_bytes(b"not an npz")
    metrics.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"{bands}"):
        write_pooled_report(copy, FOLDS, seed=0)


def test_a_failed_write_leaves_the_earlier_metrics_file_whole(tmp_path):
    path = tmp_path / "metrics.csv"
    good = ImageResult("a", "a", Counts(1, 0, 0, 3), scores(Counts(1, 0, 0, 3)))
    write_metrics_csv(path, [good], {"fold": [1]})
    before = path.read_text()
    broken = ImageResult("b", "b", Counts(0, 1, 0, 3), {})  # no scores: the writer fails mid-file
    with pytest.raises(KeyError):
        write_metrics_csv(path, [good, broken], {"fold": [3, 2]})  # its first row differs
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]  # no temp file left


def test_a_full_disk_while_pooling_leaves_the_earlier_pooled_report_as_it_was(cv_run, busi_dataset, tmp_path):
    """The four pooled files are one set: metrics.csv (small, it fits) is not renamed in beside the
    earlier summary.json and report.md when reliability.png does not fit."""
    cfg, out = cv_run
    copy = tmp_path / "cv"
    shutil.copytree(out, copy, symlinks=True)
    earlier = {
        name: f"earlier {name}\n" for name in ("metrics.csv", "summary.json", "reliability.png", "report.md")
    }
    for name, text in earlier.items():
        (copy / name).write_text(text)
    proc = sonomap_with_file_size_limit(20 * 1024, *_args(cfg, busi_dataset, copy, "--no-calibration"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"sonomap crossval: error: {copy}/reliability.png: File too large"
    )
    assert {name: (copy / name).read_text() for name in earlier} == earlier
    assert not [p.name for p in copy.iterdir() if p.name.startswith(".")]  # no temp file left
