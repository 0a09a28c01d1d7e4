"""ROI choice: which area of each raw screen frame is the ultrasound image, before anything is blanked.

Input: every frame of the source, raw (BGR or YUV). Output: the frame's :class:`edge_runtime.roi.Roi`,
also tagged in ``frame.meta["roi"]`` for every later stage (de-identification blanks everything
outside it: :mod:`edge_runtime.pipeline.deidentify`). Auto-detection and its image-likeness checks are
:mod:`edge_runtime.roi` and :mod:`edge_runtime.likeness`; this module decides when to choose again.
"""

from __future__ import annotations

import logging
import math
import threading

from edge_runtime import likeness, roi_edges, yuv
from edge_runtime import roi as rois
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import ConfigError
from edge_runtime.frames import Frame, check_min_size
from edge_runtime.roi import ROI_META_KEY, Roi

log = logging.getLogger("sonomap.privacy")
roi_log = logging.getLogger("sonomap.pipeline")  # the ROI is the pipeline's news, not a privacy event

SCALE_TOLERANCE = 0.01  # scales closer than 1 % agree (rounded in a config or a header)
SCALE_OVERRIDDEN = "roi.mm_per_pixel (--mm-per-pixel) %g ignored: the source gives its own scale, %g mm/px"
FULL_ROI_WARNING = (
    "frame %d: the whole frame is the ultrasound area (%s): only the privacy.blank boxes are blanked, "
    "so a patient name, ID or birth date anywhere on it leaves the process"
)
# While no ROI is decided, auto-detection tries again every this many frames: a try costs about
# 20 ms of the capture thread on a 1080p screen that is not all black (a black one: about 1 ms).
REDETECT_EVERY_FRAMES = 5
# An auto-detected ROI is checked to still look like an image every this many frames, and chosen
# again when not (the operator opened the patient form). Every frame: an unchecked frame would let a
# form shown in the ROI out, and a check costs about 0.3 ms (YUV) or 0.4 ms (BGR) per 1080p frame.
RECHECK_EVERY_FRAMES = 1
# Why a fixed ROI (the operator's rect, ``full`` or a source's default) is undecided on a frame where
# it holds one plain level (:func:`edge_runtime.likeness.plain`): checked on every frame, as cheap as
# the auto-detected ROI's check, so the AI is off from the first such frame and on again from the next
# frame with an image.
NO_IMAGE_IN_FIXED_ROI = "no ultrasound image in the fixed ROI"
# privacy.blank boxes over more than this share of the image area leave too little image for the AI:
# a result on a mostly black ROI would read as "no cancer", so such a frame has no image
MAX_BLANKED_SHARE = 0.5
MOSTLY_BLANKED = "the privacy.blank boxes cover most of the image area"


