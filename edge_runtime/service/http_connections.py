"""The HTTP server's connection book: which connections are open, from where, and in what state.

:class:`ConnectionTracker` is what :class:`~edge_runtime.service.http_guard.GuardedHTTPServer`
admits connections through and reaps them with. A connection is WAITING for (the rest of) its
request, under the request deadline and evictable; BUSY once its request is in and has passed the
checks; CLOSING once cut. At either cap (all connections, or one address's share) the connection
that has waited longest for its request is cut to make room, so a flood of half-sent requests
cannot lock out a real client; only when every candidate is busy is the newcomer refused.
"""

from __future__ import annotations

import socket
import threading
import time

PEER_SHARE_DIVISOR = 4  # one client address holds at most a quarter of the connections (16 of 64)
WAITING, BUSY, CLOSING = "waiting", "busy", "closing"


class _Conn:
    __slots__ = ("sock", "peer", "state", "since")

    def __init__(self, sock: socket.socket, peer: str):
        self.sock, self.peer, self.state, self.since = sock, peer, WAITING, time.monotonic()


class ConnectionTracker:
    """Live connections (keyed by their accepted socket object), with their state and since when."""

    def __init__(self, limit: int, request_timeout_s: float, per_peer: int | None = None):
        self.limit, self.request_timeout_s = limit, request_timeout_s
        self.per_peer = per_peer or max(1, limit // PEER_SHARE_DIVISOR)
        self._lock = threading.Lock()
        self._conns: dict[int, _Conn] = {}  # id(accepted socket) -> record
        self.evicted = 0
        self.timed_out = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._conns)

    def admit(self, sock: socket.socket, peer: str) -> bool:
        """Register a new connection from ``peer``, making room if needed: a peer at its share
        gives up its own oldest waiting connection; at the total cap the oldest waiting one of
        the peer holding most goes. False (refuse) when nothing can give way."""
        with self._lock:
            live = [c for c in self._conns.values() if c.state != CLOSING]
            mine = [c for c in live if c.peer == peer]
            if len(mine) >= self.per_peer or len(live) >= self.limit:
                pool = mine if len(mine) >= self.per_peer else live
                if pool is live:  # take from whoever holds most, so one address cannot starve the rest
                    counts: dict[str, int] = {}
                    for c in live:
                        counts[c.peer] = counts.get(c.peer, 0) + 1
                    pool = [c for c in live if counts[c.peer] == max(counts.values())]
                waiting = [c for c in pool if c.state == WAITING]
                if not waiting:
                    return False
                self.evicted += 1
                _cut(min(waiting, key=lambda c: c.since))
            self._conns[id(sock)] = _Conn(sock, peer)
            return True

    def get(self, sock: socket.socket) -> _Conn | None:
        with self._lock:
            return self._conns.get(id(sock))

    def rebind(self, conn: _Conn, sock: socket.socket) -> None:
        with self._lock:
            conn.sock = sock

    def mark(self, conn: _Conn, state: str) -> bool:
        """Set ``conn``'s state (restarting its clock); False when it is already being cut."""
        with self._lock:
            if conn.state == CLOSING:
                return False
            conn.state, conn.since = state, time.monotonic()
            return True

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.pop(id(sock), None)

    def reap(self) -> None:
        """Close connections whose request (line, headers, body) is not in by the deadline."""
        deadline = time.monotonic() - self.request_timeout_s
        with self._lock:
            for conn in self._conns.values():
                if conn.state == WAITING and conn.since < deadline:
                    self.timed_out += 1  # counted before the cut: whoever sees the cut sees the count
                    _cut(conn)


def _cut(conn: _Conn) -> None:
    """Shut a connection down under the thread blocked on it (which then sees EOF and ends).
    The plain-socket method on purpose: it works on a TLS socket's descriptor without
    touching the TLS state another thread is using. Caller holds the tracker's lock."""
    conn.state = CLOSING
    try:
        socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing to cut
