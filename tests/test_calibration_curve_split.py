"""`sonomap calibrate --method curve` on a split that cannot carry a curve: one line naming the
dataset, the split and the way out (exit status 2), and the checkpoint's manifest left as it was.
The real command (`tests/cli.py`) on a real checkpoint and a real (tiny) dataset."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
from cli import sonomap
from export_fixtures import shared_checkpoint

from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from training.data import CANCER


def test_a_split_without_margins_on_both_sides_is_one_line_and_keeps_the_manifest(tmp_path):
    ck = tmp_path / "tiny.pt"
    shutil.copy2(shared_checkpoint(), ck)
    save_manifest(load_manifest(shared_checkpoint()), ck)
    before = manifest_path(ck).read_bytes()
    # One val image, uniform white: the tiny model's margin has one sign over its whole decision
    # band (around the labelled lesion), so no curve can keep the mask at logit parity.
    data = tmp_path / "ds"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    cv2.imwrite(str(data / "images" / "a.png"), np.full((200, 240), 255, np.uint8))
    label = np.zeros((200, 240), np.uint8)
    label[80:120, 100:140] = CANCER
    cv2.imwrite(str(data / "labels" / "a.png"), label)
    (data / "cases.csv").write_text("id,case_id,split\na,a,val\n")
    result = sonomap("calibrate", "--checkpoint", ck, "--data", data, "--method", "curve", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sonomap calibrate: error: ")
    assert f"--data {data} split val (1 image)" in lines[0]
    assert "--method temperature" in lines[0] and "larger split" in lines[0]
    assert manifest_path(ck).read_bytes() == before
