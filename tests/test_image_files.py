"""Image files are decoded from their bytes (edge_runtime/image_files.py): the same pixels as
cv2.imread, an error naming the file and why for a file that is missing, empty or not an image, and a
path that is not valid UTF-8 (on which cv2.imread crashes the interpreter) is read: by the PACS
export's case reader, simulate-pathology's pre-fire reader, the training dataset and prepare-busi."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from captured_cases import write_captured_case

from edge_runtime.errors import InputError
from edge_runtime.image_files import EMPTY, NOT_DECODABLE, UnreadableImage, read_image

NOT_UTF8 = os.fsdecode(b"M\xfcller")  # a folder named in Latin-1, as a USB stick from another system has
CHILD_TIMEOUT_S = 120


@pytest.mark.parametrize("flags", [cv2.IMREAD_UNCHANGED, cv2.IMREAD_GRAYSCALE])
def test_the_pixels_are_those_imread_gives(tmp_path, flags):
    image = np.random.default_rng(0).integers(0, 65535, (20, 30), dtype=np.uint16)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), image)
    assert np.array_equal(read_image(path, flags), cv2.imread(str(path), flags))


def test_a_missing_empty_or_foreign_file_is_an_input_error_naming_it_and_why(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    reasons = {
        "missing.png": "No such file or directory",
        "empty.png": EMPTY,
        "text.png": NOT_DECODABLE,
        ".": "Is a directory",
    }
    for name, reason in reasons.items():
        with pytest.raises(UnreadableImage) as err:
            read_image(tmp_path / name)
        assert isinstance(err.value, InputError)  # the CLI prints it as one line
        assert str(err.value).startswith(f"{tmp_path / name}: unreadable image"), str(err.value)
        assert reason in err.value.reason and str(tmp_path) not in err.value.reason


def test_a_captured_case_in_a_folder_not_named_in_utf8_is_read(tmp_path):
    mask = np.zeros((100, 200), bool)
    mask[:, 50:90] = True
    written = tmp_path / "utf8" / "case-1"
    write_captured_case(written, mask, "a" * 64)  # OpenCV writes it here; then the folder is renamed
    (tmp_path / "utf8").rename(tmp_path / NOT_UTF8)
    folder = tmp_path / NOT_UTF8 / "case-1"
    # in a child: OpenCV given such a path crashes the interpreter, which would end this test run
    code = (
        "import sys; from pathlib import Path; "
        "from registration.pacs.case_images import case_png; from registration.sim.pathology import prefire_image; "
        "import numpy as np, yaml; f = Path(sys.argv[1]); "
        "m = case_png(f, 'prefire_mask.png', 'capture.prediction.mask', np.uint8); "
        "g = prefire_image(f / 'case.yaml', yaml.safe_load((f / 'case.yaml').read_text())); "
        "print(int(m.sum()), g.shape)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr[-2000:]}"
    assert res.stdout.split()[0] == str(100 * 40)


def test_prepare_busi_and_the_training_reader_read_a_release_in_a_folder_not_named_in_utf8(
    tmp_path, busi_sample
):
    release = tmp_path / NOT_UTF8 / "busi"
    shutil.copytree(busi_sample, release)
    # in a child, as above; prepare-busi reads the images and masks, the training reader the dataset
    code = (
        "import sys; from pathlib import Path; from training.busi import prepare_busi; "
        "from training.data import read_cases, read_pair; src = Path(sys.argv[1]); out = src.parent / 'ds'; "
        "prepare_busi(src, out, seed=0); pairs = [read_pair(s) for s in read_cases(out)]; "
        "print(len(pairs), sum(int(label.any()) for _, label in pairs))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(release)], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr[-2000:]}"
    n_images, n_with_cancer = map(int, res.stdout.split())
    assert n_images > 0 and 0 < n_with_cancer < n_images
