"""A fault in a route (an exception no handler code catches) drops that connection only: the server
counts it, logs one line (the exception's type and where it was raised, no traceback) however many
connections hit it, and serves again once the fault is gone. A real server on 127.0.0.1 and real
sockets; the fault is injected by replacing the viewer's health check with one that raises."""

from __future__ import annotations

import logging
import threading

import pytest
from loopback import answer_or_close

from edge_runtime.live_stats import EVENTS
from edge_runtime.service.http_server import make_http_observer

CONNECTIONS = 20
HANDLER_ERROR_EVENT = "http_handler_error"  # sonomap_errors_total{kind=...} for such a drop
CLIENT_TIMEOUT_S = 5.0


class RouteFault(Exception):
    """The injected fault."""


@pytest.fixture()
def server():
    obs = make_http_observer("127.0.0.1", 0, None)
    yield obs
    obs.close()


def broken_health_check() -> tuple[bool, str]:
    raise RouteFault("the health check failed")


def test_an_exception_in_a_route_drops_its_connection_with_one_line_logged(server, monkeypatch, caplog):
    crashed = []  # exceptions that escaped a request thread (threading prints a traceback for each)
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    caplog.set_level(logging.WARNING, logger="sonomap.http")
    before = EVENTS.snapshot().get(HANDLER_ERROR_EVENT, 0)
    server.healthy = broken_health_check
    dropped = [answer_or_close(server.port, CLIENT_TIMEOUT_S) for _ in range(CONNECTIONS)]
    del server.healthy  # the fault is gone
    served = answer_or_close(server.port, CLIENT_TIMEOUT_S)
    assert dropped == [b""] * CONNECTIONS
    assert served.startswith(b"HTTP/1.1 503 ")  # no frame rendered yet
    assert crashed == []
    assert EVENTS.snapshot().get(HANDLER_ERROR_EVENT, 0) - before == CONNECTIONS
    lines = [r for r in caplog.records if r.name == "sonomap.http" and r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert "RouteFault at test_http_handler_error.py:" in message and "broken_health_check" in message
    assert lines[0].exc_info is None and "\n" not in message
