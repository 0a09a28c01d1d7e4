"""What one capture is, and the ``case.yaml`` text of its case folder.

Input: a :class:`Capture` (the pre-fire and post-fire :class:`FrameRecord`, the fire event or none
for a manual mark, where the frames came from) and the post-fire gray ROI the needle is fitted on.
Output: :func:`case_document`, the text of ``case.yaml`` in registration's case format, with
``capture:`` (provenance, the source by its kind and never its file name: :func:`public_source`) and
an empty ``pathology:`` for the lab. Writes nothing; :mod:`.case_writer` writes the folder.
Layout: docs/biopsy-capture.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import yaml

from edge_runtime.biopsy.fire import FireEvent
from edge_runtime.biopsy.needle_fit import NoEcho, fit_needle
from edge_runtime.biopsy.yield_band import band_fraction
from edge_runtime.frames import Prediction
from edge_runtime.recorded_time import THIS_MACHINE
from edge_runtime.source_kinds import public_source

log = logging.getLogger("sonomap.biopsy")
# capture.source for a file: the kind the source opener (edge_runtime.sources.opener, a room above
# this one) reads it as, by suffix; the DICOM and sequence kinds are those sources' own names.
PATHOLOGY_TEMPLATE = """\
pathology:                    # for the lab: fill in when the slide comes back
  wsi: null                   # the core's whole slide image (path relative to this folder)
  annotations: null           # the pathologist's annotation (QuPath GeoJSON or ASAP XML)
  mpp: null                   # microns per level-0 pixel, when the slide file has none
  tip_end: left               # slide side nearest the needle-tip end of the core
  shrinkage: null             # slide length / fresh length (or give fresh_length_mm)
"""
NO_NEEDLE_NOTE = "# needle: auto - no fire was detected (manual mark), registration detects the needle\n"
NO_PREDICTION_NOTE = (
    "# capture.prediction: null - no AI prediction was shown with the pre-fire frame{state}\n"
)


@dataclass
class FrameRecord:
    """One observed frame: what a capture needs of it, copied off the render path's buffers.
    ``prediction``: the one shown with the frame, None when none was (the AI not ON); ``ai``: the AI
    state drawn on the frame (ON, LOADING, STALLED, ERROR, OFF), None when the pipeline gave none."""

    index: int
    pts: float | None
    utc: datetime
    roi_bgr: np.ndarray
    prediction: Prediction | None
    igtl: dict[str, Any] = field(default_factory=dict)
    ai: str | None = None
    clock: str = THIS_MACHINE  # what ``utc`` was read from: the recording's own time, or this machine's


@dataclass
class Capture:
    number: int
    trigger: str  # fire | key | http | signal
    pre: FrameRecord
    post: FrameRecord
    event: FireEvent | None
    roi: list[int]  # [x, y, w, h] in source pixels
    mm_per_pixel: float | None
    gauge: int
    model: dict[str, str]
    source: str  # as given to live/replay: case.yaml records public_source(source)
    cancer_class: int = 1
    band: tuple = (None, None)  # (frame, yield_band.YieldBand) last computed up to the pre-fire frame
    study_id: str | None = None  # the session's pseudonymous study ID when the capture was made


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _frame(r: FrameRecord, image: str) -> dict:
    out = {
        "frame": r.index,
        "pts_s": None if r.pts is None else round(float(r.pts), 4),
        "utc": _iso(r.utc),
        "utc_from": r.clock,
        "image": image,
    }
    if r.ai is not None:
        out["ai"] = r.ai
    return out


def case_document(cap: Capture, name: str, post_gray: np.ndarray, prediction_files: dict | None) -> str:
    """case.yaml text for ``cap`` (the needle fitted on ``post_gray``); ``name``: the case id (its
    folder's name); ``prediction_files``: ``capture.prediction``, None when no prediction was shown."""
    fit = None
    if cap.event is not None and cap.mm_per_pixel:
        try:
            fit = fit_needle(post_gray, cap.mm_per_pixel, cap.event.point, cap.event.direction, cap.event.tip)
        except NoEcho as exc:  # registration's own detector gets the needle ("auto")
            log.info("capture %d: needle not fitted on the post-fire frame: %s", cap.number, exc)
    needle: Any = (
        {"tip": [round(v, 2) for v in fit.tip], "shaft": [round(v, 2) for v in fit.shaft], "gauge": cap.gauge}
        if fit is not None
        else "auto"
    )
    us = {"image": "postfire.png", "dataset_image": "prefire.png"}
    if cap.mm_per_pixel:
        us["mm_per_pixel"] = round(float(cap.mm_per_pixel), 6)
    capture: dict[str, Any] = {
        "trigger": cap.trigger,
        "number": cap.number,
        **({} if cap.study_id is None else {"study_id": cap.study_id}),
        "source": public_source(cap.source),
        "roi": cap.roi,
        "pre_fire": _frame(cap.pre, "prefire.png"),
        "post_fire": _frame(cap.post, "postfire.png"),
        "model": cap.model,
        "prediction": prediction_files,
        "needle_detector": None
        if fit is None
        else {"angle_deg": round(fit.angle_deg, 3), "jump_mm": round(cap.event.jump_mm, 2)},
    }
    band_frame, band = cap.band
    if band is not None:
        # the band where the needle was last found, over the pre-fire frame's own prediction; with
        # none shown (the AI stalled or off at the fire) there is no yield: the band's own fraction
        # came from an earlier prediction, which the case must not pass off as the pre-fire one
        fraction = (
            None
            if cap.pre.prediction is None
            else band_fraction(band.polygon, cap.pre.prediction.mask, cap.cancer_class)
        )
        capture["expected_yield"] = {
            "fraction": None if fraction is None else round(fraction, 4),
            "needle_frame": band_frame,
            "gauge": cap.gauge,
            "band": np.round(band.polygon, 2).tolist(),
        }
    if cap.pre.igtl or cap.post.igtl:
        capture["igtl"] = {"pre_fire": cap.pre.igtl, "post_fire": cap.post.igtl}
    head = yaml.safe_dump(
        {"id": name, "source": {"kind": "capture"}, "ultrasound": us, "needle": needle},
        sort_keys=False,
        default_flow_style=None,
    )
    tail = yaml.safe_dump({"capture": capture}, sort_keys=False, default_flow_style=None)
    notes = NO_NEEDLE_NOTE if fit is None else ""
    if prediction_files is None:
        notes += NO_PREDICTION_NOTE.format(state="" if cap.pre.ai is None else f" (AI {cap.pre.ai})")
    return (
        f"# biopsy case captured by sonomap; complete 'pathology' when the slide is back\n{head}{notes}{tail}"
        f"{PATHOLOGY_TEMPLATE}"
    )
