"""Image files are decoded from their bytes (edge_runtime/image_files.py): the same pixels as
cv2.imread, nothing for a file that is missing, empty or not an image, and a path that is not valid
UTF-8 (on which cv2.imread crashes the interpreter) is read, here by the PACS export's case reader
and by simulate-pathology's pre-fire reader."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from captured_cases import write_captured_case

from edge_runtime.image_files import decode_image_file

NOT_UTF8 = os.fsdecode(b"M\xfcller")  # a folder named in Latin-1, as a USB stick from another system has
CHILD_TIMEOUT_S = 120


@pytest.mark.parametrize("flags", [cv2.IMREAD_UNCHANGED, cv2.IMREAD_GRAYSCALE])
def test_the_pixels_are_those_imread_gives(tmp_path, flags):
    image = np.random.default_rng(0).integers(0, 65535, (20, 30), dtype=np.uint16)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), image)
    assert np.array_equal(decode_image_file(path, flags), cv2.imread(str(path), flags))


def test_a_missing_empty_or_foreign_file_decodes_to_nothing(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    for name in ("missing.png", "empty.png", "text.png", "."):
        assert decode_image_file(tmp_path / name) is None, name


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
        "from registration.pacs.captured_case import _png; from registration.sim.pathology import prefire_image; "
        "import numpy as np, yaml; f = Path(sys.argv[1]); "
        "m = _png(f / 'prefire_mask.png', np.uint8); "
        "g = prefire_image(f / 'case.yaml', yaml.safe_load((f / 'case.yaml').read_text())); "
        "print(int(m.sum()), g.shape)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr[-2000:]}"
    assert res.stdout.split()[0] == str(100 * 40)
