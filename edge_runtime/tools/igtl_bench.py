"""``sonomap bench --source igtl://...``: round-trip latency through the real live pipeline.

The live pipeline reads the igtl:// source and sends its predictions through an
``--igtl-serve`` sink on an ephemeral loopback port; a viewer thread in this process
(standing in for Slicer) connects to it and timestamps every labelmap it receives.
Reported, p50/p99/max in ms:
- ``round_trip``: input IMAGE timestamp (stamped by the server, e.g. PLUS) -> labelmap
  fully received by the viewer: network in, decode, ROI, inference, encode, network out.
  The two clocks are the server's and ours: exact on one host (loopback), otherwise
  only as good as their NTP/PTP sync (a negative or huge value says they are not synced);
- ``received_to_sent``: IMAGE received -> prediction sent, on our clock only.
Inputs: the igtl:// spec, a runtime config. Outputs: printed lines and a dict. Files: none.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time

from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.igtl.link import CONNECT_TIMEOUT_S
from edge_runtime.igtl.server import IgtlServerLink
from edge_runtime.igtl.sink import LABELMAP_TAG, IgtlObserver
from edge_runtime.igtl.source import open_igtl_source
from edge_runtime.igtl.wire import SkipMessage, read_message
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.stats import summarise
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.igtl")

LOOPBACK = "127.0.0.1"
DEFAULT_SOURCE_TIMEOUT_S = 10.0  # a bench against a dead server ends with an error, not a hang
DRAIN_S = 2.0  # time for the last labelmaps to reach the viewer
DRAIN_POLL_S = 0.01  # check the viewer's count this often while draining (well under a frame)
MAX_SECONDS_PER_FRAME = 1.0  # a stalled stream ends the bench instead of hanging it


class LoopbackViewer:
    """Connects to our IGTL server like Slicer would; records labelmap arrival latency."""

    def __init__(self, port: int, pyigtl):
        self.pyigtl = pyigtl
        self.sock = socket.create_connection((LOOPBACK, port), timeout=CONNECT_TIMEOUT_S)
        self.latency_ms: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="igtl-bench-viewer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    fields, msg = read_message(self.pyigtl, self.sock, self.stop)
                except SkipMessage:
                    continue
                now = time.time()
                if fields["message_type"] == "IMAGE" and fields["device_name"].startswith(LABELMAP_TAG):
                    self.latency_ms.append((now - fields["timestamp"]) * MS_PER_S)
        except (ConnectionError, OSError):
            return  # server closed at the end of the run

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DRAIN_S)
        self.sock.close()


def _with_timeout(spec: str) -> str:
    if "timeout=" in spec:
        return spec
    return f"{spec}{'&' if '?' in spec else '?'}timeout={DEFAULT_SOURCE_TIMEOUT_S:g}"


def run_igtl_bench(spec: str, config: RuntimeConfig, frames: int) -> dict:
    """Run the live pipeline on ``spec`` until it has shown ``frames`` frames (at most
    MAX_SECONDS_PER_FRAME each); print and return {"round_trip_ms", "received_to_sent_ms",
    "pipeline" (its summary), "counters", "predictions_sent"}."""
    config = copy.deepcopy(config)
    config.source.input = spec
    config.source.max_frames = int(frames)
    config.live.duration_s = int(frames) * MAX_SECONDS_PER_FRAME
    config.sinks.window = False
    server = IgtlServerLink(0, LOOPBACK)
    observer = IgtlObserver(server)
    viewer = LoopbackViewer(server.port, server.pyigtl)
    source = open_igtl_source(_with_timeout(spec))
    try:
        pipeline = Pipeline(config, observers=[observer], source=source)
        summary = pipeline.run()  # closes the observer (flushing it) and the source
        counters = source.counters
        deadline = time.monotonic() + DRAIN_S
        while len(viewer.latency_ms) < observer.sent and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_S)
    finally:
        viewer.close()
        observer.close()
        source.close()
    report = {
        "source": spec,
        "round_trip_ms": summarise(viewer.latency_ms),
        "received_to_sent_ms": summarise(observer.capture_to_sent_ms),
        "predictions_sent": observer.sent,
        "counters": counters,
        "pipeline": summary,
    }
    print_igtl_report(report)
    return report


def print_igtl_report(report: dict) -> None:
    print(
        f"OpenIGTLink bench on {report['source']}: {report['pipeline'].get('frames')} frames shown, "
        f"{report['predictions_sent']} predictions sent"
    )
    for key, label in (
        ("round_trip_ms", "round trip (input stamp -> labelmap at viewer)"),
        ("received_to_sent_ms", "received -> prediction sent (local clock)"),
    ):
        s = report[key]
        if s.get("n"):
            print(
                f"  {label:<48} p50 {s['p50']:8.2f}  p99 {s['p99']:8.2f}  max {s['max']:8.2f} ms  (n={s['n']})"
            )
        else:
            print(f"  {label:<48} no samples")
    skipped = {k: v for k, v in report["counters"].items() if k.startswith("skipped_")}
    print(f"  messages: {report['counters'].get('images', 0)} images in, skipped {skipped or 'none'}")
