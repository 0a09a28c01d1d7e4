"""bench-registration machinery at tiny size: metrics from counts, boundary errors, the big-slide timing case."""

from __future__ import annotations

import numpy as np

from registration.sim.bench import run_bench, time_big_slide
from registration.sim.scores import boundary_errors, confusion, dice


def test_dice_from_counts_and_empty_policy():
    label = np.array([[1, 1, 0, 255]], np.uint8)
    truth = np.array([[1, 0, 0, 1]], np.uint8)
    c = confusion(label, truth)
    assert c == {"tp": 1, "fp": 1, "fn": 0, "tn": 1}  # the unknown pixel is not counted
    assert dice(c) == 2 / 3
    assert dice({"tp": 0, "fp": 0, "fn": 0, "tn": 5}) == 1.0  # both empty


def test_boundary_error_measures_along_tract_shift():
    case = {
        "tract": {"start": [110.0, 20.0], "end": [10.0, 20.0], "width_mm": 1.0},
        "ultrasound": {"mm_per_pixel": 0.1},
    }
    truth = np.zeros((40, 120), np.uint8)
    truth[:, 50:] = 1  # boundary 4.0 mm from the tip end
    label = np.full((40, 120), 255, np.uint8)
    label[15:26, 10:111] = 0
    label[15:26, 53:111] = 1  # 3 px = 0.3 mm late
    errs = boundary_errors(label, truth, case)
    assert len(errs) == 1 and abs(errs[0] - 0.3) < 0.03


def test_run_bench_and_timing_case_tiny(busi_sample, tmp_path, capsys):
    res = run_bench(busi_sample / "images", busi_sample / "masks", n=2, seed=4, work=tmp_path, timing=False)
    out = capsys.readouterr().out
    assert res["n"] == 2 and res["dice_mean"] >= 0.95 and "Dice on cancer over known pixels" in out
    assert (tmp_path / "bench.json").is_file()
    case_dir = next(p for p in (tmp_path / "cases").iterdir() if p.is_dir())
    tm = time_big_slide(case_dir, tmp_path, shape=(500, 5000), mpp=4.0, repeats=1)
    assert tm["level0_shape"] == [500, 5000] and tm["levels"] >= 2 and tm["dice"] >= 0.95


def test_run_bench_lab_reports_floor_breakdown_and_memory(busi_sample, tmp_path, capsys):
    res = run_bench(
        busi_sample / "images", busi_sample / "masks", n=2, seed=4, work=tmp_path, timing=False, lab=True
    )
    out = capsys.readouterr().out
    assert res["lab"] and res["failed"] == [] and res["n"] == 2
    assert "boundary floor" in out and "per phenomenon" in out and "fragments" in res["breakdown"]
    assert 0.0 <= res["floor_mean_mm"] < 0.35
    assert res["memory"]["ok"] and 0 < res["memory"]["peak_rss_mb"] < 1536
