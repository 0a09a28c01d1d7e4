"""The simulators' inputs as users edit them. `sonomap simulate-pathology` checks every captured case's
scale and needle as `sonomap register` does before it writes any case: `ultrasound.mm_per_pixel` as
`[x, y]` is taken (the true tract is laid out on those pixels), a gauge written `14G` or one without
device defaults is one line naming the case file and key, and no case folder is changed.
`sonomap simulate-biopsy` reads the `index.csv` beside `--images` as prepare-busi does (a byte-order
mark taken): a missing `id` column or a byte that is not UTF-8 is one line naming the file, before
any case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from captured_cases import MM_PER_PIXEL, SHAPE, write_captured_case
from cli import sonomap

from registration.sim.procedure import FINGERPRINT_KEY, roi_fingerprint

EXIT_USER_ERROR = 2
PRE_FIRE = 40
TIP = (170.0, 60.0)  # the true post-fire tip; the needle runs along the row from the left
TIP_OFFSET_14G_MM = 5.0  # registration/tract.py: the notch's distal end lies this far behind the tip
ANISOTROPIC = [0.2, 0.25]  # mm per pixel across, down


def _scan() -> np.ndarray:
    """A pre-fire ROI with structure (smoothed noise), the clip's own."""
    noise = np.random.default_rng(1).uniform(0, 255, (SHAPE[0] // 8, SHAPE[1] // 8)).astype(np.float32)
    return cv2.resize(noise, SHAPE[::-1], interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


SCAN = _scan()


def _truth(folder: Path) -> Path:
    lesion = np.zeros(SHAPE, np.uint8)
    lesion[:, 100:] = 255
    cv2.imwrite(str(folder / "clip.lesion.png"), lesion)
    fire = {"pre_index": PRE_FIRE, "tip": list(TIP), "angle_deg": 0.0, FINGERPRINT_KEY: roi_fingerprint(SCAN)}
    truth = {"mm_per_pixel": MM_PER_PIXEL, "gauge": 14, "lesion": "clip.lesion.png", "fires": [fire]}
    (folder / "clip.truth.json").write_text(json.dumps(truth))
    return folder / "clip.truth.json"


def _captured(root, name: str, edit=None):
    """A captured case of the truth's fire; ``edit(case)`` changes its case.yaml mapping."""
    folder = write_captured_case(root / name)
    cv2.imwrite(str(folder / "prefire.png"), SCAN)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": PRE_FIRE, "image": "prefire.png"}
    if edit is not None:
        edit(case)
    (folder / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    return folder


def _files(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_scale_given_as_x_and_y_lays_the_true_tract_on_those_pixels(tmp_path):
    truth = _truth(tmp_path)
    first = _captured(tmp_path / "cases", "20261130T010101Z-1")
    second = _captured(
        tmp_path / "cases", "20261130T010102Z-2", lambda c: c["ultrasound"].update(mm_per_pixel=ANISOTROPIC)
    )
    out = sonomap("simulate-pathology", tmp_path / "cases", "--truth", truth)
    assert "filled 2 case(s)" in out.stdout
    tract = json.loads((second / "pathology_truth.json").read_text())["tract"]
    assert tract["mm_per_pixel"] == ANISOTROPIC
    # the needle runs along a row: only the x spacing sets how far behind the tip the notch ends
    assert tract["end"] == pytest.approx([TIP[0] - TIP_OFFSET_14G_MM / ANISOTROPIC[0], TIP[1]], abs=1e-6)
    assert (
        json.loads((first / "pathology_truth.json").read_text())["tract"]["mm_per_pixel"]
        == [MM_PER_PIXEL] * 2
    )


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("gauge", "14G", "needle.gauge must be an integer in [7, 25] (a biopsy needle's gauge), got '14G'"),
        ("gauge", 15, "needle.gauge=15 has no defaults"),
        ("mm_per_pixel", [0.2], "ultrasound.mm_per_pixel must be a positive number or [x, y], got [0.2]"),
        ("mm_per_pixel", "0.2", "ultrasound.mm_per_pixel must be a positive number or [x, y], got '0.2'"),
    ],
)
def test_a_bad_scale_or_gauge_in_a_later_case_is_one_line_and_no_case_is_written(
    tmp_path, key, value, message
):
    truth = _truth(tmp_path)
    cases = tmp_path / "cases"
    _captured(cases, "20261130T010101Z-1")
    section = "needle" if key == "gauge" else "ultrasound"
    bad = _captured(cases, "20261130T010102Z-2", lambda c: c[section].update({key: value}))
    before = _files(cases)
    out = sonomap("simulate-pathology", cases, "--truth", truth, check=False)
    assert out.returncode == EXIT_USER_ERROR and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"{bad / 'case.yaml'}: {message}" in out.stderr
    assert _files(cases) == before  # the first case was not filled either


def test_a_truth_whose_gauge_is_text_is_refused_naming_it(tmp_path):
    truth = _truth(tmp_path)
    truth.write_text(json.dumps({**json.loads(truth.read_text()), "gauge": "14G"}))
    cases = tmp_path / "cases"
    _captured(cases, "20261130T010101Z-1", lambda c: c["needle"].pop("gauge"))
    before = _files(cases)
    out = sonomap("simulate-pathology", cases, "--truth", truth, check=False)
    assert out.returncode == EXIT_USER_ERROR and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"{truth}: 'gauge' must be a whole number (a needle gauge such as 14), got '14G'" in out.stderr
    assert _files(cases) == before


def _busi_with_index(busi_sample, tmp_path, index: bytes):
    busi = tmp_path / "busi"
    for part in ("images", "masks"):
        shutil.copytree(busi_sample / part, busi / part)
    (busi / "index.csv").write_bytes(index)
    return busi


@pytest.mark.parametrize(
    "index,message",
    [
        (lambda text: text.replace(b"id,label", b"ID,label", 1), "index.csv: needs columns id,label"),
        (lambda text: b"id,label\nbenign_002,b\xe9nin\n", "index.csv:2: not UTF-8 text"),
    ],
)
def test_simulate_biopsy_refuses_an_index_without_id_or_not_utf8_in_one_line(
    busi_sample, tmp_path, index, message
):
    busi = _busi_with_index(busi_sample, tmp_path, index((busi_sample / "index.csv").read_bytes()))
    out = tmp_path / "cases"
    r = sonomap(
        "simulate-biopsy",
        *("--images", busi / "images", "--masks", busi / "masks", "--out", out, "--n", 1),
        check=False,
    )
    assert r.returncode == EXIT_USER_ERROR and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{busi / message}" in r.stderr
    assert not out.exists()


def test_simulate_biopsy_takes_an_index_with_a_byte_order_mark(busi_sample, tmp_path):
    """A spreadsheet's UTF-8 export starts with a byte-order mark: the first column is still `id`."""
    busi = _busi_with_index(busi_sample, tmp_path, b"\xef\xbb\xbf" + (busi_sample / "index.csv").read_bytes())
    out = tmp_path / "cases"
    sonomap(
        "simulate-biopsy",
        *("--images", busi / "images", "--masks", busi / "masks", "--out", out, "--n", 1, "--wsi-mpp", 8),
    )
    assert (out / "sim_0000" / "case.yaml").is_file()
