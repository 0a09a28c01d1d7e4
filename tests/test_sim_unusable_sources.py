"""simulate-biopsy on images it cannot use: a mask of another image (another size), a mask that is not
an image, a mask with no lesion. Each is named by its image's digest with its real reason, counted
once per image (not once per attempt), apart from images whose lesion no tract fits; when not one
case can be made the command fails in one line saying why and writes nothing. `simulate-procedure`
refuses another image's mask the same way, before it writes the clip or its truth."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
from cli import sonomap

from edge_runtime.manifest import sha256_file
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import NO_TRACT, UNUSABLE, SimParams, simulate_cases
from registration.sim.sources import PSEUDONYM_HEX

USER_ERROR = 2
PATIENT = "Doe_Jane_1970"  # a user's image named after the patient: never in a message
GOOD = ("malignant_002", "malignant_018")
OTHER = "malignant_072"  # its mask (528x598) is not the size of any GOOD image


def _busi(busi_sample, root, good=GOOD, patient_mask: bytes | None = None):
    """images/ + masks/ of the GOOD images, and PATIENT's image (malignant_028) with ``patient_mask``."""
    for part in ("images", "masks"):
        (root / part).mkdir(parents=True)
        for name in good:
            shutil.copy(busi_sample / part / f"{name}.png", root / part / f"{name}.png")
    shutil.copy(busi_sample / "images" / "malignant_028.png", root / "images" / f"{PATIENT}.png")
    if patient_mask is not None:
        (root / "masks" / f"{PATIENT}.png").write_bytes(patient_mask)
    return (
        root / "images",
        root / "masks",
        f"source image src-{sha256_file(root / 'images' / f'{PATIENT}.png')[:PSEUDONYM_HEX]}",
    )


def _png(array) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _simulate(images, masks, out, n, check=False):
    return sonomap(
        "simulate-biopsy", "--images", images, "--masks", masks, "--out", out, "--n", n, "--seed", 0,
        "--wsi-mpp", 8, check=check,
    )  # fmt: skip


def test_another_images_mask_is_named_with_its_sizes_and_no_case_is_an_error(busi_sample, tmp_path):
    other_mask = (busi_sample / "masks" / f"{OTHER}.png").read_bytes()
    images, masks, label = _busi(busi_sample, tmp_path / "in", good=(), patient_mask=other_mask)
    out = tmp_path / "cases"
    for n in (1, 3):  # more cases asked of one image: still one image, one reason
        res = _simulate(images, masks, out, n)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == USER_ERROR and len(lines) == 1, res.stderr
        assert f"no case could be made from 1 image(s): {label}: its mask: size 528x598 px differs from its " \
            "image's 562x470 px" in lines[0]  # fmt: skip
        assert PATIENT not in res.stderr + res.stdout and "no fitting tract" not in res.stdout
        assert not out.exists()


def test_a_mask_that_is_no_image_is_named_unreadable(busi_sample, tmp_path):
    images, masks, label = _busi(busi_sample, tmp_path / "in", good=(), patient_mask=b"not a png")
    res = _simulate(images, masks, tmp_path / "cases", 1)
    assert res.returncode == USER_ERROR and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"{label}: its mask: unreadable image (" in res.stderr and PATIENT not in res.stderr
    assert not (tmp_path / "cases").exists()


def test_unusable_images_are_counted_once_each_beside_the_cases_made(busi_sample, tmp_path):
    """Six cases from two good images and one bad: the bad image is one skip, and the good ones make
    all six cases (its turns are not spent on it)."""
    images, masks, label = _busi(
        busi_sample, tmp_path / "in", patient_mask=_png(np.zeros((470, 562), np.uint8))
    )
    res = _simulate(images, masks, tmp_path / "cases", 6, check=True)
    lines = res.stdout.strip().splitlines()
    assert (
        lines[0] == f"simulated 6 case(s) in {tmp_path / 'cases'}; skipped 1 image(s): 1 that cannot be used"
    )
    assert lines[1:] == [f"  skipped {label}: its mask holds no lesion (empty lesion mask)"]
    assert sorted(p.name for p in (tmp_path / "cases").iterdir()) == [f"sim_{k:04d}" for k in range(6)]
    assert PATIENT not in res.stdout + res.stderr


def test_a_lesion_no_tract_fits_is_told_apart_from_an_unusable_input(busi_sample, tmp_path):
    """A lesion in the image's corner: readable, but no needle reaches it with the notch inside the
    image. The summary says so, once for the image, and the other images make the cases."""
    corner = np.zeros((470, 562), np.uint8)
    corner[:4, :4] = 255
    images, masks, label = _busi(busi_sample, tmp_path / "in", patient_mask=_png(corner))
    summary = simulate_cases(
        images, masks, tmp_path / "cases", 5, seed=0, params=SimParams(core=CoreParams(mpp=8.0))
    )
    assert len(summary["cases"]) == 5
    sha = sha256_file(images / f"{PATIENT}.png")
    assert [(s["image_sha256"], s["kind"]) for s in summary["skipped"]] == [(sha, NO_TRACT)]
    assert summary["skipped"][0]["reason"].startswith(f"{label}: no tract through the lesion fits")
    assert UNUSABLE not in {s["kind"] for s in summary["skipped"]}


def test_simulate_procedure_refuses_another_images_mask_before_writing(busi_sample, tmp_path):
    root = tmp_path / "spx"
    for part in ("images", "masks"):
        (root / part).mkdir(parents=True)
    image, mask = root / "images" / "malignant_900.png", root / "masks" / "malignant_900.png"
    shutil.copy(busi_sample / "images" / "malignant_002.png", image)
    shutil.copy(busi_sample / "masks" / f"{OTHER}.png", mask)
    out = tmp_path / "clips" / "c.mp4"
    res = sonomap("simulate-procedure", out, "--image", image, check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == USER_ERROR and len(lines) == 1, res.stderr
    assert f"{mask}: size 528x598 px differs from its image's 548x495 px" in lines[0]
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no clip, truth or lesion
