"""The frame rate a file declares, believed only within the range ``source.fps`` accepts.

A video's average rate or a DICOM cine's CineRate is written by whatever made the file; a damaged or
hostile one may declare 0.001 fps (one frame every 1000 s) or 100000 fps. Taken as written, replay and
``live`` paced the frames by it (``--realtime``: a frame every 1000 s, or the pacing clock restarting
at every frame and playing it unpaced) and the overlay video was written at that rate, so a five-frame
clip lasted over an hour in a player. A rate outside [:data:`MIN_FPS`, :data:`MAX_FPS`] (the range of
``source.fps``: no scanner or capture card delivers less or more) is therefore not the file's rate:
the file plays at the fallback its caller names (``source.fps``, else ``DEFAULT_FPS``), and one warning
says so. The warning names the input by its kind, never its path (which may carry the patient's name).

Input: a declared rate (frames per second; None, 0 or NaN: not given). Output: the rate, or None when
it is not given or not believed; the caller applies its fallback.
"""

from __future__ import annotations

import logging
import math

from edge_runtime.config_schema import MAX_FPS, MIN_FPS

log = logging.getLogger("sonomap.sources")


def believable_fps(declared: float | None, label: str, what: str, fallback: str) -> float | None:
    """``declared`` when it is a rate in [MIN_FPS, MAX_FPS]; None when it is not given (None, 0, NaN)
    or is outside that range, the latter with one warning: ``label`` (the input's kind) ``what`` (the
    attribute that declared it) ... played at ``fallback``."""
    fps = 0.0 if declared is None else float(declared)
    if math.isnan(fps) or fps == 0:
        return None
    if MIN_FPS <= fps <= MAX_FPS:
        return fps
    log.warning(
        "%s: %s declares a frame rate of %.6g fps, outside %s-%s fps; played at %s instead",
        label,
        what,
        fps,
        MIN_FPS,
        MAX_FPS,
        fallback,
    )
    return None
