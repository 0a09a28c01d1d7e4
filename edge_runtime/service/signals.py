"""Unix signals for the service: SIGHUP reloads the config, SIGTERM/SIGINT stop cleanly,
SIGUSR1 marks a biopsy (captured as a case with ``--cases DIR``; see edge_runtime.biopsy).

The handlers only set requests on the pipeline (``pipeline.request_reload()``,
``pipeline.stop()``); the pipeline does the work in its own threads at a frame
boundary, so a recording is closed by the code that owns it, never from inside a signal
handler. ``systemctl reload sonomap`` sends SIGHUP (ExecReload=kill -HUP $MAINPID);
``systemctl stop`` sends SIGTERM and waits TimeoutStopSec.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from edge_runtime.biopsy.marks import MARKS
from edge_runtime.errors import StopSignal
from edge_runtime.service.sdnotify import Notifier

log = logging.getLogger("sonomap.signals")


class SignalHandlers:
    """Installed handlers; ``restore()`` puts the previous ones back (tests, nested runs)."""

    def __init__(
        self, pipeline: Any, notifier: Notifier | None = None, on_reload: Callable[[], None] | None = None
    ):
        self.pipeline = pipeline
        self.notifier = notifier or Notifier()
        self.on_reload = on_reload
        self.reloads = 0
        self.stops = 0
        self.stopped_by: signal.Signals | None = None  # the first SIGTERM/SIGINT (replay's exit status)
        self._previous: dict[int, Any] = {}

    def install(self) -> SignalHandlers:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for sig, handler in (
            (signal.SIGHUP, self._hup),
            (signal.SIGTERM, self._term),
            (signal.SIGINT, self._term),
            (signal.SIGUSR1, self._usr1),
        ):
            self._previous[sig] = signal.signal(sig, handler)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _hup(self, signum: int, _frame: Any) -> None:
        self.reloads += 1
        log.warning("SIGHUP: reloading the config without restarting")
        self.notifier.status("reloading config (SIGHUP)")
        if self.on_reload is not None:
            self.on_reload()
        self.pipeline.request_reload()

    def _usr1(self, signum: int, _frame: Any) -> None:
        if not MARKS.request("signal"):
            log.warning("SIGUSR1: biopsy mark ignored (start with --cases DIR to capture biopsies)")

    def _term(self, signum: int, _frame: Any) -> None:
        self.stops += 1
        name = signal.Signals(signum).name
        if self.stops > 1:  # a second Ctrl-C / SIGTERM while stopping: give up waiting
            raise StopSignal(signum, f"stopped by a second {name} while stopping")
        self.stopped_by = signal.Signals(signum)
        log.warning("%s: stopping, finalising recordings", name)
        self.notifier.stopping(f"stopping ({name}): finalising recordings")
        self.pipeline.stop()


def install_signal_handlers(
    pipeline: Any, notifier: Notifier | None = None, on_reload: Callable[[], None] | None = None
) -> SignalHandlers:
    """SIGHUP -> pipeline.request_reload(); SIGTERM/SIGINT -> pipeline.stop()."""
    return SignalHandlers(pipeline, notifier, on_reload).install()
