"""The local window: an OpenCV window, optionally fullscreen. It refuses to start without a display
instead of letting the GUI toolkit abort the process. Keys: q/Esc quit, ``a`` switches the AI
off/on, ``b`` marks a biopsy."""

from __future__ import annotations

import os

import cv2
import numpy as np

from edge_runtime.biopsy.marks import MARKS, WINDOW_KEY
from edge_runtime.errors import SonomapError

ESC_KEY = 27
AI_TOGGLE_KEY = ord("a")  # the operator switches the AI off (passthrough, "AI OFF" badge) and on


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink:
    """An OpenCV window (optionally fullscreen). ``quit_requested`` turns true on q/Esc; the
    ``a`` key asks to switch the AI off/on (:meth:`take_ai_toggle`); ``b`` marks a biopsy."""

    def __init__(self, title: str = "sonomap (research use only)", fullscreen: bool = False):
        if not display_available():
            raise SonomapError(
                "no display (DISPLAY/WAYLAND_DISPLAY unset): run without a window (live --headless, "
                "replay without --window, sinks.window: false) or start it in a graphical session"
            )
        self.title = title
        self.quit_requested = False
        self._ai_toggles = 0
        self.shown = 0
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        if fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)

    def write(self, bgr: np.ndarray) -> None:
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ESC_KEY):
            self.quit_requested = True
        elif key == AI_TOGGLE_KEY:
            self._ai_toggles += 1
        elif key == ord(WINDOW_KEY):
            MARKS.request("key")
        self.shown += 1

    def take_ai_toggle(self) -> bool:
        """True once per press of the AI on/off key since the last call."""
        pressed, self._ai_toggles = self._ai_toggles > 0, 0
        return pressed

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
