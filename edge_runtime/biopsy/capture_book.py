"""The book of one ``--cases`` session's biopsies: each one a case queued for writing, or a refusal.

Input: a biopsy the capture observer (:mod:`.observer`) found, with the frames it names (the
pre-fire and post-fire :class:`~.case_writer.FrameRecord`), the ROI and the expected-yield band
(:meth:`CaptureBook.capture`); a mark it could not capture, and why (:meth:`CaptureBook.refuse`);
an error a capture met (:meth:`CaptureBook.failed`). Output: a numbered
:class:`~.case_writer.Capture` on the :class:`~.case_writer.CaseWriter` thread, the toasts that
say so (:class:`~.notices.Notices`), and the counts the session's summary reports (captures made,
refusals, the marks refused, the reasons). Capture numbers go on after those already recorded in
the folder for the same study and day (:mod:`.numbering`); the study ID is the session's, at the
time of the capture (:mod:`.study_id`: the slot is the session's from construction to :meth:`close`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.biopsy.case_writer import FAILED_EVENT, Capture, CaseWriter, FrameRecord
from edge_runtime.biopsy.notices import Notices
from edge_runtime.biopsy.numbering import CaptureNumbers
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.live_stats import EVENTS
from edge_runtime.privacy import redact
from edge_runtime.roi import Roi

log = logging.getLogger("sonomap.biopsy")


class CaptureBook:
    """Captures and refusals of one session, written into ``directory``."""

    def __init__(
        self,
        directory: str | Path,
        model: dict[str, str],
        source: str,
        gauge: int,
        cancer_class: int,
        study: StudyIdSlot,
        study_id: str | None = None,
        study_id_pattern: str | None = None,
    ):
        self.writer = CaseWriter(directory)
        self.model, self.source, self.gauge, self.cancer_class = model, source, gauge, cancer_class
        self.study = study  # the session's study ID: set here from --study-id, or later from the viewer
        self.study.enabled = True
        self.study.pattern = (
            study_id_pattern  # the site's format (privacy.study_id_pattern): the viewer's IDs too
        )
        if study_id is not None:
            self.study.value = study_id
        self.captures = 0  # captures made; the writer says which were written
        self.numbers = CaptureNumbers(self.writer.directory)  # after those recorded: a restarted session
        # marks refused (no ROI known on their frame, no signal, or the session ended): those taken on one
        # frame are one refusal, as those on one captured frame are one biopsy; refused_marks counts each
        self.refused, self.refused_marks = 0, 0
        self.refusal_reasons: list[str] = []  # why each refusal was made, in order (the session's summary)
        self.notices = Notices(self.writer)  # the toasts (.notices)

    def capture(
        self,
        trigger: str,
        event,
        merged: int,
        pre: FrameRecord,
        post: FrameRecord,
        band: tuple,
        roi: Roi,
    ) -> None:
        """Number and queue the biopsy ``trigger`` made (``event``: the fire, None for a mark) on the
        frames ``pre`` and ``post``; ``band``: (frame index, band) of the expected yield before it;
        ``merged``: the other marks taken on the same frame, made part of it."""
        self.captures += 1
        study_id = self.study.value
        number = self.numbers.next(study_id, pre.utc)
        cap = Capture(
            number, trigger, pre, post, event, roi.as_list(), roi.mm_per_pixel, self.gauge,
            self.model, self.source, self.cancer_class, band, study_id,
        )  # fmt: skip
        if merged:
            merging = "biopsy %d (%s): %d more mark(s) on frame %d merged into it"
            log.warning(merging, number, trigger, merged, post.index)
        # under the lock: a failure of this capture polled on the render path comes after its toast
        with self.notices.lock:
            if self.writer.submit(cap):  # a refusal reaches the screen through Notices.poll
                self.notices.captured(number, post.index)

    def failed(self, trigger: str, index: int, exc: Exception) -> None:
        """Report, on screen and in the log, the error that stopped the capture ``trigger`` made on
        frame ``index``: the frame path would count it as a sink error and carry on, and the biopsy
        would be lost unsaid."""
        EVENTS.inc(FAILED_EVENT)
        log.error(
            "biopsy (%s) on frame %d not captured: %s",
            trigger,
            index,
            redact(f"{type(exc).__name__}: {exc}"),
        )
        self.notices.refused(f"capture failed ({type(exc).__name__}), see the log", index)

    def refuse(self, vias: list[str], why: str, where: str, index: int) -> None:
        """Count and show the marks ``vias`` taken on one frame (``where``: that frame or moment;
        ``index``: the last real frame, where the toast is shown) and not captured: one refusal
        however many they are, as marks on one captured frame are one biopsy; the log says how many
        more came with the first."""
        if not vias:
            return
        self.refused += 1
        self.refused_marks += len(vias)
        self.refusal_reasons.append(why)
        more = f" ({len(vias) - 1} more mark(s) taken with it: one refusal)" if len(vias) > 1 else ""
        log.error("biopsy mark (%s) not captured %s: %s%s", vias[0], where, why, more)
        self.notices.refused(why, index)

    def close(self) -> None:
        """End the session's study ID, write what is queued, then release the capture numbers claimed."""
        self.study.enabled, self.study.value = False, None  # the session is over
        self.writer.close()
        self.numbers.close()  # the claims go only now: every case of this session is on disk or reported
