"""What a viewer of ``--igtl-serve`` sends us, cut into whole OpenIGTLink messages that are then discarded.

A viewer (3D Slicer) sends little: STATUS, GET_/STT_ queries, now and then a node it pushes. We use
none of it, but only whole, well-formed messages show that the peer speaks OpenIGTLink and is still
there; loose bytes do not. A peer that sends a byte every few seconds (slowloris) would otherwise look
active for ever and hold one of the few viewer places. So:

- each message must be whole (58-byte header, then its body) within ``VIEWER_MESSAGE_TIMEOUT_S`` of
  its first byte, or the viewer is dropped (``viewers_timed_out``);
- a header that is not OpenIGTLink (an unknown header version, a message type that is not a plain
  name, a body over the limit) drops the viewer at once (``viewers_bad_message``);
- only whole messages count as activity from the viewer (the server's idle eviction: server.py).

Bodies are skipped as they arrive, never buffered: a viewer costs at most one header of memory.

Inputs: the bytes read from one viewer, with the time they came. Outputs: how many messages they
completed; :class:`ViewerProtocolError` when the viewer must go. Files: none.
"""

from __future__ import annotations

import struct

from edge_runtime.igtl.wire import HEADER_SIZE, MAX_BODY_BYTES

# A header is 58 bytes and a viewer's queries have small bodies: on any network they arrive in
# milliseconds. Ten seconds also lets a viewer push a 64 MiB body (MAX_BODY_BYTES) at about 55 Mbit/s,
# while a peer trickling bytes is dropped after this long, whatever its pace.
VIEWER_MESSAGE_TIMEOUT_S = 10.0
VIEWER_MAX_BODY_BYTES = MAX_BODY_BYTES  # what igtl:// accepts from a server by default
# Header: version (uint16), message type (12 bytes), device name (20), timestamp (uint64), body size
# (uint64), CRC64 (uint64). Version 1 is OpenIGTLink v1/v2's header, version 2 that of protocol v3.
HEADER_FORMAT = ">H12s20sQQ"
HEADER_VERSIONS = (1, 2)
TYPE_PADDING = b"\0 "
TYPE_CHARACTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
TIMED_OUT, BAD_MESSAGE = "viewers_timed_out", "viewers_bad_message"  # counters, and the kinds of drop


class ViewerProtocolError(Exception):
    """The viewer must be dropped: ``kind`` (TIMED_OUT or BAD_MESSAGE) is the counter, the text says why."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


def body_size(header: bytes, max_body: int) -> int:
    """The body size announced by a whole 58-byte ``header``; ViewerProtocolError (BAD_MESSAGE) when the
    header is not an OpenIGTLink one or announces more than ``max_body`` bytes."""
    version, message_type, _device, _timestamp, size = struct.unpack_from(HEADER_FORMAT, header)
    if version not in HEADER_VERSIONS:
        raise ViewerProtocolError(BAD_MESSAGE, f"header version {version} is not OpenIGTLink's")
    name = message_type.rstrip(TYPE_PADDING)
    if not name or not set(name) <= TYPE_CHARACTERS:
        raise ViewerProtocolError(BAD_MESSAGE, "the message type is not a name")
    if size > max_body:
        raise ViewerProtocolError(BAD_MESSAGE, f"a body of {size} bytes is over the {max_body} byte limit")
    return size


class ViewerMessages:
    """Splits a viewer's byte stream into whole messages, keeping at most one header."""

    def __init__(
        self, message_timeout_s: float = VIEWER_MESSAGE_TIMEOUT_S, max_body: int = VIEWER_MAX_BODY_BYTES
    ):
        self.message_timeout_s, self.max_body = message_timeout_s, max_body
        self._header = bytearray()
        self._body_left = 0
        self._in_body = False
        self._started: float | None = None  # when the message in progress began (monotonic)

    def feed(self, data: bytes, now: float) -> int:
        """Take ``data`` received at ``now``; the number of messages it completed. ViewerProtocolError
        (BAD_MESSAGE) for a header that is not OpenIGTLink."""
        completed = 0
        view = memoryview(data)
        while view:
            if self._started is None:
                self._started = now
            if self._in_body:
                taken = min(self._body_left, len(view))
                self._body_left -= taken
            else:
                taken = min(HEADER_SIZE - len(self._header), len(view))
                self._header += view[:taken]
                if len(self._header) == HEADER_SIZE:
                    self._body_left, self._in_body = body_size(bytes(self._header), self.max_body), True
            view = view[taken:]
            if self._in_body and self._body_left == 0:
                completed += 1
                self._header.clear()
                self._in_body, self._started = False, None
        return completed

    def check_deadline(self, now: float) -> None:
        """ViewerProtocolError (TIMED_OUT) when a message begun more than message_timeout_s before ``now``
        is still not whole."""
        if self._started is not None and now - self._started > self.message_timeout_s:
            part = f"{len(self._header)} of {HEADER_SIZE} header bytes"
            if self._in_body:
                part = f"the header, with {self._body_left} body bytes still missing"
            raise ViewerProtocolError(
                TIMED_OUT, f"no whole message within {self.message_timeout_s:g} s of its first byte ({part})"
            )
