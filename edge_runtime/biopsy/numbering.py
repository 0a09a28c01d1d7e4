"""Capture numbers that never repeat within one study, across restarted sessions.

A study is one study ID on one UTC day: the PACS export files every case under its
``capture.study_id`` and the day of its pre-fire frame, and the capture number becomes the DICOM
series number (registration/pacs/subject.py). A session killed after core 1 and started again for
the same patient must therefore go on from 2; starting again at 1 would export "biopsy 1" twice in
one study.

Input: the ``--cases`` folder, read once at start (before any frame), and each capture's study ID
and pre-fire time. Output: :meth:`CaptureNumbers.next`, one more than the highest number this
session gave and than any recorded for that study and day. Only case folders named from this UTC
day on are read (a folder is named by its post-fire time, never before its pre-fire day), so the
cost at start does not grow with the folder's history. A folder whose case.yaml cannot be read is
logged and its number, from the folder's name, kept for every study of that day: a number may be
skipped, never repeated.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import date, datetime, timezone
from pathlib import Path

from edge_runtime.errors import SonomapError
from edge_runtime.yamlfile import read_yaml_mapping

log = logging.getLogger("sonomap.biopsy")
# <UTC YYYYmmddTHHMMSSZ>-<number>, then -2, -3 ... when another session had the name (case_writer)
CASE_NAME = re.compile(r"^(?P<day>\d{8})T\d{6}Z-(?P<number>\d+)(?:-\d+)?$")
DAY_FORMAT = "%Y%m%d"
CASE_FILE = "case.yaml"
ANY_STUDY = object()  # the key of numbers known only by their folder's name (case.yaml unreadable)


class CaptureNumbers:
    """The numbers recorded in ``directory`` per (study ID, UTC day), and those this session gave."""

    def __init__(self, directory: Path, today: date | None = None):
        self._highest: dict[tuple[object, date], int] = {}
        self._last = 0  # the highest number this session gave: its own numbers keep rising
        since = today or datetime.now(timezone.utc).date()
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            match = CASE_NAME.match(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue  # hidden partial folders, and anything not named by a capture
            try:
                folder_day = datetime.strptime(match["day"], DAY_FORMAT).date()
            except ValueError:  # eight digits that are no date: not a capture's name
                continue
            if folder_day >= since:
                self._record(*self._recorded(Path(entry.path), folder_day, int(match["number"])))

    def _recorded(self, folder: Path, folder_day: date, named: int) -> tuple[object, date, int]:
        """(study ID or None, pre-fire UTC day, number) of the case in ``folder``; when its case.yaml
        cannot be read, (ANY_STUDY, the folder's day, the number in its name)."""
        path = folder / CASE_FILE
        try:
            capture = read_yaml_mapping(path, "case file").get("capture")
            if not isinstance(capture, dict):
                raise SonomapError(f"{path}: no 'capture' section")
            number, study = capture.get("number"), capture.get("study_id")
            pre_fire = capture.get("pre_fire")
            utc = pre_fire.get("utc") if isinstance(pre_fire, dict) else None
            if not isinstance(number, int) or isinstance(number, bool) or not isinstance(utc, str):
                raise SonomapError(f"{path}: capture.number or capture.pre_fire.utc missing or not valid")
            day = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(timezone.utc).date()
        except (SonomapError, ValueError) as exc:
            log.warning(
                "--cases: %s; capture numbers go on after %d on %s for every study", exc, named, folder_day
            )
            return ANY_STUDY, folder_day, named
        return (None if study is None else str(study)), day, number

    def _record(self, study: object, day: date, number: int) -> None:
        key = (study, day)
        self._highest[key] = max(self._highest.get(key, 0), number)

    def next(self, study_id: str | None, pre_fire_utc: datetime) -> int:
        """The number of a capture of ``study_id`` whose pre-fire frame was at ``pre_fire_utc``."""
        day = pre_fire_utc.astimezone(timezone.utc).date()
        number = 1 + max(
            self._last, self._highest.get((study_id, day), 0), self._highest.get((ANY_STUDY, day), 0)
        )
        self._last = number
        self._record(study_id, day, number)
        return number
