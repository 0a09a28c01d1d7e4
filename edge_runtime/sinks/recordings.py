"""Where a recording goes: one file (or mask folder) per session, never over an earlier one.

A cart records procedures through its service, and systemd restarts the service after a crash.
With a fixed ``sinks.video`` path the restarted process would truncate the file the crash-safe
(fragmented) writer had just kept. So:

- ``sinks.video``, ``sinks.raw`` and ``sinks.masks`` may hold :func:`time.strftime` fields, expanded
  in local time when the sinks open (``recordings/%Y%m%d-%H%M%S-overlay.mp4``: a file per session;
  ``%%`` is a literal ``%``);
- in live mode an existing recording (a file, or a mask folder with anything in it) is kept and the
  new one gets the first free ``-1``, ``-2``, ... suffix, with a warning. A replay's outputs are
  results re-made on demand, so replay overwrites them as before. A live path that exists and is
  neither a regular file nor a folder (``/dev/null``, a FIFO) is refused: no recording is there to
  keep, and a name beside it (``/dev/null-1``) would land in ``/dev``.

Disk hygiene (:class:`SpaceGuard`, :func:`apply_retention`):

- ``sinks.min_free_gb``: the recorder checks the free space of its folder once a second; below the
  threshold it finalises the file so far and pauses, and it resumes into a new file when space returns
  (live; a replay's recorder stays paused and fails: :mod:`edge_runtime.sinks.threaded`);
- ``sinks.retention_days`` (off by default: keeping or deleting recordings is the hospital's decision):
  at start and hourly, a live session's recorder deletes recordings older than that from its folder.
  Only sonomap's own live recordings go: files named like the configured template (its fields as the
  digits they expand to, and the ``-N`` suffix) *and* tagged :data:`OWN_MARK` inside, which only a
  live recording carries. A replay applies no retention and tags nothing: its outputs are results,
  and what it reads may be an earlier recording.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path

from edge_runtime.errors import InputError
from edge_runtime.live_stats import EVENTS
from edge_runtime.memory import GIB

log = logging.getLogger("sonomap.recordings")
MAX_SUFFIX = 9999
OWN_MARK = "sonomap recording"  # mp4 'comment' tag written by Mp4Sink
SPACE_CHECK_INTERVAL_S = 1.0
RESUME_MARGIN = 0.1  # resume only at 10 % above the threshold: no pause/resume flapping
RETENTION_INTERVAL_S = 3600.0
SECONDS_PER_DAY = 86400.0
REC_OFF, REC_ON, REC_PAUSED, REC_FAILED = "", "REC", "REC PAUSED: disk low", "REC FAILED"


def expand(template: str | Path, now: float | None = None) -> Path:
    """The path with its strftime fields filled in (local time ``now``, default: the current time)."""
    text = str(template)
    if "%" not in text:
        return Path(text)
    return Path(time.strftime(text, time.localtime(now)))


def _taken(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def session_path(
    template: str | Path, keep_existing: bool, now: float | None = None, others: Collection[Path] = ()
) -> Path:
    """The path this session records to: ``template`` expanded; with ``keep_existing``, a free variant
    when that path already holds a recording or is one of ``others`` (the session's other recorders'
    paths: two recorders moved to the same free name would write one file)."""
    path = expand(template, now)
    if not keep_existing:
        return path
    others = {Path(o).resolve() for o in others}
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise InputError(
            f"{path}: exists and is not a regular file (a device, FIFO or socket); a live recording "
            "goes to a file of its own: give a file name"
        )
    if not _taken(path) and path.resolve() not in others:
        return path
    for n in range(1, MAX_SUFFIX + 1):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not _taken(candidate) and candidate.resolve() not in others:
            log.warning("%s already holds a recording; keeping it and recording to %s", path, candidate)
            return candidate
    raise InputError(
        f"{path}: {MAX_SUFFIX} earlier recordings of this name; move them, or name recordings by time (%Y%m%d-%H%M%S)"
    )


def free_gib(folder: str | Path) -> float:
    """Free space (GiB) for an unprivileged writer on the file system holding ``folder``."""
    return shutil.disk_usage(folder).free / GIB


class SpaceGuard:
    """``ok()`` turns False when the folder's file system has less than ``min_free_gb`` GiB free, and
    True again from ``min_free_gb`` plus :data:`RESUME_MARGIN` (checked at most once per ``interval_s``;
    0 disables the check)."""

    def __init__(
        self,
        folder: str | Path,
        min_free_gb: float,
        interval_s: float = SPACE_CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.folder = Path(folder)
        self.min_free_gb = float(min_free_gb)
        self.interval_s = interval_s
        self.clock = clock
        self.free_gb: float | None = None
        self.below = False
        self._checked = float("-inf")

    def ok(self) -> bool:
        if self.min_free_gb <= 0:
            return True
        now = self.clock()
        if now - self._checked >= self.interval_s:
            self.free_gb = free_gib(self.folder)
            self._checked = now
            self.below = self.free_gb < self.min_free_gb * (1 + RESUME_MARGIN if self.below else 1)
        return not self.below


def log_pause(sink: str, space: SpaceGuard, kept: str, resumes: bool = True) -> None:
    """The one error line (and the ``recording_paused`` count) when a recorder pauses for disk space;
    ``resumes`` False: a replay's recorder, whose pause is final (its output misses the rest)."""
    EVENTS.inc("recording_paused")
    log.error(
        "sink %s: only %.2f GiB free on %s (sinks.min_free_gb %g): recording paused (%s); %s",
        sink,
        space.free_gb,
        space.folder,
        space.min_free_gb,
        kept,
        "it resumes when space returns" if resumes else "a replay does not resume: the rest is not written",
    )


