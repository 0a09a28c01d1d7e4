"""One case folder per captured biopsy, written on a worker thread (never on the render path).

Input: a :class:`Capture` (the pre-fire and post-fire ROI pixels, the pre-fire prediction, the
detector's seed, where they came from). Output: ``DIR/<UTC timestamp>-<n>/`` holding

- ``prefire.png``  gray ROI, the last frame before the jump: ``ultrasound.dataset_image``;
- ``postfire.png`` gray ROI, the needle lying in the tract: ``ultrasound.image``;
- ``prefire_prob.png`` (16-bit, probability x 65535) and ``prefire_mask.png`` (class ids): the
  live prediction shown with the pre-fire frame;
- ``case.yaml`` in registration's case format, with ``capture:`` (provenance, the source by its kind
  and never its file name: :func:`public_source`; ``study_id``, the session's pseudonymous study ID,
  when one was given) and an empty ``pathology:`` for the lab.

Only ROI pixels are written (the scanner's screen text, which may carry the patient's name, is
outside the ROI). The folder is written under a hidden name and renamed when complete, so a
reader never sees half a case. Layout: docs/biopsy-capture.md.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
import yaml

from edge_runtime import privacy, source_kinds
from edge_runtime.atomic import atomic_write_png
from edge_runtime.biopsy.fire import FireEvent
from edge_runtime.biopsy.needle_fit import NoEcho, fit_needle
from edge_runtime.biopsy.yield_band import band_fraction
from edge_runtime.frames import Prediction

log = logging.getLogger("sonomap.biopsy")
PROB_SCALE = 65535  # prefire_prob.png: uint16 = round(probability * PROB_SCALE)
QUEUE_DEPTH = 8  # captures waiting to be written; more means the disk has stalled
CLOSE_TIMEOUT_S = (
    30.0  # at close: a queue of QUEUE_DEPTH captures (PNG + JSON each) is written well within this
)
# capture.source for a file: the kind the source opener (edge_runtime.sources.opener, a room above
# this one) reads it as, by suffix; the DICOM and sequence kinds are those sources' own names.
CAPTURE_DEVICE = re.compile(r"^(?:/dev/video)?(\d+)$")  # /dev/videoN, or N as --source takes it
PATHOLOGY_TEMPLATE = """\
pathology:                    # for the lab: fill in when the slide comes back
  wsi: null                   # the core's whole slide image (path relative to this folder)
  annotations: null           # the pathologist's annotation (QuPath GeoJSON or ASAP XML)
  mpp: null                   # microns per level-0 pixel, when the slide file has none
  tip_end: left               # slide side nearest the needle-tip end of the core
  shrinkage: null             # slide length / fresh length (or give fresh_length_mm)
"""


@dataclass
class FrameRecord:
    """One observed frame: what a capture needs of it, copied off the render path's buffers."""

    index: int
    pts: float | None
    utc: datetime
    roi_bgr: np.ndarray
    prediction: Prediction | None
    igtl: dict[str, Any] = field(default_factory=dict)


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


