"""Playing a file at its own pace (``replay --realtime``, and ``live`` from a file as a capture card
would deliver it): each frame waits until its time since the first frame has passed.

Input: frames in order, each placed by its recorded ``pts`` (a recorded sequence, ``paced_by_pts``)
or else by ``index / fps``. Output: nothing; :meth:`Pacer.wait` sleeps until the frame is due.

The clock starts again from the current frame when its time goes backwards (a looping file restarted,
a sequence whose recorder's clock was reset): measured from the first start, every later frame would
be late and play unpaced. It starts again too after a forward gap longer than ``MAX_GAP_S`` (a
recording paused, a clock jump): the gap is skipped rather than waited out in front of a frozen frame.
"""

from __future__ import annotations

import time

from edge_runtime.frames import Frame

# A pause between two recorded frames longer than this is skipped. A scanner sends 10-60 frames a
# second, so anything this long is a paused recording, not a slow frame.
MAX_GAP_S = 2.0


class Pacer:
    """Sleeps each frame until it is due (module docstring); ``by_pts``: place frames by their pts."""

    def __init__(self, by_pts: bool):
        self.by_pts = by_pts
        self._start: float | None = None  # monotonic time of the frame at 0 s
        self._last_at: float | None = None  # the previous frame's time (s)

    def due_at(self, frame: Frame, fps: float) -> float:
        """The frame's time in seconds since its file's start."""
        return frame.pts if self.by_pts and frame.pts is not None else frame.index / fps

    def wait(self, frame: Frame, fps: float) -> None:
        at = self.due_at(frame, fps)
        now = time.monotonic()
        last, self._last_at = self._last_at, at
        if self._start is None or last is None or at < last or at - last > MAX_GAP_S:
            self._start = now - at  # first frame, time went backwards, or a gap: start again here
        delay = self._start + at - now
        if delay > 0:
            time.sleep(delay)
