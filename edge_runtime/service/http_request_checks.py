"""What a request says about itself, read strictly: its body length and the site it comes from.

- :func:`content_length`: the ``Content-Length`` header as an int, or None when it is missing,
  repeated or not plain ASCII digits.
- :func:`cross_site`: why a state-changing request (``POST``) must be refused because a browser
  sent it from another site's page (cross-site request forgery), or None when it may go on.
- :func:`cross_site_load`: why a ``GET``/``HEAD`` must be refused because another site's page made the
  browser load it (an ``<img>``, ``<script>`` or ``fetch()``), or None for the user's own navigation.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# ASCII digits only: str.isdigit() also takes '²' or Arabic-Indic digits, which int() refuses or reads
# differently from every other parser on the way. Nine digits at most: far over any body we read.
CONTENT_LENGTH = re.compile(r"[0-9]{1,9}")
# Sec-Fetch-Site values of a request the browser made for a page of this very origin, or for the
# user typing or bookmarking the address ('none'). 'same-site' is another port or subdomain of the
# host: another application, so it is refused like 'cross-site'.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
# Sec-Fetch-Site values of another application's page: another site, or another port or subdomain
# of this host (to which the SameSite=Strict session cookie still goes).
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
DEFAULT_PORTS = {"http": 80, "https": 443}
NULL_ORIGIN = "null"


def content_length(headers) -> int | None:
    """``Content-Length`` as an int; None when absent, given more than once, or not 1-9 ASCII digits."""
    values = headers.get_all("Content-Length") or []
    if len(values) != 1 or not CONTENT_LENGTH.fullmatch(values[0].strip()):
        return None
    return int(values[0])


def _origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``scheme://host[:port]``, the port made explicit; None when malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number, an unbalanced '['
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


def cross_site(headers, scheme: str) -> str | None:
    """The reason to refuse a state-changing request from another site's page, or None to let it go on.

    Input: the request's headers and the scheme it was served with ('http' or 'https'). Requests
    from no browser page (curl, scripts) carry neither ``Sec-Fetch-Site`` nor ``Origin`` and pass.
    Browsers set both headers themselves; a page cannot forge them.
    """
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site == "same-origin":
        # The browser vouches for the origin. Origin itself may then differ from Host behind a reverse
        # proxy that rewrites Host, or read 'null' on a form post under our Referrer-Policy: no-referrer.
        return None
    if site and site not in OWN_FETCH_SITES:
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("Origin")
    if origin is None:
        return None
    own = _origin_key(f"{scheme}://{(headers.get('Host') or '').strip()}")
    if origin.strip().lower() == NULL_ORIGIN or own is None or _origin_key(origin) != own:
        return "Origin is not this server"
    return None


def cross_site_load(headers) -> str | None:
    """The reason to refuse a ``GET``/``HEAD`` that another site's page made the browser send, or None.

    An ``<img src=.../stream.mjpg>`` on any page open in the cart's browser would otherwise hold one of
    the few MJPEG stream slots for as long as that page stays open (on loopback without a token, or,
    with one, from another application on this host name: the SameSite=Strict cookie goes to every
    port of it). Only the user's own top-level navigation (a link or a bookmark: ``Sec-Fetch-Mode:
    navigate`` to a ``document``) may come from another site. Requests without ``Sec-Fetch-Site``
    (curl, Prometheus, browsers before 2023) pass: a browser's image load carries no ``Origin``.
    """
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site not in FOREIGN_FETCH_SITES:
        return None
    mode = (headers.get("Sec-Fetch-Mode") or "").strip().lower()
    dest = (headers.get("Sec-Fetch-Dest") or "").strip().lower()
    if mode == "navigate" and dest == "document":
        return None
    return f"Sec-Fetch-Site: {site}, not a navigation to a page"