def public_source(source: str | None) -> str:
    """What a case records as ``capture.source``: the kind of source, never a file or folder name
    (both often carry the patient's name or record number).

    Input: the source as given to ``live``/``replay`` (a path, a stream URL, a capture device or
    ``synthetic``). Output: a stream URL without user:password, query and fragment;
    ``capture device /dev/videoN``; ``synthetic``; for a path its kind: ``DICOM cine``,
    ``Slicer sequence``, ``PLUS sequence``, ``image file``, ``image folder`` or ``video file``;
    "" when no source is known. Reads nothing but whether a path is a folder."""
    if source is None or str(source) == "":
        return ""
    text = str(source)
    parts = urlsplit(text)
    if parts.scheme and parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    if text == source_kinds.SYNTHETIC:
        return source_kinds.SYNTHETIC
    device = CAPTURE_DEVICE.match(text)
    if device:
        return f"capture device /dev/video{device.group(1)}"
    return source_kinds.path_kind(Path(text))


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _gray(bgr: np.ndarray) -> np.ndarray:
    return bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def case_document(cap: Capture, name: str, post_gray: np.ndarray, prediction_files: dict | None) -> str:
    """case.yaml text for ``cap`` (the needle fitted on ``post_gray``)."""
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

    def frame(r: FrameRecord, image: str) -> dict:
        return {
            "frame": r.index,
            "pts_s": None if r.pts is None else round(float(r.pts), 4),
            "utc": _iso(r.utc),
            "image": image,
        }

    capture: dict[str, Any] = {
        "trigger": cap.trigger,
        "number": cap.number,
        **({} if cap.study_id is None else {"study_id": cap.study_id}),
        "source": public_source(cap.source),
        "roi": cap.roi,
        "pre_fire": frame(cap.pre, "prefire.png"),
        "post_fire": frame(cap.post, "postfire.png"),
        "model": cap.model,
        "prediction": prediction_files,
        "needle_detector": None
        if fit is None
        else {"angle_deg": round(fit.angle_deg, 3), "jump_mm": round(cap.event.jump_mm, 2)},
    }
    band_frame, band = cap.band
    if band is not None:
        # the band where the needle was last found, over the pre-fire frame's own prediction
        fraction = (
            None
            if cap.pre.prediction is None
            else band_fraction(band.polygon, cap.pre.prediction.mask, cap.cancer_class)
        )
        capture["expected_yield"] = {
            "fraction": round(band.fraction if fraction is None else fraction, 4),
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
    note = (
        "# needle: auto - no fire was detected (manual mark), registration detects the needle\n"
        if fit is None
        else ""
    )
    return (
        f"# biopsy case captured by sonomap; complete 'pathology' when the slide is back\n{head}{note}{tail}"
        f"{PATHOLOGY_TEMPLATE}"
    )


def write_case(directory: Path, cap: Capture) -> Path:
    """Write the case folder (see module docstring); returns its path."""
    name = f"{cap.post.utc.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{cap.number}"
    final = directory / name
    partial = directory / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=privacy.PRIVATE_DIR_MODE)
    try:
        pre, post = _gray(cap.pre.roi_bgr), _gray(cap.post.roi_bgr)
        atomic_write_png(partial / "prefire.png", pre)
        atomic_write_png(partial / "postfire.png", post)
        files = None
        p = cap.pre.prediction
        if p is not None:
            atomic_write_png(partial / "prefire_mask.png", p.mask.astype(np.uint8))
            atomic_write_png(
                partial / "prefire_prob.png", np.round(np.clip(p.prob, 0, 1) * PROB_SCALE).astype(np.uint16)
            )
            files = {
                "frame": p.frame.index if p.frame is not None else cap.pre.index,
                "prob": "prefire_prob.png",
                "prob_scale": PROB_SCALE,
                "mask": "prefire_mask.png",
                "cancer_class": cap.cancer_class,
            }
        (partial / "case.yaml").write_text(case_document(cap, name, post, files))
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


class CaseWriter:
    """A worker thread writing :class:`Capture` objects to ``directory`` in order."""

    def __init__(self, directory: str | Path):
        self.directory = privacy.make_private_dir(directory)
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self.written: list[Path] = []
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="biopsy-cases", daemon=True)
        self._thread.start()

    def submit(self, capture: Capture) -> bool:
        try:
            self._queue.put_nowait(capture)
            return True
        except queue.Full:
            self.errors += 1
            log.error(
                "biopsy %d not written: %d cases already wait for the disk", capture.number, QUEUE_DEPTH
            )
            return False

    def _run(self) -> None:
        while True:
            cap = self._queue.get()
            if cap is None:
                return
            try:
                path = write_case(self.directory, cap)
                self.written.append(path)
                log.warning("biopsy %d captured (%s): %s", cap.number, cap.trigger, path)
            except Exception as exc:
                self.errors += 1
                log.error("biopsy %d: writing the case failed: %s", cap.number, exc)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(CLOSE_TIMEOUT_S)
