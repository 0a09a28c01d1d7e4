"""The run's outputs besides the recorders' frame writes: each rendered frame handed to the observers
(HTTP viewer, watchdog, OpenIGTLink, biopsy capture), and the recorders finalised at the end.

Input: the observers and one frame (raw, rendered, the prediction drawn on it, the AI state drawn on
it); the recorders :func:`edge_runtime.sinks.writers.open_sinks` opened (name -> sink). Output: each
observer's ``on_frame``; the recorders closed, what they dropped and why they failed. An observer's
error is counted in the stats, never raised: the display goes on. Used by
:class:`edge_runtime.pipeline.stages.FrameStages` (``deliver``, ``close_outputs``), whose own
``deliver`` writes each frame to the recorders (a replayed frame's path enters no file for this).
"""

from __future__ import annotations

import numpy as np

from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.stats import Stats


def notify_observers(
    observers: list[Observer],
    frame: Frame,
    prediction: Prediction | None,
    rendered: np.ndarray,
    stats: Stats,
    ai: dict,
) -> None:
    """``frame`` -> every observer, with a snapshot of ``stats`` whose ``ai`` is ``ai`` (the AI state
    drawn on the frame, :meth:`edge_runtime.aistate.AiStatus.as_dict`)."""
    snapshot = None
    for observer in observers:
        try:
            if snapshot is None:
                snapshot = {**stats.snapshot(), "ai": ai}
            observer.on_frame(frame, prediction, rendered, snapshot)
        except Exception as exc:  # an observer's failure never stops the display
            _count(stats, observer, "on_frame", exc)


def observer_banners(observers: list[Observer], frame: Frame, ai: str, stats: Stats) -> list[tuple[str, str]]:
    """The banners every observer asks to draw on ``frame`` with the AI in state ``ai`` (e.g. a
    capture toast). An observer that fails is counted in the stats and adds none: the frame is
    drawn all the same."""
    out: list[tuple[str, str]] = []
    for observer in observers:
        try:
            out += observer.banners(frame, ai)
        except Exception as exc:  # an observer's failure never stops the display
            _count(stats, observer, "banners", exc)
    return out


def draw_observers(
    observers: list[Observer], frame: Frame, image: np.ndarray, roi, ai: str, stats: Stats
) -> None:
    """Every observer's drawing on ``image``, the rendered frame or the window's copy of it (e.g. the
    band a biopsy will sample), with the AI in state ``ai``. An observer that fails is counted in the
    stats and draws nothing more."""
    for observer in observers:
        try:
            observer.draw(frame, image, roi, ai)
        except Exception as exc:  # an observer's failure never stops the display
            _count(stats, observer, "draw", exc)


def _count(stats: Stats, observer: Observer, call: str, exc: Exception) -> None:
    stats.sink_errors += 1
    stats.last_error = f"observer {type(observer).__name__}.{call}: {exc}"


def dump_masks(
    sink, frame: Frame, pixels: np.ndarray, prediction: Prediction | None, dumped: Prediction | None
) -> Prediction | None:
    """``--save-masks``: ``frame``'s ROI ``pixels``, with a mask only when ``prediction`` was computed on
    this frame. Live ``latest`` draws the newest prediction on the frames after the one it was computed
    on: such a prediction is written once (``dumped``: the one written last), under the index of its own
    frame with that frame's ROI, so every ``<index>_mask.png`` lies beside the image it was computed on
    and a frame's row never shows another frame's finding. Returns the prediction written last."""
    own = prediction is not None and (prediction.frame is None or prediction.frame is frame)
    sink.write(frame.index, pixels, prediction.mask if own else None)
    if prediction is None or own or prediction is dumped:
        return prediction if own else dumped
    made_on, roi = prediction.frame, prediction.roi
    sink.write(made_on.index, roi.crop(made_on.image), prediction.mask)
    return prediction


def close_recorders(sinks: dict, failed: dict[str, str]) -> int:
    """Finalise every recorder in ``sinks``; returns the frames live recorders dropped (they drop rather
    than stall the display). A recorder that failed is named in ``failed`` with its error."""
    dropped = 0
    for name, sink in sinks.items():
        sink.close()  # finalised first: only then does ``error`` hold all that failed
        dropped += getattr(sink, "dropped", 0)
        if sink.error is not None:
            failed[name] = str(sink.error)
    return dropped
