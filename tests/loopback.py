"""Loopback helpers the service tests share: a free TCP port, and a GET that returns error pages too."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

LOOPBACK = "127.0.0.1"
GET_TIMEOUT_S = 5.0  # a local service answers in milliseconds; longer means it is stuck


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def get_bytes(url: str, timeout: float = GET_TIMEOUT_S) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get(url: str, timeout: float = GET_TIMEOUT_S) -> tuple[int, str]:
    """(status, body as text) of a GET; an HTTP error status is returned, not raised."""
    status, body = get_bytes(url, timeout)
    return status, body.decode()
