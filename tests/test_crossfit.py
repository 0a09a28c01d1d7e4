"""Cross-fitted calibration error on the validation split (real BUSI sample, a tiny trained model)."""

from __future__ import annotations

import json
import shutil

import pytest
from export_fixtures import shared_checkpoint

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, save_manifest
from training.crossfit import crossfit_ece, main
from training.data import read_cases, select_split
from training.temperature import calibrate_checkpoint


@pytest.fixture
def curved(tmp_path, busi_dataset):
    ck = tmp_path / "tiny.pt"
    shutil.copy2(shared_checkpoint(), ck)
    save_manifest(load_manifest(shared_checkpoint()), ck)
    return ck


def test_crossfit_scores_held_out_cases_and_matches_evaluate_in_sample(
    curved, busi_dataset, tmp_path, capsys
):
    from edge_runtime.cli import main as sonomap

    with pytest.raises(ConfigError, match="no calibration curve"):
        crossfit_ece(curved, busi_dataset, repeats=1)
    calibrate_checkpoint(curved, busi_dataset, split="val", method="curve")
    result = crossfit_ece(curved, busi_dataset, repeats=3, seed=1)
    val_cases = {s.case_id for s in select_split(read_cases(busi_dataset), "val", busi_dataset)}
    assert result["cases"] == len(val_cases) and result["repeats"] == 3
    assert 0.0 <= result["min"] <= result["cross_fitted"] <= result["max"] <= 1.0
    # held-out pixels are scored by a curve that never saw them: worse than the curve's own fit
    assert result["cross_fitted"] > result["in_sample"]
    # in-sample is the band ECE `sonomap evaluate` reports for the same model and split
    args = ["--checkpoint", str(curved), "--data", str(busi_dataset), "--split", "val"]
    assert sonomap(["evaluate", *args, "--out", str(tmp_path / "ev")]) == 0
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert result["in_sample"] == pytest.approx(summary["ece_pixel"], abs=1e-4)
    assert crossfit_ece(curved, busi_dataset, repeats=3, seed=1) == result  # seeded
    assert main([str(curved), str(busi_dataset), "--repeats", "2"]) == 0
    assert "cross-fitted" in capsys.readouterr().out
