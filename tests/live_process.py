"""Test helper: `sonomap live` in a subprocess with its HTTP server, stderr collected line by line
while it runs, polled until a condition holds, stopped with SIGTERM as systemd stops it."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

from loopback import SONOMAP, free_port

POLL_S = 0.2
STOP_S = 30  # SIGTERM to exit: recordings finalised, summary written
READER_JOIN_S = 5


class LiveProcess:
    """``sonomap live ARGS --http 127.0.0.1:PORT``; ``lines``: its stderr so far."""

    def __init__(self, *args: str, port: int | None = None):
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [*SONOMAP, "live", *map(str, args), "--http", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait(self, what, timeout: float, message: str):
        """``what()``'s first truthy value within ``timeout`` s (an OSError: the server is not
        listening yet); AssertionError with the log's tail when the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "\n".join(self.lines[-30:])
            try:
                found = what()
            except OSError:
                found = None
            if found:
                return found
            time.sleep(POLL_S)
        raise AssertionError(f"timed out waiting for {message}; log tail: {self.lines[-10:]}")

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed after STOP_S)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.reader.join(timeout=READER_JOIN_S)
