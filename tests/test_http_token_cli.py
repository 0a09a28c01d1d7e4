"""``sonomap live --token``: still accepted (the viewer requires that token), but a command line is
readable by every local user, so the real command warns once, naming $SONOMAP_HTTP_TOKEN and the systemd
credential, without ever showing the token. A token from the environment gives no such warning."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from loopback import LIVE_START_TIMEOUT_S, free_port, request, start_live

from edge_runtime.service.http_auth import CREDENTIAL_NAME, TOKEN_ENV

REPO = Path(__file__).resolve().parents[1]
TOKEN = "cmdline-token-3f9a1c07d2e4"  # >= 16 characters, as a non-loopback bind would need
STOP_TIMEOUT_S = 30.0
POLL_S = 0.3
pytestmark = pytest.mark.timeout(180)


def serve_until_authorised(*args, env: dict | None = None) -> tuple[str, int]:
    """Run `sonomap live --http` on loopback with ``args`` until /healthz answers 200 to the bearer
    TOKEN; (its stderr, the status of /healthz without a token). It is stopped with SIGTERM."""
    port = free_port()
    proc = start_live(*args, "--duration", 120, port=port, cwd=REPO, stdout=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + LIVE_START_TIMEOUT_S
        status = None
        while status != 200:
            assert proc.poll() is None and time.monotonic() < deadline, "live did not become healthy"
            try:
                status = request(url, token=TOKEN)[0]
            except OSError:
                time.sleep(POLL_S)
        without_token = request(url)[0]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
    return stderr, without_token


def test_token_on_the_command_line_works_and_warns_once_without_showing_it():
    stderr, without_token = serve_until_authorised("--token", TOKEN)
    assert without_token == 401, "the token given on the command line must still be required"
    lines = [line for line in stderr.splitlines() if "--token on the command line" in line]
    assert len(lines) == 1, stderr[-3000:]
    assert "ps" in lines[0] and "/proc/PID/cmdline" in lines[0]
    assert f"${TOKEN_ENV}" in lines[0] and CREDENTIAL_NAME in lines[0]
    assert TOKEN not in stderr


def test_token_from_the_environment_gives_no_warning():
    env = {**os.environ, TOKEN_ENV: TOKEN}
    stderr, without_token = serve_until_authorised(env=env)
    assert without_token == 401
    assert "--token on the command line" not in stderr and TOKEN not in stderr
