"""When a recorded file's first frame was recorded, read from the file itself, and each frame's time.

Input: a video file's container metadata (``creation_time``, which MP4 and QuickTime store in UTC), a
sequence's first frame time when it is one since 1970 (:func:`epoch_start`), or a DICOM header
(``AcquisitionDateTime`` with its offset from UTC, else the acquisition or content date and time
with ``TimezoneOffsetFromUTC``). Output: the start as seconds since the epoch, put
into every frame's metadata under :data:`META_KEY` by the file sources; :func:`frame_time` turns it
and the frame's ``pts`` into the frame's UTC time for a biopsy capture.

Only a time whose offset from UTC is known is used: a local time without one could be the
scanner's or UTC, and a wrong guess would file a core under another day's study. A time before
:data:`EARLIEST` (encoders write the container's epoch, 1904 or 1970, for "unknown") is no time
either, and so is one more than :data:`AHEAD` in the future (a device clock set wrong). Without one a
replayed frame's time is this machine's clock when it is shown, as in live.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

META_KEY = "recorded_unix"  # frame metadata: the file's first frame, seconds since the epoch (UTC)
EARLIEST = datetime(1995, 1, 1, tzinfo=timezone.utc)  # earlier: an encoder's "unknown", no time
AHEAD = timedelta(days=1)  # later than now by more: a device clock set wrong, no time
RECORDING, THIS_MACHINE = "recording", "this machine"  # what a capture's time was read from
DICOM_DATE_TIME = "%Y%m%d%H%M%S"
DICOM_OFFSET_CHARS = 5  # "+0100", "-0430"
DATE_CHARS, MIN_TIME_CHARS = 8, 6  # YYYYMMDD; HHMMSS (DICOM allows HH or HHMM, too vague here)
MAX_OFFSET = timedelta(hours=14)  # no time zone is further from UTC
MINUTES_PER_HOUR = 60


def container_start(metadata: Mapping[str, Any]) -> dict[str, float]:
    """Frame metadata for a video file whose container metadata is ``metadata`` (PyAV's
    ``container.metadata``): ``{META_KEY: seconds}``, or ``{}`` when it holds no usable time."""
    text = metadata.get("creation_time")
    if not isinstance(text, str):
        return {}
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return {}
    return _plausible(when)


def creation_time(monotonic_at: float) -> str:
    """The ``creation_time`` of a live recording whose first frame was captured at ``monotonic_at``
    (``time.monotonic()``): that moment in UTC, rounded to the second (an MP4 keeps whole seconds), in
    the form :func:`container_start` reads back, so a later replay files its biopsies under it."""
    unix = round(time.time() - (time.monotonic() - monotonic_at))
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def epoch_start(seconds: float) -> dict[str, float]:
    """Frame metadata for a sequence whose first frame's recorded time is ``seconds``: ``{META_KEY:
    seconds}`` when that is a time since 1970 (UTC by definition: sonomap's own ``.seq.nrrd`` and an
    OpenIGTLink sender write such), ``{}`` for a clock counting from its own start (PLUS's, Slicer's
    index values), which no plausible date can be."""
    try:
        return _plausible(datetime.fromtimestamp(seconds, timezone.utc))
    except (OverflowError, OSError, ValueError):
        return {}


def dicom_start(ds: Any) -> dict[str, float]:
    """Frame metadata for a DICOM cine ``ds``: ``{META_KEY: seconds}``, or ``{}`` when its header
    gives no acquisition or content time with a known offset from UTC."""
    offset = _offset(getattr(ds, "TimezoneOffsetFromUTC", None))
    text = str(getattr(ds, "AcquisitionDateTime", "") or "").strip()
    if text:
        stamp, sign, zone = text.partition("+") if "+" in text else text.partition("-")
        return _dicom_time(stamp, _offset(sign + zone) if sign else offset)
    for date_key, time_key in (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime")):
        date, clock = str(getattr(ds, date_key, "") or ""), str(getattr(ds, time_key, "") or "")
        if date and clock:
            return _dicom_time(date.strip() + clock.strip(), offset)
    return {}


def frame_time(meta: Mapping[str, Any], pts: float | None, age_s: float = 0.0) -> tuple[datetime, str]:
    """(UTC time, what it was read from) of a frame with metadata ``meta`` and time ``pts`` in its
    file: the recording's start plus ``pts`` when both are known, else this machine's clock when the
    frame was captured, ``age_s`` seconds ago."""
    start = meta.get(META_KEY)
    if isinstance(start, float) and pts is not None:
        try:
            return datetime.fromtimestamp(start + pts, timezone.utc), RECORDING
        except (OverflowError, OSError, ValueError):  # a damaged file's pts, beyond any calendar
            pass
    return datetime.fromtimestamp(time.time() - age_s, timezone.utc), THIS_MACHINE


def _dicom_time(stamp: str, offset: timedelta | None) -> dict[str, float]:
    """``YYYYMMDDHHMMSS[.ffffff]`` at ``offset`` from UTC as frame metadata ({} when either is unusable)."""
    whole, _, fraction = stamp.partition(".")
    if offset is None or len(whole) < DATE_CHARS + MIN_TIME_CHARS or not whole.isdigit():
        return {}
    try:
        when = datetime.strptime(whole[: DATE_CHARS + MIN_TIME_CHARS], DICOM_DATE_TIME)
        seconds = float(f"0.{fraction}") if fraction.isdigit() else 0.0
        return _plausible(when.replace(tzinfo=timezone(offset)) + timedelta(seconds=seconds))
    except (ValueError, OverflowError):  # no such date, or past the calendar's end once offset
        return {}


def _offset(text: Any) -> timedelta | None:
    """DICOM's ``+HHMM`` / ``-HHMM`` as a timedelta (None when absent or malformed)."""
    text = str(text or "").strip()
    if len(text) != DICOM_OFFSET_CHARS or text[0] not in "+-" or not text[1:].isdigit():
        return None
    hours, minutes = int(text[1:3]), int(text[3:5])
    delta = timedelta(hours=hours, minutes=minutes)
    if delta > MAX_OFFSET or minutes >= MINUTES_PER_HOUR:
        return None
    return -delta if text[0] == "-" else delta


def _plausible(when: datetime) -> dict[str, float]:
    """``when`` as frame metadata when it has an offset and is no placeholder; else {}."""
    if when.tzinfo is None or when.utcoffset() is None:
        return {}
    if not EARLIEST <= when <= datetime.now(timezone.utc) + AHEAD:
        return {}
    return {META_KEY: when.timestamp()}
