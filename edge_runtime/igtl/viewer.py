"""One viewer connected to ``--igtl-serve``: its own outbox and threads, so it can never slow the others.

:meth:`ViewerConnection.offer` never blocks: it puts a packed payload (whole messages) into a
bounded outbox; when the outbox is full the oldest payload is dropped (latest wins, counted).
A sender thread writes the outbox to the socket with a ``SEND_TIMEOUT_S`` deadline per payload;
a reader thread reads what the viewer sends (Slicer's STATUS/GET_ queries) as whole OpenIGTLink
messages and discards them (viewer_input.py), so its socket never fills up, and notices when it goes
away. A viewer that errors, closes, stalls a send past the deadline, sends something that is not
OpenIGTLink or leaves a message unfinished for ``VIEWER_MESSAGE_TIMEOUT_S`` is disconnected, and
``on_gone`` tells the server. The threads start only
with :meth:`ViewerConnection.start`, after the server has registered the viewer: a peer that has
already closed (a port check) then finds itself registered when it is noticed gone, and is removed.
Each viewer keeps when it was last active (a payload sent whole, a whole message received, or
connecting; loose bytes do not count), so the server can tell a viewer being served from a
connection that only holds a place.

Inputs: payloads from the server. Outputs: bytes to one viewer. Files: none.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from edge_runtime.igtl.net import SEND_TIMEOUT_S, Counters, shutdown_quietly
from edge_runtime.igtl.viewer_input import VIEWER_MESSAGE_TIMEOUT_S, ViewerMessages, ViewerProtocolError
from edge_runtime.igtl.wire import READ_POLL_S, RECV_CHUNK

log = logging.getLogger("sonomap.igtl")

OUTBOX_DEPTH = 2  # payloads waiting per viewer: the newest prediction and the one before
# Why a viewer went away when it was its own doing (it closed or reset the connection, as a port check
# or a Slicer connector switched off does): the server counts it but does not warn, since a peer can
# repeat that as fast as it can connect and each warning would cost a journal line.
DISCONNECTED = "disconnected"
STALLED = "stalled"


def send_failure(exc: OSError) -> str:
    """Why a send to a viewer failed (``exc``: what sendall raised): STALLED past the send deadline,
    DISCONNECTED when the viewer closed or reset the connection, else 'send failed (...)'."""
    if isinstance(exc, TimeoutError):
        return STALLED
    if isinstance(exc, ConnectionError):  # reset by the peer, or a broken pipe after its close
        return DISCONNECTED
    return f"send failed ({exc})"


class ViewerConnection:
    """One viewer's socket, outbox and threads (started by :meth:`start`)."""

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        counters: Counters,
        on_gone: Callable[[ViewerConnection, str], None],
        depth: int = OUTBOX_DEPTH,
        send_timeout_s: float = SEND_TIMEOUT_S,
        message_timeout_s: float = VIEWER_MESSAGE_TIMEOUT_S,
    ):
        self.sock, self.peer, self.counters, self._on_gone = sock, peer, counters, on_gone
        self._inbound = ViewerMessages(message_timeout_s)
        # Set when the viewer is dropped for what it sent (viewer_input.TIMED_OUT or BAD_MESSAGE): the
        # server counts it under that name, with a throttled warning.
        self.drop_kind: str | None = None
        self._outbox: deque[bytes] = deque()
        self._depth = depth
        self._cond = threading.Condition()
        self._closed = False
        self._last_active = time.monotonic()  # connected, or last sent a payload or got bytes from it
        sock.settimeout(send_timeout_s)  # bounds each sendall; reads only follow select()
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"igtl-viewer-send-{peer}", daemon=True),
            threading.Thread(target=self._read_loop, name=f"igtl-viewer-read-{peer}", daemon=True),
        ]

    def start(self) -> None:
        """Start sending and reading; call once the server counts this viewer."""
        for thread in self._threads:
            thread.start()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def idle_s(self, now: float) -> float:
        """Seconds since this viewer last took a whole payload or sent us a whole message (or connected)."""
        with self._cond:
            return now - self._last_active

    def _active(self) -> None:
        with self._cond:
            self._last_active = time.monotonic()

    def offer(self, payload: bytes) -> bool:
        """Queue ``payload`` without waiting; False when this viewer is already gone."""
        with self._cond:
            if self._closed:
                return False
            if len(self._outbox) >= self._depth:
                self._outbox.popleft()
                self.counters.inc("viewer_payloads_dropped")
            self._outbox.append(payload)
            self._cond.notify()
            return True

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._outbox or self._closed)
                if self._closed:
                    return
                payload = self._outbox.popleft()
            try:
                self.sock.sendall(payload)
            except OSError as exc:  # includes the send deadline (TimeoutError)
                self.close(send_failure(exc))
                return
            self._active()

    def _read_loop(self) -> None:
        reason = DISCONNECTED
        try:
            while not self._closed:
                readable, _, _ = select.select([self.sock], [], [], READ_POLL_S)
                now = time.monotonic()
                if readable:
                    data = self.sock.recv(RECV_CHUNK)
                    if not data:
                        break
                    if self._inbound.feed(data, now):
                        self._active()  # whole messages only: loose bytes keep no place
                self._inbound.check_deadline(now)
        except ViewerProtocolError as exc:
            self.drop_kind, reason = exc.kind, str(exc)
        except (OSError, ValueError):
            pass  # the socket was closed under us: treat as gone
        self.close(reason)

    def close(self, reason: str = "closed") -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        shutdown_quietly(self.sock)
        self.sock.close()
        self._on_gone(self, reason)
