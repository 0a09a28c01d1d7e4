"""An HTTP token source that is there but empty stops `sonomap live --http` at start: exit status 2, one
line naming where the token came from, and the viewer never listens.

Before, an empty ``http-token`` credential file (what a failed first write by install.sh leaves, and
install.sh then kept it for ever) or a ``$SONOMAP_HTTP_TOKEN`` of only whitespace read as "no token":
the service started with the viewer, /healthz and /metrics open to anyone who reached the port, and
logged only "token not required", although under the units the token is always meant to be set.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from child_process import reaped
from loopback import LOOPBACK, free_port, start_live

from edge_runtime.service.http_auth import CREDENTIAL_NAME, TOKEN_ENV

EXIT_S = 30.0  # a refusal comes before the model is loaded: well under a second
RUN_S = 5  # --duration: a blank token wrongly read as "none" ends the run after this, exit status 0
CREDENTIAL = f"the systemd credential '{CREDENTIAL_NAME}'"


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, "CREDENTIALS_DIRECTORY")}


def _refused(env: dict[str, str], source: str) -> None:
    """`sonomap live --http` on loopback with ``env`` exits 2 with one line naming ``source``, and no
    viewer was ever served on its port."""
    port = free_port()
    proc = start_live("--no-ai", "--duration", RUN_S, port=port, stdout=subprocess.PIPE, env=env)
    with reaped(proc):
        out, err = proc.communicate(timeout=EXIT_S)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"--http {LOOPBACK}:{port}: the HTTP token from {source} is empty" in lines[0], lines[0]
    assert "HTTP viewer on" not in out + err and "token not required" not in out + err
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=2).close()


@pytest.mark.parametrize("content", [b"", b"\n", b" \t\r\n"], ids=["empty", "newline", "whitespace"])
def test_an_empty_credential_file_stops_the_start(tmp_path, content):
    (tmp_path / CREDENTIAL_NAME).write_bytes(content)
    env = _environment() | {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    _refused(env, CREDENTIAL)


@pytest.mark.parametrize("value", ["", "   ", "\t\n"], ids=["empty", "spaces", "tab-newline"])
def test_a_blank_environment_token_stops_the_start(tmp_path, value):
    """Even with a good credential beside it: the variable comes first, and a blank one is a mistake
    to report, not a reason to fall back to another source."""
    (tmp_path / CREDENTIAL_NAME).write_text("a-good-credential-0123456789abcdef\n")
    env = _environment() | {TOKEN_ENV: value, "CREDENTIALS_DIRECTORY": str(tmp_path)}
    _refused(env, f"${TOKEN_ENV}")
