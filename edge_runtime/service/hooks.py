"""What `sonomap live` adds when it runs as a service, wired in one place.

- :func:`live_kwargs` (before the Pipeline is built): the capture device wrapped in a
  :class:`~edge_runtime.sources.reconnect.ResilientSource`, the sd_notify
  :class:`~edge_runtime.service.watchdog.ServiceObserver` appended to the observers, recording
  directories created 0700, log redaction of DICOM identifiers, and ``STATUS=loading``.
- :func:`install` (once the Pipeline exists): SIGHUP -> reload, SIGTERM -> clean stop.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

from edge_runtime import privacy
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.frames import Observer
from edge_runtime.service.sdnotify import Notifier
from edge_runtime.service.signals import SignalHandlers, install_signal_handlers
from edge_runtime.service.watchdog import ServiceObserver
from edge_runtime.sinks import recordings
from edge_runtime.sources.opener import reconnecting_source

log = logging.getLogger("sonomap.service")
GROUP_OTHER_BITS = 0o077


def private_recording_dirs(config: RuntimeConfig) -> list[Path]:
    """Create missing recording folders 0700; warn about existing ones others can read."""
    sinks = config.sinks
    folders = [recordings.expand(path).parent for path in (sinks.video, sinks.raw) if path]
    folders += [recordings.expand(sinks.masks)] if sinks.masks else []
    for folder in folders:
        if not folder.exists():
            privacy.make_private_dir(folder)
        elif stat.S_IMODE(folder.stat().st_mode) & GROUP_OTHER_BITS:
            log.warning("recordings go to %s, which other users can read (chmod 700 it)", folder)
    return folders


def live_kwargs(config: RuntimeConfig, observers: list[Observer]) -> dict[str, Any]:
    """Pipeline keyword arguments for live mode: ``source`` and ``observers``."""
    notifier = Notifier()
    notifier.status("loading model and opening the video source")
    privacy.install_log_redaction()
    private_recording_dirs(config)
    service_observers = [ServiceObserver(notifier)] if notifier.enabled else []
    # Under systemd, wait behind NO SIGNAL for a scanner switched on after the cart; at a terminal,
    # a device that cannot be opened at all is an immediate one-line error.
    source = reconnecting_source(config, fail_first_open=not notifier.enabled)
    return {"source": source, "observers": list(observers) + service_observers}


def install(pipeline: Any) -> SignalHandlers:
    return install_signal_handlers(pipeline, Notifier())
