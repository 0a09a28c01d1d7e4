"""Slides in a whole registration: report.json names the reader and level; case.yaml can force a reader; the
scanner-sized slide the benchmark builds registers like the simulated slide it was made from."""

from __future__ import annotations

import json

import cv2
import pytest
import yaml

from edge_runtime.errors import ConfigError
from registration.pipeline import register_case
from registration.sim.bench_slides import build_big_case, run_register
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases

BIG_WIDTH = 9000  # level-0 px: level 1 (4x) is finer than the 8 µm/px the registration needs


@pytest.fixture(scope="module")
def cases(busi_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("wsi_case")
    s = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        out / "sim",
        1,
        seed=5,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    src = out / "sim" / s["cases"][0]["case_id"]
    facts = build_big_case(src, out / "big", BIG_WIDTH)
    return src, out / "big", facts


def agreement(a, b) -> float:
    la, lb = (cv2.imread(str(p / "label.png"), cv2.IMREAD_GRAYSCALE) for p in (a, b))
    known = (la != 255) | (lb != 255)
    return float((la[known] == lb[known]).mean())


def with_reader(big, reader):
    case = yaml.safe_load((big / "case.yaml").read_text())
    case["pathology"]["reader"] = reader
    path = big / f"case_{reader}.yaml"
    path.write_text(yaml.safe_dump(case))
    return path


def test_report_names_reader_format_and_level(cases, tmp_path):
    src, big, facts = cases
    assert facts["level_shapes"][0][1] == BIG_WIDTH and len(facts["level_shapes"]) == 4
    register_case(src / "case.yaml", tmp_path / "orig")
    rep = register_case(big / "case.yaml", tmp_path / "auto")
    sl = rep["slide"]
    assert (sl["reader"], sl["format"], sl["mpp_source"]) == (
        "openslide",
        "aperio",
        "openslide.mpp-x (aperio)",
    )
    assert sl["level"] == 1 and sl["level_shape"] == facts["level_shapes"][1] and sl["readers_not_used"] == []
    assert sl["level0_shape"] == facts["level_shapes"][0]
    rep_t = register_case(with_reader(big, "tifffile"), tmp_path / "tifffile")
    assert (rep_t["slide"]["reader"], rep_t["slide"]["mpp_source"]) == (
        "tifffile",
        "Aperio ImageDescription MPP",
    )
    assert rep_t["slide"]["level_mpp"] == pytest.approx(sl["level_mpp"], rel=1e-3)
    for out in ("auto", "tifffile"):
        assert agreement(tmp_path / "orig", tmp_path / out) >= 0.97


def test_unknown_reader_in_case_yaml_names_the_key(cases):
    _, big, _ = cases
    with pytest.raises(ConfigError, match=r"pathology.reader must be one of .*'vips'"):
        from registration.case import load_case

        load_case(with_reader(big, "vips"))


def test_register_child_process_reports_time_and_peak_memory(cases, tmp_path):
    _, big, _ = cases
    r = run_register(with_reader(big, "openslide"), tmp_path / "child")
    assert r["slide"]["reader"] == "openslide" and r["wall_seconds"] > r["register_seconds"] > 0
    assert 30 < r["peak_rss_mb"] < 1536


def test_bench_slides_command_prints_and_records_each_reader(busi_sample, tmp_path):
    from cli import sonomap

    out = sonomap(
        "bench-slides",
        "--images",
        busi_sample / "images",
        "--masks",
        busi_sample / "masks",
        "--width",
        6000,
        "--repeats",
        1,
        "--work",
        tmp_path,
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("slide benchmark: JPEG-tiled Aperio SVS, level 0 6000x")
    for reader in ("tifffile", "openslide"):
        line = next(x for x in lines if x.strip().startswith(reader))
        assert "read_slide" in line and "peak RSS" in line and ("PASS" in line or "FAIL" in line)
    res = json.loads((tmp_path / "bench_slides.json").read_text())
    for reader in ("tifffile", "openslide"):
        r = res["readers"][reader]
        assert r["slide"]["reader"] == reader and r["label_agreement_with_original"] >= 0.97
        assert len(r["wall_seconds"]) == len(r["peak_rss_mb"]) == len(r["read_seconds"]) == 1
