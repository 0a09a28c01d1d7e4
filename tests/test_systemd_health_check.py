"""The health check that systemd/sonomap.env and docs/operations.md show is the one that works
under the units: with the ``http-token`` credential loaded (as ``LoadCredential=`` does), a
loopback /healthz without the token gets 401, and the documented curl command's header opens it.
A real server on 127.0.0.1; the credential is a real file in a credentials directory."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest

from edge_runtime.service.http_auth import CREDENTIAL_NAME, TOKEN_ENV
from edge_runtime.service.http_server import make_http_observer

REPO = Path(__file__).resolve().parents[1]
TOKEN = "credential-token-0123456789abcdef"
CLIENT_TIMEOUT_S = 5.0
# curl -sf -H "Authorization: Bearer $(sudo cat /etc/sonomap/http-token)" http://127.0.0.1:8080/healthz
CURL = re.compile(
    r'curl -sf -H "(?P<header>[A-Za-z-]+): (?P<scheme>\w+) \$\(sudo cat (?P<file>[^)]+)\)" '
    r"http://127\.0\.0\.1:(?P<port>\d+)(?P<path>/\S+)"
)
DOCUMENTED_IN = ("systemd/sonomap.env", "docs/operations.md")


def documented_check(relative: str) -> re.Match:
    text = (REPO / relative).read_text()
    match = CURL.search(text)
    assert match, f"{relative}: no health check command with the token"
    return match


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture()
def credential(tmp_path, monkeypatch):
    """The token loaded as the units load it: a credentials directory holding ``http-token``."""
    (tmp_path / CREDENTIAL_NAME).write_text(TOKEN + "\n")
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))


def unit_text(name: str) -> str:
    return (REPO / "systemd" / name).read_text()


@pytest.mark.parametrize("relative", DOCUMENTED_IN)
def test_the_documented_loopback_health_check_sends_the_token(credential, relative):
    check = documented_check(relative)
    for unit in ("sonomap.service", "sonomap-headless.service"):
        assert f"LoadCredential={CREDENTIAL_NAME}:{check['file']}" in unit_text(unit), unit
    address = re.search(r"^SONOMAP_HTTP=(\S+)$", (REPO / "systemd/sonomap.env").read_text(), re.M)
    assert address and address[1] == f"127.0.0.1:{check['port']}"
    obs = make_http_observer("127.0.0.1", 0, None)  # the token comes from the credential alone
    try:
        assert get(obs.port, check["path"], {})[0] == 401  # loopback, yet the token is needed
        status, body = get(obs.port, check["path"], {check["header"]: f"{check['scheme']} {TOKEN}"})
        assert (status, body) == (503, b"no frame rendered yet\n")  # answered: no frame rendered here
    finally:
        obs.close()


def test_the_env_file_does_not_say_loopback_needs_no_token():
    assert "needs no token" not in (REPO / "systemd/sonomap.env").read_text()
