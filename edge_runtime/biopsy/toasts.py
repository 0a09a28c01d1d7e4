"""The store of timed banners the capture shows ("BIOPSY 2 CAPTURED", "BIOPSY 2 NOT SAVED: ..."): how
long each stays and who may read and write them at once; which banners to show is
:mod:`edge_runtime.biopsy.notices`'s job.

Input: :meth:`Toasts.show` and :meth:`Toasts.drop` from the observer (its frame path, and its
render path, which in replay draws frames on parallel workers). Output: :meth:`Toasts.active`, the
(level, text) banners of a frame. The state is one tuple, replaced whole and never changed in
place, so a reader sees the old toasts or the new ones without a lock; writers take one, so two
changes at once both land.
"""

from __future__ import annotations

import threading

INFO, WARNING = "info", "warning"  # the overlay's banner levels (grey, and the warnings' colour)


class Toasts:
    """Banners shown up to a frame index, one per key (a new one under a key replaces the old)."""

    def __init__(self) -> None:
        self._shown: tuple[tuple[str, str, str, int], ...] = ()  # (key, level, text, last frame index)
        self._lock = threading.Lock()

    def show(self, key: str, level: str, text: str, now: int, frames: int) -> None:
        """Show ``text`` from frame ``now`` for ``frames`` frames (frames already past drop out)."""
        with self._lock:
            kept = tuple(t for t in self._shown if t[0] != key and t[3] >= now)
            self._shown = (*kept, (key, level, text, now + frames))

    def drop(self, key: str) -> None:
        with self._lock:
            self._shown = tuple(t for t in self._shown if t[0] != key)

    def showing(self, key: str, index: int) -> bool:
        """Whether the toast under ``key`` is still shown on frame ``index``."""
        return any(k == key and index <= last for k, _, _, last in self._shown)

    def active(self, index: int) -> list[tuple[str, str]]:
        """(level, text) of the toasts shown on frame ``index``: warnings first."""
        shown = [(level, text) for _, level, text, last in self._shown if 0 <= index <= last]
        return sorted(shown, key=lambda banner: banner[0] != WARNING)
