"""The HTTP server's transport guards: connection cap, deadlines, TLS, Host check (stdlib only).

:class:`GuardedHTTPServer` is a ``ThreadingHTTPServer`` that

- holds at most ``MAX_CONNECTIONS`` connections (one thread each), and at most a quarter of
  them from one client address. When a new one arrives at either limit, a connection that has
  waited longest for its request headers is closed to make room (the newcomer's own at its
  address's limit, else one of the address holding most), so a flood of half-sent requests
  (slowloris) cannot lock out a real client; only when every candidate is busy serving is the
  newcomer refused (the bookkeeping: :mod:`edge_runtime.service.http_connections`);
- gives every connection ``REQUEST_TIMEOUT_S`` to deliver its whole request: the request line,
  the headers and the body a route reads (also the keep-alive idle limit), enforced by the accept
  loop's housekeeping, however slowly the bytes trickle in. Until then a connection counts as
  waiting (it may be evicted, above); the handler marks it busy once its request is in and has
  passed the token and Host checks (a refused request's answer ends its connection instead);
- gives every socket read and write ``IO_TIMEOUT_S``: a viewer that stops reading its MJPEG
  stream blocks a send that long at most, then is dropped and its stream slot freed;
- with TLS (:func:`tls_context`), does the handshake in the connection's own thread, under the
  same deadline, so a stalled handshake never blocks the accept loop;
- when no thread can be started for a new connection (the unit's TasksMax, memory), closes it
  and counts ``http_no_thread``; a request thread that runs out of memory drops its connection
  and counts ``http_no_memory``. Either logs one warning line a minute at most, no traceback;
- drops the connection of a request thread that ends on any other exception (a fault in a route),
  counts ``http_handler_error`` and logs one line a minute at most naming the exception's type and
  where it was raised: never a traceback per connection, which a client could repeat at will.

:func:`host_allowed` is the DNS-rebinding guard for loopback binds: a browser tricked into
calling 127.0.0.1 by a hostile name still sends that name in ``Host``.

Why by hand: the stdlib server has per-socket timeouts only; no well-kept library adds these
guards to it without replacing it (and the runtime must stay stdlib-only for its HTTP side).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import traceback
from http.server import ThreadingHTTPServer
from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.live_stats import EVENTS
from edge_runtime.service.http_connections import ConnectionTracker
from edge_runtime.service.log_throttle import ThrottledWarning

log = logging.getLogger("sonomap.http")

MAX_CONNECTIONS = 64  # threads the server may hold; well under the units' TasksMax
REQUEST_TIMEOUT_S = 10.0  # request line, headers and body (and keep-alive idle) must arrive within this
IO_TIMEOUT_S = 5.0  # any single read or write (a stalled MJPEG viewer is dropped after it)
LISTEN_BACKLOG = 128  # a connection burst waits in the kernel, not refused by it
HOUSEKEEPING_S = 0.25  # how often the accept loop closes connections past their deadline
STARVED_WARN_EVERY_S = 60.0  # dropped connections (no thread, no memory, a route fault) logged this seldom
# sonomap_errors_total{kind=...}: connections dropped for want of a thread, or of memory mid-request,
# or because their request thread ended on an exception no route handled
NO_THREAD_EVENT, NO_MEMORY_EVENT = "http_no_thread", "http_no_memory"
HANDLER_ERROR_EVENT = "http_handler_error"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "127.0.0.1", "::1"})


# Host: a name or IPv4 address, or an IPv6 address in brackets, then an optional numeric port (RFC 9110
# 7.2); a bare IPv6 address (several colons, no brackets) is taken whole, as some clients send it.
HOST_HEADER = re.compile(
    r"\[(?P<bracketed>[0-9a-f:.]+)\](?::[0-9]{1,5})?|(?P<name>[^:\[\]]+|[0-9a-f:]+)(?::[0-9]{1,5})?"
)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None) -> bool:
    """True when ``Host`` names this machine's loopback, with a numeric port or none: 'localhost',
    '127.x.y.z', '[::1]'. Anything after the name but a port ('[::1].evil', 'localhost:x') is not."""
    if not header:
        return False
    host = HOST_HEADER.fullmatch(header.strip().lower())
    if host is None:
        return False
    name = host.group("bracketed") or host.group("name")
    return name in LOOPBACK_NAMES or is_loopback(name)


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context (TLS >= 1.2) from PEM files, None without them; ConfigError names the bad file."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"--tls-cert {cert} / --tls-key {key}: not a matching PEM certificate and key ({exc})"
        ) from exc
    return context


class GuardedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address,
        handler,
        tls: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_per_peer: int | None = None,
        io_timeout_s: float = IO_TIMEOUT_S,
    ):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.tls = tls
        self.io_timeout_s = io_timeout_s
        self.tracker = ConnectionTracker(max_connections, request_timeout_s, max_per_peer)
        self._last_reap = 0.0
        self._starved_warning = ThrottledWarning(STARVED_WARN_EVERY_S)
        self._failed_warning = ThrottledWarning(STARVED_WARN_EVERY_S)
        self._local = threading.local()  # the connection record of the thread serving it
        super().__init__(address, handler)

    def mark(self, state: str) -> bool:
        """Called by the handler: WAITING for (the rest of) a request (evictable, under the deadline),
        or BUSY once it is in. False when the connection is already being cut: do not act on it."""
        conn = getattr(self._local, "conn", None)
        return conn is None or self.tracker.mark(conn, state)

    def verify_request(self, request, client_address) -> bool:
        return self.tracker.admit(request, client_address[0])

    def service_actions(self) -> None:
        now = time.monotonic()
        if now - self._last_reap >= HOUSEKEEPING_S:
            self._last_reap = now
            self.tracker.reap()

    def process_request(self, request, client_address) -> None:
        try:
            super().process_request(request, client_address)
        # No thread to be had (the unit's TasksMax, memory): drop this one. Thread.start() raises
        # RuntimeError when the OS refuses the thread, MemoryError when Python cannot allocate it.
        except (RuntimeError, MemoryError) as exc:
            self.tracker.release(request)
            self.shutdown_request(request)
            self._starved(NO_THREAD_EVENT, client_address[0], exc)

    def _starved(self, event: str, peer: str, exc: Exception) -> None:
        """Count (``event``) a connection dropped for want of a thread or of memory; warn (one line)
        at most once every STARVED_WARN_EVERY_S, with how many were dropped since the last warning."""
        EVENTS.inc(event)
        count = self._starved_warning.count()
        if not count:
            return
        log.warning(
            "HTTP connections dropped for want of a thread or memory: %d since the last such warning "
            "(the latest from %s: %s)",
            count,
            peer,
            str(exc) or type(exc).__name__,
        )

    def _failed(self, peer: str, exc: Exception) -> None:
        """Count (HANDLER_ERROR_EVENT) a connection dropped because its request thread ended on an
        exception; warn (one line) at most once every STARVED_WARN_EVERY_S. The line names the
        exception's type and where it was raised, not its message, which may quote the request."""
        EVENTS.inc(HANDLER_ERROR_EVENT)
        count = self._failed_warning.count()
        if not count:
            return
        last = traceback.extract_tb(exc.__traceback__)[-1:]  # where it was raised (none: unknown)
        where = f"{Path(last[0].filename).name}:{last[0].lineno} in {last[0].name}" if last else "?"
        log.warning(
            "HTTP connections dropped on an unexpected error: %d since the last such warning "
            "(the latest from %s: %s at %s)",
            count,
            peer,
            type(exc).__name__,
            where,
        )

    def process_request_thread(self, request, client_address) -> None:
        conn = request
        self._local.conn = record = self.tracker.get(request)
        try:
            request.settimeout(self.io_timeout_s)
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
                if record is not None:
                    self.tracker.rebind(record, conn)
                conn.do_handshake()  # here, in this connection's thread, under its deadline
            self.finish_request(conn, client_address)
        except OSError as exc:  # peer gone, timed out or cut, bad TLS handshake (SSLError is an OSError)
            log.debug("HTTP connection from %s ended: %s", client_address[0], exc)
        except MemoryError as exc:  # the process is at its memory limit: drop this one, say so now and then
            self._starved(NO_MEMORY_EVENT, client_address[0], exc)
        # Any other exception is a fault in a route: drop this connection, keep the server, and do
        # not let threading print a traceback a client could repeat for every connection it opens.
        except Exception as exc:
            self._failed(client_address[0], exc)
        finally:
            self._local.conn = None
            self.tracker.release(request)
            self.shutdown_request(conn)

    def serve_forever(self, poll_interval: float = HOUSEKEEPING_S) -> None:
        super().serve_forever(poll_interval)
