"""register: simulated cases with known truth -> label matches truth for each pathology input format."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from registration.pipeline import register_case
from registration.sim.biopsy_core import CoreParams
from registration.sim.scores import confusion, dice
from registration.sim.simulate import SimParams, simulate_cases

# every case: three fragments on a strongly bent line, small WSIs for speed
HARD = SimParams(core=CoreParams(mpp=8.0, fragments=(3,), fragment_p=(1.0,), bend_deg=(30.0, 35.0)))
MIN_DICE = 0.95


@pytest.fixture(scope="module")
def cases(busi_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("reg")
    s = simulate_cases(busi_sample / "images", busi_sample / "masks", out, 2, seed=3, params=HARD)
    return [out / c["case_id"] for c in s["cases"]]


def _score(case_dir, out_dir):
    label = cv2.imread(str(out_dir / "label.png"), cv2.IMREAD_GRAYSCALE)
    truth = cv2.imread(str(case_dir / "truth.png"), cv2.IMREAD_GRAYSCALE)
    return label, truth, dice(confusion(label, truth))


def _variant(case_dir, name, **pathology):
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    case["pathology"].update(pathology)
    path = case_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(case))
    return path


def test_bent_fragmented_core_geojson_matches_truth(cases, tmp_path):
    for d in cases:
        out = tmp_path / d.name
        rep = register_case(d / "case.yaml", out)
        label, truth, dsc = _score(d, out)
        assert label.shape == truth.shape
        assert set(np.unique(label)) <= {0, 1, 255}
        assert dsc >= MIN_DICE, (d.name, dsc)
        assert (label[truth == 255] == 255).all()  # nothing outside the band
        assert rep["label"]["known_fraction"] >= 0.7
        assert len(rep["transform"]["fragments"]) == 3
        assert rep["transform"]["gap_mm"] > 0  # tissue lost at the breaks -> unknown gaps
        assert (out / "qa.png").is_file() and json.loads((out / "report.json").read_text())[
            "case_id"
        ] == d.name


def test_gaps_between_fragments_are_unknown(cases, tmp_path):
    d = cases[0]
    rep = register_case(d / "case.yaml", tmp_path / "o")
    frags = rep["transform"]["fragments"]
    case = yaml.safe_load((d / "case.yaml").read_text())
    from registration.tract import Tract

    t, mm = case["tract"], case["ultrasound"]["mm_per_pixel"]
    tract = Tract(tuple(t["start"]), tuple(t["end"]), t["width_mm"], (mm, mm))
    label = cv2.imread(str(tmp_path / "o" / "label.png"), cv2.IMREAD_GRAYSCALE)
    for f0, f1 in zip(frags, frags[1:], strict=False):
        a = (f0["tract_to_mm"] + f1["tract_from_mm"]) / 2
        gap = f1["tract_from_mm"] - f0["tract_to_mm"]
        x, y = tract.to_pixels(np.array([a]), np.array([0.0]))
        if gap > 2 * mm:  # wide enough to hold a pixel centre
            assert label[int(round(y[0])), int(round(x[0]))] == 255


def test_asap_xml_gives_the_same_label_as_geojson(cases, tmp_path):
    d = cases[1]
    register_case(d / "case.yaml", tmp_path / "gj")
    register_case(_variant(d, "xml", annotations="core.xml"), tmp_path / "xml")
    a = cv2.imread(str(tmp_path / "gj" / "label.png"), 0)
    b = cv2.imread(str(tmp_path / "xml" / "label.png"), 0)
    assert (a != b).mean() < 0.001


def test_plain_thumbnail_with_mpp(cases, tmp_path):
    import tifffile

    d = cases[0]
    with tifffile.TiffFile(str(d / "core.ome.tif")) as tif:
        level1 = tif.series[0].levels[1].asarray()
    cv2.imwrite(str(d / "thumb.png"), cv2.cvtColor(level1, cv2.COLOR_RGB2BGR))
    # annotations stay in level-0 pixels (8 µm); the thumbnail is 16 µm/px
    rep = register_case(_variant(d, "thumb", wsi="thumb.png", mpp=16.0, annotation_mpp=8.0), tmp_path / "t")
    assert rep["slide"]["level_mpp"] == 16.0
    _, _, dsc = _score(d, tmp_path / "t")
    assert dsc >= 0.9


def test_tiff_pyramid_reads_a_coarse_level_not_level0(cases, tmp_path, monkeypatch):
    import registration.pipeline as pipeline

    monkeypatch.setattr(pipeline, "TARGET_MPP", 16.0)
    rep = register_case(cases[0] / "case.yaml", tmp_path / "c")
    assert rep["slide"]["level"] == 1 and rep["slide"]["downsample"] == pytest.approx(2.0, rel=0.01)
    _, _, dsc = _score(cases[0], tmp_path / "c")
    assert dsc >= 0.9


def test_fresh_length_instead_of_shrinkage(cases, tmp_path):
    d = cases[0]
    truth = json.loads((d / "truth.json").read_text())
    case = yaml.safe_load((d / "case.yaml").read_text())
    del case["pathology"]["shrinkage"]
    fresh = sum(b - a for a, b in truth["fragments_mm"])  # tissue that reached the slide, fresh length
    case["pathology"]["fresh_length_mm"] = round(fresh, 3)
    p = d / "fresh.yaml"
    p.write_text(yaml.safe_dump(case))
    rep = register_case(p, tmp_path / "f")
    assert rep["shrinkage"]["source"] == "pathology.fresh_length_mm"
    assert abs(rep["shrinkage"]["value"] - truth["shrinkage"]) < 0.02
    assert _score(d, tmp_path / "f")[2] >= MIN_DICE


def test_flip_across_changes_only_across_mapping(cases, tmp_path):
    d = cases[0]
    register_case(d / "case.yaml", tmp_path / "a")
    register_case(_variant(d, "flip", flip_across=True), tmp_path / "b")
    a = cv2.imread(str(tmp_path / "a" / "label.png"), 0)
    b = cv2.imread(str(tmp_path / "b" / "label.png"), 0)
    band = (a != 255).sum()
    assert ((a == 255) != (b == 255)).sum() < 0.02 * band  # same known pixels up to end-cap rounding
    assert (a == 1).sum() == pytest.approx((b == 1).sum(), rel=0.2)


def test_roi_selects_one_of_two_serial_sections(cases, tmp_path):
    import tifffile

    d = cases[0]
    with tifffile.TiffFile(str(d / "core.ome.tif")) as tif:
        level0 = tif.series[0].levels[0].asarray()
    h, w = level0.shape[:2]
    tifffile.imwrite(
        str(d / "two.tif"),
        np.vstack([level0, level0]),
        photometric="rgb",
        resolution=(1250.0, 1250.0),
        resolutionunit="CENTIMETER",
    )  # 8 µm/px
    gj = json.loads((d / "core.geojson").read_text())
    copies = json.loads(json.dumps(gj["features"]))
    for f in copies:  # the pathologist outlined the second section too
        f["geometry"]["coordinates"] = [[[x, y + h] for x, y in r] for r in f["geometry"]["coordinates"]]
    gj["features"] += copies
    (d / "two.geojson").write_text(json.dumps(gj))
    whole = register_case(_variant(d, "two", wsi="two.tif", annotations="two.geojson"), tmp_path / "w")
    # without a roi the two sections are recognised as copies: one is used, and the report says which
    assert whole["sections"]["count"] == 2 and len(whole["transform"]["fragments"]) == 3
    assert any("2 serial sections" in x and "pathology.roi" in x for x in whole["warnings"])
    assert _score(d, tmp_path / "w")[2] >= MIN_DICE
    rep = register_case(
        _variant(d, "roi", wsi="two.tif", annotations="two.geojson", roi=[0, 0, w, h]), tmp_path / "r"
    )
    assert len(rep["transform"]["fragments"]) == 3 and not rep["warnings"]
    assert _score(d, tmp_path / "r")[2] >= MIN_DICE
