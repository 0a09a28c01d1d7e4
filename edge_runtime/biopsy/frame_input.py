"""What the capture observer reads off a frame: where its ultrasound image is, and its OpenIGTLink
geometry.

Input: a :class:`~edge_runtime.frames.Frame` (its ``meta``) and the prediction shown with it.
Output: :func:`frame_roi`, the frame's ROI or why none is known; :func:`frame_igtl`, the frame's
OpenIGTLink geometry and transforms as plain lists for case.yaml. Reads and writes nothing else.
"""

from __future__ import annotations

import numpy as np

from edge_runtime.frames import Frame, Prediction
from edge_runtime.roi import ROI_META_KEY, Roi

IGTL_META_KEYS = ("transforms", "ijk_to_world", "igtl_timestamp", "igtl_coordinate_system")
NO_ROI = "the ultrasound image area is not known"


def frame_igtl(meta: dict) -> dict:
    """OpenIGTLink geometry and transforms of a frame, as plain lists (YAML-safe)."""
    out = {}
    for key in IGTL_META_KEYS:
        if meta.get(key) is None:
            continue
        value = meta[key]
        if isinstance(value, dict):
            out[key] = {str(k): np.asarray(v, float).round(6).tolist() for k, v in value.items()}
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = np.asarray(value, float).round(6).tolist()
    return out


def frame_roi(frame: Frame, prediction: Prediction | None) -> tuple[Roi | None, str]:
    """(the ROI of ``frame``'s ultrasound image, "") or (None, why none is known): the frame's own
    tag, else the prediction's ROI; an undecided ROI (no image on the screen) is none."""
    roi = frame.meta.get(ROI_META_KEY)
    if not isinstance(roi, Roi):
        roi = prediction.roi if prediction is not None and isinstance(prediction.roi, Roi) else None
    if roi is None:
        return None, NO_ROI
    if roi.undecided:
        return None, roi.undecided
    return roi, ""
