"""One OpenIGTLink client connection per (host, port), shared by whoever talks to that server.

The igtl:// source and ``--igtl-out`` to the same server reuse one connection, as SlicerIGT's
live-AI modules do (and pyigtl's test server serves one client at a time). Each user acquires
the link and releases it; the last release closes the connection.

Inputs: host, port and link options. Outputs: a shared :class:`IgtlClientLink`. Files: none.
"""

from __future__ import annotations

import threading
from typing import Any

from edge_runtime.igtl.link import IgtlClientLink

_REGISTRY: dict[tuple[str, int], list] = {}  # (host, port) -> [link, users]
_REGISTRY_LOCK = threading.Lock()


def acquire_client_link(
    host: str, port: int, device: str | None = None, receive_images: bool = False, **options: Any
) -> IgtlClientLink:
    """The shared link to (host, port), created on first use (``options``: IgtlClientLink's
    keyword arguments); a receiving user turns a send-only link into a receiving one. Pair
    with :func:`release_client_link`."""
    return acquire_image_link(host, port, device, receive_images, **options)[0]


def acquire_image_link(
    host: str, port: int, device: str | None = None, receive_images: bool = True, **options: Any
) -> tuple[IgtlClientLink, int]:
    """:func:`acquire_client_link`, with the image sequence number the new user starts after: read
    before the link is created or turned receiving, so an image its reader gets in the meantime
    (a server that sends at once, on a loaded machine) is new to this user, while the last image
    of a link that already received is old."""
    key = (host, int(port))
    with _REGISTRY_LOCK:
        entry = _REGISTRY.get(key)
        after_seq = 0 if entry is None else entry[0].image_seq()
        if entry is None:
            entry = _REGISTRY[key] = [IgtlClientLink(host, port, device, receive_images, **options), 0]
        elif receive_images:
            entry[0].enable_images(device, **options)
        entry[1] += 1
        return entry[0], after_seq


def release_client_link(link: IgtlClientLink) -> None:
    """Drop one user of ``link``; the last one closes the connection."""
    with _REGISTRY_LOCK:
        key = (link.host, link.port)
        entry = _REGISTRY.get(key)
        if entry is None or entry[0] is not link:
            link.close()
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _REGISTRY[key]
    link.close()
