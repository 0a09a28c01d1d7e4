"""bench-registration: the accuracy and speed targets, measured on simulated cases in one run.

Input: real images + lesion masks (BUSI layout), N, seed. It simulates N cases, registers each
with its explicit tract, and scores against truth.png. Counts first (per case tp/fp/fn over
pixels known in both label and truth), then reductions:
- Dice on cancer, per case (both empty = 1.0) and pooled over all cases;
- along-tract boundary error: truth boundaries on the tract centre line (known side on both
  sides), distance to the nearest label boundary (capped at MISS_MM when none is near);
- known fraction of the tract band;
- needle auto-detection on the post-fire image: pass = angle <= 2 deg and tip <= 1 mm;
- Dice again with the tract taken from the auto-detected needle (end to end);
- seconds per case for a WSI whose level 0 is 40000 x 3000 px (median of repeats).
Prints one line per metric with its target (:mod:`registration.sim.bench_report`) and writes
WORK/bench.json. The scores themselves are :mod:`registration.sim.scores`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge_runtime.errors import InputError, SonomapError
from edge_runtime.image_files import read_image
from edge_runtime.units import UM_PER_MM
from registration.needle import detect_needle
from registration.pipeline import register_case
from registration.sim import bench_lab
from registration.sim.bench_report import print_report
from registration.sim.biopsy_core import CoreParams, build_layout
from registration.sim.lab import LabParams
from registration.sim.scores import boundary_errors, confusion, dice
from registration.sim.simulate import SimParams, simulate_cases
from registration.sim.slide import write_geojson, write_pyramid
from registration.tract import Tract

ANGLE_TOL_DEG, TIP_TOL_MM = 2.0, 1.0
TIMING_SHAPE = (3000, 40000)
TIMING_MPP = 0.5
TIMING_REPEATS = 3
TIMING_FILL = 0.9  # share of the canvas length the core (with its gaps) may take


def _score_case(case_dir: Path, out: Path, case_file: Path | None = None) -> dict:
    rep = register_case(case_file or case_dir / "case.yaml", out)
    label = read_image(out / "label.png", cv2.IMREAD_GRAYSCALE)
    truth = read_image(case_dir / "truth.png", cv2.IMREAD_GRAYSCALE)
    c = confusion(label, truth)
    return {
        "counts": c,
        "dice": dice(c),
        "known": rep["label"]["known_fraction"],
        "seconds": rep["seconds"],
        "quality": rep["quality"]["score"],
        "warnings": rep["warnings"],
    }


def _needle(case_dir: Path) -> dict:
    t = json.loads((case_dir / "truth.json").read_text())
    gray = read_image(case_dir / "us.png", cv2.IMREAD_GRAYSCALE)
    mm = t["mm_per_pixel"]
    try:
        det = detect_needle(gray, (mm, mm), str(case_dir))
    except InputError as exc:
        return {"ok": False, "error": str(exc), "tip_mm": None, "angle_deg": None}
    tip_mm = float(np.hypot(*(np.array(det.tip) - t["tip"]))) * mm
    ang = abs(det.angle_deg - t["angle_deg"])
    return {"ok": bool(tip_mm <= TIP_TOL_MM and ang <= ANGLE_TOL_DEG), "tip_mm": tip_mm, "angle_deg": ang}


def _auto_case_file(case_dir: Path) -> Path:
    """The same case with the tract replaced by the auto-detected needle + the device geometry."""
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    t = json.loads((case_dir / "truth.json").read_text())
    case.pop("tract")
    case["needle"] = {
        "tip": "auto",
        "gauge": t["gauge"],
        "notch_mm": t["notch_mm"],
        "tip_offset_mm": t["tip_offset_mm"],
        "width_mm": t["width_mm"],
    }
    path = case_dir / "case_auto.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def time_big_slide(
    case_dir: Path,
    work: Path,
    shape: tuple = TIMING_SHAPE,
    mpp: float = TIMING_MPP,
    repeats: int = TIMING_REPEATS,
) -> dict:
    """Re-render one case's core on a big level 0 (default 40000 x 3000 at 0.5 µm/px) and time its
    registration (median of ``repeats``)."""
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    t, mm = case["tract"], case["ultrasound"]["mm_per_pixel"]
    tract = Tract(tuple(t["start"]), tuple(t["end"]), t["width_mm"], (mm, mm))
    src = json.loads((case_dir / "truth.json").read_text())
    lesion = read_image(case_dir / "truth.png", cv2.IMREAD_GRAYSCALE) == 1
    canvas_mm = shape[1] * mpp / UM_PER_MM
    shrink = min(0.8, TIMING_FILL * canvas_mm / tract.length_mm)  # the shrunken core must fit the canvas
    params = replace(
        CoreParams(),
        mpp=mpp,
        canvas=shape,
        shrinkage=(shrink, shrink),
        fragments=(1, 2),
        fragment_p=(0.5, 0.5),
        slide_gap_um=(300.0, 600.0),
        bend_deg=(0.3, 0.6),
        wiggle_deg=(0.0, 0.0),
        rotation_deg=0.1,
    )
    layout, core_truth = build_layout(lesion, tract, np.random.default_rng(0), params)
    big = work / "timing_case"
    big.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shapes = write_pyramid(layout, big / "core.ome.tif", seed=0)
    render_s = time.perf_counter() - t0
    write_geojson(layout, big / "core.geojson")
    for name in ("us.png", "us_prefire.png", "truth.png"):
        if (case_dir / name).is_file():
            shutil.copy(case_dir / name, big / name)
    case["pathology"].update(tip_end=core_truth["tip_end"], shrinkage=round(shrink, 4))
    (big / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = _score_case(big, big / "out")
        secs.append(time.perf_counter() - t0)
    return {
        "level0_shape": list(shapes[0]),
        "levels": len(shapes),
        "render_seconds": round(render_s, 1),
        "seconds": secs,
        "median_seconds": float(np.median(secs)),
        "dice": res["dice"],
        "source_case": src["case_id"],
    }


def _lab_row(d: Path, c: dict) -> dict:
    """Score one lab case; a failure to open or register is a row with its error, not a crash."""
    truth = json.loads((d / "truth.json").read_text())
    try:
        r = _score_case(d, d / "out")
    except SonomapError as exc:
        return {"case_id": c["case_id"], "error": str(exc), "groups": bench_lab.groups(truth)}
    pos: list = []
    lesion = read_image(d / "truth.png", cv2.IMREAD_GRAYSCALE) == 1
    r["boundary_mm"] = boundary_errors(
        read_image(d / "out" / "label.png", cv2.IMREAD_GRAYSCALE),
        lesion,
        yaml.safe_load((d / "case.yaml").read_text()),
        pos,
    )
    floors = [bench_lab.linear_floor_mm(truth, a) for a in pos]
    r["floor_mm"] = [f for f in floors if f is not None]
    r["groups"] = {**bench_lab.groups(truth), "quality": bench_lab.quality_group(r["quality"])}
    r["case_id"] = c["case_id"]
    return r


def run_bench(
    images, masks, n: int = 50, seed: int = 1, work=None, timing: bool = True, lab: bool = False
) -> dict:
    tmp = None
    if work is None:
        tmp = tempfile.mkdtemp(prefix="sonomap-bench-reg-")
        work = tmp
    work = Path(work)
    try:
        t0 = time.perf_counter()
        params = None
        if lab:
            params = SimParams(core=CoreParams(lab=LabParams()))
        sim = simulate_cases(images, masks, work / "cases", n, seed, params)
        sim_s = time.perf_counter() - t0
        rows = []
        for c in sim["cases"]:
            d = work / "cases" / c["case_id"]
            if lab:
                rows.append(_lab_row(d, c))
                continue
            lesion = read_image(d / "truth.png", cv2.IMREAD_GRAYSCALE) == 1
            r = _score_case(d, d / "out")
            r["boundary_mm"] = boundary_errors(
                read_image(d / "out" / "label.png", cv2.IMREAD_GRAYSCALE),
                lesion,
                yaml.safe_load((d / "case.yaml").read_text()),
            )
            r["needle"] = _needle(d)
            r["auto"] = _score_case(d, d / "out_auto", _auto_case_file(d)) if r["needle"]["ok"] else None
            r["case_id"] = c["case_id"]
            rows.append(r)
        res = _summarise_lab(rows, sim_s, work) if lab else _summarise(rows, sim_s)
        if timing and rows:
            res["timing"] = time_big_slide(work / "cases" / rows[0]["case_id"], work)
        print_report(res, images, seed)
        (work / "bench.json").write_text(json.dumps({"summary": res, "cases": rows}, indent=1, default=float))
        return res
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _summarise_lab(rows: list, sim_s: float, work: Path) -> dict:
    ok = [r for r in rows if "error" not in r]
    res = _summarise(
        [dict(r, needle={"ok": False, "tip_mm": None, "angle_deg": None}, auto=None) for r in ok], sim_s
    )
    res.update(
        lab=True,
        failed=[{"case_id": r["case_id"], "error": r["error"]} for r in rows if "error" in r],
        floor_mean_mm=float(np.mean([f for r in ok for f in r["floor_mm"]] or [0.0])),
        breakdown=bench_lab.breakdown(ok),
    )
    if ok:
        d = work / "cases" / ok[0]["case_id"]
        res["memory"] = bench_lab.peak_rss_register(d / "case.yaml", d / "out_rss")
    return res


def _summarise(rows: list, sim_s: float) -> dict:
    dices = [r["dice"] for r in rows]
    pooled = {k: sum(r["counts"][k] for r in rows) for k in ("tp", "fp", "fn", "tn")}
    bnd = [e for r in rows for e in r["boundary_mm"]]
    nd = [r["needle"] for r in rows]
    det = [x for x in nd if x["tip_mm"] is not None]
    auto = [r["auto"]["dice"] for r in rows if r["auto"]]
    return {
        "n": len(rows),
        "simulate_seconds": round(sim_s, 1),
        "dice_mean": float(np.mean(dices)),
        "dice_min": float(np.min(dices)),
        "dice_pooled": dice(pooled),
        "boundary_mean_mm": float(np.mean(bnd)) if bnd else 0.0,
        "boundary_p95_mm": float(np.quantile(bnd, 0.95)) if bnd else 0.0,
        "boundaries": len(bnd),
        "known_mean": float(np.mean([r["known"] for r in rows])),
        "known_min": float(np.min([r["known"] for r in rows])),
        "needle_pass": float(np.mean([x["ok"] for x in nd])),
        "needle_tip_median_mm": float(np.median([x["tip_mm"] for x in det])) if det else None,
        "needle_angle_median_deg": float(np.median([x["angle_deg"] for x in det])) if det else None,
        "auto_dice_mean": float(np.mean(auto)) if auto else None,
        "register_seconds_mean": float(np.mean([r["seconds"] for r in rows])),
        "cases_with_warnings": sum(1 for r in rows if r["warnings"]),
    }
