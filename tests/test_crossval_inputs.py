"""`sonomap crossval` on a damaged or mistaken cross-validation folder: an --out that is a file, a
crossval.json edited by hand into another shape, a fold's evaluation files damaged before the pooled
report, and a band-sums file whose header declares gigabytes. Each is one line naming the file (and
the key) with exit status 2, before any training, never a traceback or a huge allocation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_runtime.cli import main as sonomap
from edge_runtime.errors import InputError
from training.calibration import BAND_SUMS_FILE, read_band_sums, write_band_sums
from training.crossval import write_setup
from training.crossval_layout import FOLD_EVAL, FOLD_RUN, SETUP_FILE, fold_dir
from training.crossval_report import write_pooled_report
from training.data import read_cases
from training.metrics import Counts, scores
from training.metrics_csv import ImageResult, write_metrics_csv

FOLDS = 3
USER_ERROR = 2
TINY = {"name": "tiny", "model": {"arch": "unet_small", "width": 4}, "train": {"epochs": 1}}
BINS = (4, 10)  # any per-image band-sum shape: the report fails on the damaged file before using them
HUGE_ELEMENTS = 10**11  # 745 GiB of float64: what a damaged .npy header may declare


def _crossval(tmp_path: Path, data: Path, out: Path, capsys) -> tuple[int, list[str]]:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    args = ["crossval", "--config", str(cfg), "--data", str(data), "--out", str(out)]
    code = sonomap([*args, "--folds", str(FOLDS), "--no-calibration"])
    return code, capsys.readouterr().err.strip().splitlines()


def test_an_out_that_is_a_file_is_named_as_such(tmp_path, busi_dataset, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    code, err = _crossval(tmp_path, busi_dataset, out, capsys)
    assert code == USER_ERROR and len(err) == 1 and f"--out {out}: is a file" in err[0], err
    assert out.read_text() == "mine"


EDITS = {
    "not an object": lambda setup: [1, 2],
    "no folds": lambda setup: {k: v for k, v in setup.items() if k != "fold_of_case"},
    "folds a list": lambda setup: {**setup, "fold_of_case": [1]},
    "a fold not a number": lambda setup: {**setup, "fold_of_case": dict.fromkeys(setup["fold_of_case"], "x")},
    "a fold out of range": lambda setup: {**setup, "fold_of_case": dict.fromkeys(setup["fold_of_case"], 9)},
    "a case missing": lambda setup: {**setup, "fold_of_case": dict(list(setup["fold_of_case"].items())[1:])},
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_a_hand_edited_setup_is_one_line_naming_it(tmp_path, busi_dataset, capsys, edit):
    out = tmp_path / "cv"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    write_setup(out, cfg, busi_dataset, read_cases(busi_dataset), FOLDS, seed=0, calibrate=False)
    setup = out / SETUP_FILE
    setup.write_text(json.dumps(EDITS[edit](json.loads(setup.read_text()))))
    before = setup.read_text()
    code, err = _crossval(tmp_path, busi_dataset, out, capsys)
    assert code == USER_ERROR and len(err) == 1 and str(setup) in err[0], err
    assert "new --out folder" in err[0], err
    assert setup.read_text() == before and sorted(p.name for p in out.iterdir()) == [SETUP_FILE]


def _evaluated_fold(out: Path, k: int) -> Path:
    """OUT/fold<k> as evaluate and train leave it, with one image: its eval folder."""
    ev = fold_dir(out, k) / FOLD_EVAL
    ev.mkdir(parents=True)
    (fold_dir(out, k) / FOLD_RUN).mkdir()
    counts = Counts(1, 0, 0, 3)
    write_metrics_csv(ev / "metrics.csv", [ImageResult(f"img{k}", f"case{k}", counts, scores(counts))])
    write_band_sums(ev / BAND_SUMS_FILE, [f"img{k}"], np.zeros((1, *BINS)), None)
    (ev / "summary.json").write_text(json.dumps({"n_negative_with_fp": 0, "n_negative": 0}))
    (fold_dir(out, k) / FOLD_RUN / "summary.json").write_text(json.dumps({"epochs_done": 1}))
    (ev / "calibration.json").write_text(json.dumps({"calibrated": {}}))
    return ev


DAMAGES = {
    "eval summary a list": ("eval/summary.json", "[]", "not a JSON object"),
    "eval summary lacks a key": ("eval/summary.json", "{}", "missing key 'n_negative_with_fp'"),
    "run summary a list": ("run/summary.json", "[]", "not a JSON object"),
    "calibration a list": ("eval/calibration.json", "[]", "not a JSON object"),
    "calibration lacks its parts": ("eval/calibration.json", '{"calibrated": 3}', "'calibrated' lacks"),
    "band sums cut short": (f"eval/{BAND_SUMS_FILE}", "PK\x03\x04", "per-image calibration sums"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_fold_file_is_an_error_naming_it(tmp_path, damage):
    name, text, reason = DAMAGES[damage]
    _evaluated_fold(tmp_path, 1)
    path = fold_dir(tmp_path, 1) / name
    path.write_text(text)
    with pytest.raises(InputError) as err:
        write_pooled_report(tmp_path, FOLDS, seed=0)
    assert str(err.value).startswith(f"{path}: ") and reason in str(err.value)


def test_band_sums_declaring_gigabytes_are_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (HUGE_ELEMENTS,)}
    )
    path = tmp_path / BAND_SUMS_FILE
    with zipfile.ZipFile(path, "w") as archive:
        for member in ("ids.npy", "calibrated.npy"):
            archive.writestr(member, header.getvalue() + bytes(64))
    with pytest.raises(InputError, match=rf"{path}: array ids.npy declares \({HUGE_ELEMENTS},\)"):
        read_band_sums(path)


@pytest.mark.parametrize("given", ["", "cases.csv"])
def test_an_empty_dataset_or_its_cases_csv_given_for_it_is_named(busi_dataset, monkeypatch, given):
    """``--data ""`` read the working folder (a cases.csv there would be calibrated on, unsaid), and
    ``--data DATASET/cases.csv`` was told ``DATASET/cases.csv/cases.csv: dataset index not found``."""
    monkeypatch.chdir(busi_dataset)  # a working folder that is a dataset: "" must not read it
    data = given and str(busi_dataset / given)
    expected = "the dataset folder is empty" if not given else f"{data}: is a file; give the dataset folder"
    with pytest.raises(InputError, match=expected):
        read_cases(data)
