"""A coordinate that passes the 2^26 px check in annotation pixels can still leave cv2's fixed-point
int32 range once rasterise scales it to the slide level (annotation_mpp / level mpp, then x16): it must
be refused naming the annotation file, not wrap around and paint cancer elsewhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from edge_runtime.errors import InputError
from registration.annotation_raster import MAX_COORDINATE, rasterise
from registration.annotations import load_annotations
from registration.pipeline import register_case

FAR = 3e7  # below MAX_COORDINATE in annotation pixels, beyond it at a 5x level scale
SCALE = 5.0  # annotation_mpp 40 on an 8 µm/px level
SHAPE = (200, 1000)


def box_file(tmp_path, x1: float):
    p = tmp_path / "far.geojson"
    ring = [[100, 10], [x1, 10], [x1, 30], [100, 30], [100, 10]]
    feat = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}},
    }
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [feat]}))
    return p


def test_a_coordinate_beyond_the_range_at_the_levels_scale_is_refused_naming_the_file(tmp_path):
    assert FAR < MAX_COORDINATE < FAR * SCALE
    p = box_file(tmp_path, FAR)
    ann = load_annotations(p, ["Tumor"], [], [])  # in range as read
    with pytest.raises(InputError) as err:
        rasterise(ann.cancer, SHAPE, SCALE)
    msg = str(err.value)
    assert msg.startswith(
        f"{p}: an annotation coordinate (3e+07 px) is 1.5e+08 px at the slide level's scale"
    )
    assert "\n" not in msg


def test_the_same_outline_within_range_fills_what_it_covers(tmp_path):
    ann = load_annotations(box_file(tmp_path, 1e6), ["Tumor"], [], [])
    mask = rasterise(ann.cancer, SHAPE, SCALE)
    # x from 100 * 5 = 500 to the level's edge, y from 50 to 150 (pixel centres on the outline count)
    assert np.array_equal(np.nonzero(mask.any(0))[0], np.arange(500, SHAPE[1]))
    assert np.array_equal(np.nonzero(mask.any(1))[0], np.arange(50, 151))


def test_register_refuses_the_case_naming_the_annotation_file(simulated_case, tmp_path):
    far = box_file(tmp_path, FAR)
    case = yaml.safe_load((simulated_case / "case.yaml").read_text())
    case["pathology"].update(annotations=str(far), annotation_mpp=40.0)  # 5x the 8 µm/px level
    path = simulated_case / "far_annotation_case.yaml"
    path.write_text(yaml.safe_dump(case))
    with pytest.raises(InputError, match="at the slide level's scale") as err:
        register_case(path, tmp_path / "out")
    assert str(err.value).startswith(f"{far}: an annotation coordinate (3e+07 px)")
    assert not (tmp_path / "out" / "label.png").exists()
