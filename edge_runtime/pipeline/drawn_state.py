"""The display's safety rule: the AI state, banner and mask one rendered frame is drawn with, and the
HUD row's values.

Every rendered frame carries the AI's state (:mod:`edge_runtime.aistate`) and a mask only under AI ON,
so that raw video never reads as "no cancer": a mask made for another image (it does not fit the ROI)
is not drawn and AI ON reads LOADING; sonomap's own NO SIGNAL screen is AI OFF with no banner but
its own; a frame whose ROI is undecided is AI OFF with the banner saying why
(:func:`edge_runtime.roi.undecided_status`); every state but ON gets its full-width banner, ERROR
keeping the fail-safe's. :meth:`edge_runtime.pipeline.stages.FrameStages.render` asks this for every
frame and draws what it returns; this calls only the ground floor.

Inputs: the AI's status, the fail-safe banner, the smoothed mask and its age, the frame's ROI and
whether the frame is a NO SIGNAL screen; the run's stats for the HUD. Outputs: (AI status, banner,
mask, mask age); the HUD values. Files: none.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge_runtime.aistate import LOADING, NO_SIGNAL_DETAIL, OFF, ON, WAITING_DETAIL, AiStatus, state_banner
from edge_runtime.roi import Roi, undecided_banner, undecided_status
from edge_runtime.stats import Stats


def decide(
    ai: AiStatus,
    fault: tuple[str, str] | None,
    mask: np.ndarray | None,
    mask_age_ms: float | None,
    roi: Roi,
    no_signal: bool,
) -> tuple[AiStatus, tuple[str, str] | None, np.ndarray | None, float | None]:
    """(AI status drawn, the one banner for it or None, the mask to draw or None, its age) for a frame
    whose AI status, fail-safe banner (``fault``) and smoothed mask are these."""
    if mask is not None and mask.shape[:2] != (roi.h, roi.w):  # made for another image: not drawn,
        mask, mask_age_ms = None, None  # and raw video under AI ON would read as "no cancer"
        ai = replace(ai, state=LOADING, detail=WAITING_DETAIL) if ai.state == ON else ai
    ai = replace(ai, state=OFF, detail=NO_SIGNAL_DETAIL) if no_signal else ai  # nothing for the AI to see
    fault = None if no_signal else state_banner(ai) or fault
    if roi.undecided:  # no image on the screen: AI off, saying why, whatever the schedule passed
        ai, fault = undecided_status(ai), undecided_banner(roi)
    mask = mask if ai.state == ON else None  # every other state's banner says raw ultrasound only
    return ai, fault, mask, mask_age_ms


def hud_values(stats: Stats, mask_age_ms: float | None, show_rec: bool) -> dict:
    """The HUD row's values: fps, backend and device, the mask's age, the recorder's state (``show_rec``:
    a live session's), the backend's latest latency."""
    backend = stats.backend
    hud = {
        "fps": stats.recent_fps(),
        "backend": f"{backend.get('backend', '?')} {backend.get('device', '')}".strip(),
        "mask_age_ms": mask_age_ms,
        "rec": stats.recording if show_rec else "",
    }
    latest = stats.latest("backend")
    if latest is not None:
        hud["latency_ms"] = latest
    return hud
