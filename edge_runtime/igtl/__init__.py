"""OpenIGTLink interoperability: plug sonomap into PLUS / 3D Slicer (SlicerIGT) workflows.

- :func:`open_igtl_source` (``igtl://HOST:PORT?device=Image_Reference``): a live
  Source of IMAGE messages (source.py).
- :func:`make_igtl_observer` (``--igtl-out HOST:PORT`` / ``--igtl-serve [HOST:]PORT``): an
  Observer that sends labelmap + probability map back as IMAGE messages (sink.py).

pyigtl is optional (extra ``igtl``); it is imported on first use, and a missing
package gives a SonomapError, not an ImportError, so ``import edge_runtime.igtl``
always works.
"""

from __future__ import annotations

from edge_runtime.errors import ConfigError
from edge_runtime.igtl.net import parse_host_port
from edge_runtime.igtl.server import IgtlServerLink
from edge_runtime.igtl.shared_link import acquire_client_link, release_client_link
from edge_runtime.igtl.sink import IgtlObserver
from edge_runtime.igtl.source import IgtlSource, open_igtl_source, parse_igtl_spec

DEFAULT_SERVE_HOST = "127.0.0.1"  # OpenIGTLink has no authentication: other hosts need an allow-list

__all__ = ["IgtlObserver", "IgtlSource", "make_igtl_observer", "open_igtl_source", "parse_igtl_spec"]


def make_igtl_observer(
    igtl_out: str | None = None,
    igtl_serve: str | int | None = None,
    send_probability: bool = True,
    *,
    out: str | None = None,
    serve: str | int | None = None,
    allow: list[str] | None = None,
    **_ignored,
) -> IgtlObserver:
    """Client mode (``igtl_out``/``out`` = ``"HOST:PORT"``: send to that server; when it is the
    server the igtl:// source reads from, the source's connection is reused) or server mode
    (``igtl_serve``/``serve`` = ``PORT`` or ``"HOST:PORT"``, default host 127.0.0.1: viewers
    connect to us; ``allow``: CIDR networks they may come from, required for other hosts).
    Extra keyword arguments are accepted and ignored."""
    igtl_out = igtl_out if igtl_out is not None else out
    igtl_serve = igtl_serve if igtl_serve is not None else serve
    if (igtl_out is None) == (igtl_serve is None):
        raise ConfigError("give exactly one of --igtl-out HOST:PORT and --igtl-serve [HOST:]PORT")
    if igtl_out is not None:
        host, port = parse_host_port(igtl_out, "--igtl-out")
        link = acquire_client_link(host, port, receive_images=False)
        return IgtlObserver(
            link, release=lambda: release_client_link(link), send_probability=send_probability
        )
    host, port = parse_host_port(str(igtl_serve), "--igtl-serve", default_host=DEFAULT_SERVE_HOST)
    return IgtlObserver(IgtlServerLink(port, host, allow), send_probability=send_probability)
