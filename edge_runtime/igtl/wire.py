"""OpenIGTLink on the wire: reading whole messages off a socket, with the header's limits and CRC.

pyigtl (optional extra ``igtl``) does the byte layout of each message; this module does the socket
framing itself (see link.py for why we do not use pyigtl's threads): a body is read as it arrives,
never preallocated from what a header claims, a body over the limit drops the connection to
resynchronise, and one that fails its CRC64 or does not decode is skipped with the stream still in
step. Turning an IMAGE into a frame and back: image_message.py.

Inputs: a connected socket. Outputs: (header fields, decoded pyigtl message), :class:`SkipMessage`
for a message that cannot be used. Files: none.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

from edge_runtime.errors import SonomapError

HEADER_SIZE = 58  # OpenIGTLink v1/v2/v3 fixed header
CRC_FORMAT = ">Q"  # the header ends with the CRC64 of the body, big-endian
HEADER_CRC_OFFSET = HEADER_SIZE - struct.calcsize(CRC_FORMAT)
# The largest body accepted (igtl:// ``max_body_mb``): a 4K RGB frame is ~25 MB; a header
# announcing more is corrupt or hostile, and the connection is dropped to resynchronise.
MAX_BODY_BYTES = 64 * 1024 * 1024
READ_POLL_S = 0.2  # how often a blocked reader checks its stop flag
RECV_CHUNK = 1 << 20
# pyigtl raises these for malformed bodies (unknown scalar code, subvolume, short body, bad counts).
DECODE_ERRORS = (LookupError, ValueError, ArithmeticError, NotImplementedError, struct.error, TypeError)
# Header CRC64 check (igtl:// ``crc``). pyigtl's CRC64 (crcmod's C extension) costs about 3.4 ms
# per MiB on a 2-core test machine: 3.5 ms for a 1200x840 gray frame, 10 ms in RGB. ``auto``
# therefore checks only bodies up to CRC_AUTO_MAX_BYTES (under 0.5 ms: every TRANSFORM and STATUS,
# images up to 384x288 gray); ``on`` checks every body, ``off`` none. TCP already checksums
# every segment, so the CRC guards against a sender's bugs rather than the network.
CRC_AUTO, CRC_ON, CRC_OFF = "auto", "on", "off"
CRC_MODES = (CRC_AUTO, CRC_ON, CRC_OFF)
CRC_AUTO_MAX_BYTES = 128 * 1024


def require_pyigtl():
    """Import pyigtl lazily: it is an optional extra, needed only for igtl:// and --igtl-*."""
    try:
        import pyigtl  # deferred: an optional extra (see the docstring)
    except ImportError as exc:
        raise SonomapError(
            "OpenIGTLink support needs the optional package pyigtl: "
            "pip install 'sonomap[igtl]' (or pip install pyigtl)"
        ) from exc
    return pyigtl


class SkipMessage(Exception):
    """A message we cannot use; ``reason`` is the counter it increments."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _recv_exact(
    sock: socket.socket, size: int, stop: threading.Event, idle_timeout: float | None = None
) -> bytes:
    """Read exactly ``size`` bytes as they arrive: memory grows with the bytes received (one
    chunk at most ahead), never with what a header claims. ConnectionError when the peer
    closes or we stop; TimeoutError when nothing arrives for ``idle_timeout`` s (a half-open
    connection: cable pulled, peer frozen)."""
    chunks: list[bytes] = []
    got = 0
    last = time.monotonic()
    while got < size:
        if stop.is_set():
            raise ConnectionAbortedError("stopped")
        readable, _, _ = select.select([sock], [], [], READ_POLL_S)
        if not readable:
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                raise TimeoutError(f"nothing received for {idle_timeout:g} s (half-open connection?)")
            continue
        chunk = sock.recv(min(size - got, RECV_CHUNK))
        if not chunk:
            raise ConnectionResetError("connection closed by peer")
        chunks.append(chunk)
        got += len(chunk)
        last = time.monotonic()
    return b"".join(chunks)


def crc_checked(crc: str, body_size: int) -> bool:
    """Whether the ``crc`` mode (CRC_MODES) checks a body of ``body_size`` bytes."""
    return crc == CRC_ON or (crc == CRC_AUTO and body_size <= CRC_AUTO_MAX_BYTES)


def check_crc(pyigtl, fields: dict, header: bytes, body: bytes) -> None:
    """Raise SkipMessage('crc') when the header's CRC64 (ECMA-182, as OpenIGTLink and pyigtl
    compute it) does not match ``body``."""
    (sent,) = struct.unpack_from(CRC_FORMAT, header, HEADER_CRC_OFFSET)
    actual = pyigtl.messages.CRC64(body)
    if actual != sent:
        raise SkipMessage(
            "crc",
            f"{fields['message_type']} {fields['device_name']!r}: header CRC64 {sent:#018x} "
            f"does not match its {len(body)}-byte body ({actual:#018x})",
        )


def read_message(
    pyigtl,
    sock: socket.socket,
    stop: threading.Event,
    max_body: int = MAX_BODY_BYTES,
    idle_timeout: float | None = None,
    crc: str = CRC_AUTO,
):
    """Block until one whole message is read. Returns (header fields, message or None for
    types pyigtl does not know); raises SkipMessage('malformed') for an undecodable body and
    SkipMessage('crc') for a body that fails its CRC check (``crc``: CRC_MODES); the stream
    stays in sync (the body was read in full). ConnectionError on EOF or a body over
    ``max_body`` bytes, TimeoutError after ``idle_timeout`` s without a byte."""
    header = _recv_exact(sock, HEADER_SIZE, stop, idle_timeout)
    try:
        fields = pyigtl.MessageBase.parse_header(header)
    except DECODE_ERRORS as exc:
        raise ConnectionResetError(f"bad OpenIGTLink header ({exc}); resynchronising") from exc
    if fields["body_size"] > max_body:
        raise ConnectionResetError(
            f"OpenIGTLink body of {fields['body_size']} bytes from "
            f"{fields['device_name']!r} is over the {max_body} byte limit; resynchronising"
        )
    body = _recv_exact(sock, fields["body_size"], stop, idle_timeout)
    if crc_checked(crc, len(body)):
        check_crc(pyigtl, fields, header, body)
    msg = pyigtl.MessageBase.create_message(fields["message_type"])
    if msg is None:
        return fields, None
    try:
        msg.unpack(fields, body)
    except DECODE_ERRORS as exc:
        raise SkipMessage(
            "malformed",
            f"{fields['message_type']} {fields['device_name']!r}: "
            f"cannot decode ({type(exc).__name__}: {exc})",
        ) from exc
    return fields, msg
