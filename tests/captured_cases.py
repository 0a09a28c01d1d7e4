"""Test helper: hand-made case folders in the layout `sonomap live/replay --cases` writes
(docs/biopsy-capture.md), without running a replay: ROI PNGs, the live prediction files and a
case.yaml whose pathology section is still empty unless the test fills it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

SHAPE = (120, 200)  # ROI rows, cols
MM_PER_PIXEL = 0.2
PROB_SCALE = 65535


def write_captured_case(
    folder: Path,
    prediction: np.ndarray | None = None,
    model_sha: str = "a" * 64,
    pathology: dict | None = None,
    study_id: str | None = None,
) -> Path:
    """A captured case in ``folder``; ``prediction`` is the live cancer mask (bool, SHAPE)."""
    folder.mkdir(parents=True)
    gray = np.full(SHAPE, 90, np.uint8)
    cv2.imwrite(str(folder / "prefire.png"), gray)
    cv2.imwrite(str(folder / "postfire.png"), gray)
    pred = np.zeros(SHAPE, bool) if prediction is None else prediction
    cv2.imwrite(str(folder / "prefire_mask.png"), pred.astype(np.uint8))
    cv2.imwrite(str(folder / "prefire_prob.png"), np.where(pred, 52000, 6000).astype(np.uint16))
    suffix = folder.name.rsplit("-", 1)[-1]
    capture = {
        "trigger": "fire",
        "number": int(suffix) if suffix.isdigit() else 1,  # the number a capture's folder name ends with
        "roi": [40, 30, SHAPE[1], SHAPE[0]],  # [x, y, w, h]: prefire.png is this crop of the screen
        "model": {"name": "test-model", "file": "model.onnx", "sha256": model_sha},
        "prediction": {
            "frame": 3,
            "prob": "prefire_prob.png",
            "prob_scale": PROB_SCALE,
            "mask": "prefire_mask.png",
            "cancer_class": 1,
        },
    }
    if study_id is not None:
        capture["study_id"] = study_id
    case = {
        "id": folder.name,
        "source": {"kind": "capture"},
        "ultrasound": {"image": "postfire.png", "dataset_image": "prefire.png", "mm_per_pixel": MM_PER_PIXEL},
        "needle": {"tip": [170.0, 60.0], "shaft": [120.0, 60.0], "gauge": 14},
        "capture": capture,
        "pathology": pathology
        or {"wsi": None, "annotations": None, "mpp": None, "tip_end": "left", "shrinkage": None},
    }
    (folder / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    return folder