def recorder_state(sinks: dict) -> str:
    """The recorders' (overlay, raw, mask dump) state as the HUD shows it: ``""`` (none), ``REC``,
    ``REC PAUSED: disk low`` (below sinks.min_free_gb, resumes by itself) or ``REC FAILED`` (stopped)."""
    recorders = [s for name, s in sinks.items() if name in ("video", "raw", "masks")]
    if not recorders:
        return REC_OFF
    if any(r.error is not None for r in recorders):
        return REC_FAILED
    if any(r.paused for r in recorders):
        return REC_PAUSED
    return REC_ON


# What each strftime field expands to, for telling a template's names from others; a field not listed
# (a month's or weekday's name, a time zone) stands for any text without a path separator.
FIELD_PATTERNS = {
    "Y": r"\d{4}", "G": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}",
    "I": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}", "j": r"\d{3}", "U": r"\d{2}", "W": r"\d{2}",
    "V": r"\d{2}", "u": r"\d", "w": r"\d", "s": r"\d+", "e": r"[ \d]\d",
}  # fmt: skip


def template_names(template: str | Path) -> re.Pattern:
    """The file names the template gives: its strftime fields as what they expand to, and the ``-N``
    suffix a live session adds beside an earlier recording (``overlay.mp4`` -> ``overlay.mp4``,
    ``overlay-3.mp4``; never ``overlay_final.mp4`` or another file that merely starts alike)."""
    path = Path(template)
    parts = re.split(r"(%.)", path.stem)
    stem = "".join(
        (FIELD_PATTERNS.get(part[1], r"[^/]+?") if part != "%%" else "%") if i % 2 else re.escape(part)
        for i, part in enumerate(parts)
    )
    return re.compile(rf"{stem}(?:-\d+)?{re.escape(path.suffix)}")


def own_recording(path: Path) -> bool:
    """True when ``path`` is an mp4 this runtime wrote (it carries :data:`OWN_MARK`)."""
    import av  # deferred: only retention reads recordings back

    try:
        with av.open(str(path)) as container:
            return container.metadata.get("comment") == OWN_MARK
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return False


def apply_retention(template: str | Path, days: float | None, now: float | None = None) -> list[Path]:
    """Delete sonomap's own recordings named like ``template`` older than ``days`` from its folder;
    return them. Nothing else in the folder is touched: other names, sub-folders, links, foreign files."""
    if not days:
        return []
    folder = expand(template).parent
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - float(days) * SECONDS_PER_DAY
    deleted = []
    names = template_names(Path(template).name)
    for path in sorted(folder.iterdir()):
        if (
            not names.fullmatch(path.name)
            or path.is_symlink()
            or not path.is_file()
            or path.stat().st_mtime >= cutoff
            or not own_recording(path)
        ):
            continue
        try:
            path.unlink()
        except OSError as exc:
            log.error("retention: cannot delete %s (%s)", path, exc)
            continue
        deleted.append(path)
    if deleted:
        log.warning(
            "retention: deleted %d recording(s) older than %g days from %s (sinks.retention_days)",
            len(deleted),
            days,
            folder,
        )
    return deleted
