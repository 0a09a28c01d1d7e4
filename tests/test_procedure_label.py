"""`simulate-procedure --image` on a BUSI-layout image whose name is not BUSI's (a malignant image
saved under the patient's name): whether its lesion is cancer comes from ``index.csv`` beside
images/, and with no label there it is a one-line error naming the image, not a truth that
silently calls the lesion benign."""

from __future__ import annotations

import json
import shutil

from cli import sonomap

RENAMED = "Doe_Jane_1970.png"  # a malignant BUSI image under a name that says nothing of its class
SOURCE = "malignant_002.png"


def _renamed(busi_sample, root):
    for part in ("images", "masks"):
        (root / part).mkdir(parents=True)
        shutil.copy(busi_sample / part / SOURCE, root / part / RENAMED)
    return root / "images" / RENAMED


def test_an_image_of_unknown_class_is_refused_before_anything_is_written(busi_sample, tmp_path):
    image = _renamed(busi_sample, tmp_path / "busi")
    out = tmp_path / "out" / "clip.mp4"
    res = sonomap("simulate-procedure", out, "--image", image, check=False)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(image) in lines[0] and "cancer" in lines[0], res.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_the_index_label_says_the_renamed_image_is_malignant(busi_sample, tmp_path):
    image = _renamed(busi_sample, tmp_path / "busi")
    (tmp_path / "busi" / "index.csv").write_text(f"id,label\n{image.stem},malignant\n")
    out = tmp_path / "clip.mp4"
    sonomap("simulate-procedure", out, "--image", image)
    truth = json.loads(out.with_suffix(".truth.json").read_text())
    assert truth["cancer"] is True
    assert "Doe" not in json.dumps(truth)  # the image by its digest, never its name


def test_an_index_label_is_read_case_aside_and_an_unknown_one_is_refused(busi_sample, tmp_path):
    """A spreadsheet's ``Malignant`` or `` malignant`` is malignant; a label that is not BUSI's
    (``cancer``) or an id labelled twice apart is refused naming the file and line: read as benign, the
    lesion would become no cancer in the truth."""
    image = _renamed(busi_sample, tmp_path / "busi")
    index = tmp_path / "busi" / "index.csv"
    index.write_text(f"id,label\n{image.stem}, Malignant\n")
    sonomap("simulate-procedure", tmp_path / "a.mp4", "--image", image)
    assert json.loads((tmp_path / "a.truth.json").read_text())["cancer"] is True
    for rows, expected in (
        (f"{image.stem},cancer\n", f"{index}:2: label 'cancer' of '{image.stem}' is not one of BUSI's"),
        (
            f"{image.stem},malignant\n{image.stem},benign\n",
            f"{index}:3: '{image.stem}' is labelled benign here",
        ),
    ):
        index.write_text("id,label\n" + rows)
        out = tmp_path / "b" / "clip.mp4"
        res = sonomap("simulate-procedure", out, "--image", image, check=False)
        assert res.returncode == 2 and expected in res.stderr, res.stderr
        assert not out.exists()
