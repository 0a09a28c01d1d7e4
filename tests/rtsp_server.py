"""A small RTSP server on loopback for the tests: H.264 over RTP, interleaved in the RTSP TCP
connection (RFC 2326 section 10.12; the runtime asks for ``rtsp_transport=tcp``), packetised per
RFC 6184 (single NAL units, FU-A fragments). It stands in for a scanner or encoder box that
serves its screen over RTSP; FFmpeg's own RTSP client on the other side is the real one.

It serves one clip, paced at its frame rate, looping until stopped. No RTSP server package can be
installed here without ~120 system packages (GStreamer), and FFmpeg has no RTSP server of its own.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from fractions import Fraction

import numpy as np

RTP_VERSION = 0x80
PAYLOAD_TYPE = 96
CLOCK_HZ = 90000
MAX_PAYLOAD = 1400
FU_A = 28
NAL_TYPE_MASK = 0x1F
NAL_NRI_MASK = 0xE0
FU_START, FU_END = 0x80, 0x40
SSRC = 0x50A0A0A0
SESSION = "5A0A0A0A"
KEYFRAME_INTERVAL = 10


def encode_annexb(frames: list[np.ndarray], fps: int) -> list[list[bytes]]:
    """BGR frames -> per frame, its H.264 NAL units (SPS/PPS repeated before every keyframe)."""
    import av

    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "g": str(KEYFRAME_INTERVAL),
        "x264-params": "repeat-headers=1",
    }
    units = []
    for i, bgr in enumerate(frames + [None]):
        frame = None
        if bgr is not None:
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts = i
        for packet in ctx.encode(frame):
            units.append(_split_nals(bytes(packet)))
    return units


def _split_nals(annexb: bytes) -> list[bytes]:
    parts = annexb.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p for p in parts if p]


def rtp_packets(nals: list[bytes], seq: int, timestamp: int) -> list[bytes]:
    """One access unit -> RTP packets (marker bit on its last packet)."""
    payloads = []
    for nal in nals:
        if len(nal) <= MAX_PAYLOAD:
            payloads.append(nal)
            continue
        indicator = (nal[0] & NAL_NRI_MASK) | FU_A
        body = nal[1:]
        chunks = [body[i : i + MAX_PAYLOAD] for i in range(0, len(body), MAX_PAYLOAD)]
        for k, chunk in enumerate(chunks):
            header = nal[0] & NAL_TYPE_MASK
            header |= FU_START if k == 0 else 0
            header |= FU_END if k == len(chunks) - 1 else 0
            payloads.append(bytes([indicator, header]) + chunk)
    out = []
    for k, payload in enumerate(payloads):
        marker = 0x80 if k == len(payloads) - 1 else 0
        out.append(
            struct.pack(
                "!BBHII", RTP_VERSION, marker | PAYLOAD_TYPE, (seq + k) & 0xFFFF, timestamp & 0xFFFFFFFF, SSRC
            )
            + payload
        )
    return out


class RtspServer:
    """``with RtspServer(frames, fps) as url:`` serves the frames at ``url`` (rtsp://127.0.0.1:PORT/live)."""

    def __init__(self, frames: list[np.ndarray], fps: int = 30, port: int = 0):
        self.fps = fps
        self.units = encode_annexb(frames, fps)
        self.sock = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR: a restart may reuse the port
        self.url = f"rtsp://127.0.0.1:{self.sock.getsockname()[1]}/live"
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.sessions = 0
        self.frames_sent = 0

    def __enter__(self) -> str:
        threading.Thread(target=self._accept, daemon=True).start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop as a crashed server would: the listener and every open connection close."""
        self._stop.set()
        try:
            self.sock.shutdown(
                socket.SHUT_RDWR
            )  # wakes the blocked accept(): close() alone leaves it listening
        except OSError:
            pass  # never listened or already shut down
        self.sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its session
            conn.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        self.sessions += 1
        reader = conn.makefile("rb")
        lock = threading.Lock()
        try:
            while not self._stop.is_set():
                first = reader.read(1)
                if not first:
                    return
                if first == b"$":  # an interleaved RTCP report from the client: skip it
                    _, length = struct.unpack("!BH", reader.read(3))
                    reader.read(length)
                    continue
                lines = [first + reader.readline()]
                while lines[-1] not in (b"\r\n", b"\n", b""):
                    lines.append(reader.readline())
                method = lines[0].split()[0].decode()
                headers = dict(line.decode().strip().split(": ", 1) for line in lines[1:-1] if b": " in line)
                if "Content-Length" in headers:
                    reader.read(int(headers["Content-Length"]))
                self._reply(conn, lock, method, headers)
                if method == "PLAY":
                    threading.Thread(target=self._stream, args=(conn, lock), daemon=True).start()
                if method == "TEARDOWN":
                    return
        except (OSError, ValueError):
            return
        finally:
            reader.close()  # the socket's descriptor stays open while its file object does
            conn.close()

    def _reply(self, conn, lock, method: str, headers: dict) -> None:
        extra, body = [], b""
        if method == "OPTIONS":
            extra.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        elif method == "DESCRIBE":
            body = (
                "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=sonomap test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\na=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK_HZ}\r\n"
                f"a=fmtp:{PAYLOAD_TYPE} packetization-mode=1\r\na=control:track0\r\n"
            ).encode()
            extra += ["Content-Type: application/sdp", f"Content-Base: {self.url}/"]
        elif method == "SETUP":
            extra += ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", f"Session: {SESSION}"]
        elif method in ("PLAY", "GET_PARAMETER", "TEARDOWN"):
            extra.append(f"Session: {SESSION}")
        head = [
            "RTSP/1.0 200 OK",
            f"CSeq: {headers.get('CSeq', '0')}",
            *extra,
            f"Content-Length: {len(body)}",
        ]
        with lock:
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def _stream(self, conn, lock) -> None:
        seq, start = 0, time.monotonic()
        index = 0
        while not self._stop.is_set():
            nals = self.units[index % len(self.units)]
            packets = rtp_packets(nals, seq, index * CLOCK_HZ // self.fps)
            seq += len(packets)
            try:
                with lock:
                    for packet in packets:
                        conn.sendall(struct.pack("!BBH", ord("$"), 0, len(packet)) + packet)
            except OSError:
                return
            index += 1
            self.frames_sent = index
            delay = start + index / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
