"""Test helper: a TLS-terminating relay in front of a plain-HTTP server, as a hospital's reverse
proxy puts HTTPS in front of its PACS.

Orthanc's own HTTPS cannot stand in: the Debian 12 build (1.10.1) crashes in its web server on the
first TLS connection. The relay accepts TLS on a free loopback port with the given certificate and
copies bytes both ways to ``127.0.0.1:target_port``, one pair of threads per connection.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

CHUNK = 65536


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass  # the other side closed: end this direction
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TlsRelay:
    def __init__(self, target_port: int, cert: Path, key: Path):
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # e.g. a client that does not trust our certificate
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def close(self) -> None:
        self.listener.close()
