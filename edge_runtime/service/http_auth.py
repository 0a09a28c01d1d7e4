"""Who may use the HTTP viewer: the access token, where it comes from and how requests carry it.

The token comes from ``--token``, ``$SONOMAP_HTTP_TOKEN`` or the systemd credential
``http-token`` (:func:`resolve_token`); one of them that is there but empty (a failed install's empty
credential file, ``SONOMAP_HTTP_TOKEN=``) stops the start with an error, never reads as "no token".
``--token`` is kept for compatibility, but a command line is
readable by every local user (``ps``, ``/proc/PID/cmdline``): :func:`warn_command_line_token` says so
once, naming the safer sources, and never shows the token. A request carries it either

- in ``Authorization: Bearer <token>`` (scripts, Prometheus ``authorization:``), or
- in the viewer's session cookie, which ``POST /login`` sets after checking the token typed
  into the login page: ``HttpOnly`` (page scripts cannot read it), ``SameSite=Strict`` (other
  sites cannot make the browser send it), ``Secure`` under TLS. Its value is an HMAC of the
  token, so the token itself is not stored in the browser; changing the token logs everyone out.

Never in a URL: URLs end up in browser history, proxy logs and screenshots, so a ``?token=``
is refused outright rather than accepted. Comparisons are constant-time. The token and its session
value are registered with the log redactor when resolved, so no log line can show them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs

from edge_runtime import privacy
from edge_runtime.errors import ConfigError

TOKEN_ENV = "SONOMAP_HTTP_TOKEN"
CREDENTIAL_NAME = "http-token"  # systemd LoadCredential=http-token:/etc/sonomap/http-token
MIN_TOKEN_CHARS = 16
COOKIE_NAME = "sonomap_session"
COOKIE_LABEL = b"sonomap viewer session"
# Printable ASCII: what every HTTP client sends the same way. Other characters go out in UTF-8 from
# curl or Prometheus, in Latin-1 from Python's http.client, and the server reads header bytes as
# Latin-1, so such a token would open the login form but never match in an Authorization header.
TOKEN_CHARS = re.compile(r"[\x20-\x7e]+")
MAX_LOGIN_BODY = 4096  # a form with one token field; anything bigger is not a login
COMMAND_LINE_WARNING = (
    "--token on the command line can be read by every local user (ps, /proc/PID/cmdline); "
    f"give the token in ${TOKEN_ENV} or in the systemd credential '{CREDENTIAL_NAME}' "
    f"(LoadCredential={CREDENTIAL_NAME}:/etc/sonomap/http-token) instead"
)

# What to do about a source that is there but empty (:func:`_find_token`), by source.
BLANK_ADVICE = {
    "--token": "give a token, or leave --token out",
    f"${TOKEN_ENV}": f"set a token in ${TOKEN_ENV}, or unset it",
    f"the systemd credential '{CREDENTIAL_NAME}'": (
        "write a token into /etc/sonomap/http-token (install.sh replaces an empty one with a random token)"
    ),
}

log = logging.getLogger("sonomap.http")
_command_line_warned = threading.Event()  # set once the warning is out: once per process


def warn_command_line_token() -> bool:
    """Log COMMAND_LINE_WARNING (a warning naming the safer sources, never the token) the first time it
    is called in this process; True when this call logged it, False when an earlier one had."""
    if _command_line_warned.is_set():
        return False
    _command_line_warned.set()
    log.warning(COMMAND_LINE_WARNING)
    return True


def resolve_token(token: str | None, where: str, min_chars: int = 0) -> str | None:
    """The token given, else $SONOMAP_HTTP_TOKEN, else the systemd credential file. The token found,
    and the session cookie value made from it (as good as the token to whoever holds it), are
    registered with the log redactor (:mod:`edge_runtime.privacy`): a library or an exception message
    that echoes either shows ``[REDACTED]`` instead. ConfigError (naming ``where`` and the source,
    never the token) when the token is not printable ASCII (it could never be checked in an
    Authorization header) or has fewer than ``min_chars`` characters. A refused token is not
    registered: it serves nothing, and redacting it would garble the refusal ("token too [REDACTED]"
    for the token "short")."""
    found, source = _find_token(token, where)
    if found and not TOKEN_CHARS.fullmatch(found):  # never shown: the message names only its source
        raise ConfigError(
            f"{where}: the HTTP token from {source} has characters other than printable ASCII; HTTP "
            "clients send those in different encodings, so it could not be checked: use letters, digits "
            "and punctuation (install.sh writes 64 hex characters)"
        )
    if found and len(found) < min_chars:
        raise ConfigError(
            f"{where}: the HTTP token from {source} is too short (need >= {min_chars} characters)"
        )
    if found:
        privacy.REDACTOR.register([found, session_value(found)])
    return found


def _find_token(token: str | None, where: str) -> tuple[str | None, str]:
    """(the token or None, where it came from). Bytes that are not UTF-8 (an environment variable, the
    credential file) are kept as surrogates, which the printable-ASCII check then refuses. A source
    that is there but blank (``--token ""``, an empty ``$SONOMAP_HTTP_TOKEN``, an empty credential file
    such as a failed install leaves) is a ConfigError naming ``where`` and the source: read as "no
    token", it would serve the viewer to anyone without a word."""
    if token is not None:
        return _not_blank(token.strip(), "--token", where), "--token"
    if TOKEN_ENV in os.environ:
        return _not_blank(os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}", where), f"${TOKEN_ENV}"
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    path = Path(cred_dir) / CREDENTIAL_NAME if cred_dir else None
    if path is not None and path.exists():
        source = f"the systemd credential '{CREDENTIAL_NAME}'"
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the HTTP token from {source}: {exc.strerror}") from exc
        return _not_blank(text, source, where), source
    return None, "nowhere"


