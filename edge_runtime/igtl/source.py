"""``igtl://HOST:PORT?device=Image_Reference``: frames from a PLUS server or 3D Slicer.

Input: IMAGE messages (uint8 gray or RGB, any size, 2-D) of one device over OpenIGTLink.
Output: :class:`edge_runtime.frames.Frame` with the BGR image and, in ``meta``:
``mm_per_pixel`` (mean in-plane spacing), ``spacing`` (i, j, k mm), ``pixel_spacing``
(row, col mm), ``ijk_to_ras`` (4x4), ``ijk_to_world`` + ``igtl_coordinate_system``
(as sent), ``igtl_layout`` (k, j, i), ``device``, ``igtl_timestamp`` (the message's own
timestamp, sender clock), ``igtl_received_wall``, ``transforms`` (device -> 4x4, the
newest TRANSFORM of each device when the image arrived). An image whose matrix holds NaN or
infinity or is singular keeps coming, without the geometry keys and with ``igtl_geometry_refused``
saying why (geometry.py). The ROI is chosen as for any other source
(``roi.rect``, auto-detected by default): a frame grabber sends the whole scanner screen, patient line
and all, unless PLUS crops it to the image.

Query keys: ``device`` (default: the first IMAGE device seen), ``timeout`` (seconds
without a new frame before the stream ends with InputError, default 2: under ``live``
that shows NO SIGNAL and reconnects, so the display never freezes on the last image),
``idle_timeout`` (seconds without a single byte before the connection is taken for
dead, e.g. a pulled cable, and re-made; default 3), ``max_body_mb`` (largest message
accepted; default 64), ``backoff_max`` (reconnect backoff cap, s), ``crc`` (which message
bodies have their header CRC64 checked: ``auto``, the default, those up to 128 KiB, where
the check is cheap; ``on`` all; ``off`` none). Numbers must be finite and > 0.
A reopened source yields only images received after it opened, never the last one again.
Files: none.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Frame, Source
from edge_runtime.igtl.geometry import GEOMETRY_REFUSED_KEY
from edge_runtime.igtl.image_message import IgtlImage
from edge_runtime.igtl.link import BACKOFF_MAX_S, IDLE_TIMEOUT_S
from edge_runtime.igtl.shared_link import acquire_image_link, release_client_link
from edge_runtime.igtl.wire import CRC_AUTO, CRC_MODES, MAX_BODY_BYTES

DEFAULT_PORT = 18944  # the IANA-registered OpenIGTLink port, PLUS's default
WAIT_POLL_S = 0.25  # how often an idle iterator checks close()
QUERY_KEYS = ("device", "timeout", "backoff_max", "idle_timeout", "max_body_mb", "crc")
NO_FRAME_TIMEOUT_S = 2.0  # matches /healthz's "newest frame < 2 s old"
MIB = 1024 * 1024
# Upper bounds: a longer wait is a typo (and thread waits must stay under threading.TIMEOUT_MAX);
# a 4K RGB frame is 25 MB, so a larger body limit guards nothing.
MAX_SECONDS = 24 * 3600.0
MAX_BODY_MB = 4096.0


def positive_number(spec: str, query: dict, key: str, default: float, upper: float) -> float:
    """The query value of ``key`` as a finite number in (0, upper], ``default`` when absent;
    ConfigError naming the key otherwise (nan and inf included)."""
    text = query.get(key)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{spec!r}: {key}={text!r} is not a number") from exc
    if not (math.isfinite(value) and 0 < value <= upper):
        raise ConfigError(f"{spec!r}: {key}={text!r} must be a finite number > 0 and at most {upper:g}")
    return value


def parse_igtl_spec(spec: str) -> dict:
    """``igtl://host:port?device=X&timeout=S`` -> {host, port, device, timeout, backoff_max,
    idle_timeout, max_body_bytes, crc}; ConfigError naming the key for a bad value."""
    parts = urlsplit(spec)
    if parts.scheme != "igtl" or not parts.hostname:
        raise ConfigError(f"{spec!r}: expected igtl://HOST:PORT?device=NAME")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise ConfigError(f"{spec!r}: unknown key(s) {', '.join(unknown)} (known: {', '.join(QUERY_KEYS)})")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigError(f"{spec!r}: {exc}") from exc
    crc = query.get("crc") or CRC_AUTO
    if crc not in CRC_MODES:
        raise ConfigError(f"{spec!r}: crc={crc!r} must be one of {', '.join(CRC_MODES)}")
    max_body_mb = positive_number(spec, query, "max_body_mb", MAX_BODY_BYTES / MIB, MAX_BODY_MB)
    return {
        "host": parts.hostname,
        "port": port,
        "device": query.get("device") or None,
        "timeout": positive_number(spec, query, "timeout", NO_FRAME_TIMEOUT_S, MAX_SECONDS),
        "backoff_max": positive_number(spec, query, "backoff_max", BACKOFF_MAX_S, MAX_SECONDS),
        "idle_timeout": positive_number(spec, query, "idle_timeout", IDLE_TIMEOUT_S, MAX_SECONDS),
        "max_body_bytes": int(max_body_mb * MIB),
        "crc": crc,
    }


def frame_meta(image: IgtlImage) -> dict:
    """The frame ``meta`` of ``image`` (module docstring). An image whose geometry was refused
    (NaN, infinity, singular) has no ``mm_per_pixel``, ``spacing``, ``pixel_spacing``, ``ijk_to_ras``
    or ``ijk_to_world``, and ``GEOMETRY_REFUSED_KEY`` says why: it is shown and segmented like any
    frame without a known scale, and the OpenIGTLink sink does not send its prediction."""
    meta = {
        "igtl_coordinate_system": image.coordinate_system,
        "igtl_layout": image.layout,
        "device": image.device,
        "igtl_timestamp": image.timestamp,
        "igtl_received_wall": image.received_wall,
        "transforms": image.transforms,
    }
    if image.ijk_to_world is None:
        meta[GEOMETRY_REFUSED_KEY] = image.geometry_fault
        return meta
    row_mm, col_mm = image.pixel_spacing
    meta.update(
        mm_per_pixel=(row_mm + col_mm) / 2.0,
        spacing=image.spacing,
        pixel_spacing=(row_mm, col_mm),
        ijk_to_ras=image.ijk_to_ras,
        ijk_to_world=image.ijk_to_world,
    )
    return meta


class IgtlSource(Source):
    """Live source: iterating yields each newest IMAGE once (older ones are dropped)."""

    live = True

    def __init__(self, spec: str):
        self.spec = spec
        self.name = spec
        self._opts = parse_igtl_spec(spec)
        # A link shared with --igtl-out outlives a closed source and still holds its last image:
        # a reopened source starts after it, so it never yields that old image as a new frame.
        self.link, self._after_seq = acquire_image_link(
            self._opts["host"],
            self._opts["port"],
            self._opts["device"],
            backoff_max_s=self._opts["backoff_max"],
            idle_timeout_s=self._opts["idle_timeout"],
            max_body_bytes=self._opts["max_body_bytes"],
            crc=self._opts["crc"],
        )
        self._closed = False
        self._index = 0

    @property
    def counters(self) -> dict[str, int]:
        """images, skipped_scalar_type / _volume / _device / _components / _malformed / _crc,
        transforms, other_messages, connects, disconnects, idle_timeouts, connect_failures,
        reader_errors, messages_sent, ..."""
        return self.link.counters.snapshot()

    def __iter__(self) -> Iterator[Frame]:
        timeout = self._opts["timeout"]
        waited = 0.0
        while not self._closed:
            got = self.link.wait_image(self._after_seq, WAIT_POLL_S)
            if got is None:
                waited += WAIT_POLL_S
                if timeout is not None and waited >= timeout:
                    state = "connected" if self.link.connected.is_set() else "not connected"
                    raise InputError(
                        f"{self.spec}: no IMAGE from device "
                        f"{self.link.device or '(any)'} for {timeout:g} s ({state}; "
                        f"counters {self.counters})"
                    )
                continue
            waited = 0.0
            self._after_seq, image = got
            frame = Frame(
                index=self._index,
                image=image.bgr,
                timestamp=image.received_monotonic,
                pts=None,
                meta=frame_meta(image),
            )
            self._index += 1
            yield frame

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        release_client_link(self.link)


def open_igtl_source(spec: str) -> IgtlSource:
    """The entry point ``edge_runtime.sources.opener.open_source`` dispatches ``igtl://`` to."""
    return IgtlSource(spec)
