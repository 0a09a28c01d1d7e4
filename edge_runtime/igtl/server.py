"""``--igtl-serve PORT``: an OpenIGTLink server that viewers (3D Slicer) connect to.

Why not pyigtl.OpenIGTLinkServer: it serves one client at a time (a plain TCPServer)
and installs its own SIGINT/SIGTERM handlers, which must stay with the runtime (systemd
stops it with SIGTERM). Here an accept thread keeps any number of viewers; each new
viewer first gets the newest messages; every viewer's incoming bytes (Slicer sends
STATUS/GET_* queries) are read and dropped so its socket never fills up; a viewer that
stalls a send for SEND_TIMEOUT_S or errors is dropped without affecting the others.

Inputs: messages from the observer. Outputs: bytes to every connected viewer. Files: none.
"""
from __future__ import annotations

import logging
import select
import socket
import threading

from edge_runtime.errors import ConfigError
from edge_runtime.igtl.link import JOIN_TIMEOUT_S, SEND_TIMEOUT_S, Counters, shutdown_quietly
from edge_runtime.igtl.wire import READ_POLL_S, RECV_CHUNK, require_pyigtl

log = logging.getLogger("sonomap.igtl")

LISTEN_BACKLOG = 8


class IgtlServerLink:
    """Listens on ``host:port`` (port 0 picks a free one: see ``.port``)."""

    def __init__(self, port: int, host: str = "0.0.0.0"):
        self.pyigtl = require_pyigtl()
        self.counters = Counters()
        try:
            self._listener = socket.create_server((host, int(port)), backlog=LISTEN_BACKLOG)
        except OSError as exc:
            raise ConfigError(f"--igtl-serve {host}:{port}: cannot listen ({exc})") from exc
        self.host, self.port = host, self._listener.getsockname()[1]
        self.address = f"{host}:{self.port}"
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._last_payload = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"igtl-serve-{self.port}", daemon=True)
        self._thread.start()
        log.info("OpenIGTLink server listening on %s", self.address)

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], READ_POLL_S)
            if not readable or self._stop.is_set():
                continue
            try:
                client, peer = self._listener.accept()
            except OSError:
                continue  # the viewer gave up between select and accept
            client.settimeout(SEND_TIMEOUT_S)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                try:
                    if self._last_payload:
                        client.sendall(self._last_payload)
                except OSError:
                    client.close()
                    continue
                self._clients.append(client)
            self.counters.inc("viewers_connected")
            log.info("OpenIGTLink viewer connected from %s:%s", *peer[:2])
            threading.Thread(target=self._drain, args=(client,), daemon=True,
                             name=f"igtl-viewer-{peer[1]}").start()

    def _drain(self, client: socket.socket) -> None:
        """Read and drop what a viewer sends; notice when it goes away."""
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client], [], [], READ_POLL_S)
                if readable and not client.recv(RECV_CHUNK):
                    break
        except (OSError, ValueError):
            pass  # the viewer's socket was closed under us: treat as gone
        self._drop(client)

    def _drop(self, client: socket.socket) -> None:
        with self._lock:
            if client not in self._clients:
                return
            self._clients.remove(client)
        shutdown_quietly(client)
        client.close()
        self.counters.inc("viewers_dropped")

    def send(self, messages: list) -> bool:
        """Send to every viewer; True when at least one got it."""
        payload = b"".join(m.pack() for m in messages)
        with self._lock:
            self._last_payload = payload
            clients = list(self._clients)
        delivered = 0
        for client in clients:
            try:
                client.sendall(payload)
                delivered += 1
            except OSError as exc:
                log.warning("OpenIGTLink viewer dropped (%s)", exc)
                self._drop(client)
        self.counters.inc("messages_sent" if delivered else "send_dropped", len(messages))
        return delivered > 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            clients, self._clients = list(self._clients), []
        for client in clients:
            shutdown_quietly(client)
            client.close()
