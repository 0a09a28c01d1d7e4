"""Image sizes read from file headers without decoding, and a bounded read refusing a huge image.

Inputs: real files written by OpenCV (PNG, JPEG, BMP, TIFF, WebP lossy and lossless) and tifffile
(BigTIFF, big-endian TIFF), and headers built byte by byte to each format's specification where no
writer here makes them (a WebP extended canvas, TIFFs declaring 50000x50000). Outputs: none.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from edge_runtime.image_files import OPENCV_REFUSED, ImageTooLarge, UnreadableImage, read_image
from edge_runtime.image_headers import declared_size

WIDTH, HEIGHT = 641, 361
LIMIT = 4096 * 4096


def _encoded(ext: str, image: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("ext", "channels", "dtype", "params"),
    [
        (".png", 3, np.uint8, ()),
        (".png", 1, np.uint16, ()),
        (".jpg", 3, np.uint8, ()),
        (".bmp", 3, np.uint8, ()),
        (".tiff", 1, np.uint8, ()),
        (".tiff", 3, np.uint16, ()),
        (".webp", 3, np.uint8, (cv2.IMWRITE_WEBP_QUALITY, 90)),  # lossy: VP8
        (".webp", 3, np.uint8, (cv2.IMWRITE_WEBP_QUALITY, 101)),  # lossless: VP8L
    ],
)
def test_the_size_opencv_decodes_is_the_size_the_header_declares(ext, channels, dtype, params):
    shape = (HEIGHT, WIDTH) if channels == 1 else (HEIGHT, WIDTH, channels)
    data = _encoded(ext, np.random.default_rng(0).integers(0, 200, shape).astype(dtype), *params)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert declared_size(data) == (decoded.shape[1], decoded.shape[0]) == (WIDTH, HEIGHT)


@pytest.mark.parametrize(("bigtiff", "byteorder"), [(True, "<"), (False, ">"), (True, ">")])
def test_bigtiff_and_big_endian_tiff_headers_are_read(tmp_path, bigtiff, byteorder):
    tifffile = pytest.importorskip("tifffile", reason="tifffile writes BigTIFF (the wsi extra)")
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, np.zeros((HEIGHT, WIDTH), np.uint8), bigtiff=bigtiff, byteorder=byteorder)
    data = path.read_bytes()
    (version,) = struct.unpack_from(byteorder + "H", data, 2)
    assert version == (43 if bigtiff else 42)  # the file is the variant the test means
    assert declared_size(data) == (WIDTH, HEIGHT)
    assert read_image(path).shape == (HEIGHT, WIDTH)


def _webp_extended(width: int, height: int) -> bytes:
    """A WebP extended-format header (RIFF, WEBP, a VP8X chunk) declaring a canvas of that size."""
    chunk = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    chunk += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def test_a_webp_extended_canvas_is_read():
    assert declared_size(_webp_extended(WIDTH, HEIGHT)) == (WIDTH, HEIGHT)


def _huge_tiff(side: int, byteorder: str = "<") -> bytes:
    """A classic TIFF whose first IFD declares a side x side 8-bit gray image in one strip, with a few
    bytes of pixel data: the shape of a damaged or hostile file."""
    tags = [(256, 4, side), (257, 4, side), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 200),
            (277, 3, 1), (278, 4, side), (279, 4, side * side)]  # fmt: skip
    ifd = struct.pack(byteorder + "H", len(tags))
    for tag, kind, value in tags:
        field = struct.pack(
            byteorder + ("HH" if kind == 3 else "I"), *((value, 0) if kind == 3 else (value,))
        )
        ifd += struct.pack(byteorder + "HHI", tag, kind, 1) + field
    head = (b"II" if byteorder == "<" else b"MM") + struct.pack(byteorder + "HI", 42, 8)
    return head + ifd + struct.pack(byteorder + "I", 0) + bytes(100)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_a_tiff_declaring_50000x50000_is_refused_from_its_header(tmp_path, byteorder):
    path = tmp_path / "huge.tif"
    path.write_bytes(_huge_tiff(50_000, byteorder))
    assert declared_size(path.read_bytes()) == (50_000, 50_000)
    with pytest.raises(ImageTooLarge) as refused:
        read_image(path, max_pixels=LIMIT)
    assert (refused.value.width, refused.value.height) == (50_000, 50_000)


def test_beyond_opencv_s_own_limit_an_unbounded_read_is_one_line_not_an_opencv_error(tmp_path):
    path = tmp_path / "huge.tif"
    path.write_bytes(_huge_tiff(50_000))  # 2.5 Gpx: over OpenCV's 2^30, which raises cv2.error
    with pytest.raises(UnreadableImage) as refused:
        read_image(path)
    assert refused.value.reason == OPENCV_REFUSED
    assert str(refused.value) == f"{path}: unreadable image ({OPENCV_REFUSED})"


def test_a_lossless_webp_declaring_16384x16384_is_refused_from_its_header(tmp_path):
    data = bytearray(_encoded(".webp", np.zeros((8, 8, 3), np.uint8), cv2.IMWRITE_WEBP_QUALITY, 101))
    assert data[12:16] == b"VP8L"
    bits = struct.unpack_from("<I", data, 21)[0] & ~((1 << 28) - 1)  # keep alpha and version bits
    struct.pack_into("<I", data, 21, bits | (16383 << 14) | 16383)
    path = tmp_path / "huge.webp"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageTooLarge):
        read_image(path, max_pixels=LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        b"II*\x00" + struct.pack("<I", 10_000) + bytes(8),  # the first IFD past the end
        b"MM\x00*\x00\x00",  # cut inside the header
        b"II\x07\x00" + bytes(12),  # neither TIFF nor BigTIFF
        b"RIFF\x00\x00\x00\x00WEBPVP8L",  # cut before the size
        b"GIF89a" + bytes(10),  # a format whose header is not read
    ],
)
def test_a_damaged_or_unknown_header_declares_nothing_and_the_decoder_judges(tmp_path, data):
    assert declared_size(data) is None
    path = tmp_path / "damaged.img"
    path.write_bytes(data)
    with pytest.raises(UnreadableImage):
        read_image(path, max_pixels=LIMIT)
