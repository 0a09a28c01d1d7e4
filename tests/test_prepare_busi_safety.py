"""`sonomap prepare-busi` writes nothing until every input is checked, and never outside --out: an
index.csv id that is a path is refused naming the line, a bad mask or an image OpenCV cannot read
in a new release leaves an earlier dataset as it was, and a run that fails while writing leaves no
cases.csv (no command loads the folder) rather than old rows over new labels. The real command and
real files: copies of the vendored BUSI sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap
from file_trees import tree_bytes
from PIL import Image

from edge_runtime.case_split import CASES_CSV
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.image_files import NOT_DECODABLE
from training.busi import prepare_busi
from training.data import read_cases


def _release(busi_sample: Path, folder: Path) -> Path:
    busi = folder / "busi"
    shutil.copytree(busi_sample, busi)
    return busi


@pytest.mark.parametrize("bad_id", ["../../victim/evil", "sub/evil", ".."])
def test_an_index_id_that_is_a_path_is_refused_naming_the_line(tmp_path, busi_sample, bad_id):
    busi = _release(busi_sample, tmp_path / "release")
    out = tmp_path / "release" / "ds"
    # the id names a real image and mask (for ../../victim/evil: RELEASE/victim/evil.png, which is
    # also where OUT/images/<id>.png and OUT/labels/<id>.png land), so only the name check stops it
    for sub in ("images", "masks"):
        source = busi / sub / f"{bad_id}.png"
        if bad_id != "..":
            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(busi / sub / "benign_002.png", source)
    index = busi / "index.csv"
    line = index.read_text().count("\n") + 1
    index.write_text(index.read_text() + f"{bad_id},benign,1,1,1,x.png\n")
    before = tree_bytes(tmp_path)
    run = sonomap("prepare-busi", "--busi", busi, "--out", out, check=False)
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{index}:{line}: id {bad_id!r} must be a plain name" in err
    assert not out.exists() and tree_bytes(tmp_path) == before  # nothing written, inside --out or out of it


def test_a_bad_mask_in_a_new_release_leaves_the_earlier_dataset_as_it_was(tmp_path, busi_sample):
    out = tmp_path / "ds"
    prepare_busi(busi_sample, out, seed=0)
    before = tree_bytes(out)
    kept = [s.id for s in read_cases(out)]
    busi = _release(busi_sample, tmp_path / "new")
    # the new release: an early malignant image's lesion mask cut to one pixel (its label would lose
    # its lesion), the last kept image's mask a row short
    first, last = next(sid for sid in kept if sid.startswith("malignant")), kept[-1]
    assert kept.index(first) < kept.index(last)
    mask = cv2.imread(str(busi / "masks" / f"{first}.png"), cv2.IMREAD_GRAYSCALE)
    cut = np.zeros_like(mask)
    cut[0, 0] = 255
    cv2.imwrite(str(busi / "masks" / f"{first}.png"), cut)
    short = cv2.imread(str(busi / "masks" / f"{last}.png"), cv2.IMREAD_GRAYSCALE)[:-1]
    cv2.imwrite(str(busi / "masks" / f"{last}.png"), short)
    with pytest.raises(InputError, match=f"masks/{last}.png: size"):
        prepare_busi(busi, out, seed=0)
    assert tree_bytes(out) == before  # no label of the new release written over the old dataset


def test_a_run_that_fails_while_writing_leaves_no_loadable_dataset(tmp_path, busi_sample):
    out = tmp_path / "ds"
    prepare_busi(busi_sample, out, seed=0)
    kept = [s.id for s in read_cases(out)]
    blocked = out / "labels" / f"{kept[len(kept) // 2]}.png"
    blocked.unlink()
    blocked.mkdir()  # a folder where a label goes: the write fails after earlier labels were replaced
    with pytest.raises(OSError, match=str(blocked)):
        prepare_busi(busi_sample, out, seed=0)
    assert not (out / CASES_CSV).exists()
    with pytest.raises((InputError, ConfigError), match=CASES_CSV):
        read_cases(out)
    blocked.rmdir()
    prepare_busi(busi_sample, out, seed=0)  # a rerun finishes it
    assert [s.id for s in read_cases(out)] == kept


def test_a_left_out_image_opencv_cannot_read_is_one_line_and_the_earlier_dataset_stays(tmp_path, busi_sample):
    """An image filed again under the other label (so left out with its twin) in a format Pillow reads
    and OpenCV does not (PCX bytes under .png): refused naming it before anything is removed or
    written, never a crash while drawing the contact sheet after cases.csv is gone."""
    out = tmp_path / "ds"
    prepare_busi(busi_sample, out, seed=0)
    before = tree_bytes(out)
    busi = _release(busi_sample, tmp_path / "new")
    twin = busi / "images" / "malignant_999.png"
    with Image.open(busi / "images" / "benign_041.png") as image:
        image.convert("L").save(twin, format="PCX")
    assert cv2.imread(str(twin)) is None
    shutil.copy2(busi / "masks" / "benign_041.png", busi / "masks" / "malignant_999.png")
    with open(busi / "index.csv", "a") as index:
        index.write("malignant_999,malignant,550,484,1,x.png\n")
    run = sonomap("prepare-busi", "--busi", busi, "--out", out, check=False)
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.endswith(f"{twin}: unreadable image ({NOT_DECODABLE})"), err
    assert tree_bytes(out) == before


def test_a_malignant_image_whose_mask_marks_no_lesion_is_refused_naming_the_mask(tmp_path, busi_sample):
    """It would be counted malignant yet scored as an image without cancer."""
    busi = _release(busi_sample, tmp_path / "release")
    sid = next(p.stem for p in sorted((busi / "masks").glob("malignant_*.png")))
    mask = busi / "masks" / f"{sid}.png"
    cv2.imwrite(str(mask), np.zeros_like(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)))
    out = tmp_path / "ds"
    run = sonomap("prepare-busi", "--busi", busi, "--out", out, check=False)
    err = run.stderr.strip()
    assert run.returncode == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1] == (
        f"sonomap prepare-busi: error: {mask}: a malignant image whose mask marks no lesion; draw the lesion "
        "or leave the image out"
    )
    assert not out.exists()
