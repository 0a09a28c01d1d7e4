"""Send DICOM objects to a DICOMweb server by STOW-RS (dicomweb-client), one request per case.

Input: the server's DICOMweb root URL (e.g. ``https://pacs.example.org/dicom-web``), credentials
from the environment (never from the command line, where ``ps`` shows them), the datasets.
Output: a :class:`StoreResult` per request: the HTTP status, and the SOP instances the server refused
(a STOW-RS response may accept some instances and fail others). A request is stored only when the
response's Referenced SOP Sequence lists every instance sent (PS3.18 10.5.3): a 200 or 204 without
that (an empty answer, a login page that a proxy answers with 200) stored nothing the export can
show, so the case fails.

Credentials: a bearer token in the variable named by ``--token-env`` (default
``SONOMAP_DICOMWEB_TOKEN``), or ``user:password`` in the one named by ``--basic-auth-env`` (default
``SONOMAP_DICOMWEB_BASIC``). Both are registered with the log redactor, and so is the Base64 form
that user:password takes in an ``Authorization: Basic`` header.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session, create_session_from_user_pass

from edge_runtime import privacy
from edge_runtime.errors import ConfigError

TOKEN_ENV = "SONOMAP_DICOMWEB_TOKEN"
BASIC_ENV = "SONOMAP_DICOMWEB_BASIC"
SCHEMES = ("http", "https")
QUERY, FRAGMENT = "?", "#"
MAX_DETAIL = 200  # characters of a network error kept for the one-line report


@dataclass(frozen=True)
class StoreResult:
    ok: bool
    # HTTP status; None when no answer came (refused connection, timeout) or a 2xx did not say
    status: int | None
    detail: str  # the reason, one line, for a report


def _credential(name: str | None, default: str) -> str | None:
    """The value of env var ``name`` (an explicitly named one must be set), else of ``default`` if set."""
    if name is not None:
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"environment variable {name} (named by the command) is not set")
        return value
    return os.environ.get(default) or None


def _basic_header_values(session: requests.Session, basic: str) -> list[str]:
    """The Base64 forms ``user:password`` (``basic``) can take in an ``Authorization: Basic`` header:
    the session's own when it set one, and the Latin-1 and UTF-8 encodings requests may use."""
    values = {base64.b64encode(basic.encode("utf-8")).decode("ascii")}
    try:
        values.add(base64.b64encode(basic.encode("latin-1")).decode("ascii"))
    except UnicodeEncodeError:
        pass  # not Latin-1: requests then sends the UTF-8 bytes, already registered
    header = str(session.headers.get("Authorization", ""))
    if header.startswith("Basic "):
        values.add(header.removeprefix("Basic "))
    return sorted(values)


def make_client(
    url: str,
    token_env: str | None = None,
    basic_env: str | None = None,
    timeout_s: float = 30.0,
    ca_bundle: str | None = None,
):
    """A DICOMweb client for ``url`` with the credentials the environment holds (module docstring);
    ``ca_bundle``: the PEM file of the CA that signs the server's HTTPS certificate (a hospital's own)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(f"--dicomweb {shown_url(url)!r}: expected an http(s):// DICOMweb root URL")
    if "@" in parts.netloc or QUERY in url or FRAGMENT in url:
        # a query may hold a token (?access_token=...), and the client would join /studies after it
        raise ConfigError(
            f"--dicomweb {shown_url(url)}: give the DICOMweb root alone, without user:password@, a "
            f"query (?...) or a fragment (#...): put a token in ${TOKEN_ENV} or user:password in "
            f"${BASIC_ENV}, not in the URL (ps shows it)"
        )
    token = _credential(token_env, TOKEN_ENV)
    basic = _credential(basic_env, BASIC_ENV)
    if token and basic:
        raise ConfigError(f"both a token and user:password are set ({TOKEN_ENV}, {BASIC_ENV}): keep one")
    if basic:
        user, sep, password = basic.partition(":")
        if not sep:
            raise ConfigError(f"the basic-auth variable must hold user:password ({basic_env or BASIC_ENV})")
        session = create_session_from_user_pass(user, password)
        # the Authorization header's value gives the same access as the password, should a library log it
        privacy.REDACTOR.register([password, basic, *_basic_header_values(session, basic)])
    else:
        session = create_session()
    if token:
        privacy.REDACTOR.register([token])
        session.headers["Authorization"] = f"Bearer {token}"
    if ca_bundle is not None:
        if not Path(ca_bundle).is_file():
            raise ConfigError(f"--ca-bundle {ca_bundle}: no such file")
        # requests lets $REQUESTS_CA_BUNDLE override a session's own CA file: read the environment
        # no more, keeping only its proxy settings for this URL
        session.proxies = requests.utils.get_environ_proxies(url)
        session.trust_env = False
        session.verify = str(ca_bundle)
    client = DICOMwebClient(url.rstrip("/"), session=session, timeout=timeout_s)
    client.set_http_retry_params(retry=False)  # a failed case is reported, and the next one tried
    return client


def shown_url(url: str) -> str:
    """``url`` as it may be printed: scheme, host, port and path; never the user:password, query or
    fragment, where a credential may be."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 address, bracketed as in the URL
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # a port that is no number: the rest is still shown without credentials
        return privacy.redact_url(url.split(QUERY)[0].split(FRAGMENT)[0])
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path


NO_RESPONSE = "no STOW-RS response (is --dicomweb the DICOMweb root? a login page answers 200 too)"


def store(client: DICOMwebClient, datasets) -> StoreResult:
    """STOW-RS ``datasets`` in one request; never raises for a server or network failure. Stored
    (ok) only when the server confirms each instance by its SOPInstanceUID."""
    datasets = list(datasets)
    try:
        answer = client.store_instances(datasets=datasets)
    except requests.HTTPError as exc:
        response = exc.response
        status = None if response is None else response.status_code
        reason = "" if response is None else response.reason
        return StoreResult(False, status, f"HTTP {status} {reason}".strip())
    except requests.exceptions.SSLError as exc:
        hint = "the server's certificate is not trusted: give --ca-bundle with the CA that signs it"
        text = hint if "CERTIFICATE_VERIFY_FAILED" in str(exc) else privacy.redact(str(exc))[:MAX_DETAIL]
        return StoreResult(False, None, f"no answer: SSLError: {text}")
    except (requests.exceptions.JSONDecodeError, ValueError, SyntaxError) as exc:
        # a 2xx whose body is not the JSON or XML its Content-Type claims (XML's ParseError is a SyntaxError)
        return StoreResult(False, None, f"an unreadable STOW-RS response ({type(exc).__name__})")
    except requests.RequestException as exc:
        return StoreResult(
            False, None, f"no answer: {type(exc).__name__}: {privacy.redact(str(exc))[:MAX_DETAIL]}"
        )
    failed = [str(item.get("ReferencedSOPInstanceUID", "?")) for item in answer.get("FailedSOPSequence", [])]
    if failed:
        return StoreResult(False, 200, f"the server refused {len(failed)} instance(s): {', '.join(failed)}")
    sent = [str(ds.SOPInstanceUID) for ds in datasets]
    confirmed = {
        str(item.get("ReferencedSOPInstanceUID", "")) for item in answer.get("ReferencedSOPSequence", [])
    }
    missing = [u for u in sent if u not in confirmed]
    if missing:
        why = NO_RESPONSE if len(answer) == 0 else f"not confirmed: {', '.join(missing)}"
        return StoreResult(
            False, None, f"the server confirmed {len(sent) - len(missing)} of {len(sent)} instance(s): {why}"
        )
    return StoreResult(True, 200, "stored")
