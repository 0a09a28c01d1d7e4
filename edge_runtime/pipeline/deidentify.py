"""De-identification stage: only the ultrasound area (and sonomap's own drawing) leaves the process.

Scanners burn the patient's name, ID and date of birth into their screen, outside the image. Every
frame therefore passes this stage before any other stage sees it (:class:`DeidentifiedSource` wraps the
pipeline's source): the ROI is chosen on the raw screen, then everything outside it is blanked (black)
in place; a screen with no ROI decided (no image on it) is blanked whole. Inference, overlay,
recordings (overlay and raw), replay output, mask dumps, the HTTP viewer and snapshot, and OpenIGTLink
images all start from the blanked frame; the HUD, legend and banners are drawn afterwards, so they stay.

The local window is the exception: it is the operator's view in the procedure room, where the scanner
shows the same screen, and it must never hide part of the image because an ROI was chosen too tight.
With a window, the raw screen travels in ``meta["screen"]`` until the overlay stage draws the window's
own copy from it (:func:`render_for_window`); nothing else ever reads it.

Config section ``privacy`` (boxes are ``[x, y, w, h]`` in screen pixels of the source):

- ``blank``: boxes blanked even inside the ROI (scanners that print initials on the image);
- ``keep``: boxes kept outside the ROI (a depth scale). ``blank`` wins where they overlap;
- ``deidentify: false``: the explicit opt-out; every start logs a warning.

Frames sonomap draws itself (the NO SIGNAL screen) pass unchanged. Each frame carries the ROI it was
blanked for in ``meta["roi"]``, so later stages never re-detect it on the blanked screen, and the
``blank`` boxes inside the ROI in ``meta["blanked"]``: :func:`clear_blanked` removes the prediction
there, since a black box is no tissue and must not come out as an overlay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np

from edge_runtime import roi as rois
from edge_runtime import yuv
from edge_runtime.config_schema import PrivacyConfig, RuntimeConfig
from edge_runtime.frames import Frame, Source
from edge_runtime.roi import ROI_META_KEY, Rect, Roi

log = logging.getLogger("sonomap.privacy")

BLANKED_META_KEY = "blanked"
SCREEN_META_KEY, WINDOW_META_KEY = "screen", "window_image"
BLACK_BGR = 0
OPT_OUT_WARNING = (
    "privacy.deidentify is false: recordings, replay output, the HTTP viewer and snapshots "
    "carry the whole scanner screen, including any patient name, ID or birth date it shows"
)


def blank_bgr(image: np.ndarray, rects: list[Rect]) -> None:
    for x0, y0, x1, y1 in rects:
        image[y0:y1, x0:x1] = BLACK_BGR


def blank_i420(i420: np.ndarray, rects: list[Rect]) -> None:
    """Blank in the I420 planes: luma to video black, chroma to neutral. A chroma sample shared with a
    kept pixel at an odd edge is blanked too (blanking wins)."""
    y_plane, u_plane, v_plane = yuv.planes(i420)
    for x0, y0, x1, y1 in rects:
        y_plane[y0:y1, x0:x1] = yuv.Y_BLACK
        cy0, cy1, cx0, cx1 = y0 // 2, (y1 + 1) // 2, x0 // 2, (x1 + 1) // 2
        u_plane[cy0:cy1, cx0:cx1] = yuv.UV_NEUTRAL
        v_plane[cy0:cy1, cx0:cx1] = yuv.UV_NEUTRAL


class ScreenBlanker:
    """Blanks frames for one ``privacy`` config; rectangles are computed once per (size, ROI)."""

    def __init__(self, privacy: PrivacyConfig):
        self.blank = [tuple(b) for b in privacy.blank]
        self.keep = [tuple(k) for k in privacy.keep]
        self._cache: tuple | None = None

    def rects(self, shape: tuple[int, int], roi: Roi) -> tuple[list[Rect], list[Rect]]:
        """(screen rectangles to blank, ``blank`` boxes inside the ROI in ROI coordinates)."""
        key = (tuple(shape), roi.as_list(), roi.undecided)
        if self._cache is None or self._cache[0] != key:
            if roi.undecided:  # no image area decided: nothing of the screen leaves the process
                self._cache = (key, ([(0, 0, shape[1], shape[0])], []))
                return self._cache[1]
            inside = [rois.clip_box((x - roi.x, y - roi.y, w, h), roi.w, roi.h) for x, y, w, h in self.blank]
            inside = [r for r in inside if r[0] < r[2] and r[1] < r[3]]
            self._cache = (key, (rois.blank_rects(shape, roi, self.blank, self.keep), inside))
        return self._cache[1]

    def apply(self, frame: Frame, roi: Roi) -> Frame:
        """Blank ``frame`` in place (a read-only image is copied first) and tag it with ``roi``."""
        shape = yuv.frame_shape(frame)
        rects, inside = self.rects(shape, roi)
        if rects and isinstance(frame, yuv.YuvFrame):
            blank_i420(frame.i420, rects)
            converted = frame.converted_image()  # e.g. a live source checked the frame in BGR already
            if converted is not None:
                blank_bgr(converted, rects)
        elif rects:
            image = frame.image
            if not image.flags.writeable:  # e.g. a buffer straight from a network message
                image = frame.image = image.copy()
            blank_bgr(image, rects)
        frame.meta[ROI_META_KEY] = roi
        if inside:
            frame.meta[BLANKED_META_KEY] = inside
        return frame


def clear_blanked(prediction, frame: Frame | None) -> None:
    """Zero the prediction (mask and probability) inside the frame's blanked boxes of the ROI."""
    boxes = frame.meta.get(BLANKED_META_KEY) if frame is not None else None
    if boxes:
        prediction.zero_boxes(boxes)


