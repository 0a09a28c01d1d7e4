"""prometheus_client is optional on the cart: without it the live service runs, /healthz answers,
and /metrics says in one line what to install (503) instead of failing the process."""

from __future__ import annotations

import os
import signal

from loopback import LIVE_START_TIMEOUT_S, free_port, request, start_live, wait_healthy

from edge_runtime.service.http_handler import NO_METRICS

STOP_TIMEOUT_S = 20


def test_live_without_prometheus_client_serves_all_but_metrics(tmp_path):
    # a package of that name first on the path, which refuses to import: as on a cart without it
    blocked = tmp_path / "blocked" / "prometheus_client"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('prometheus_client is not installed here')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(blocked.parent), os.environ.get("PYTHONPATH")])),
    }
    port = free_port()
    proc = start_live("--duration", 60, port=port, env=env)
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_healthy(base, proc, LIVE_START_TIMEOUT_S)
        assert request(base + "metrics") == (503, NO_METRICS + "\n")
        assert request(base + "healthz")[0] == 200  # the service is still up and healthy
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr.read()