def _not_blank(text: str, source: str, where: str) -> str:
    """``text`` (stripped) when it is not empty, else the one-line ConfigError: never "no token"."""
    if not text:
        raise ConfigError(
            f"{where}: the HTTP token from {source} is empty, which would open the viewer to anyone: "
            f"{BLANK_ADVICE.get(source, 'give a token')}"
        )
    return text


def session_value(token: str) -> str:
    return hmac.new(token.encode(), COOKIE_LABEL, hashlib.sha256).hexdigest()


def session_cookie(token: str, secure: bool) -> str:
    """The ``Set-Cookie`` value that logs a viewer in (a browser-session cookie, no expiry)."""
    flags = "; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{COOKIE_NAME}={session_value(token)}{flags}"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def bearer(headers) -> str:
    header = headers.get("Authorization", "") or ""
    return header[len("Bearer ") :].strip() if header[: len("Bearer ")].lower() == "bearer " else ""


def cookie_sessions(headers) -> list[str]:
    """Every ``sonomap_session`` value in the request's ``Cookie`` header(s), in order (often none).

    Parsed by hand, leniently: a browser sends the cookies of every application on this host name
    (any port) in one header, and http.cookies.SimpleCookie, strict per RFC 2109, stops at the
    first one it cannot parse (``ui={"a":1}``, ``a=b c``), losing ours after it. More than one
    value comes when an older session of another sonomap on this host is still in the browser."""
    found = []
    for header in headers.get_all("Cookie") or []:
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            if sep and name.strip() == COOKIE_NAME:
                found.append(value.strip().strip('"'))
    return found


def authorised(headers, token: str | None) -> bool:
    """True when no token is configured, or the request has the bearer token or the session cookie."""
    if not token:
        return True
    given = bearer(headers)
    if given:
        return _same(given, token)
    expected = session_value(token)
    return any(_same(session, expected) for session in cookie_sessions(headers) if session)


def token_in_query(query: str) -> bool:
    return "token" in parse_qs(query, keep_blank_values=True)


def login_token(body: bytes) -> str:
    """The ``token`` field of the login form (application/x-www-form-urlencoded)."""
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:  # more fields than a login form has
        return ""
    return (fields.get("token") or [""])[0].strip()


def login(body: bytes, token: str | None, secure: bool) -> tuple[int, dict[str, str]]:
    """``POST /login``: (303, redirect to the viewer + session cookie) or (401, challenge)."""
    if token and not _same(login_token(body), token):
        return 401, {"WWW-Authenticate": 'Bearer realm="sonomap"'}
    extra = {"Location": "/"}
    if token:
        extra["Set-Cookie"] = session_cookie(token, secure)
    return 303, extra
