"""One case folder per captured biopsy, written on a worker thread (never on the render path).

Input: a :class:`Capture` (the pre-fire and post-fire ROI pixels, the pre-fire prediction, the
detector's seed, where they came from). Output: ``DIR/<UTC timestamp>-<n>/`` (``-<n>-2`` and so on
when another session took that name) holding

- ``prefire.png``  gray ROI, the last frame before the jump: ``ultrasound.dataset_image``;
- ``postfire.png`` gray ROI, the needle lying in the tract: ``ultrasound.image``;
- ``prefire_prob.png`` (16-bit, probability x 65535) and ``prefire_mask.png`` (class ids): the
  live prediction shown with the pre-fire frame, absent when none was shown (the AI not ON);
- ``case.yaml`` (:mod:`.case_yaml`) in registration's case format, with ``capture:`` and an empty
  ``pathology:`` for the lab.

Only ROI pixels are written (the scanner's screen text, which may carry the patient's name, is
outside the ROI). The folder is written under a hidden name and renamed when complete, so a
reader never sees half a case; its files are fsynced before the rename and the rename after it, so
a power cut never leaves a published case of empty files. Sessions sharing DIR never remove or
replace each other's cases (:mod:`.case_folders`). Every capture ends in :attr:`CaseWriter.written` or
:attr:`CaseWriter.failed`; ``/metrics`` counts the written ones (``biopsy_captures``) and the
failed ones (``sonomap_errors{kind="biopsy_not_saved"}``). Layout: docs/biopsy-capture.md.
"""

from __future__ import annotations

import errno
import logging
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import privacy
from edge_runtime.atomic import atomic_write_bytes, atomic_write_png, fsync_folder
from edge_runtime.biopsy.case_folders import (
    ensure_directory,
    make_partial,
    publish_name,
    remove_stale_partials,
    try_publish,
)
from edge_runtime.biopsy.case_yaml import Capture, FrameRecord, case_document, public_source
from edge_runtime.live_stats import EVENTS
from edge_runtime.prediction_pngs import PROB_SCALE  # prefire_prob.png: uint16 = round(p * PROB_SCALE)

__all__ = ["Capture", "CaseWriter", "FrameRecord", "NotWritten", "PROB_SCALE", "public_source", "write_case"]

log = logging.getLogger("sonomap.biopsy")
QUEUE_DEPTH = 8  # captures waiting to be written; more means the disk has stalled
# at close: a queue of QUEUE_DEPTH captures is written well within this; below systemd's
# TimeoutStopSec (20 s, systemd/sonomap.service), so a stalled disk is reported before the service is killed
CLOSE_TIMEOUT_S = 10.0
STALL_S = 5.0  # a case writes in well under a second: one queued this long waits on a stalled disk
CAPTURE_EVENT = "biopsy_captures"  # EVENTS: cases written
FAILED_EVENT = "biopsy_not_saved"  # EVENTS: captures whose case could not be written (an error kind)
QUEUE_FULL = "{depth} cases already wait for the disk"
UNFINISHED = "still being written when the session ended"


@dataclass(frozen=True)
class NotWritten:
    """A capture whose case is not on disk: its number and why (one short line without a path: it
    is shown on screen, and the folder's name may carry the patient's)."""

    number: int
    reason: str


