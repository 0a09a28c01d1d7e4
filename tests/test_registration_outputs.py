"""A case's outputs never mislead: values report.json cannot hold are dealt with at load (a re-run that
fails while writing leaves the earlier outputs whole: tests/test_register_set_atomic.py)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from edge_runtime.errors import ConfigError, InputError
from registration.pipeline import register_case


@pytest.fixture()
def case(simulated_case, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(simulated_case, d)
    return d


def _append(case_dir, text: str):
    """case.yaml with ``text`` written at its end, in place of the section it gives (a key given twice
    is refused)."""
    path = case_dir / "case.yaml"
    case = yaml.safe_load(path.read_text())
    for key in yaml.safe_load(text):
        case.pop(key, None)
    path.write_text(yaml.safe_dump(case, sort_keys=False) + text)
    return path


def test_a_yaml_date_under_source_is_recorded_as_iso_text(case, tmp_path):
    path = _append(case, "source:\n  scanned: 2024-01-05\n  visits: [2024-01-05T10:30:00]\n")
    rep = register_case(path, tmp_path / "o")
    assert rep["source"] == {"scanned": "2024-01-05", "visits": ["2024-01-05T10:30:00"]}
    assert json.loads((tmp_path / "o" / "report.json").read_text())["source"]["scanned"] == "2024-01-05"


def test_a_value_report_json_cannot_hold_is_refused_before_anything_is_written(case, tmp_path):
    out = tmp_path / "o"
    register_case(case / "case.yaml", out)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    path = _append(case, "source:\n  blob: !!binary aGVsbG8=\n")
    with pytest.raises(ConfigError, match=r"case.yaml: source.blob must be .*got bytes"):
        register_case(path, out)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_a_cancer_outline_beyond_float32_is_refused_not_labelled_cancer_free(case, tmp_path):
    gj = json.loads((case / "core.geojson").read_text())
    big = 1e39
    gj["features"].append(
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[big, 0], [0, big], [big, big]]]},
            "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}},
        }
    )
    (case / "core.geojson").write_text(json.dumps(gj))
    with pytest.raises(InputError, match=r"core.geojson feature \d+: a coordinate beyond"):
        register_case(case / "case.yaml", tmp_path / "o")
    assert not (tmp_path / "o" / "report.json").exists()


@pytest.mark.parametrize("key,value", [("mpp", 0.0001), ("mpp", 1000), ("annotation_mpp", 0.001)])
def test_an_implausible_slide_scale_is_refused_naming_the_key(case, tmp_path, key, value):
    spec = yaml.safe_load((case / "case.yaml").read_text())
    spec["pathology"][key] = value
    (case / "case.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(
        ConfigError, match=rf"case.yaml: pathology.{key}={value} is implausible .*\[0.05, 50\]"
    ):
        register_case(case / "case.yaml", tmp_path / "o")


def test_an_out_that_is_a_file_is_refused_before_the_registration_runs(case, tmp_path, monkeypatch):
    """A file where the output folder (or one above it) should be: one line at once, not after the
    minutes the slide takes; nothing is read beyond case.yaml."""
    import registration.pipeline as pipeline

    def never(*args, **kwargs):
        raise AssertionError("the ultrasound was read before --out was checked")

    monkeypatch.setattr(pipeline, "load_ultrasound", never)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out in (afile, afile / "sub"):
        with pytest.raises(InputError, match=f"--out {out}: {afile} is a file, not a folder"):
            register_case(case / "case.yaml", out)
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_an_output_that_is_no_file_is_refused_before_an_earlier_output_is_replaced(case, tmp_path, kind):
    out = tmp_path / "o"
    register_case(case / "case.yaml", out)
    (out / "qa.png").unlink()
    if kind == "fifo":
        os.mkfifo(out / "qa.png")
    else:
        (out / "qa.png").mkdir()
    before = {name: (out / name).read_bytes() for name in ("us.png", "label.png", "report.json")}
    path = _append(case, "source:\n  note: a second registration\n")
    with pytest.raises(InputError) as err:
        register_case(path, out)
    assert str(err.value).startswith(f"--out {out}: qa.png is a ") and "not a file" in str(err.value)
    assert {name: (out / name).read_bytes() for name in before} == before