class RoiChooser:
    """Chooses the ROI of each frame on the raw screen (before any blanking): once on the first frame,
    again on a new size, a new capture session (a re-plugged device may come back with another layout)
    or after :meth:`forget` (a config reload). A frame tagged with its ROI already keeps it.
    ``config``: the runtime config (its ``roi`` section is read at each new choice). A screen with no
    image (card starting, probe lifted, a patient form), or a configured rect that no longer fits after
    a size change, gives an undecided ROI (:func:`edge_runtime.roi.undecided_roi`: whole frame blanked,
    AI off) until a later try decides one; a rect that does not fit the first frame is a ConfigError.
    An auto-detected ROI is chosen again as soon as its content stops looking like an image
    (RECHECK_EVERY_FRAMES) by the lower thresholds a decided ROI keeps to (hysteresis,
    :mod:`edge_runtime.likeness`). A fixed ROI (``roi.rect``, ``full``, a source's default) is never
    re-detected, but is undecided on every frame where it holds one plain level and no image
    (:func:`edge_runtime.likeness.plain`: a lifted probe's black, a blank capture), so that the AI never
    reads ON over nothing. The whole frame as the image is logged as a warning each time it is
    chosen. Every frame of every source passes here, so frames below MIN_FRAME_W x MIN_FRAME_H are
    refused here. Live, threads share one chooser (capture, display, a reload's forget): a lock makes
    each choice and each forget whole."""

    def __init__(self, config: RuntimeConfig):
        self.config = config
        self.roi: Roi | None = None
        self.shape: tuple | None = None  # (H, W) the ROI was chosen for; None: choose again
        self.size: tuple | None = None  # (H, W) of the last frame seen; a reload checks a new rect on it
        self.index = -1  # of the last frame seen (a rejected reload names it)
        self.undecided_frames = 0  # frames blanked whole because no ROI was decided (the summary)
        self._since_try = 0  # frames since the last choice or check
        self._background: tuple[int, int] | None = None  # the screen's (level, floor) while auto-detected
        self._edges: roi_edges.Edges | None = None  # the auto-detected ROI's edges when chosen
        self._fixed: Roi | None = None  # a configured rect (or the source's default) as resolved
        self._blanked_share: tuple | None = None  # (ROI, boxes) -> the share privacy.blank covers
        # Without it a forget landing inside a choice would be lost (the choice, made with the old
        # config, stored after it) and a check could read another choice's half-written fields. Held
        # for a whole choice (a detection: about 20 ms at 1080p); a frame chosen for already skips it.
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Choose again on the next frame; :attr:`roi` stays for a display drawing meanwhile. A choice
        under way ends first, so that it cannot store its ROI over this forget."""
        with self._lock:
            self.shape = None

    def choose(self, frame: Frame) -> Roi:
        if isinstance(frame.meta.get(ROI_META_KEY), Roi):  # chosen before the frame was blanked
            return frame.meta[ROI_META_KEY]
        shape = yuv.frame_shape(frame)
        self._check_size(frame, shape)
        with self._lock:
            self.size, self.index, roi = shape, frame.index, self.roi
            again = roi is None or shape != self.shape or bool(frame.meta.get("session_start"))
            if again or self._due(frame, roi):
                roi = self._choose(frame, shape)
            if self._mostly_blanked(roi):
                roi = rois.undecided_roi(shape[1], shape[0], MOSTLY_BLANKED)
            if roi.undecided:
                self.undecided_frames += 1
        frame.meta[ROI_META_KEY] = roi  # no later stage chooses again for this frame
        return roi

    def _mostly_blanked(self, roi: Roi) -> bool:
        """Whether the config's privacy.blank boxes cover more than MAX_BLANKED_SHARE of ``roi``
        (once per ROI: the share is kept until the ROI or the config changes)."""
        blank = self.config.privacy.blank
        if roi.undecided or not blank or not self.config.privacy.deidentify:
            return False
        key = (roi.as_list(), repr(blank))
        if self._blanked_share is None or self._blanked_share[0] != key:
            self._blanked_share = (key, rois.covered_share(blank, roi))
        return self._blanked_share[1] > MAX_BLANKED_SHARE

    def _due(self, frame: Frame, roi: Roi) -> bool:
        """Whether to choose again within a session: a fixed ROI when it starts or stops holding one
        plain level (every frame), an undecided ROI every REDETECT_EVERY_FRAMES, an auto-detected one
        when its content no longer looks like an image or the image no longer reaches a side it filled
        (:mod:`edge_runtime.roi_edges`: the screen's layout changed), checked on the raw frame."""
        self._since_try += 1
        if self._fixed is not None:  # never re-detected; undecided only while it holds no image
            self._since_try = 0
            return bool(likeness.plain(likeness.roi_sample(frame, self._fixed))) != bool(roi.undecided)
        if roi.undecided:
            return self._since_try >= REDETECT_EVERY_FRAMES
        if self._background is None or self._since_try < RECHECK_EVERY_FRAMES:
            return False
        self._since_try, (level, floor) = 0, self._background
        sample = likeness.roi_sample(frame, roi)
        why = likeness.image_likeness(sample, level, decided=True, floor=floor)
        why = why or roi_edges.emptied(sample, level, self._edges)
        if why:
            roi_log.info("frame %d: the ROI no longer looks like an ultrasound image (%s)", frame.index, why)
        return bool(why)

    def _check_size(self, frame: Frame, shape: tuple) -> None:
        height, width = shape
        name = self.config.source.input or frame.meta.get("source") or "the source"
        check_min_size(width, height, name, frame.index)

    def _choose(self, frame: Frame, shape: tuple) -> Roi:
        r = self.config.roi
        rect, origin = r.rect, "roi.rect"
        auto = rect in (None, "auto")
        if auto and frame.meta.get("default_roi"):
            rect, origin, auto = frame.meta["default_roi"], "the source's default", False  # e.g. a sequence
        # A YUV frame's full-range luma is the gray screen auto-detection looks at (no BGR made).
        if isinstance(frame, yuv.YuvFrame):
            screen = yuv.full_range_luma(yuv.planes(frame.i420)[0])
        else:
            screen = frame.image
        own = frame.meta.get("mm_per_pixel")
        if own and r.mm_per_pixel and not math.isclose(own, r.mm_per_pixel, rel_tol=SCALE_TOLERANCE):
            # the source's calibrated scale (DICOM PixelSpacing, OpenIGTLink, the simulator) wins; said
            # once per choice, so a typed --mm-per-pixel is never dropped unseen
            roi_log.warning(SCALE_OVERRIDDEN, r.mm_per_pixel, own)
        try:
            roi = rois.resolve_roi(rect, screen, own or r.mm_per_pixel)
        except ConfigError as exc:
            if self.roi is None:  # the first frame: the configured rect is wrong, a one-line error
                raise
            # a source that changed its frame size mid-run: the video goes on, blanked, AI off
            roi = rois.undecided_roi(shape[1], shape[0], str(exc))
        self._fixed = roi if not auto and not roi.undecided else None
        if self._fixed is not None and likeness.plain(likeness.roi_sample(frame, roi)):
            roi = rois.undecided_roi(shape[1], shape[0], f"{NO_IMAGE_IN_FIXED_ROI} ({likeness.PLAIN})")
        before, self.roi, self.shape, self._since_try = self.roi, roi, shape, 0
        self._background = rois.screen_background(screen) if auto and not roi.undecided else None
        if self._background is not None:  # the sides the image fills now, checked on every later frame
            self._edges = roi_edges.filled_sides(likeness.sampled_gray(roi.crop(screen)), self._background[0])
        if not roi.undecided and roi.as_list() == [0, 0, shape[1], shape[0]] and roi != before:
            log.warning(FULL_ROI_WARNING, frame.index, origin)
        if roi.undecided and not (before is not None and before.undecided == roi.undecided):
            log.warning(
                "frame %d: %s: the AI is off and outputs get a blank frame until a ROI is decided",
                frame.index,
                roi.undecided,
            )
        elif not roi.undecided and before is not None and before.undecided:
            log.warning("frame %d: ROI %s decided; the AI is on again", frame.index, roi.as_list())
        elif roi != before:
            roi_log.info("ROI %s", roi)
        return roi