class DeidentifiedSource(Source):
    """Wraps a source: every frame it yields is blanked for the ROI ``choose_roi`` picks on the raw frame
    (:meth:`edge_runtime.pipeline.roi_chooser.RoiChooser.choose`)."""

    def __init__(
        self,
        inner: Source,
        privacy: PrivacyConfig,
        choose_roi: Callable[[Frame], Roi],
        keep_screen: bool = False,
    ):
        self.inner = inner
        self.blanker = ScreenBlanker(privacy)
        self.choose_roi = choose_roi
        self.keep_screen = keep_screen  # a local window shows the whole screen

    @property
    def live(self) -> bool:
        return self.inner.live

    def __getattr__(self, name: str):  # name, fps, reconnect counters ... of the wrapped source
        if name == "inner":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.inner:
            if frame.meta.get("no_signal"):  # sonomap's own NO SIGNAL screen: nothing of the patient on it
                yield frame
                continue
            roi = self.choose_roi(frame)
            if self.keep_screen:
                frame.meta[SCREEN_META_KEY] = frame.image.copy()
            yield self.blanker.apply(frame, roi)

    def close(self) -> None:
        self.inner.close()


def wrap(source: Source, config: RuntimeConfig, choose_roi: Callable[[Frame], Roi]) -> Source:
    """``source`` de-identified for the runtime ``config``, or as it is (with the opt-out warning) when
    ``privacy.deidentify`` is off."""
    privacy = config.privacy
    if not privacy.deidentify:
        log.warning(OPT_OUT_WARNING)
        return source
    return DeidentifiedSource(source, privacy, choose_roi, keep_screen=bool(config.sinks.window))


def render_for_window(frame: Frame, render: Callable[[np.ndarray], np.ndarray]) -> None:
    """Draw the window's copy (``render(raw screen)``) when the frame kept its raw screen for it."""
    screen = frame.meta.pop(SCREEN_META_KEY, None)
    if screen is not None:
        frame.meta[WINDOW_META_KEY] = render(screen)


def window_image(frame: Frame, rendered: np.ndarray) -> np.ndarray:
    """What the local window shows for ``frame``: its whole-screen copy, else the rendered frame."""
    return frame.meta.pop(WINDOW_META_KEY, rendered)
