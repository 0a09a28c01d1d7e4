"""Capture numbers that never repeat within one study: across restarted sessions, and across sessions
writing into one ``--cases`` folder at the same time.

A study is one study ID on one UTC day: the PACS export files every case under its
``capture.study_id`` and the day of its pre-fire frame, and the capture number becomes the DICOM
series number (registration/pacs/subject.py). A session killed after core 1 and started again for
the same patient must therefore go on from 2; starting again at 1 would export "biopsy 1" twice in
one study. So must a second session started on the same folder for the same study while the first
still runs (two carts, or a replay beside a live session).

Input: the ``--cases`` folder, read once at start (before any frame), and each capture's study ID
and pre-fire time. Output: :meth:`CaptureNumbers.next`, one more than the highest number this
session gave and than any recorded for that study and day, and never one another running session
holds. Only case folders named from this UTC day on are read (a folder is named by its post-fire
time, never before its pre-fire day), so the cost does not grow with the folder's history. A folder
whose case.yaml cannot be read is logged and its number, from the folder's name, kept for every
study of that day: a number may be skipped, never repeated.

Sessions sharing the folder claim each number with a POSIX record lock (``lockf``) on one byte of the
hidden file ``DIR/.capture-numbers.lock``, at an offset made of the study, the day and the number;
the lock is held until the session closes, after its cases are written. A claim that fails because
another process holds that byte moves on to the next number. After a claim the folder is read again
for cases published since (a session that has ended gives up its locks only after its cases are on
disk, so a number is either locked or published). Locks write nothing to the disk, and the claim runs
on a helper thread the render path waits on for at most CLAIM_TIMEOUT_S: a stalled disk or a hung
network mount never freezes the screen. Where the folder takes no locks (some network and FUSE file
systems), or the claim did not answer in time, the number is given from this session's knowledge
alone, and the log says, once, that it is not guarded against other sessions. Locks belong to a
process, so sessions of one process on one folder share its lock file and a record of which of them
holds which byte (:mod:`.lock_files`): they never give one number twice either.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import threading
from datetime import date, datetime, timezone
from pathlib import Path

from edge_runtime.biopsy.lock_files import LOCK_FILES, LockFile
from edge_runtime.errors import SonomapError
from edge_runtime.yamlfile import read_yaml_mapping

log = logging.getLogger("sonomap.biopsy")
# <UTC YYYYmmddTHHMMSSZ>-<number>, then -2, -3 ... when another session had the name (case_writer)
CASE_NAME = re.compile(r"^(?P<day>\d{8})T\d{6}Z-(?P<number>\d+)(?:-\d+)?$")
DAY_FORMAT = "%Y%m%d"
CASE_FILE = "case.yaml"
ANY_STUDY = object()  # the key of numbers known only by their folder's name (case.yaml unreadable)
LOCK_FILE = ".capture-numbers.lock"  # hidden: readers of the folder skip names starting with a dot
NUMBER_BITS = 20  # lock offset = (study-day key << NUMBER_BITS) | number: a million numbers a study-day
KEY_BYTES = 5  # 40 bits of the study-day hash: the offset stays below 2**60 (off_t is 64-bit)
MAX_CLAIMS = 1000  # numbers tried for one capture: more held at once means something else is wrong
CLAIM_TIMEOUT_S = 0.2  # a claim is a few system calls; one this slow waits on a stalled disk
UNGUARDED = (
    "--cases: capture numbers are not guarded against other sessions writing into this folder at "
    "the same time (%s); two sessions of one study there may give the same number"
)


def lock_offset(study_id: str | None, day: date, number: int) -> int:
    """The byte of LOCK_FILE whose lock claims ``number`` for ``study_id`` on ``day``."""
    key = hashlib.blake2b(f"{day:{DAY_FORMAT}}|{study_id!r}".encode(), digest_size=KEY_BYTES).digest()
    return (int.from_bytes(key, "big") << NUMBER_BITS) | number


class CaptureNumbers:
    """The numbers recorded in ``directory`` per (study ID, UTC day), those this session gave, and
    the claims of the sessions running on it. :meth:`close` gives the claims up (after the cases of
    this session are written)."""

    def __init__(self, directory: Path, today: date | None = None):
        self.directory = Path(directory)
        self._highest: dict[tuple[object, date], int] = {}
        self._seen: set[str] = set()  # case folders read already (a published case never changes)
        self._last = 0  # the highest number this session gave: its own numbers keep rising
        self._since = today or datetime.now(timezone.utc).date()
        self._claimer: threading.Thread | None = None  # a claim still waiting on the disk
        self._file: LockFile | None = None  # the lock file, shared with this process's other sessions
        self._guarded = True  # False once locks failed here: the rest of the session is unguarded
        self._scan()

    def _scan(self) -> None:
        """Record the numbers of the case folders named from the start day on not read yet."""
        for entry in sorted(os.scandir(self.directory), key=lambda e: e.name):
            match = CASE_NAME.match(entry.name)
            if entry.name in self._seen or match is None or not entry.is_dir(follow_symlinks=False):
                continue  # hidden partial folders, and anything not named by a capture
            self._seen.add(entry.name)
            try:
                folder_day = datetime.strptime(match["day"], DAY_FORMAT).date()
            except ValueError:  # eight digits that are no date: not a capture's name
                continue
            if folder_day >= self._since:
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
        # OverflowError: a time at the calendar's edge (year 1 with an offset east of UTC) cannot
        # be converted; like any unreadable case.yaml, its folder's number stays taken
        except (SonomapError, ValueError, OverflowError) as exc:
            log.warning(
                "--cases: %s; capture numbers go on after %d on %s for every study",
                # its case.yaml named from the case's own folder: the cases folder may be the patient's
                str(exc).replace(str(path), f"{folder.name}/{CASE_FILE}"),
                named,
                folder_day,
            )
            return ANY_STUDY, folder_day, named
        return (None if study is None else str(study)), day, number

    def _record(self, study: object, day: date, number: int) -> None:
        key = (study, day)
        self._highest[key] = max(self._highest.get(key, 0), number)

    def _floor(self, study_id: str | None, day: date) -> int:
        """The highest number taken for ``study_id`` on ``day`` as far as this session knows."""
        return max(self._last, self._highest.get((study_id, day), 0), self._highest.get((ANY_STUDY, day), 0))

    def next(self, study_id: str | None, pre_fire_utc: datetime) -> int:
        """The number of a capture of ``study_id`` whose pre-fire frame was at ``pre_fire_utc``:
        claimed against the other sessions on the folder (module doc), or, where that cannot be done,
        from this session's knowledge alone (logged)."""
        day = pre_fire_utc.astimezone(timezone.utc).date()
        number = None
        if self._guarded and self._claimer is None:
            result: list[int | Exception] = []
            claimer = threading.Thread(
                target=self._claim_into, args=(study_id, day, result), name="biopsy-numbers", daemon=True
            )
            claimer.start()
            claimer.join(CLAIM_TIMEOUT_S)
            if claimer.is_alive():  # waits on the disk: later captures are not guarded until it answers
                self._claimer = claimer
                log.warning(UNGUARDED, f"the folder did not answer in {CLAIM_TIMEOUT_S} s")
            elif isinstance(result[0], OSError):
                self._unlockable(result[0])
            elif isinstance(result[0], Exception):
                raise result[0]
            else:
                number = result[0]
        elif self._claimer is not None and not self._claimer.is_alive():
            self._claimer = None  # the disk answered: the next capture is claimed again
        if number is None:
            number = 1 + self._floor(study_id, day)
        self._last = max(self._last, number)
        self._record(study_id, day, number)
        return number

    def _claim_into(self, study_id: str | None, day: date, result: list) -> None:
        """Thread body: the claimed number, or the error that stopped the claim, into ``result``: the
        caller raises any but an OSError (locks that fail), so the capture is reported, never lost."""
        try:
            result.append(self._claim(study_id, day))
        except Exception as exc:  # the thread has no one else to tell
            result.append(exc)

    def _claim(self, study_id: str | None, day: date) -> int:
        """Lock the first free number above what is known, then read the folder again: a case another
        session published before this claim moves the claim past it. OSError when locks fail."""
        if self._file is None:  # here on the claim thread: the file is made at the first claim, and
            # creating a file on a frozen disk blocks
            self._file = LOCK_FILES.join(self.directory / LOCK_FILE, self)
        number = 1 + self._floor(study_id, day)
        for _ in range(MAX_CLAIMS):
            offset = lock_offset(study_id, day, number)
            if not self._file.claim(self, offset):
                number += 1  # another running session holds it, in another process or in this one
                continue
            self._scan()
            floor = max(self._highest.get((study_id, day), 0), self._highest.get((ANY_STUDY, day), 0))
            if number > floor:
                return number
            self._file.release(self, offset)  # published by a session since ended
            number = floor + 1
        raise OSError(errno.EDEADLK, f"no free capture number after {MAX_CLAIMS} tries")

    def _unlockable(self, exc: OSError) -> None:
        """The folder takes no locks (or the claim failed otherwise): numbers go on unguarded."""
        log.warning(UNGUARDED, f"{LOCK_FILE}: {exc.strerror or exc}")
        self._guarded = False
        self.close()

    def close(self) -> None:
        """Give up this session's claims: call after its cases are written (or reported unwritten)."""
        if self._file is not None:
            file, self._file = self._file, None
            try:
                LOCK_FILES.leave(file, self)
            except OSError as exc:  # the claims go when the process ends
                log.warning("--cases: %s: %s", LOCK_FILE, exc.strerror or exc)
