"""TensorBoard event files written without the tensorboard package."""
from __future__ import annotations

import struct

import pytest

from training.tblog import EventWriter, crc32c, masked_crc


def _records(path):
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc(header)
        payload = data[pos + 12:pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == masked_crc(payload)
        out.append(payload)
        pos += 16 + length
    return out


def test_crc32c_known_answer():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert crc32c(b"") == 0


def test_event_file_framing_and_payload(tmp_path):
    w = EventWriter(tmp_path)
    w.add_scalars({"train_loss": 0.5}, step=3)
    w.close()
    records = _records(w.path)
    assert len(records) == 2 and b"brain.Event:2" in records[0]
    assert b"train_loss" in records[1] and struct.pack("<f", 0.5) in records[1]


def test_tensorboard_reads_the_scalars(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    w = EventWriter(tmp_path)
    w.add_scalars({"train_loss": 1.5, "val_dice": 0.25}, step=0)
    w.add_scalars({"train_loss": 0.75, "val_dice": 0.5}, step=1)
    w.close()
    ea = accumulator.EventAccumulator(str(tmp_path))
    ea.Reload()
    assert [(e.step, e.value) for e in ea.Scalars("train_loss")] == [(0, 1.5), (1, 0.75)]
    assert [(e.step, e.value) for e in ea.Scalars("val_dice")] == [(0, 0.25), (1, 0.5)]
