"""``--igtl-serve [HOST:]PORT``: an OpenIGTLink server that viewers (3D Slicer) connect to.

Why not pyigtl.OpenIGTLinkServer: it serves one client at a time (a plain TCPServer)
and installs its own SIGINT/SIGTERM handlers, which must stay with the runtime (systemd
stops it with SIGTERM). Here an accept thread admits up to ``max_viewers`` viewers from the
allow-list; each gets its own outbox and threads (viewer.py), so a viewer that stops reading
loses frames and then its connection, never the others' frames. Each new viewer first gets
the newest messages. When all places are taken, the viewer idle longest (nothing delivered to
it, no whole message from it) gives its place to the newcomer if it has been idle ``evict_idle_s``
or more, so connections that only sit there cannot keep real viewers out for ever. A viewer that
trickles bytes (slowloris) is idle too, since loose bytes are no message, and is dropped anyway once
a message it began is not whole within ``message_timeout_s``; one that sends something other than
OpenIGTLink is dropped at once (viewer_input.py). An idle viewer is otherwise kept: one connected
while no prediction is made (NO SIGNAL) is idle through no fault of its own. When a viewer's
threads cannot be started (the unit's TasksMax, memory) its connection is closed and counted
(``viewers_no_thread``) and the server goes on accepting; no failed admission ends the accept thread.

OpenIGTLink has no authentication, so who may connect is decided by address: the server
binds loopback unless given another HOST, and any other HOST needs an allow-list of networks
(``--igtl-allow CIDR``, repeatable; ``0.0.0.0/0`` says "anyone" explicitly).

Inputs: messages from the observer. Outputs: bytes to every connected viewer. Files: none.
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import threading
import time

from edge_runtime.errors import ConfigError
from edge_runtime.igtl.net import (
    JOIN_TIMEOUT_S,
    WARN_EVERY,
    Counters,
    shutdown_quietly,
    tune_socket,
    warn_throttled,
)
from edge_runtime.igtl.viewer import DISCONNECTED, ViewerConnection
from edge_runtime.igtl.viewer_input import VIEWER_MESSAGE_TIMEOUT_S
from edge_runtime.igtl.wire import READ_POLL_S, require_pyigtl
from edge_runtime.live_stats import EVENTS

log = logging.getLogger("sonomap.igtl")

LISTEN_BACKLOG = 8
MAX_VIEWERS = 4  # a Slicer or two per cart; each viewer costs two threads and bandwidth
DEFAULT_HOST = "127.0.0.1"
# A viewer that took no prediction and sent nothing for this long may give its place to a new
# one when all are taken: predictions come several times a second, so a viewer being served is
# never this idle, while one that only holds a connection open always is.
VIEWER_EVICT_IDLE_S = 5.0
NO_THREAD_EVENT = "igtl_no_thread"  # sonomap_errors_total{kind=...}: a viewer closed for want of a thread


def parse_allow(allow: list[str] | None) -> list:
    """``--igtl-allow`` values -> ip_network list; ConfigError names a bad one."""
    networks = []
    for text in allow or []:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"--igtl-allow {text!r}: not an address or CIDR network ({exc})") from exc
    return networks


def is_loopback_host(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def peer_allowed(address: str, networks: list) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks) if networks else ip.is_loopback


class IgtlServerLink:
    """Listens on ``host:port`` (port 0 picks a free one: see ``.port``). ``allow``: networks
    viewers may connect from (default, and required off loopback: loopback only). ``evict_idle_s``:
    when all ``max_viewers`` places are taken, a viewer idle this long gives its place to a newcomer;
    ``message_timeout_s``: a viewer's message must be whole this long after its first byte
    (viewer_input.py)."""

    def __init__(
        self,
        port: int,
        host: str = DEFAULT_HOST,
        allow: list[str] | None = None,
        max_viewers: int = MAX_VIEWERS,
        evict_idle_s: float = VIEWER_EVICT_IDLE_S,
        message_timeout_s: float = VIEWER_MESSAGE_TIMEOUT_S,
    ):
        self.pyigtl = require_pyigtl()
        self.counters = Counters()
        host = host.strip("[]")  # --igtl-serve [::1]:18945
        self.allow = parse_allow(allow)
        if not self.allow and not is_loopback_host(host):
            raise ConfigError(
                f"--igtl-serve {host}:{port}: OpenIGTLink has no authentication; serving beyond "
                "loopback needs --igtl-allow CIDR for the viewers' network"
            )
        self.max_viewers, self.evict_idle_s = max_viewers, evict_idle_s
        self.message_timeout_s = message_timeout_s
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._listener = socket.create_server((host, int(port)), family=family, backlog=LISTEN_BACKLOG)
        except OSError as exc:
            raise ConfigError(f"--igtl-serve {host}:{port}: cannot listen ({exc})") from exc
        self.host, self.port = host, self._listener.getsockname()[1]
        self.address = f"{host}:{self.port}"
        self._clients: list[ViewerConnection] = []
        self._lock = threading.Lock()
        self._last_payload = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"igtl-serve-{self.port}", daemon=True)
        self._thread.start()
        log.info("OpenIGTLink server listening on %s", self.address)

    @property
    def client_count(self) -> int:
        """Viewers connected now (one that has closed never counts, even before it is removed)."""
        with self._lock:
            return sum(not viewer.closed for viewer in self._clients)

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], READ_POLL_S)
            if not readable or self._stop.is_set():
                continue
            try:
                client, peer = self._listener.accept()
            except OSError:
                continue  # the viewer gave up between select and accept
            # Whatever goes wrong admitting one viewer, the accept thread must live on: it is the
            # only one, and without it no viewer is ever accepted again.
            try:
                self._admit(client, peer)
            except Exception as exc:
                warn_throttled(
                    self.counters,
                    "admit_failed",
                    f"OpenIGTLink viewer from {peer[0]}:{peer[1]} not admitted ({type(exc).__name__}: {exc})",
                )
                shutdown_quietly(client)
                client.close()

    def _admit(self, client: socket.socket, peer) -> None:
        where = f"{peer[0]}:{peer[1]}"
        refusal = None
        if not peer_allowed(peer[0], self.allow):
            refusal = "not in --igtl-allow"
        elif self.client_count >= self.max_viewers and not self._evict_idlest(where):
            refusal = f"already {self.max_viewers} viewers, none idle for {self.evict_idle_s:g} s"
        if refusal:
            n = self.counters.inc("viewers_refused")
            if n == 1 or n % WARN_EVERY == 0:
                log.warning("OpenIGTLink viewer from %s refused (%s); %d refused so far", where, refusal, n)
            shutdown_quietly(client)
            client.close()
            return
        try:
            tune_socket(client)
        except OSError as exc:  # the peer reset the connection before we got to it
            log.info("OpenIGTLink viewer from %s gone before it was served (%s)", where, exc)
            client.close()
            return
        viewer = ViewerConnection(
            client, where, self.counters, self._gone, message_timeout_s=self.message_timeout_s
        )
        with self._lock:
            self._clients.append(viewer)
            if self._last_payload:
                viewer.offer(self._last_payload)
        # Registered first, started second: a peer that has already closed is noticed by the
        # viewer's reader, which then finds it here and removes it (never a ghost holding a slot).
        try:
            viewer.start()
        # Thread.start() raises RuntimeError when the OS refuses a thread, MemoryError when Python
        # cannot allocate one: close this viewer and give its place back; the next may get threads.
        except (RuntimeError, MemoryError) as exc:
            self._no_thread(viewer, exc)
            return
        self.counters.inc("viewers_connected")
        log.info("OpenIGTLink viewer connected from %s", where)

    def _no_thread(self, viewer: ViewerConnection, exc: BaseException) -> None:
        """Unregister and close ``viewer``, whose threads could not all be started; count it and warn
        (the 1st and every WARN_EVERY-th, one line each) so a connection flood cannot flood the log."""
        with self._lock:
            if viewer in self._clients:
                self._clients.remove(viewer)
        viewer.close("no thread")  # unregistered first: close() reports nothing more
        EVENTS.inc(NO_THREAD_EVENT)
        warn_throttled(
            self.counters,
            "viewers_no_thread",
            f"OpenIGTLink viewer from {viewer.peer} closed: no thread for it "
            f"({str(exc) or type(exc).__name__})",
        )

    def _evict_idlest(self, newcomer: str) -> bool:
        """Close the viewer idle longest if it has been idle at least evict_idle_s, to make room
        for ``newcomer``; False when every viewer is in use."""
        now = time.monotonic()
        with self._lock:
            idle = [(viewer.idle_s(now), viewer) for viewer in self._clients if not viewer.closed]
        if not idle:
            return True  # all of them closed meanwhile: there is room
        seconds, idlest = max(idle, key=lambda pair: pair[0])
        if seconds < self.evict_idle_s:
            return False
        self.counters.inc("viewers_evicted")
        # Closed outside the lock: close() reports back through _gone, which takes it.
        idlest.close(f"idle for {seconds:.1f} s; its place went to a new viewer from {newcomer}")
        return True

    def _gone(self, viewer: ViewerConnection, reason: str) -> None:
        with self._lock:
            if viewer not in self._clients:
                return
            self._clients.remove(viewer)
        self.counters.inc("viewers_dropped")
        if viewer.drop_kind:  # for what it sent: a peer can repeat that as fast as it connects, so throttled
            EVENTS.inc(f"igtl_{viewer.drop_kind}")  # sonomap_errors_total{kind="igtl_viewers_timed_out"|...}
            warn_throttled(
                self.counters, viewer.drop_kind, f"OpenIGTLink viewer {viewer.peer} dropped ({reason})"
            )
        elif reason != DISCONNECTED and not self._stop.is_set():
            log.warning("OpenIGTLink viewer %s dropped (%s)", viewer.peer, reason)

    def send(self, messages: list) -> bool:
        """Queue for every viewer, never waiting on any; True when at least one takes it."""
        payload = b"".join(m.pack() for m in messages)
        with self._lock:
            self._last_payload = payload
            viewers = list(self._clients)
        delivered = sum(viewer.offer(payload) for viewer in viewers)
        self.counters.inc("messages_sent" if delivered else "send_dropped", len(messages))
        return delivered > 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            viewers = list(self._clients)
        for viewer in viewers:
            viewer.close("server closing")
