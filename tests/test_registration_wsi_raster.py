"""A thumbnail slide too big to decode whole is refused from its header, before decoding: a small
file on disk can decode to gigabytes."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import pytest

from edge_runtime.errors import InputError
from registration.wsi import read_slide

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRAY_8BIT = (8, 0, 0, 0, 0)  # bit depth, colour type gray, compression, filter, interlace
HUGE_SIDE = 20_000  # 400 Mpx: 1.2 GB once decoded in colour, 2.4 GB with the RGB copy
MAX_CHILD_RSS_BYTES = 2**30  # the refusal must come long before the pixels are decoded


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_white_png(path, width: int, height: int) -> None:
    """A white gray PNG written row by row (the test never holds its pixels): a few hundred KB."""
    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * width  # filter byte "none", then the row
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">II5B", width, height, *GRAY_8BIT)
    path.write_bytes(PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def test_a_raster_over_the_limit_is_refused_naming_file_and_size(tmp_path):
    path = tmp_path / "big.png"
    write_white_png(path, 10_000, 8_000)
    with pytest.raises(
        InputError, match=r"big.png: a 10000x8000 px image \(80 Mpx\) is too big to decode whole"
    ):
        read_slide(path, 8.0)


def test_a_huge_raster_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    write_white_png(path, HUGE_SIDE, HUGE_SIDE)
    assert path.stat().st_size < 2**21
    code = (
        "import sys\n"
        "from edge_runtime.errors import InputError\n"
        "from edge_runtime.memory import peak_rss_bytes\n"
        "from registration.wsi import read_slide\n"
        "try:\n"
        f"    read_slide({str(path)!r}, 8.0)\n"
        "except InputError as exc:\n"
        "    print(exc)\n"
        "print(peak_rss_bytes())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    message, peak = out.stdout.strip().splitlines()
    assert message.startswith(f"{path}: too big to decode") or message.startswith(f"{path}: a 20000x20000 px")
    assert int(peak) < MAX_CHILD_RSS_BYTES
