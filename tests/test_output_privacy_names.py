"""Input file and folder names never reach what sonomap writes, logs or prints: `simulate-biopsy`'s
cases, `simulate-procedure`'s truth, the manifests of averaged and ensembled checkpoints, and the
DICOM cine source's INFO line.

Inputs are named after a patient (``DOE_JANE_1970``) with no patient data inside them, so only
keeping the name out passes. Real files, the real command (`tests/cli.py`) or the real functions.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from cli import sonomap
from export_fixtures import tiny_manifest

from edge_runtime.manifest import manifest_path, sha256_file
from edge_runtime.sources.opener import open_source
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases
from training.average import average_checkpoints
from training.checkpoint import read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.ensemble import ensemble_checkpoints
from training.models import build_model

PATIENT = "DOE_JANE_1970"
OTHER = "ROE_RICHARD_1955"
# each part alone, searched in text outputs (binary pixel data may hold any short run by chance)
PARTS = ("DOE", "JANE", "ROE", "RICHARD")
SOURCE_IMAGES = {PATIENT: "malignant_002", OTHER: "malignant_018"}  # vendored BUSI sample stems
TEXT_SUFFIXES = (".yaml", ".json", ".geojson", ".xml")
SIZE = 48
CONFIG = {"arch": "unet_small", "num_classes": 2, "aux": False, "width": 4}


# --- helpers -------------------------------------------------------------------------------------


def patient_images(busi_sample: Path, root: Path, empty_mask: str | None = None) -> tuple[Path, Path]:
    """images/ and masks/ under a folder named after the patient, each image and its mask copied
    under a patient's name; ``empty_mask`` adds an image of that name whose mask holds no lesion."""
    images, masks = root / PATIENT / "images", root / PATIENT / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for name, stem in SOURCE_IMAGES.items():
        shutil.copy(busi_sample / "images" / f"{stem}.png", images / f"{name}.png")
        shutil.copy(busi_sample / "masks" / f"{stem}.png", masks / f"{name}.png")
    if empty_mask:
        shutil.copy(busi_sample / "images" / "malignant_028.png", images / f"{empty_mask}.png")
        gray = cv2.imread(str(images / f"{empty_mask}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(masks / f"{empty_mask}.png"), np.zeros_like(gray))
    return images, masks


def assert_no_name(out: Path, texts: list[str], names: tuple[str, ...]) -> None:
    """No name (in any case) in any path under ``out``, in any file's bytes or in ``texts``; no part
    of one (as written) in a path, a text file's content or ``texts``."""
    for f in out.rglob("*"):
        rel = str(f.relative_to(out))
        assert not any(n.lower() in rel.lower() for n in names), f
        assert not any(p in rel for p in PARTS), f
        if f.is_file():
            blob = f.read_bytes()
            assert not any(n.lower().encode() in blob.lower() for n in names), f
            if f.suffix in TEXT_SUFFIXES:
                assert not any(p.encode() in blob for p in PARTS), f
    for text in texts:
        assert not any(n.lower() in text.lower() for n in names), text
        assert not any(p in text for p in PARTS), text


def _member(folder: Path, seed: int) -> Path:
    """A tiny checkpoint (+ manifest) at FOLDER/best.pt."""
    torch.manual_seed(seed)
    model = build_model("unet_small", 2, width=CONFIG["width"]).eval()
    manifest = tiny_manifest("unet_small", SIZE)
    payload = {"model": model.state_dict(), "model_config": CONFIG, "manifest": manifest.to_dict()}
    return save_checkpoint(payload, folder / "best.pt", manifest)


def _manifest_texts(checkpoint: Path) -> list[str]:
    """The manifest as written beside the checkpoint and as stored inside it."""
    inside = read_checkpoint(checkpoint)["manifest"]
    return [manifest_path(checkpoint).read_text(), json.dumps(inside)]


# --- simulate-biopsy --------------------------------------------------------------------------------


def test_simulate_biopsy_writes_and_prints_no_input_name(busi_sample, tmp_path):
    images, masks = patient_images(busi_sample, tmp_path / "in")
    out = tmp_path / "cases"
    res = sonomap(
        "-v", "simulate-biopsy", "--images", images, "--masks", masks, "--out", out, "--n", 3,
        "--seed", 4, "--wsi-mpp", 8,
    )  # fmt: skip
    made = sorted(p.name for p in out.iterdir())
    assert made == ["sim_0000", "sim_0001", "sim_0002"]
    assert_no_name(out, [res.stdout, res.stderr], (PATIENT, OTHER))
    # the patient is a pseudonym of the image's content: cases from one image stay one patient
    digests = {sha256_file(images / f"{name}.png") for name in SOURCE_IMAGES}
    for case_id in made:
        case = yaml.safe_load((out / case_id / "case.yaml").read_text())
        truth = json.loads((out / case_id / "truth.json").read_text())
        sha = case["source"]["image_sha256"]
        assert sha in digests and truth["image_sha256"] == sha and truth["case_id"] == case["id"] == case_id
        assert case["patient_id"] == f"src-{sha[:12]}"
    patients = [yaml.safe_load((out / c / "case.yaml").read_text())["patient_id"] for c in made]
    assert len(set(patients)) == 2  # three cases from two images: two patients, one of them twice


def test_a_skipped_image_is_named_by_its_content(busi_sample, tmp_path):
    """An image whose mask holds no lesion is skipped; the entry and its reason carry no name."""
    lesionless = "ROE_LESLIE_1961"
    images, masks = patient_images(busi_sample, tmp_path / "in", empty_mask=lesionless)
    out = tmp_path / "cases"
    summary = simulate_cases(images, masks, out, 3, seed=2, params=SimParams(core=CoreParams(mpp=8.0)))
    assert len(summary["cases"]) == 3 and summary["skipped"]
    lesionless_sha = sha256_file(images / f"{lesionless}.png")
    assert {s["image_sha256"] for s in summary["skipped"]} == {lesionless_sha}
    assert all("empty lesion mask" in s["reason"] for s in summary["skipped"])
    texts = [json.dumps(summary["cases"]), json.dumps(summary["skipped"])]
    assert_no_name(out, texts, (PATIENT, OTHER, lesionless))
    assert not any(str(tmp_path / "in") in t for t in texts)


def test_simulate_procedure_names_its_image_by_content(busi_sample, tmp_path):
    images, _masks = patient_images(busi_sample, tmp_path / "in")
    # the lesion's class, which a name like the patient's does not tell, from BUSI's index beside images/
    labels = "".join(f"{name},malignant\n" for name in SOURCE_IMAGES)
    (images.parent / "index.csv").write_text(f"id,label\n{labels}")
    out = tmp_path / "clips" / "procedure.mp4"
    res = sonomap("-v", "simulate-procedure", out, "--image", images / f"{PATIENT}.png")
    assert_no_name(out.parent, [res.stdout, res.stderr], (PATIENT, OTHER))
    truth = json.loads(out.with_suffix(".truth.json").read_text())
    assert truth["image_sha256"] == sha256_file(images / f"{PATIENT}.png")
    assert f"image sha256 {truth['image_sha256'][:12]}" in res.stdout


# --- manifests of checkpoints made from checkpoints -------------------------------------------------


def test_ensemble_and_average_manifests_hold_no_folder_name(busi_dataset, tmp_path):
    members = [_member(tmp_path / PATIENT / "run1", 1), _member(tmp_path / OTHER / "run2", 2)]
    outputs = {
        "ensemble_of": ensemble_checkpoints(members, tmp_path / "ens" / "best.pt"),
        "averaged_from": average_checkpoints(members, busi_dataset, tmp_path / "soup" / "best.pt"),
    }
    for key, checkpoint in outputs.items():
        texts = _manifest_texts(checkpoint)
        for text in texts:
            for hidden in (PATIENT, OTHER, "run1", "run2", str(tmp_path)):
                assert hidden not in text, (key, hidden)
        named = read_checkpoint(checkpoint)["manifest"]["source"][key]
        assert named == [{"checkpoint": "best.pt", "sha256": sha256_file(m)} for m in members], key


# --- the DICOM cine source's log line ---------------------------------------------------------------


def test_the_dicom_cine_logs_its_kind_and_size_not_its_file(tmp_path, caplog):
    pydicom_data = pytest.importorskip("pydicom.data")
    path = tmp_path / PATIENT / f"{PATIENT}.dcm"
    path.parent.mkdir()
    shutil.copy(pydicom_data.get_testdata_file("examples_ybr_color.dcm"), path)
    caplog.set_level(logging.INFO, logger="sonomap.sources")
    source = open_source(str(path))
    assert source.name == "DICOM cine"
    assert "DICOM cine: 30 frame(s) of 320x240" in caplog.text
    assert str(tmp_path) not in caplog.text
    assert not any(part.lower() in caplog.text.lower() for part in (*PARTS, "1970")), caplog.text
