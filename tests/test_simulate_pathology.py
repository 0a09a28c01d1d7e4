"""`sonomap simulate-pathology` on a hand-made captured case: the slide and annotation are simulated
along the fire's true tract, case.yaml keeps everything but its pathology section, the case then
registers, and the registered cancer share matches the truth; a case from another clip is refused."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
import yaml
from captured_cases import MM_PER_PIXEL, SHAPE, write_captured_case
from cli import sonomap

from registration.sim.procedure import FINGERPRINT_KEY, roi_fingerprint

PRE_FIRE = 40
LESION_COLS = slice(100, 200)  # the lesion truth: every column from 100 on
TIP = (170.0, 60.0)  # the true post-fire tip; the needle runs along the row from the left
CLIP_NAMED_AFTER_PATIENT = "Doe_Jane.mp4"  # a user may name a clip so; case.yaml must not carry it
IMAGE_SHA256 = "5e" * 32
REGISTERED_TOLERANCE = 0.08  # coarse 0.2 mm pixels, the boundary mid-core, fragments lost at breaks


def _scan(seed: int) -> np.ndarray:
    """A pre-fire ROI with structure (smoothed noise): what one patient's clip shows."""
    noise = np.random.default_rng(seed).uniform(0, 255, (SHAPE[0] // 8, SHAPE[1] // 8)).astype(np.float32)
    return cv2.resize(noise, SHAPE[::-1], interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


THIS_CLIP, OTHER_CLIP = _scan(1), _scan(2)


def _truth(tmp_path, pre_index: int = PRE_FIRE, scan: np.ndarray = THIS_CLIP):
    lesion = np.zeros(SHAPE, np.uint8)
    lesion[:, LESION_COLS] = 255
    cv2.imwrite(str(tmp_path / "clip.lesion.png"), lesion)
    truth = {
        "clip": CLIP_NAMED_AFTER_PATIENT,
        "image_sha256": IMAGE_SHA256,
        "mm_per_pixel": MM_PER_PIXEL,
        "gauge": 14,
        "lesion": "clip.lesion.png",
        "fires": [
            {
                "pre_index": pre_index,
                "post_index": pre_index + 1,
                "tip": list(TIP),
                "angle_deg": 0.0,
                FINGERPRINT_KEY: roi_fingerprint(scan),
            }
        ],
    }
    (tmp_path / "clip.truth.json").write_text(json.dumps(truth))
    return tmp_path / "clip.truth.json"


def _captured(root, name: str = "20261130T010101Z-1", scan: np.ndarray = THIS_CLIP):
    folder = write_captured_case(root / name)
    cv2.imwrite(str(folder / "prefire.png"), scan)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": PRE_FIRE, "image": "prefire.png"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    return folder


def test_the_lab_answer_is_simulated_along_the_true_tract_and_registers(tmp_path):
    folder = _captured(tmp_path / "cases")
    before = (folder / "case.yaml").read_text()
    out = sonomap(
        "simulate-pathology", tmp_path / "cases", "--truth", _truth(tmp_path), "--patient-id", "P-1"
    )
    assert "filled 1 case(s)" in out.stdout
    after = (folder / "case.yaml").read_text()
    head = before[: before.index("\npathology:")]
    assert after.startswith(head)  # everything above the pathology section is kept byte for byte
    assert "Doe_Jane" not in after and f"procedure image {IMAGE_SHA256[:12]}" in after
    path = yaml.safe_load(after)["pathology"]
    assert path["wsi"] == "slide.ome.tif" and path["annotations"] == "slide.geojson"
    assert path["patient_id"] == "P-1" and 0.75 <= path["shrinkage"] <= 0.95
    truth = json.loads((folder / "pathology_truth.json").read_text())
    # 14G: the notch is 5-24 mm behind the tip, i.e. columns 50-145 at 0.2 mm/px; lesion from 100
    tract = truth["tract"]
    assert tract["end"] == pytest.approx([TIP[0] - 5 / MM_PER_PIXEL, TIP[1]], abs=1e-6)
    assert tract["start"] == pytest.approx([TIP[0] - 24 / MM_PER_PIXEL, TIP[1]], abs=1e-6)
    assert truth["core_has_cancer"] and truth["truth_cancer_fraction"] == pytest.approx(45 / 95, abs=0.03)
    listing = sonomap("cases", tmp_path / "cases").stdout
    assert "complete" in listing and "patient P-1 (pathology.patient_id)" in listing
    sonomap("register", folder / "case.yaml", "--out", tmp_path / "reg")
    report = json.loads((tmp_path / "reg" / "report.json").read_text())
    assert report["patient_id"] == "P-1"
    registered = report["label"]["cancer_fraction"]
    assert abs(registered - truth["truth_cancer_fraction"]) <= REGISTERED_TOLERANCE
    again = sonomap("simulate-pathology", tmp_path / "cases", "--truth", tmp_path / "clip.truth.json")
    assert "filled 0 case(s); 1 already had a slide" in again.stdout


def test_a_case_from_another_clip_is_refused(tmp_path):
    folder = _captured(tmp_path / "cases")
    out = sonomap("simulate-pathology", tmp_path / "cases", "--truth", _truth(tmp_path, 99), check=False)
    assert out.returncode == 2 and "capture.pre_fire.frame 40 matches no fire" in out.stderr
    assert yaml.safe_load((folder / "case.yaml").read_text())["pathology"]["wsi"] is None


def test_a_case_of_another_clip_at_the_same_frame_is_refused_before_anything_is_written(tmp_path):
    """Clips of the default seed fire at the same frames: the frame number alone cannot tell them
    apart, the pre-fire image does. One such case stops the run before any case is filled."""
    ours = _captured(tmp_path / "cases", "20261130T010101Z-1")
    theirs = _captured(tmp_path / "cases", "20261130T010102Z-2", scan=OTHER_CLIP)
    truth = _truth(tmp_path)
    out = sonomap("simulate-pathology", tmp_path / "cases", "--truth", truth, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert (
        f"{theirs / 'case.yaml'}: its pre-fire image is not frame {PRE_FIRE} of the clip of {truth}"
        in out.stderr
    )
    for folder in (ours, theirs):
        assert yaml.safe_load((folder / "case.yaml").read_text())["pathology"]["wsi"] is None
        assert not (folder / "slide.ome.tif").exists()


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda t: t["fires"][0].pop(FINGERPRINT_KEY),
            rf"fires\[0\].{FINGERPRINT_KEY} missing or not str; write the truth again with sonomap simulate-procedure",
        ),
        (
            lambda t: t["fires"][0].update({FINGERPRINT_KEY: "zz"}),
            rf"fires\[0\].{FINGERPRINT_KEY} is not a fingerprint",
        ),
        (lambda t: t.pop("fires"), "'fires' missing or not a list"),
        (lambda t: t["fires"][0].pop("tip"), r"fires\[0\].tip missing or not list"),
        (lambda t: t["fires"][0].update(pre_index="40"), r"fires\[0\].pre_index missing or not int"),
        (lambda t: t.pop("mm_per_pixel"), "'mm_per_pixel' missing or not a positive number"),
    ],
)
def test_a_truth_lacking_a_key_is_one_line_naming_the_file_and_key(tmp_path, change, message):
    folder = _captured(tmp_path / "cases")
    path = _truth(tmp_path)
    truth = json.loads(path.read_text())
    change(truth)
    path.write_text(json.dumps(truth))
    out = sonomap("simulate-pathology", tmp_path / "cases", "--truth", path, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert re.search(f"{re.escape(str(path))}: {message}", out.stderr), out.stderr
    assert yaml.safe_load((folder / "case.yaml").read_text())["pathology"]["wsi"] is None


def test_a_pathology_that_is_no_section_or_a_lesion_that_is_no_file_name_is_one_line(tmp_path):
    """A case.yaml whose pathology is a sentence, and a truth whose lesion is a number, are refused
    naming the file and the key, not with a traceback."""
    truth = _truth(tmp_path)
    folder = _captured(tmp_path / "cases")
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["pathology"] = "pending at the lab"
    (folder / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    r = sonomap("simulate-pathology", tmp_path / "cases", "--truth", truth, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "case.yaml: 'pathology' must be a section" in r.stderr
    data = json.loads(truth.read_text())
    truth.write_text(json.dumps({**data, "lesion": 5}))
    r = sonomap("simulate-pathology", tmp_path / "cases", "--truth", truth, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "clip.truth.json: 'lesion' must name the lesion mask PNG beside it, got 5" in r.stderr


def test_the_lab_keys_and_the_lines_after_the_pathology_section_are_kept(tmp_path):
    """The lab may have typed a patient id and a fragment count into the section, and a key may
    follow the section: the answer fills the section in place and keeps all of them; a key that
    describes another slide (here fresh_length_mm, refused beside the simulated shrinkage) goes."""
    folder = _captured(tmp_path / "cases")
    case_yaml = folder / "case.yaml"
    text = case_yaml.read_text().replace(
        "  shrinkage: null\n",
        "  shrinkage: null\n  patient_id: P-0042\n  fragments: 2\n  fresh_length_mm: 19.0\n",
    )
    tail = "# added by the lab\nnotes: second look\n"
    case_yaml.write_text(text + tail)
    sonomap("simulate-pathology", tmp_path / "cases", "--truth", _truth(tmp_path))
    after = case_yaml.read_text()
    assert after.startswith(text[: text.index("\npathology:") + 1]) and after.endswith(tail)
    case = yaml.safe_load(after)
    assert case["notes"] == "second look"
    path = case["pathology"]
    assert path["patient_id"] == "P-0042" and path["fragments"] == 2 and "fresh_length_mm" not in path
    assert path["wsi"] == "slide.ome.tif" and 0.75 <= path["shrinkage"] <= 0.95
    listing = sonomap("cases", tmp_path / "cases").stdout
    assert "complete" in listing and "patient P-0042 (pathology.patient_id)" in listing
