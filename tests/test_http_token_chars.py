"""The HTTP token must be printable ASCII: the real `sonomap live` refuses any other at start with one
line naming where the token came from, never the token itself.

Before, a token that was not valid UTF-8 (an environment variable or the ``http-token`` credential
written by an editor in Latin-1) ended start-up with a UnicodeEncodeError or UnicodeDecodeError
traceback, and a UTF-8 token with other letters (``pässwörd-…``) started the service but never matched
in an ``Authorization: Bearer`` header: curl and Prometheus send it in UTF-8, Python's http.client in
Latin-1, and the server reads header bytes as Latin-1. Only the browser's login form opened.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from child_process import reaped
from loopback import SONOMAP, free_port, start_live

from edge_runtime.service.http_auth import CREDENTIAL_NAME, MIN_TOKEN_CHARS

EXIT_S = 30.0  # a refusal comes before the model is loaded: well under a second
RUN_S = 5  # --duration: a token wrongly accepted ends the run after this, exit status 0
NOT_UTF8 = b"abc\xffdefghijklmnopqrstu"  # Latin-1 'y with diaeresis' in the middle
NON_ASCII = "pässwörd-0123456789-ü".encode()


def run_live(env: dict[bytes, bytes]) -> tuple[int, str]:
    proc = start_live("--no-ai", "--duration", RUN_S, port=free_port(), stdout=subprocess.DEVNULL, env=env)
    with reaped(proc):
        _, err = proc.communicate(timeout=EXIT_S)
    return proc.returncode, err


@pytest.mark.parametrize("where", ["environment", "credential"])
@pytest.mark.parametrize("token", [NOT_UTF8, NON_ASCII], ids=["not-utf8", "non-ascii"])
def test_a_token_that_is_not_printable_ascii_is_refused_with_one_line(tmp_path, where, token):
    env = {k: v for k, v in os.environb.items() if k not in (b"SONOMAP_HTTP_TOKEN", b"CREDENTIALS_DIRECTORY")}
    if where == "environment":
        env[b"SONOMAP_HTTP_TOKEN"] = token
        source = "$SONOMAP_HTTP_TOKEN"
    else:
        (tmp_path / CREDENTIAL_NAME).write_bytes(token + b"\n")
        env[b"CREDENTIALS_DIRECTORY"] = os.fsencode(tmp_path)
        source = f"the systemd credential '{CREDENTIAL_NAME}'"
    status, err = run_live(env)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert source in lines[0] and "printable ASCII" in lines[0]
    shown = token.decode("utf-8", "replace")
    assert shown not in err and shown[3:10] not in err  # the token, or a piece of it, never shown


@pytest.mark.parametrize("token", ["short", "characters"])
def test_a_short_token_is_refused_in_words_the_redactor_leaves_whole(token):
    """The refused token is not registered with the log redactor: a token that is a word of the
    refusal itself ("short", "characters") would otherwise turn it into "token too [REDACTED]"."""
    env = {k: v for k, v in os.environ.items() if k not in ("SONOMAP_HTTP_TOKEN", "CREDENTIALS_DIRECTORY")}
    argv = ["live", "--source", "synthetic", "--no-ai", "--headless", "--duration", str(RUN_S)]
    proc = subprocess.run(
        [*SONOMAP, *argv, "--http", f"0.0.0.0:{free_port()}", "--token", token],
        capture_output=True,
        text=True,
        timeout=EXIT_S,
        env=env,
    )
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]  # after --token's warning
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f"the HTTP token from --token is too short (need >= {MIN_TOKEN_CHARS} characters)" in errors[0]
    assert "REDACTED" not in proc.stderr, proc.stderr
