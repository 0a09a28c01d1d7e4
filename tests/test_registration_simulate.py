"""simulate-biopsy on real BUSI images: case files, truth, pyramidal WSI, annotations, needle echo."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from edge_runtime.manifest import sha256_file
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases
from registration.tract import Tract

TINY = SimParams(core=CoreParams(mpp=8.0))


def _stem_by_sha(busi_sample) -> dict[str, str]:
    """The sample's image stems by the SHA-256 of their bytes: how the cases name their source."""
    return {sha256_file(p): p.stem for p in (busi_sample / "images").glob("*.png")}


@pytest.fixture(scope="module")
def cases(busi_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate_cases(busi_sample / "images", busi_sample / "masks", out, 3, seed=5, params=TINY)
    return out, summary


def test_writes_requested_cases_with_required_keys(cases, busi_sample):
    out, summary = cases
    assert len(summary["cases"]) == 3
    malignant = {
        line.split(",")[0]
        for line in (busi_sample / "index.csv").read_text().splitlines()
        if ",malignant," in line
    }
    stems = _stem_by_sha(busi_sample)
    for i, c in enumerate(summary["cases"]):
        case = yaml.safe_load((out / c["case_id"] / "case.yaml").read_text())
        sha = case["source"]["image_sha256"]
        assert stems[sha] in malignant and c["image_sha256"] == sha
        # no file name: the case id is a number, the patient a pseudonym of the image's content
        assert case["id"] == c["case_id"] == f"sim_{i:04d}"
        assert case["patient_id"] == f"src-{sha[:12]}"
        assert case["ultrasound"]["image"] == "us.png" and case["ultrasound"]["mm_per_pixel"] > 0
        assert len(case["tract"]["start"]) == 2 and len(case["tract"]["end"]) == 2
        assert case["tract"]["width_mm"] in (1.6, 1.2)
        for key in ("wsi", "annotations", "tip_end", "shrinkage"):
            assert key in case["pathology"]
        # BUSI has no calibration: depth 40-50 mm over the image height
        h = cv2.imread(str(out / c["case_id"] / "us.png"), cv2.IMREAD_GRAYSCALE).shape[0]
        assert 40.0 <= case["ultrasound"]["mm_per_pixel"] * h <= 50.0


def test_truth_is_lesion_inside_tract_band(cases, busi_sample):
    out, summary = cases
    for c in summary["cases"]:
        d = out / c["case_id"]
        case = yaml.safe_load((d / "case.yaml").read_text())
        truth = cv2.imread(str(d / "truth.png"), cv2.IMREAD_GRAYSCALE)
        stem = _stem_by_sha(busi_sample)[case["source"]["image_sha256"]]
        lesion = cv2.imread(str(busi_sample / "masks" / f"{stem}.png"), 0) > 127
        mm = case["ultrasound"]["mm_per_pixel"]
        t = case["tract"]
        band, _, _ = Tract(tuple(t["start"]), tuple(t["end"]), t["width_mm"], (mm, mm)).band(truth.shape)
        assert set(np.unique(truth)) <= {0, 1, 255}
        assert np.array_equal(truth != 255, band)
        assert np.array_equal(truth == 1, band & lesion)
        assert (truth == 1).sum() > 0


def test_geometry_ranges_and_needle_echo(cases, busi_sample):
    out, summary = cases
    for c in summary["cases"]:
        d = out / c["case_id"]
        t = json.loads((d / "truth.json").read_text())
        assert 10.0 <= t["angle_deg"] <= 40.0
        assert 15.0 <= t["notch_mm"] <= 22.0 and t["gauge"] in (14, 16)
        assert 0.75 <= t["shrinkage"] <= 0.95 and 1 <= len(t["fragments_mm"]) <= 3
        us = cv2.imread(str(d / "us.png"), 0).astype(float)
        stem = _stem_by_sha(busi_sample)[t["image_sha256"]]
        src = cv2.imread(str(busi_sample / "images" / f"{stem}.png"), 0).astype(float)
        # the echo is bright just behind the tip and the image is unchanged far from the needle
        tip = np.array(t["tip"])
        back = tip + (np.array(t["entry"]) - tip) / np.linalg.norm(np.array(t["entry"]) - tip) * 5
        x, y = np.round(back).astype(int)
        assert us[y, x] > 180
        assert np.abs(us[:5, :] - src[:5, :]).mean() < np.abs(us - src).max()


def test_wsi_is_pyramidal_with_mpp_and_geojson_in_level0_pixels(cases):
    import tifffile

    out, summary = cases
    d = out / summary["cases"][0]["case_id"]
    with tifffile.TiffFile(str(d / "core.ome.tif")) as tif:
        levels = tif.series[0].levels
        assert len(levels) >= 2
        assert levels[1].shape[1] == levels[0].shape[1] // 2
        assert 'PhysicalSizeX="8.0"' in tif.ome_metadata
        h0, w0 = levels[0].shape[:2]
    gj = json.loads((d / "core.geojson").read_text())
    assert gj["type"] == "FeatureCollection"
    tumour = [f for f in gj["features"] if f["properties"]["classification"]["name"] == "Tumor"]
    assert tumour
    pts = np.array([p for f in tumour for p in f["geometry"]["coordinates"][0]])
    assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= w0 and pts[:, 1].max() <= h0


def test_same_seed_same_cases(busi_sample, tmp_path):
    a = simulate_cases(busi_sample / "images", busi_sample / "masks", tmp_path / "a", 1, seed=9, params=TINY)
    b = simulate_cases(busi_sample / "images", busi_sample / "masks", tmp_path / "b", 1, seed=9, params=TINY)
    ca, cb = a["cases"][0], b["cases"][0]
    assert ca["case_id"] == cb["case_id"] and ca["tip"] == cb["tip"] and ca["shrinkage"] == cb["shrinkage"]
