"""What the capture tells the operator on screen: the toasts of the capture observer.

Input: the capture book's events (:meth:`Notices.captured`, :meth:`Notices.refused`) and, on every frame
path and render path, the case writer's state (:meth:`Notices.poll`). Output: :meth:`Notices.active`,
the (level, text) banners of a frame:

- ``BIOPSY n CAPTURED`` (grey, TOAST_FRAMES) once a capture is queued for writing;
- ``BIOPSY n NOT SAVED: why`` (warning, WARNING_FRAMES) when the writer reports it failed; the
  CAPTURED toast of that capture goes;
- ``BIOPSY n NOT SAVED YET: ...`` (warning) while a queued case has waited more than the writer's
  STALL_S on the disk (a hung network mount, a frozen file system): the write neither ends nor
  fails, so without it the screen would go on saying CAPTURED for a case that is not on disk;
- ``BIOPSY NOT CAPTURED: why`` (warning) for a mark refused.
"""

from __future__ import annotations

import logging
import threading

from edge_runtime.biopsy.case_writer import STALL_S, CaseWriter, NotWritten
from edge_runtime.biopsy.toasts import INFO, WARNING, Toasts

log = logging.getLogger("sonomap.biopsy")
TOAST_FRAMES = 60  # about 2 s at 30 fps
WARNING_FRAMES = 300  # about 10 s: a biopsy not saved must not pass unseen
TOAST = "BIOPSY {n} CAPTURED"
NOT_SAVED = "BIOPSY {numbers} NOT SAVED: {reason}"
NOT_SAVED_YET = "BIOPSY {numbers} NOT SAVED YET: the disk has not answered for {seconds:.0f} s"
NOT_CAPTURED = "BIOPSY NOT CAPTURED: {why}"
CAPTURED_KEY, NOT_SAVED_KEY, WAITING_KEY, REFUSED_KEY = "captured", "not saved", "waiting", "refused"
UNTIL_DROPPED = 1 << 40  # frames: a NOT SAVED YET toast stays until the disk answers
LISTED_NUMBERS = 4  # a NOT SAVED toast names this many biopsies, then how many more


def listed(numbers: list[int]) -> str:
    """``numbers`` as a toast names them: the first LISTED_NUMBERS, then how many more."""
    shown = ", ".join(str(n) for n in numbers[:LISTED_NUMBERS])
    more = len(numbers) - LISTED_NUMBERS
    return shown if more <= 0 else f"{shown} and {more} more"


class Notices:
    """The toasts of one capture session, fed from the frame path and the render path (a lock)."""

    def __init__(self, writer: CaseWriter) -> None:
        self.writer = writer
        self.toasts = Toasts()
        self._toasted = 0  # the capture the CAPTURED toast names
        self._unsaved: list[NotWritten] = []  # named by the NOT SAVED toast
        self._waiting: tuple[int, ...] = ()  # named by the NOT SAVED YET toast
        self._lock = threading.Lock()  # poll runs on the frame and render paths

    def captured(self, number: int, index: int) -> None:
        """Capture ``number`` was queued on frame ``index``. Called under :attr:`lock` with the
        submit, so a failure of it polled on the render path comes after this toast."""
        self._toasted = number
        self.toasts.show(CAPTURED_KEY, INFO, TOAST.format(n=number), index, TOAST_FRAMES)

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def refused(self, why: str, index: int) -> None:
        """A mark refused (not captured) because ``why``, shown from frame ``index`` on."""
        self.toasts.show(REFUSED_KEY, WARNING, NOT_CAPTURED.format(why=why), index, WARNING_FRAMES)

    def poll(self, index: int) -> None:
        """Show, from frame ``index``, the captures the writer could not write and those it has
        waited on the disk for more than STALL_S."""
        with self._lock:
            misses = self.writer.take_failures()
            if misses:
                if any(m.number == self._toasted for m in misses):
                    self.toasts.drop(CAPTURED_KEY)  # it said CAPTURED: it must not stay beside NOT SAVED
                showing = self.toasts.showing(NOT_SAVED_KEY, index)
                self._unsaved = [*self._unsaved, *misses] if showing else misses
                text = NOT_SAVED.format(
                    numbers=listed([m.number for m in self._unsaved]), reason=misses[-1].reason
                )
                self.toasts.show(NOT_SAVED_KEY, WARNING, text, index, WARNING_FRAMES)
            waiting = tuple(self.writer.waiting())
            if waiting == self._waiting:
                return
            self._waiting = waiting
            if not waiting:  # written (or failed, shown above) since: the disk answered
                self.toasts.drop(WAITING_KEY)
                return
            log.error(
                "biopsy %s not written yet: the disk has not answered for %.0f s",
                listed(list(waiting)),
                STALL_S,
            )
            if self._toasted in waiting:
                self.toasts.drop(CAPTURED_KEY)
            text = NOT_SAVED_YET.format(numbers=listed(list(waiting)), seconds=STALL_S)
            # shown until the disk answers (dropped above), not for a fixed number of frames
            self.toasts.show(WAITING_KEY, WARNING, text, index, UNTIL_DROPPED)

    def active(self, index: int) -> list[tuple[str, str]]:
        """(level, text) of the toasts shown on frame ``index``: warnings first."""
        return self.toasts.active(index)
