"""What every OpenIGTLink connection shares (the client link, the server and its viewer connections):
the ``HOST:PORT`` options parsed, socket tuning so a dead peer is noticed, thread-safe skip counters
with throttled warnings, the timeouts, and a quiet shutdown."""

from __future__ import annotations

import logging
import socket
import threading

from edge_runtime.errors import ConfigError
from edge_runtime.live_stats import EVENTS

log = logging.getLogger("sonomap.igtl")

SEND_TIMEOUT_S = 2.0  # a viewer that stalls this long is dropped, not waited for
JOIN_TIMEOUT_S = 3.0  # at close: the I/O thread wakes within SEND_TIMEOUT_S / a read poll and ends
WARN_EVERY = 100  # log the 1st and every 100th skip of one kind
# TCP keepalive + user timeout: the kernel itself declares a silent peer dead after about
# KEEPALIVE_IDLE_S + KEEPALIVE_COUNT * KEEPALIVE_INTERVAL_S, or unacknowledged sends after
# USER_TIMEOUT_MS (send-only links and viewers, where no read-idle timer applies).
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 2, 1, 3
USER_TIMEOUT_MS = 5000  # unacknowledged data for 5 s: the kernel drops the connection (above IDLE_TIMEOUT_S)


def tune_socket(sock: socket.socket) -> None:
    """No Nagle delay; keepalive and a user timeout so a dead peer is noticed (Linux options
    are skipped where the platform lacks them)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class Counters:
    """Thread-safe named counters (frames, skipped_<reason>, connects, ...)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def inc(self, key: str, by: int = 1) -> int:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + by
            return self._values[key]

    def get(self, key: str) -> int:
        with self._lock:
            return self._values.get(key, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


def warn_throttled(counters: Counters, key: str, message: str, level: int = logging.WARNING) -> int:
    """Count ``key``; log ``message`` at ``level`` (one line, with the count) for the 1st and every
    WARN_EVERY-th, so a peer repeating a fault 30 times a second cannot flood the log. Returns the count."""
    n = counters.inc(key)
    if n == 1 or n % WARN_EVERY == 0:
        log.log(level, "%s (%d so far of this kind)", message, n)
    return n


def warn_counted(counters: Counters, reason: str, detail: str) -> None:
    """Count a skipped message as ``skipped_<reason>``; log the 1st and every WARN_EVERY-th."""
    EVENTS.inc(f"igtl_skipped_{reason}")  # -> sonomap_errors_total{kind=...} on /metrics
    warn_throttled(counters, f"skipped_{reason}", f"OpenIGTLink: skipped {detail}")


def shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer: nothing left to shut down


def parse_host_port(text: str, option: str, default_host: str | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT`` when a default host is given) -> (host, port)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host = default_host
    try:
        number = int(port)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT") from exc
    if not host or not 0 <= number <= 65535:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT with a port in 0-65535")
    return host, number
