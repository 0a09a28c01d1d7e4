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
