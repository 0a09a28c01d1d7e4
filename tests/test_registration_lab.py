"""Slides as labs make them: each simulated phenomenon alone, registered and scored against truth."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import cv2
import numpy as np
import pytest
import yaml

from registration.fragments import find_fragments
from registration.pipeline import register_case
from registration.sim.bench import boundary_errors, confusion, dice
from registration.sim.bench_lab import linear_floor_mm
from registration.sim.biopsy_core import CoreParams
from registration.sim.lab import INK_COLOURS, LabParams
from registration.sim.simulate import SimParams, simulate_cases
from registration.tissue import tissue_masks

# every phenomenon off: a clean core with a fixed shrinkage, so each test turns on one thing
OFF = LabParams(
    shrink_amplitude=(0.0, 0.0),
    end_loss_mm=(0.0, 0.0),
    fray_p=0.0,
    width_var=0.0,
    ragged_um=(0.0, 0.0),
    bend_deg=(10.0, 20.0),
    wiggle_deg=(0.0, 0.0),
    fragments=(1,),
    fragment_p=(1.0,),
    fat_lobules=(0,),
    fat_p=(1.0,),
    ink_p=0.0,
    dust=(0, 0),
    bubbles=(0, 0),
    serial_p=0.0,
    simplify_um=(1.0, 1.0),
    outline_offset_um=(0.0, 0.0),
    normal_regions_p=0.0,
    fresh_length_p=0.0,
)
MPP = 8.0


def _case(busi_sample, tmp_path, lab: LabParams, seed: int = 3):
    out = tmp_path / "cases"
    sim = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        out,
        1,
        seed,
        SimParams(core=CoreParams(mpp=MPP, lab=lab)),
    )
    d = out / sim["cases"][0]["case_id"]
    rep = register_case(d / "case.yaml", d / "out")
    label = cv2.imread(str(d / "out" / "label.png"), cv2.IMREAD_GRAYSCALE)
    truth = cv2.imread(str(d / "truth.png"), cv2.IMREAD_GRAYSCALE)
    pos: list = []
    errs = boundary_errors(label, truth == 1, yaml.safe_load((d / "case.yaml").read_text()), pos)
    t = json.loads((d / "truth.json").read_text())
    return {
        "dir": d,
        "report": rep,
        "dice": dice(confusion(label, truth)),
        "errors": errs,
        "positions": pos,
        "truth": t,
        "label": label,
    }


def test_pen_marks_of_every_colour_dust_and_bubbles_are_not_tissue():
    glass = np.array([243, 242, 246], np.uint8)
    img = np.empty((60, 60 * 9, 3), np.uint8)
    img[:] = glass
    stained = {
        "pink stroma": (228, 162, 200),
        "purple tumour": (176, 108, 182),
        "haematoxylin": (90, 90, 170),
    }
    marks = {**{f"{k} ink": v for k, v in INK_COLOURS.items()}, "dust": (100, 100, 100)}
    for i, colour in enumerate(list(stained.values()) + list(marks.values())):
        img[10:50, 60 * i + 10 : 60 * i + 50] = colour
    cv2.circle(img, (60 * 8 + 30, 30), 20, (110, 110, 110), 2)  # an air-bubble outline
    m = tissue_masks(img, MPP)
    for i, name in enumerate(list(stained) + list(marks) + ["bubble outline"]):
        share = m.tissue[10:50, 60 * i + 10 : 60 * i + 50].mean()
        if name in stained:
            assert share > 0.9, name
        else:
            assert share < 0.05, name
    assert m.rejected[10:50, 60 * 3 + 10 : 60 * 3 + 50].mean() > 0.9  # green ink is reported as rejected


def test_ink_on_and_beside_the_core_without_roi(busi_sample, tmp_path):
    r = _case(busi_sample, tmp_path, replace(OFF, ink_p=1.0, ink_strokes=(3, 3), ink_on_tissue_p=1.0))
    assert r["truth"]["ink_on_tissue"]
    assert r["dice"] >= 0.95
    assert len(r["report"]["transform"]["fragments"]) == 1
    assert r["report"]["quality"]["parts"]["rejected_mm2"]["value"] > 0
    qa = cv2.imread(str(r["dir"] / "out" / "qa.png")).astype(int)  # BGR
    bottom = qa[-7 * 20 :]  # the quality panel's lines
    assert ((bottom[..., 1] > 120) & (bottom[..., 0] < 80) & (bottom[..., 2] < 80)).sum() > 50  # green text


def test_fat_lobule_keeps_the_fragment_whole(busi_sample, tmp_path):
    r = _case(busi_sample, tmp_path, replace(OFF, fat_lobules=(2,), fat_p=(1.0,), fat_mm=(0.6, 1.0)))
    assert r["truth"]["fat_lobules"] >= 1
    assert len(r["report"]["transform"]["fragments"]) == 1
    assert r["dice"] >= 0.95


def test_serial_sections_without_roi_use_one_and_say_which(busi_sample, tmp_path):
    r = _case(busi_sample, tmp_path, replace(OFF, serial_p=1.0, roi_p=0.0))
    sec = r["report"]["sections"]
    assert sec is not None and sec["count"] == r["truth"]["serial_copies"] >= 2
    assert any("serial sections" in w for w in r["report"]["warnings"])
    assert len(r["report"]["transform"]["fragments"]) == 1 and r["dice"] >= 0.95


def test_serial_sections_with_roi_use_that_one(busi_sample, tmp_path):
    r = _case(busi_sample, tmp_path, replace(OFF, serial_p=1.0, roi_p=1.0, ink_p=1.0, ink_on_tissue_p=1.0))
    assert r["truth"]["roi"] is not None and r["report"]["sections"] is None
    assert len(r["report"]["transform"]["fragments"]) == 1 and r["dice"] >= 0.95


def test_end_loss_marks_ambiguous_span_with_reason(busi_sample, tmp_path):
    r = _case(busi_sample, tmp_path, replace(OFF, end_loss_mm=(0.9, 1.0), fresh_length_p=1.0), seed=5)
    case = yaml.safe_load((r["dir"] / "case.yaml").read_text())
    assert "fresh_length_mm" in case["pathology"]
    amb = r["report"]["ambiguous"]
    # ~1.9 mm lost at the two ends, split unknown: the position is uncertain by ~0.55 mm (1 sd)
    assert amb["fragment_position_sd_mm"][0] > 0.4
    assert r["report"]["transform"]["fragments"][0]["tract_from_mm"] == pytest.approx(
        r["report"]["transform"]["spare_mm"] / 2, abs=0.01
    )
    if r["report"]["label"]["cancer_fraction"] not in (0.0, 1.0):
        assert amb["span_mm"] > 0 and "ends or breaks" in amb["reason"]
    assert r["dice"] >= 0.95


def test_non_uniform_shrinkage_stays_near_the_linear_floor(busi_sample, tmp_path):
    r = _case(
        busi_sample, tmp_path, replace(OFF, shrink_amplitude=(0.1, 0.1), shrink_corr_mm=(2.0, 2.0)), seed=7
    )
    assert r["truth"]["stretch_amplitude"] == pytest.approx(0.1)
    floors = [f for f in (linear_floor_mm(r["truth"], a) for a in r["positions"]) if f is not None]
    assert r["dice"] >= 0.95
    if r["errors"]:
        assert np.mean(r["errors"]) <= np.mean(floors) + 0.35


def test_stubby_fragments_follow_the_core_direction():
    mpp = 8.0
    rgb = np.full((200, 400, 3), 243, np.uint8)
    # a long piece along x and a square stub after it: the stub's axis must run along x too
    cv2.rectangle(rgb, (20, 90), (220, 120), (228, 162, 200), -1)
    square = np.array([[250, 90], [281, 90], [281, 121], [250, 121]], np.int32)
    cv2.fillPoly(rgb, [square], (228, 162, 200))
    frags = find_fragments(rgb, mpp, np.zeros(rgb.shape[:2], np.uint8), "slide", [])
    stub = min(frags, key=lambda f: f.area_um2)
    d = stub.centerline[-1] - stub.centerline[0]
    assert abs(d[1]) < 0.15 * abs(d[0])


def test_many_stubby_fragments_bends_width_and_hand_drawn_outlines(busi_sample, tmp_path):
    lab = replace(
        OFF,
        fragments=(5,),
        fragment_p=(1.0,),
        min_fragment_mm=1.0,
        bend_deg=(50.0, 60.0),
        wiggle_deg=(20.0, 25.0),
        width_var=0.2,
        ragged_um=(20.0, 40.0),
        simplify_um=(40.0, 50.0),
        outline_offset_um=(-25.0, 25.0),
        normal_regions_p=1.0,
    )
    r = _case(busi_sample, tmp_path, lab, seed=11)
    gj = json.loads((r["dir"] / "core.geojson").read_text())
    names = {f["properties"]["classification"]["name"] for f in gj["features"]}
    assert names & {"Normal", "normal", "Stroma", "STROMA"}
    assert len(r["report"]["transform"]["fragments"]) == len(r["truth"]["fragments_mm"])
    assert r["dice"] >= 0.93


def test_register_batch_min_quality_holds_low_confidence_cases_out(busi_sample, tmp_path):
    cases = tmp_path / "cases"
    simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        cases,
        2,
        2,
        SimParams(core=CoreParams(mpp=MPP, lab=replace(OFF, end_loss_mm=(0.9, 1.0)))),
    )
    ds = tmp_path / "ds"
    cmd = [
        sys.executable,
        "-m",
        "edge_runtime.cli",
        "register-batch",
        str(cases),
        "--out",
        str(ds),
        "--no-progress",
    ]
    held = subprocess.run(cmd + ["--min-quality", "0.999"], capture_output=True, text=True, timeout=600)
    assert held.returncode == 0, held.stderr
    rep = json.loads((ds / "batch_report.json").read_text())
    assert rep["held_for_review"] == 2 and rep["registered"] == 0
    assert "review:" in held.stdout and not list((ds / "labels").glob("*.png"))
    assert all((ds / "registration" / h["id"] / "qa.png").is_file() for h in rep["low_quality"])
    ok = subprocess.run(cmd + ["--min-quality", "0"], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert len(list((ds / "labels").glob("*.png"))) == 2
    bad = subprocess.run(cmd + ["--min-quality", "2"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--min-quality 2" in bad.stderr


def _core_mask(shape, offset=(0, 0)):
    """A bent core broken into three pieces, end to end (level px)."""
    m = np.zeros(shape, np.uint8)
    xs = np.arange(40, 560)
    ys = 80 + 0.0004 * (xs - 300) ** 2
    for a, b in ((40, 200), (215, 380), (395, 560)):
        pts = np.stack([xs[a - 40 : b - 40] + offset[0], ys[a - 40 : b - 40] + offset[1]], 1).astype(np.int32)
        cv2.polylines(m, [pts.reshape(-1, 1, 2)], False, 1, 24)
    return m > 0


def test_sections_copies_side_by_side_found_but_pieces_end_to_end_are_one_core():
    from registration.sections import find_sections

    one = _core_mask((400, 600))
    assert find_sections(one, np.zeros(one.shape, np.uint8), MPP, 50) is None
    two = one | _core_mask((400, 600), (0, 150))
    cancer = np.zeros(two.shape, np.uint8)
    cancer[200:260, 100:300] = 1  # only the lower copy was annotated
    sec = find_sections(two, cancer, MPP, 50)
    assert sec is not None and sec.count == 2
    assert sec.keep[230, 150] and not sec.keep[80, 300]  # the annotated copy is the one used


def test_simulate_biopsy_lab_through_the_cli(busi_sample, tmp_path):
    out = tmp_path / "cases"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "simulate-biopsy",
            "--images",
            str(busi_sample / "images"),
            "--masks",
            str(busi_sample / "masks"),
            "--out",
            str(out),
            "--n",
            "1",
            "--seed",
            "4",
            "--wsi-mpp",
            "8",
            "--lab",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    t = json.loads(next(out.glob("*/truth.json")).read_text())
    for key in ("end_loss_mm", "stretch_amplitude", "shrink_profile", "fat_lobules", "serial_copies", "ink"):
        assert key in t
    assert 0.75 <= min(t["shrink_profile"]["values"]) and max(t["shrink_profile"]["values"]) <= 1.0
    assert all(0.0 <= e <= 1.0 for e in t["end_loss_mm"])
