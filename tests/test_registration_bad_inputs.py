"""Bad input -> an error naming the file/key, or a flagged warning in report.json; never a silent label."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml

from edge_runtime.errors import ConfigError, InputError, SonomapError
from registration.case import load_case
from registration.pipeline import register_case
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases
from registration.tract import device_geometry


@pytest.fixture(scope="module")
def src(busi_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad")
    s = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        out,
        1,
        seed=21,
        params=SimParams(core=CoreParams(mpp=8.0, fragments=(1,), fragment_p=(1.0,))),
    )
    return out / s["cases"][0]["case_id"]


@pytest.fixture()
def case(src, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(src, d)
    return d


def edit(d, fn):
    c = yaml.safe_load((d / "case.yaml").read_text())
    fn(c)
    (d / "case.yaml").write_text(yaml.safe_dump(c))
    return d / "case.yaml"


def edit_geojson(d, fn):
    gj = json.loads((d / "core.geojson").read_text())
    fn(gj)
    (d / "core.geojson").write_text(json.dumps(gj))


def test_slide_mpp_disagreeing_with_file_is_inconsistent(case, tmp_path):
    p = edit(case, lambda c: c["pathology"].update(mpp=4.0))
    with pytest.raises(InputError, match=r"inconsistent scales: pathology.mpp=4.0 but the file says 8"):
        register_case(p, tmp_path / "o")


def test_core_far_longer_than_tract_is_inconsistent(case, tmp_path):
    p = edit(case, lambda c: c["pathology"].update(shrinkage=0.3))
    with pytest.raises(InputError, match="inconsistent scales: the core maps to"):
        register_case(p, tmp_path / "o")


def test_core_somewhat_longer_than_tract_is_a_flagged_warning(case, tmp_path):
    p = edit(case, lambda c: c["pathology"].update(shrinkage=round(c["pathology"]["shrinkage"] * 0.8, 4)))
    rep = register_case(p, tmp_path / "o")
    assert any("inconsistent scales" in w for w in rep["warnings"])
    assert json.loads((tmp_path / "o" / "report.json").read_text())["warnings"] == rep["warnings"]


def test_annotation_entirely_outside_tissue_fails(case, tmp_path):
    def shift(gj):
        for f in gj["features"]:
            f["geometry"]["coordinates"] = [
                [[x, y + 5000] for x, y in r] for r in f["geometry"]["coordinates"]
            ]

    edit_geojson(case, shift)
    with pytest.raises(InputError, match="core.geojson: annotation outside the tissue"):
        register_case(case / "case.yaml", tmp_path / "o")


def test_annotation_partly_outside_tissue_is_a_warning(case, tmp_path):
    def add(gj):  # an extra tumour outline off the slide, a fifth of the real tumour area
        area = sum(
            cv2.contourArea(np.float32(f["geometry"]["coordinates"][0]))
            for f in gj["features"]
            if f["properties"]["classification"]["name"] == "Tumor"
        )
        side = float(np.sqrt(area / 5))
        gj["features"].append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[-side - 5, 0], [-5, 0], [-5, side], [-side - 5, side], [-side - 5, 0]]],
                },
                "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}},
            }
        )

    edit_geojson(case, add)
    rep = register_case(case / "case.yaml", tmp_path / "o")
    assert any("lies outside the tissue" in w for w in rep["warnings"])


def test_missing_mpp_on_a_thumbnail_names_the_key(case, tmp_path):
    cv2.imwrite(str(case / "thumb.png"), np.full((50, 200, 3), 240, np.uint8))
    p = edit(case, lambda c: c["pathology"].update(wsi="thumb.png"))
    with pytest.raises(InputError, match="thumb.png: missing mpp: a thumbnail needs pathology.mpp"):
        register_case(p, tmp_path / "o")


def test_missing_mpp_in_a_tiff_names_the_key(case, tmp_path):
    import tifffile

    tifffile.imwrite(str(case / "plain.tif"), np.full((64, 256, 3), 240, np.uint8), photometric="rgb")
    p = edit(case, lambda c: c["pathology"].update(wsi="plain.tif"))
    with pytest.raises(InputError, match=r"plain.tif: missing mpp .* give pathology.mpp"):
        register_case(p, tmp_path / "o")


def test_needle_outside_image(case, tmp_path):
    def needle(c):
        del c["tract"]
        c["needle"] = {"tip": [-40.0, 12.0], "shaft": [100.0, 10.0], "gauge": 14}

    with pytest.raises(InputError, match=r"needle.tip=\(-40.0, 12.0\) lies outside"):
        register_case(edit(case, needle), tmp_path / "o")


def test_tract_outside_image(case, tmp_path):
    p = edit(case, lambda c: c["tract"].update(start=[5000, 10]))
    with pytest.raises(InputError, match="tract.start"):
        register_case(p, tmp_path / "o")


def test_empty_annotation_is_flagged_and_labels_tissue(case, tmp_path):
    edit_geojson(case, lambda gj: gj.update(features=[]))
    rep = register_case(case / "case.yaml", tmp_path / "o")
    assert any("empty annotation" in w for w in rep["warnings"])
    label = cv2.imread(str(tmp_path / "o" / "label.png"), 0)
    assert (label == 1).sum() == 0 and (label == 0).sum() > 0


def test_unreadable_wsi(case, tmp_path):
    (case / "core.ome.tif").write_bytes(b"II*\x00" + b"\x00garbage" * 50)
    with pytest.raises(InputError, match="core.ome.tif: unreadable WSI"):
        register_case(case / "case.yaml", tmp_path / "o")


def test_malformed_geojson(case, tmp_path):
    (case / "core.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InputError, match="core.geojson: malformed GeoJSON"):
        register_case(case / "case.yaml", tmp_path / "o")


def test_malformed_asap_xml(case, tmp_path):
    (case / "core.xml").write_text("<ASAP_Annotations><Annotations><Annotation>")
    p = edit(case, lambda c: c["pathology"].update(annotations="core.xml"))
    with pytest.raises(InputError, match="core.xml: malformed ASAP XML"):
        register_case(p, tmp_path / "o")


def test_asap_xml_in_an_encoding_python_does_not_know_is_one_line(case, tmp_path):
    (case / "core.xml").write_text('<?xml version="1.0" encoding="x-mac-roman"?><ASAP_Annotations/>')
    p = edit(case, lambda c: c["pathology"].update(annotations="core.xml"))
    with pytest.raises(InputError, match="core.xml: malformed ASAP XML .*unknown encoding: x-mac-roman"):
        register_case(p, tmp_path / "o")


def test_a_gauge_without_defaults_is_measured_by_the_three_values_given():
    """The error for an unknown gauge says to give notch_mm, tip_offset_mm and width_mm: with all
    three it is a device like any other; with one missing it is refused, naming the way out."""
    assert device_geometry(12, notch_mm=18.8, tip_offset_mm=4.5, width_mm=2.0) == {
        "notch_mm": 18.8,
        "tip_offset_mm": 4.5,
        "width_mm": 2.0,
    }
    with pytest.raises(ConfigError, match="needle.gauge=12 has no defaults .* give needle.notch_mm"):
        device_geometry(12, notch_mm=18.8, tip_offset_mm=4.5)


@pytest.mark.parametrize("gauge", [99, 0, 6, 26])
def test_a_gauge_no_biopsy_needle_has_is_refused_even_with_its_three_values(case, tmp_path, gauge):
    three = {"notch_mm": 18.0, "tip_offset_mm": 4.5, "width_mm": 1.2}  # gauge then sets nothing: still a typo
    p = edit(case, lambda c: c.setdefault("needle", {}).update(gauge=gauge, **three))
    with pytest.raises(ConfigError, match=rf"needle.gauge must be an integer in \[7, 25\] .*got {gauge}"):
        register_case(p, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_unknown_class_name_fails_loudly(case, tmp_path):
    p = edit(case, lambda c: c["pathology"].update(cancer_classes=["Carcinoma"]))
    with pytest.raises(InputError, match="unknown annotation class 'Tumor'.*pathology.cancer_classes"):
        register_case(p, tmp_path / "o")


def test_case_yaml_unknown_and_missing_keys(case):
    edit(case, lambda c: c["pathology"].update(shrinkag=0.8))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['shrinkag'\] in 'pathology'"):
        load_case(case / "case.yaml")
    edit(case, lambda c: (c["pathology"].pop("shrinkag"), c["ultrasound"].pop("image")))
    with pytest.raises(ConfigError, match="missing key 'ultrasound.image'"):
        load_case(case / "case.yaml")


def test_png_without_scale_names_the_key(case, tmp_path):
    p = edit(case, lambda c: c["ultrasound"].pop("mm_per_pixel"))
    with pytest.raises(SonomapError, match="needs ultrasound.mm_per_pixel"):
        register_case(p, tmp_path / "o")


def test_failure_keeps_earlier_outputs(case, tmp_path):
    out = tmp_path / "o"
    register_case(case / "case.yaml", out)
    before = (out / "label.png").read_bytes()
    (case / "core.geojson").write_text("not json")
    with pytest.raises(InputError):
        register_case(case / "case.yaml", out)
    assert (out / "label.png").read_bytes() == before and (out / "report.json").is_file()


def test_documented_case_example_is_valid(tmp_path):
    from registration.case import CASE_EXAMPLE

    for name in ("us.png", "core.tif", "core.geojson"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "case.yaml").write_text(CASE_EXAMPLE)
    spec = load_case(tmp_path / "case.yaml")
    assert spec.id == "case_0001" and spec.pathology.shrinkage == 0.85 and spec.tract.width_mm == 1.6
    assert spec.needle.gauge == 14 and spec.mm_per_pixel == (0.1, 0.1)


def test_dataset_image_of_another_size_is_refused(case, tmp_path):
    cv2.imwrite(str(case / "small.png"), np.zeros((20, 30), np.uint8))
    p = edit(case, lambda c: c["ultrasound"].update(dataset_image="small.png"))
    with pytest.raises(InputError, match="ultrasound.dataset_image .*small.png is 30x20"):
        register_case(p, tmp_path / "o")


def test_a_tract_that_is_not_a_mapping_is_named_in_words(case):
    edit(case, lambda c: c.update(tract="from the needle"))
    with pytest.raises(ConfigError) as exc:
        load_case(case / "case.yaml")
    message = str(exc.value)
    assert message.startswith(f"{case / 'case.yaml'}: tract must be a mapping with start, end and width_mm")
    assert "TractSection" not in message and "registration." not in message
