"""A reconnecting OpenIGTLink client connection to a PLUS server or Slicer's OpenIGTLinkIF.

Why not pyigtl.OpenIGTLinkClient: its thread never notices that the server closed the
socket unless a send fails (recv() returning b"" is taken as "no message"), retries
every 10 ms with no backoff, and prints a traceback for each undecodable message.
Here one reader thread per connection reads whole messages (wire.py; pyigtl decodes them)
and hands them to the link's :class:`edge_runtime.igtl.inbox.ImageInbox`, which keeps only the
newest IMAGE of the configured device (latest wins, no queue) and the newest matrix of each
TRANSFORM device; a message it cannot use is skipped and counted and never costs the connection;
a lost connection is re-made with exponential backoff. Sends come from other threads through
:meth:`IgtlClientLink.send`.

The link counts its own connects and disconnects (``counters``) but not ``source_lost``
on /metrics: a lost video source is counted once, by the source wrapper that shows NO
SIGNAL, and a send-only ``--igtl-out`` link carries no source at all. Sharing one link
between the igtl:// source and ``--igtl-out``: shared_link.py.

Inputs: host, port, link options; messages to send. Outputs: images and transforms (through the
inbox), counters. Files: none.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import numpy as np

from edge_runtime.igtl.image_message import IgtlImage
from edge_runtime.igtl.inbox import ImageInbox
from edge_runtime.igtl.net import (
    JOIN_TIMEOUT_S,
    SEND_TIMEOUT_S,
    Counters,
    shutdown_quietly,
    tune_socket,
    warn_counted,
    warn_throttled,
)
from edge_runtime.igtl.wire import CRC_AUTO, MAX_BODY_BYTES, SkipMessage, read_message, require_pyigtl

log = logging.getLogger("sonomap.igtl")

BACKOFF_INITIAL_S = 0.1  # reconnect at once after a blip...
BACKOFF_MAX_S = 2.0  # ...and at least every 2 s while the peer is away (Slicer restarts in seconds)
CONNECT_TIMEOUT_S = 2.0  # on a LAN a connect answers in milliseconds; longer means no one is there
# A receiving link with no byte for this long treats the connection as dead (a pulled cable
# leaves it half-open: no FIN, no RST) and reconnects. PLUS streams at 10-60 fps.
IDLE_TIMEOUT_S = 3.0
# A connection that delivered frames and lasted this long was a working one: the backoff starts
# again from BACKOFF_INITIAL_S. A shorter one is a flapping peer (one image, then a close) and keeps
# backing off, or it would be reconnected ten times a second, each with a "connection lost" warning.
STABLE_CONNECTION_S = 5.0


class IgtlClientLink:
    """One reconnecting client connection. ``device`` None locks onto the first IMAGE
    device seen; ``receive_images`` False keeps the link send-only (``--igtl-out``).
    While it receives images, ``idle_timeout_s`` without a byte drops the connection;
    a message body over ``max_body_bytes`` does too (read as it arrives, never preallocated).
    ``crc`` (wire.CRC_MODES) says which bodies have their header CRC64 checked. The reconnect backoff
    starts again only after a connection that delivered frames and lasted ``stable_s``."""

    def __init__(
        self,
        host: str,
        port: int,
        device: str | None = None,
        receive_images: bool = True,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
        crc: str = CRC_AUTO,
        stable_s: float = STABLE_CONNECTION_S,
    ):
        self.pyigtl = require_pyigtl()
        self.host, self.port = host, int(port)
        self.address = f"{host}:{self.port}"
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.idle_timeout_s, self.max_body_bytes = idle_timeout_s, int(max_body_bytes)
        self.crc = crc
        self.stable_s = stable_s
        self.counters = Counters()
        self.inbox = ImageInbox(self.address, self.counters, device, receive_images)
        self.connected = threading.Event()
        self._sock: socket.socket | None = None
        self._closed_by_us: str | None = None  # why we shut the socket down (a failed send), for the log
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"igtl-client-{self.address}", daemon=True)
        self._thread.start()

    # --- receiving ---------------------------------------------------------
    def enable_images(
        self,
        device: str | None,
        idle_timeout_s: float | None = None,
        max_body_bytes: int | None = None,
        crc: str | None = None,
        **_unused: Any,
    ) -> None:
        """Turn a send-only link into the source's link (same server, one connection)."""
        self.idle_timeout_s = idle_timeout_s or self.idle_timeout_s
        self.max_body_bytes = int(max_body_bytes or self.max_body_bytes)
        self.crc = crc or self.crc
        self.inbox.enable(device)

    @property
    def device(self) -> str | None:
        """The IMAGE device the link keeps (None until it locks onto the first one seen)."""
        return self.inbox.device

    def image_seq(self) -> int:
        """The sequence number of the newest image so far (0: none yet); pass it to
        :meth:`wait_image` to get only images received from now on."""
        return self.inbox.image_seq()

    def _progress(self) -> int:
        """Frames delivered: images received plus messages sent (only these reset the backoff)."""
        return self.counters.get("images") + self.counters.get("messages_sent")

    def _run(self) -> None:
        delay = self.backoff_initial_s
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                warn_throttled(
                    self.counters,
                    "connect_failures",
                    f"OpenIGTLink {self.address}: cannot connect ({exc}); "
                    f"retrying with backoff up to {self.backoff_max_s:.1f} s",
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            sock.settimeout(SEND_TIMEOUT_S)
            tune_socket(sock)
            with self._send_lock:
                self._sock, self._closed_by_us = sock, None
            self.counters.inc("connects")
            self.connected.set()
            log.info("OpenIGTLink %s: connected", self.address)
            progress, since = self._progress(), time.monotonic()
            self._read_until_closed(sock)
            self.connected.clear()
            with self._send_lock:
                self._sock = None
            sock.close()
            # Only a connection that delivered frames for a while resets the backoff: one that connects
            # and then fails on every message, or closes after one image, must not reconnect ten times
            # a second.
            if self._progress() > progress and time.monotonic() - since >= self.stable_s:
                delay = self.backoff_initial_s
            if not self._stop.is_set():
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)

    def _read_until_closed(self, sock: socket.socket) -> None:
        """Read and dispatch messages until the connection ends or the link stops. A message
        that cannot be used is skipped and counted; the connection is kept (it was read whole)."""
        try:
            while not self._stop.is_set():
                idle = (
                    self.idle_timeout_s if self.inbox.receive_images else None
                )  # a send-only peer may stay quiet
                try:
                    fields, msg = read_message(
                        self.pyigtl, sock, self._stop, self.max_body_bytes, idle, self.crc
                    )
                except SkipMessage as skip:
                    warn_counted(self.counters, skip.reason, str(skip))
                    continue
                self._dispatch_guarded(fields, msg)
        except (ConnectionError, OSError) as exc:
            if not self._stop.is_set():
                self._connection_ended(exc)
        except Exception as exc:  # a reader bug must not end the link's thread: reconnect, with backoff
            self.counters.inc("disconnects")
            warn_throttled(
                self.counters,
                "reader_errors",
                f"OpenIGTLink {self.address}: unexpected error while reading "
                f"({type(exc).__name__}: {exc}); reconnecting",
            )
            log.debug("OpenIGTLink %s: reader error", self.address, exc_info=True)

    def _connection_ended(self, exc: OSError) -> None:
        """Count and log why the connection ended: the peer, the network, or our own shutdown
        after a failed send."""
        with self._send_lock:
            closed_by_us, self._closed_by_us = self._closed_by_us, None
        self.counters.inc("disconnects")
        if closed_by_us:
            log.warning("OpenIGTLink %s: closed by us after %s; reconnecting", self.address, closed_by_us)
            return
        if isinstance(exc, TimeoutError):
            self.counters.inc("idle_timeouts")
        log.warning("OpenIGTLink %s: connection lost (%s); reconnecting", self.address, exc)

    def _dispatch_guarded(self, fields: dict, msg: Any) -> None:
        """_dispatch, with an unexpected error costing this one message (counted, logged one
        line, throttled) rather than the connection."""
        try:
            self._dispatch(fields["message_type"], msg)
        except Exception as exc:  # the message was read whole: the stream is still in step
            warn_throttled(
                self.counters,
                "reader_errors",
                f"OpenIGTLink {self.address}: {fields['message_type']} {fields['device_name']!r} "
                f"skipped after an unexpected error ({type(exc).__name__}: {exc})",
            )
            log.debug("OpenIGTLink %s: dispatch error", self.address, exc_info=True)

    def _dispatch(self, message_type: str, msg: Any) -> None:
        self.inbox.receive(message_type, msg)

    def wait_image(self, after_seq: int, timeout: float) -> tuple[int, IgtlImage] | None:
        """The newest image newer than ``after_seq``, waiting up to ``timeout`` s; None if none
        came (or the link closed). Frames that arrived in between are dropped: latest wins."""
        return self.inbox.wait_image(after_seq, timeout)

    def transforms(self) -> dict[str, np.ndarray]:
        """The current matrices (received within transforms.TRANSFORM_MAX_AGE_S) by device name."""
        return self.inbox.transforms()

    # --- sending -----------------------------------------------------------
    def send(self, messages: list) -> bool:
        """Pack and send whole messages; False (counted) when not connected or the send
        failed. A failed send closes the socket so the reader reconnects cleanly."""
        payload = b"".join(m.pack() for m in messages)
        with self._send_lock:
            sock = self._sock
            if sock is None:
                self.counters.inc("send_dropped")
                return False
            try:
                sock.sendall(payload)
            except OSError as exc:
                self.counters.inc("send_errors")
                # The reader logs why when it sees the close; a reset or broken pipe was the peer's doing.
                if not isinstance(exc, ConnectionError):
                    self._closed_by_us = f"a failed send ({exc})"
                shutdown_quietly(sock)
                return False
        self.counters.inc("messages_sent", len(messages))
        return True

    def close(self) -> None:
        self._stop.set()
        with self._send_lock:
            if self._sock is not None:
                shutdown_quietly(self._sock)
        self.inbox.wake()
        if self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
