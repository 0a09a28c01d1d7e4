"""sd_notify(3) over a plain unix datagram socket, with no dependency.

systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for the Linux
abstract namespace) and, when ``WatchdogSec=`` is set, ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``). Each notification is one datagram of newline-separated
``KEY=VALUE`` fields. Off systemd (``NOTIFY_SOCKET`` unset) every call is a no-op,
so the same binary runs from a shell, a test or a unit.

Inputs: the environment. Outputs: datagrams to the socket. Files: none.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from edge_runtime.errors import ConfigError

log = logging.getLogger("sonomap.sdnotify")

USEC_PER_S = 1_000_000
ABSTRACT_PREFIX = "@"
# Keep STATUS= short: systemctl status shows one line, and datagrams must stay small.
MAX_STATUS_CHARS = 200


def parse_watchdog_usec(env: Mapping[str, str] | None = None) -> float | None:
    """Watchdog timeout in seconds from ``WATCHDOG_USEC``, or None when no watchdog
    applies to this process (unset, or ``WATCHDOG_PID`` names another process).

    Raises ConfigError naming the variable when it is set but not a positive integer.
    """
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC")
    if raw is None or raw == "":
        return None
    pid = env.get("WATCHDOG_PID")
    if pid not in (None, "") and pid.strip() != str(os.getpid()):
        return None  # the watchdog is meant for another process (e.g. our parent)
    try:
        usec = int(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"WATCHDOG_USEC={raw!r}: not an integer number of microseconds") from exc
    if usec <= 0:
        raise ConfigError(f"WATCHDOG_USEC={raw!r}: must be > 0")
    return usec / USEC_PER_S


def socket_address(value: str) -> str | bytes:
    """Map a NOTIFY_SOCKET value to a connect() address: ``@x`` -> b"\\0x" (abstract)."""
    if value.startswith(ABSTRACT_PREFIX):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    raise ConfigError(
        f"NOTIFY_SOCKET={value!r}: expected an absolute path or an @abstract name "
        "(vsock: addresses are not supported)"
    )


def _clean(value: str) -> str:
    """One line, bounded length: a newline would start a new KEY=VALUE field."""
    return " ".join(str(value).split())[:MAX_STATUS_CHARS]


class Notifier:
    """Sends sd_notify messages. ``enabled`` is False off systemd; then every call
    returns False without doing anything. Send failures are logged once and never
    raised: a lost status message must not stop the ultrasound display."""

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = socket_address(raw) if raw else None
        self.watchdog_s = parse_watchdog_usec(env) if self.address else None
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send one datagram with the given ``KEY=VALUE`` fields. True when sent."""
        if self.address is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)  # the render thread calls us: never block it
                self._sock = sock
            self._sock.sendto(payload, self.address)
            if self._warned:  # a later run of failures (the watchdog's pings lost again) is said again
                log.warning("sd_notify to %r works again", self.address)
                self._warned = False
            return True
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %r failed: %s (silent until it works again)", self.address, exc)
                self._warned = True
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={_clean(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_clean(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask systemd for ``seconds`` more before the start/stop timeout fires."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * USEC_PER_S))}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={_clean(status)}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
