"""Secrets sonomap resolves are registered with the log redactor (edge_runtime/privacy.py) when
resolved: the HTTP viewer's access token (and the session cookie value made from it) from --token,
$SONOMAP_HTTP_TOKEN or the systemd credential, and the PACS export's DICOMweb credentials. A real log
record of a library that echoes one goes through the installed redaction and shows [REDACTED]."""

from __future__ import annotations

import base64
import io
import logging

import pytest

from edge_runtime import privacy
from edge_runtime.service import http_auth

TOKEN = "viewer-token-6f1c0a9e2b"
DICOMWEB = "http://127.0.0.1:9/dicom-web"  # never contacted: making the client sends nothing


def logged(logger_name: str, message: str, *args) -> str:
    """``message`` logged by ``logger_name`` through a handler with the installed redaction."""
    logger = logging.getLogger(f"test-redaction.{logger_name}")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        privacy.install_log_redaction(logger)
        logger.error(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("where", ["argument", "environment", "credential"])
def test_the_http_token_is_redacted_wherever_it_came_from(where, tmp_path, monkeypatch):
    monkeypatch.delenv(http_auth.TOKEN_ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    argument = None
    if where == "argument":
        argument = f" {TOKEN}\n"
    elif where == "environment":
        monkeypatch.setenv(http_auth.TOKEN_ENV, TOKEN)
    else:
        (tmp_path / http_auth.CREDENTIAL_NAME).write_text(TOKEN + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert http_auth.resolve_token(argument, "--http") == TOKEN
    cookie = http_auth.session_value(TOKEN)
    line = logged(
        "urllib3", "header rejected: Authorization: Bearer %s; Cookie: sonomap_session=%s", TOKEN, cookie
    )
    assert TOKEN not in line and cookie not in line
    assert line.count(privacy.REDACTED) == 2, line
    try:
        raise ValueError(f"invalid token {TOKEN!r}")
    except ValueError as exc:
        assert TOKEN not in logged("sonomap.http", "login failed: %s", exc)


@pytest.mark.parametrize("kind", ["token", "basic"])
def test_dicomweb_credentials_are_redacted_once_the_client_is_made(kind, monkeypatch):
    pytest.importorskip("dicomweb_client")
    from registration.pacs import stow

    secret = "pacs-secret-3b9d71"
    monkeypatch.delenv(stow.TOKEN_ENV, raising=False)
    monkeypatch.delenv(stow.BASIC_ENV, raising=False)
    monkeypatch.setenv(
        stow.TOKEN_ENV if kind == "token" else stow.BASIC_ENV,
        secret if kind == "token" else f"exporter:{secret}",
    )
    assert secret in logged("dicomweb_client", "sending with %s", secret)  # not yet resolved: not known
    stow.make_client(DICOMWEB)
    line = logged("dicomweb_client", "request failed with credentials %s", secret)
    assert secret not in line and privacy.REDACTED in line
    if kind == "basic":  # the header a library logging requests would show
        header = "Basic " + base64.b64encode(f"exporter:{secret}".encode()).decode()
        line = logged("urllib3", "send: headers {'Authorization': '%s'}", header)
        assert header.split()[1] not in line and privacy.REDACTED in line
