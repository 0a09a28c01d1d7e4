"""A live Source that survives its device: reconnect with backoff, "NO SIGNAL" meanwhile.

``ResilientSource(open_source)`` wraps any live source factory (V4L2 capture card,
RTSP stream, ...). While the inner source delivers, its frames pass through (re-indexed
so the stream stays monotonic). When opening fails, reading raises, or the stream ends
(for a live device that means it was unplugged), it

1. logs a warning and counts ``source_lost`` in service_metrics.EVENTS,
2. yields a rendered "NO SIGNAL" frame (``meta["no_signal"] = True``) at
   ``no_signal_fps`` so the display, /healthz and STATUS= show what happened,
3. retries opening after 0.5 s, 1 s, 2 s, ... capped at ``max_backoff_s``; a delivered
   frame resets the backoff.

Frames that are not a BGR uint8 (H, W, 3) image of the size the stream started with
(corrupt or truncated reads) are skipped with a counted warning (``corrupt_input``).
The first frame of each connection carries ``meta["session_start"] = True`` (the live
schedule re-detects the ROI then: a re-plugged device may come back at another size).
:func:`edge_runtime.sources.opener.reconnecting_source` wraps the configured device or stream.
``name`` names the source in the log lines and on the NO SIGNAL screen: its kind
(``capture device /dev/video0``) or a stream URL without ``user:password@``, never a file name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from edge_runtime import privacy
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.frames import MIN_FRAME_H, MIN_FRAME_W, Frame, Source
from edge_runtime.live_stats import EVENTS
from edge_runtime.sources.corrupt import CorruptCounter

log = logging.getLogger("sonomap.resilient")

INITIAL_BACKOFF_S = 0.5  # a re-plugged capture card is usually back within a second
MAX_BACKOFF_S = 10.0  # a device away for long is still found within 10 s of its return
BACKOFF_FACTOR = 2.0
NO_SIGNAL_FPS = 10.0  # enough for the display and /healthz to stay alive; no CPU wasted on a still screen
DEFAULT_SIZE = (720, 1280)  # (H, W) of the NO SIGNAL screen before any frame was seen
MAX_REASON_CHARS = 80  # what fits on a 640-pixel-wide NO SIGNAL screen
TEXT_COLOUR = (255, 255, 255)
TITLE_COLOUR = (0, 200, 255)  # amber: a warning, and never a colour the overlay paints
NO_SIGNAL_TITLE = "NO SIGNAL"
NO_SIGNAL_FONT = cv2.FONT_HERSHEY_SIMPLEX
NO_SIGNAL_GREY = 24  # near-black, but not black: the screen is visibly alive, not a dead monitor
DESIGN_WIDTH_PX = 640  # the layout below is drawn for this width and scaled with the frame
MIN_TEXT_SCALE = 0.5  # narrower frames keep this scale: smaller text no longer reads
TITLE_SCALE = 2.0  # the title reads from across the room (x the width scale)
TITLE_THICKNESS = 3.0  # x the width scale; at least MIN_TITLE_THICKNESS
MIN_TITLE_THICKNESS = 2
LINE_SCALE = 0.6  # status lines: the HUD's size (x the width scale)
LINE_STEP_PX = 40  # from one line's baseline to the next (x the width scale)
LINE_INDENT_DIVISOR = 10  # status lines start a tenth of the width in
MIN_INDENT_PX = 4


def render_no_signal(height: int, width: int, lines: list[str]) -> np.ndarray:
    """A dark BGR frame with a large "NO SIGNAL" title and smaller status lines."""
    img = np.full((height, width, 3), NO_SIGNAL_GREY, np.uint8)
    scale = max(MIN_TEXT_SCALE, width / DESIGN_WIDTH_PX)
    thickness = max(MIN_TITLE_THICKNESS, int(TITLE_THICKNESS * scale))
    (tw, _), _ = cv2.getTextSize(NO_SIGNAL_TITLE, NO_SIGNAL_FONT, TITLE_SCALE * scale, thickness)
    y = height // 2
    cv2.putText(
        img,
        NO_SIGNAL_TITLE,
        ((width - tw) // 2, y),
        NO_SIGNAL_FONT,
        TITLE_SCALE * scale,
        TITLE_COLOUR,
        thickness,
        cv2.LINE_AA,
    )
    for line in lines:
        y += int(LINE_STEP_PX * scale)
        cv2.putText(
            img,
            line,
            (max(MIN_INDENT_PX, width // LINE_INDENT_DIVISOR), y),
            NO_SIGNAL_FONT,
            LINE_SCALE * scale,
            TEXT_COLOUR,
            max(1, int(scale)),
            cv2.LINE_AA,
        )
    return img


class ResilientSource(Source):
    live = True

    def __init__(
        self,
        open_source: Callable[[], Source],
        name: str = "capture",
        *,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        no_signal_fps: float = NO_SIGNAL_FPS,
        size: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        fail_first_open: bool = False,
    ):
        self.open_source = open_source
        self.name = name
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.no_signal_interval_s = 1.0 / no_signal_fps
        self.size = size  # (H, W) of the NO SIGNAL screen: the last good frame's
        self.clock, self.sleep = clock, sleep
        # True: a device that cannot be opened at all at start-up is an error (a typo'd device at a
        # terminal); False (under systemd): wait for it behind NO SIGNAL (scanner switched on later).
        self.fail_first_open = fail_first_open
        self.reconnects = 0
        self.losses = 0
        self.corrupt = CorruptCounter(name)
        self._inner: Source | None = None
        self._last_inner: Source | None = None
        self._closed = False
        self._down = False  # lost, and no frame came since

    def _valid(self, frame: Frame, expected: tuple[int, int] | None) -> bool:
        img = frame.image
        ok = (
            isinstance(img, np.ndarray)
            and img.dtype == np.uint8
            and img.ndim == 3
            and img.shape[2] == 3
            and img.shape[0] >= MIN_FRAME_H  # a device's tiny frame is a glitch: skipped, not fatal
            and img.shape[1] >= MIN_FRAME_W
        )
        if ok and expected is not None and img.shape[:2] != tuple(expected):
            ok = False  # a truncated read: the device's size is fixed while it is connected
        if ok:
            self.corrupt.ok()
        else:
            self.corrupt.skip(
                f"frame {frame.index}",
                f"shape {getattr(img, 'shape', None)}, dtype {getattr(img, 'dtype', None)}",
            )
        return ok

    @property
    def skipped(self) -> int:
        return self.corrupt.skipped

    def _lost(self, reason: str) -> None:
        self.losses += 1
        self._down = True
        EVENTS.inc("source_lost")
        log.warning("%s: signal lost (%s); showing NO SIGNAL and reconnecting", self.name, reason)
        if self._inner is not None:
            self._inner.close()
            self._inner = None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        backoff = self.initial_backoff_s
        reason = ""
        if self.fail_first_open:  # outside the try: an error here propagates (nothing shown yet)
            self._inner = self._last_inner = self.open_source()
        # A stream (RTSP, OpenIGTLink) connects on its first read, not when opened: at a terminal a
        # refused first connection is the same one-line error as a device that cannot be opened.
        must_deliver = self.fail_first_open
        while not self._closed:
            try:
                if self._inner is None:
                    self._inner = self._last_inner = self.open_source()
                session_size = None  # a re-plugged device may come back at another size
                for frame in self._inner:
                    if self._closed:
                        return
                    if not self._valid(frame, session_size):
                        continue
                    if session_size is None:
                        frame.meta["session_start"] = True
                        if self._down:  # back once a frame came: an open alone may fail again at once
                            self._down = False
                            self.reconnects += 1
                            EVENTS.inc("source_reconnect")
                            log.warning("%s: reconnected after %d loss(es)", self.name, self.losses)
                    session_size = self.size = frame.image.shape[:2]
                    backoff = self.initial_backoff_s
                    must_deliver = False
                    frame.index = index
                    index += 1
                    yield frame
                reason = "stream ended"
            except (SonomapError, OSError, cv2.error) as exc:
                reason = privacy.redact(str(exc))  # drawn on the NO SIGNAL screen: no credentials
            if self._closed:
                return
            if must_deliver:
                said = reason if reason.startswith(self.name) else f"{self.name}: {reason}"
                raise InputError(
                    f"{said} before its first frame; is the source running and the address right?"
                )
            self._lost(reason)
            # Down: show NO SIGNAL until the next attempt, then try again with a longer wait.
            retry_at = self.clock() + backoff
            attempt_wait = backoff
            backoff = min(self.max_backoff_s, backoff * BACKOFF_FACTOR)
            while not self._closed:
                now = self.clock()
                h, w = self.size or DEFAULT_SIZE
                left = max(0.0, retry_at - now)
                img = render_no_signal(h, w, self.screen_lines(reason, left, attempt_wait))
                yield Frame(index, img, now, None, {"no_signal": True, "source": self.name})
                index += 1
                if left <= 0:
                    break
                self.sleep(min(self.no_signal_interval_s, left))

    def screen_lines(self, reason: str, left_s: float, wait_s: float) -> list[str]:
        """The status lines under NO SIGNAL (credentials and registered identifiers redacted)."""
        return [
            privacy.redact(f"{self.name}: {reason}")[:MAX_REASON_CHARS],
            f"reconnecting in {left_s:.1f} s (waiting {wait_s:.1f} s)",
        ]

    @property
    def fps(self) -> float:
        """The device's frame rate once connected (0 = unknown: the pipeline uses its default)."""
        return float(getattr(self._last_inner, "fps", 0) or 0)

    def close(self) -> None:
        self._closed = True
        if self._inner is not None:
            self._inner.close()
            self._inner = None
