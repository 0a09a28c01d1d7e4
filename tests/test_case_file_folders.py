"""A case.yaml file key (ultrasound.image, ultrasound.dataset_image, pathology.wsi,
pathology.annotations) that names a folder is refused as a folder, naming the key, not reported as a
file not found; register-batch does not hold such a case as pending (waiting for a file), it fails
with that message."""

from __future__ import annotations

import shutil

import pytest
import yaml

from edge_runtime.errors import InputError
from registration.case import load_case
from registration.cases.status import lacks_of

FILE_KEYS = [
    ("ultrasound", "image"),
    ("ultrasound", "dataset_image"),
    ("pathology", "wsi"),
    ("pathology", "annotations"),
]


@pytest.fixture()
def case(simulated_case, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(simulated_case, d)
    return d


@pytest.mark.parametrize("section,key", FILE_KEYS)
def test_a_file_key_naming_a_folder_says_so(case, section, key):
    raw = yaml.safe_load((case / "case.yaml").read_text())
    (case / "scans").mkdir()
    raw[section][key] = "scans"
    (case / "case.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as err:
        load_case(case / "case.yaml")
    msg = str(err.value)
    assert msg.startswith(f"{case / 'case.yaml'}: {section}.{key}: {case / 'scans'} is a folder, not a file")
    assert "not found" not in msg and "\n" not in msg
    assert lacks_of(raw, case) == []  # nothing to wait for: the loader's message is the case's failure


def test_a_slide_folder_says_which_file_to_give(case):
    raw = yaml.safe_load((case / "case.yaml").read_text())
    (case / "series").mkdir()
    raw["pathology"]["wsi"] = "series"
    (case / "case.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"give the file itself \(a DICOM WSI: any one file of the series\)"):
        load_case(case / "case.yaml")


def test_a_missing_file_is_still_not_found(case):
    raw = yaml.safe_load((case / "case.yaml").read_text())
    raw["pathology"]["wsi"] = "gone.svs"
    (case / "case.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"pathology.wsi: file not found: "):
        load_case(case / "case.yaml")
    assert [lack.what for lack in lacks_of(raw, case)] == ["slide file (pathology.wsi) not in the folder yet"]
