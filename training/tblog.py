"""TensorBoard-compatible scalar logs without the tensorboard package.

Writes ``RUN/tb/events.out.tfevents.<time>.<host>.<pid>``: TFRecord framing (length, masked
CRC-32C, payload, masked CRC-32C) around hand-encoded ``tensorflow.Event`` protobufs (first a
``file_version`` event, then one ``Summary`` with a ``simple_value`` per scalar). That is all
TensorBoard needs to plot scalars, so runs get curves without adding tensorboard, grpcio and
protobuf to the training install.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

FILE_VERSION = b"brain.Event:2"
CRC32C_POLY = 0x82F63B78  # Castagnoli, reflected
MASK_DELTA = 0xA282EAD8
U32 = 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = U32
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ U32


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & U32) + MASK_DELTA) & U32


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:  # wire type 2: length-delimited
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, *, file_version: bytes | None = None,
                 scalars: dict[str, float] | None = None) -> bytes:
    """One ``Event`` message: wall_time (1, double), step (2, int64), file_version (3) or summary (5)."""
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        msg += _field_bytes(3, file_version)
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(v)))
            for tag, v in scalars.items())
        msg += _field_bytes(5, values)
    return msg


def record(payload: bytes) -> bytes:
    """TFRecord framing of one payload."""
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc(length)) + payload + struct.pack("<I", masked_crc(payload))


class EventWriter:
    """Append-only scalar event file in ``logdir`` (created)."""

    def __init__(self, logdir: str | Path):
        self.dir = Path(logdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        self.path = self.dir / name
        self._fh = open(self.path, "ab")
        self._fh.write(record(encode_event(time.time(), 0, file_version=FILE_VERSION)))
        self._fh.flush()

    def add_scalars(self, scalars: dict[str, float], step: int) -> None:
        self._fh.write(record(encode_event(time.time(), step, scalars=scalars)))
        self._fh.flush()  # a crashed run keeps every epoch already logged

    def close(self) -> None:
        self._fh.close()
