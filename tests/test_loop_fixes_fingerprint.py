"""simulate-procedure's pre-fire fingerprints (truth.json ``fires[].pre_fingerprint``) on real clips:
the frame decoded from the H.264 clip, as a capture's prefire.png holds it, matches its own clip's
fingerprint and not another patient's clip of the same seed, which fires at the same frame numbers."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from registration.sim.procedure import (
    FINGERPRINT_KEY,
    FINGERPRINT_MAX_BITS,
    PROCEDURE,
    fingerprint_distance,
    roi_fingerprint,
    write_procedure_clip,
)

BUSI = Path(__file__).parent / "data" / "busi" / "images"
IMAGES = ("malignant_002", "benign_041")  # two of the loop's patients
ONE_NEEDLE = PROCEDURE[:1]  # one fire keeps the clips short


def _decoded_roi(clip: Path, frame: int, roi: list[int]) -> np.ndarray:
    """The gray ROI of ``frame`` as decoded from the clip (what the capture's prefire.png shows)."""
    video = cv2.VideoCapture(str(clip))
    try:
        video.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = video.read()
    finally:
        video.release()
    assert ok, f"{clip}: frame {frame} not decoded"
    x, y, w, h = roi
    return cv2.cvtColor(bgr[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)


def test_the_decoded_pre_fire_frame_matches_its_own_clip_only(tmp_path):
    clips = {}
    for name in IMAGES:
        clip = tmp_path / f"{name}.mp4"
        write_procedure_clip(clip, procedure=ONE_NEEDLE, image=BUSI / f"{name}.png", truth=True)
        clips[name] = (clip, json.loads(clip.with_suffix(".truth.json").read_text()))
    (a_clip, a_truth), (_, b_truth) = clips[IMAGES[0]], clips[IMAGES[1]]
    (a_fire,), (b_fire,) = a_truth["fires"], b_truth["fires"]
    assert a_fire["pre_index"] == b_fire["pre_index"]  # same seed: the frame number cannot tell them apart
    decoded = roi_fingerprint(_decoded_roi(a_clip, a_fire["pre_index"], a_truth["roi"]))
    assert fingerprint_distance(decoded, a_fire[FINGERPRINT_KEY]) <= FINGERPRINT_MAX_BITS
    assert fingerprint_distance(decoded, b_fire[FINGERPRINT_KEY]) > 3 * FINGERPRINT_MAX_BITS
