"""``igtl://HOST:PORT?device=Image_Reference``: frames from a PLUS server or 3D Slicer.

Input: IMAGE messages (uint8 gray or RGB, any size, 2-D) of one device over OpenIGTLink.
Output: :class:`edge_runtime.frames.Frame` with the BGR image and, in ``meta``:
``mm_per_pixel`` (mean in-plane spacing), ``spacing`` (i, j, k mm), ``pixel_spacing``
(row, col mm), ``ijk_to_ras`` (4x4), ``ijk_to_world`` + ``igtl_coordinate_system``
(as sent), ``igtl_layout`` (k, j, i), ``device``, ``igtl_timestamp`` (the message's own
timestamp, sender clock), ``igtl_received_wall``, ``transforms`` (device -> 4x4, the
newest TRANSFORM of each device when the image arrived). The ROI is chosen as for any other source
(``roi.rect``, auto-detected by default): a frame grabber sends the whole scanner screen, patient line
and all, unless PLUS crops it to the image.

Query keys: ``device`` (default: the first IMAGE device seen), ``timeout`` (seconds
without a new frame before the stream ends with InputError, default 2: under ``live``
that shows NO SIGNAL and reconnects, so the display never freezes on the last image),
``idle_timeout`` (seconds without a single byte before the connection is taken for
dead, e.g. a pulled cable, and re-made; default 3), ``max_body_mb`` (largest message
accepted; default 64), ``backoff_max`` (reconnect backoff cap, s).
Files: none.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Frame, Source
from edge_runtime.igtl.link import BACKOFF_MAX_S, IDLE_TIMEOUT_S, acquire_client_link, release_client_link
from edge_runtime.igtl.wire import MAX_BODY_BYTES, IgtlImage

DEFAULT_PORT = 18944  # the IANA-registered OpenIGTLink port, PLUS's default
WAIT_POLL_S = 0.25  # how often an idle iterator checks close()
QUERY_KEYS = ("device", "timeout", "backoff_max", "idle_timeout", "max_body_mb")
NO_FRAME_TIMEOUT_S = 2.0  # matches /healthz's "newest frame < 2 s old"
MIB = 1024 * 1024


def parse_igtl_spec(spec: str) -> dict:
    """``igtl://host:port?device=X&timeout=S`` -> {host, port, device, timeout, backoff_max,
    idle_timeout, max_body_bytes}."""
    parts = urlsplit(spec)
    if parts.scheme != "igtl" or not parts.hostname:
        raise ConfigError(f"{spec!r}: expected igtl://HOST:PORT?device=NAME")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise ConfigError(f"{spec!r}: unknown key(s) {', '.join(unknown)} (known: {', '.join(QUERY_KEYS)})")
    try:
        port = parts.port or DEFAULT_PORT
        timeout = float(query["timeout"]) if query.get("timeout") else NO_FRAME_TIMEOUT_S
        backoff_max = float(query["backoff_max"]) if query.get("backoff_max") else BACKOFF_MAX_S
        idle_timeout = float(query["idle_timeout"]) if query.get("idle_timeout") else IDLE_TIMEOUT_S
        max_body_mb = float(query["max_body_mb"]) if query.get("max_body_mb") else MAX_BODY_BYTES / MIB
    except ValueError as exc:
        raise ConfigError(f"{spec!r}: {exc}") from exc
    if min(timeout, backoff_max, idle_timeout, max_body_mb) <= 0:
        raise ConfigError(f"{spec!r}: timeout, idle_timeout, backoff_max and max_body_mb must be > 0")
    return {
        "host": parts.hostname,
        "port": port,
        "device": query.get("device") or None,
        "timeout": timeout,
        "backoff_max": backoff_max,
        "idle_timeout": idle_timeout,
        "max_body_bytes": int(max_body_mb * MIB),
    }


def frame_meta(image: IgtlImage) -> dict:
    row_mm, col_mm = image.pixel_spacing
    return {
        "mm_per_pixel": (row_mm + col_mm) / 2.0,
        "spacing": image.spacing,
        "pixel_spacing": (row_mm, col_mm),
        "ijk_to_ras": image.ijk_to_ras,
        "ijk_to_world": image.ijk_to_world,
        "igtl_coordinate_system": image.coordinate_system,
        "igtl_layout": image.layout,
        "device": image.device,
        "igtl_timestamp": image.timestamp,
        "igtl_received_wall": image.received_wall,
        "transforms": image.transforms,
    }


class IgtlSource(Source):
    """Live source: iterating yields each newest IMAGE once (older ones are dropped)."""

    live = True

    def __init__(self, spec: str):
        self.spec = spec
        self.name = spec
        self._opts = parse_igtl_spec(spec)
        self.link = acquire_client_link(
            self._opts["host"],
            self._opts["port"],
            self._opts["device"],
            receive_images=True,
            backoff_max_s=self._opts["backoff_max"],
            idle_timeout_s=self._opts["idle_timeout"],
            max_body_bytes=self._opts["max_body_bytes"],
        )
        self._closed = False
        self._index = 0

    @property
    def counters(self) -> dict[str, int]:
        """images, skipped_scalar_type / _volume / _device / _components / _malformed,
        transforms, connects, disconnects, connect_failures, messages_sent, ..."""
        return self.link.counters.snapshot()

    def __iter__(self) -> Iterator[Frame]:
        seq = 0
        timeout = self._opts["timeout"]
        waited = 0.0
        while not self._closed:
            got = self.link.wait_image(seq, WAIT_POLL_S)
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
            seq, image = got
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