def not_written_reason(exc: Exception) -> str:
    """The short reason :class:`NotWritten` gives for ``exc``: an OSError's (e.g. 'No space left on
    device'), else the kind of error (the log line has the whole message)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _gray(bgr: np.ndarray) -> np.ndarray:
    return bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def write_case(directory: Path, cap: Capture) -> Path:
    """Write ``cap``'s case folder in ``directory`` (module doc; made again first when it has gone);
    returns the folder: ``<UTC time of the post-fire frame>-<number>``, or the first free of
    ``-<number>-2``, ``-3`` ... when another session has that name (its case.yaml ``id`` is the name
    it gets). OSError when the case cannot be written; then nothing of it is left behind."""
    name = f"{cap.post.utc.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{cap.number}"
    ensure_directory(directory)
    partial = make_partial(directory, name)
    try:
        pre, post = _gray(cap.pre.roi_bgr), _gray(cap.post.roi_bgr)
        atomic_write_png(partial / "prefire.png", pre, durable=True)
        atomic_write_png(partial / "postfire.png", post, durable=True)
        files = None
        p = cap.pre.prediction
        if p is not None:
            atomic_write_png(partial / "prefire_mask.png", p.mask.astype(np.uint8), durable=True)
            prob = np.round(np.clip(p.prob, 0, 1) * PROB_SCALE).astype(np.uint16)
            atomic_write_png(partial / "prefire_prob.png", prob, durable=True)
            files = {
                "frame": p.frame.index if p.frame is not None else cap.pre.index,
                "prob": "prefire_prob.png",
                "prob_scale": PROB_SCALE,
                "mask": "prefire_mask.png",
                "cancer_class": cap.cancer_class,
            }
        for candidate in publish_name(name):
            atomic_write_bytes(
                partial / "case.yaml", case_document(cap, candidate, post, files).encode(), True
            )
            if try_publish(partial, directory / candidate):
                # the files were fsynced before the rename, the rename is made durable here: after a
                # power cut a published case is whole, never a folder of empty files
                fsync_folder(directory)
                return directory / candidate
        raise FileExistsError(errno.EEXIST, "every name for the case is taken", str(directory / name))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # this writer's own folder (its pid is in the name)
        raise


class CaseWriter:
    """A worker thread writing :class:`Capture` objects to ``directory`` in order.

    Input: :meth:`submit` from the render path. Output: the case folders; :attr:`written` (their
    paths), :attr:`failed` (every :class:`NotWritten`: refused because the queue was full, or the
    write failed), :meth:`take_failures` (those not taken yet, for the screen). At start the partial
    folders writers killed mid-case left in ``directory`` are removed (:mod:`.case_folders`), the
    count logged in one line."""

    def __init__(self, directory: str | Path):
        self.directory = privacy.make_private_dir(directory, "--cases")
        removed = remove_stale_partials(self.directory)
        if removed:
            log.warning(
                "--cases: removed %d unfinished case folder(s) left by a session that was killed", removed
            )
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._lock = threading.Lock()  # the two threads' records below; never held during a write
        self.written: list[Path] = []
        self.failed: list[NotWritten] = []
        self._untaken: deque[NotWritten] = deque()
        self._accepted: dict[int, float] = {}  # numbers queued -> time.monotonic() when queued
        self._done: set[int] = set()  # numbers written or failed
        self._open = threading.Event()  # cleared while held(): the worker starts no new case
        self._open.set()
        self._thread = threading.Thread(target=self._run, name="biopsy-cases", daemon=True)
        self._thread.start()

    @property
    def errors(self) -> int:
        """Captures not written (refused or failed)."""
        return len(self.failed)

    def submit(self, capture: Capture) -> bool:
        """Queue ``capture``; False (recorded as failed) when QUEUE_DEPTH cases already wait."""
        try:
            self._queue.put_nowait(capture)
        except queue.Full:
            reason = QUEUE_FULL.format(depth=QUEUE_DEPTH)
            log.error("biopsy %d not written: %s", capture.number, reason)
            self._fail(capture.number, reason)
            return False
        with self._lock:
            self._accepted[capture.number] = time.monotonic()
        return True

    def waiting(self, longer_than_s: float = STALL_S) -> list[int]:
        """The numbers queued more than ``longer_than_s`` ago and neither written nor failed yet
        (the disk has stalled: a hung network mount, a frozen file system), oldest first."""
        now = time.monotonic()
        with self._lock:
            return [n for n, t in self._accepted.items() if n not in self._done and now - t > longer_than_s]

    def take_failures(self) -> list[NotWritten]:
        """The failures since the last call (oldest first)."""
        with self._lock:
            out = list(self._untaken)
            self._untaken.clear()
        return out

    def _fail(self, number: int, reason: str) -> None:
        miss = NotWritten(number, reason)
        with self._lock:
            self.failed.append(miss)
            self._untaken.append(miss)
            self._done.add(number)
        EVENTS.inc(FAILED_EVENT)

    def _run(self) -> None:
        while True:
            cap = self._queue.get()
            if cap is None:
                return
            self._open.wait()
            try:
                path = write_case(self.directory, cap)
            except Exception as exc:
                # the reason without its paths: the cases folder may be named after the patient
                log.error(
                    "biopsy %d: writing the case failed: %s", cap.number, privacy.without_file_names(str(exc))
                )
                self._fail(cap.number, not_written_reason(exc))
                continue
            with self._lock:
                self.written.append(path)
                self._done.add(cap.number)
            EVENTS.inc(CAPTURE_EVENT)
            log.warning("biopsy %d captured (%s): %s in --cases", cap.number, cap.trigger, path.name)

    @contextmanager
    def held(self) -> Iterator[None]:
        """While the block runs, the worker starts writing no case (one it is writing ends), as when
        the disk is slower than the operator: captures wait in the queue, and once QUEUE_DEPTH wait the
        next are refused. For checks of that path that must not depend on how fast the disk is."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def close(self) -> None:
        """Write what is queued, then stop (waiting CLOSE_TIMEOUT_S at most). A capture still not
        written then is recorded as failed: the process may end before it is."""
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        try:
            self._queue.put(None, timeout=CLOSE_TIMEOUT_S)
        except queue.Full:  # the disk has stalled: the writer never took the next capture
            log.error("--cases: the case writer is stuck; stopping without it")
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            unfinished = [n for n in self._accepted if n not in self._done]
        for number in unfinished:
            log.error("biopsy %d not written: %s", number, UNFINISHED)
            self._fail(number, UNFINISHED)
