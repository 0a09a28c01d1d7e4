"""An image's size as its file header declares it, read without decoding a pixel.

A small file may declare a huge image (a 1 MB PNG of zeros declares 30000x30000 px, 2.7 GB once
decoded), so callers that bound memory (:func:`edge_runtime.image_files.read_image`'s
``max_pixels``) refuse it from its header first. The formats read are those OpenCV decodes from a
capture folder or a dataset: PNG, JPEG, BMP, TIFF (classic and BigTIFF, the first page, which is the
one OpenCV decodes) and WebP (lossy, lossless and extended).

Written here rather than taken from a library: the runtime's dependencies (numpy, opencv, av,
pyyaml, onnxruntime; a Jetson has no Pillow) offer no header-only size query, and each format's
size sits at a fixed, documented place (PNG IHDR, JPEG SOFn, BMP info header, TIFF tags 256/257 of
the first IFD, WebP's VP8/VP8L/VP8X chunk).

Input: the file's bytes. Output: ``(width, height)``, or None for another format or a header too
short or damaged to tell (the decoder then judges the file).
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IHDR = struct.Struct(">8xI4sII")  # signature, IHDR length and type, then width and height
JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless; not DHT 0xC4, JPG 0xC8, DAC 0xCC)
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_SOF_SIZE = struct.Struct(">HBHH")  # segment length, precision, height, width
BMP_SIGNATURE = b"BM"
BMP_SIZE = struct.Struct("<14xIii")  # file header, then the info header's size, width, height
BMP_CORE_SIZE = struct.Struct("<14xIHH")  # an OS/2 BITMAPCOREHEADER's 16-bit width and height
BMP_CORE_HEADER = 12
# TIFF: byte order, then 42 (classic: 32-bit offsets, 12-byte tags) or 43 (BigTIFF: 64-bit, 20-byte tags)
TIFF_ORDERS = {b"II": "<", b"MM": ">"}
TIFF_CLASSIC, TIFF_BIG = 42, 43
TIFF_WIDTH, TIFF_LENGTH = 256, 257  # ImageWidth, ImageLength
TIFF_SHORT, TIFF_LONG, TIFF_LONG8 = 3, 4, 16  # the field types those two tags may have
TIFF_VALUE_FORMATS = {TIFF_SHORT: "H", TIFF_LONG: "I", TIFF_LONG8: "Q"}
# WebP: RIFF container, then the first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended canvas)
WEBP_RIFF, WEBP_FORM = b"RIFF", b"WEBP"
WEBP_CHUNK_AT = 12
VP8_SIZE = struct.Struct("<26xHH")  # after the frame tag and start code: 14-bit width and height
VP8_DIMENSION_BITS = 0x3FFF  # the top two bits of each are the upscaling hint
VP8L_BITS = struct.Struct("<21xI")  # after the signature byte: 14 bits width - 1, 14 bits height - 1
VP8L_FIELD_BITS = 14
VP8X_CANVAS_AT = 24  # 24-bit canvas width - 1, then height - 1


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = len(JPEG_SOI)
    while at + 2 + JPEG_SOF_SIZE.size <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
            continue
        length, _, height, width = JPEG_SOF_SIZE.unpack_from(data, at + 2)
        if marker in JPEG_SOF:
            return width, height
        at += 2 + length  # a segment before the frame header (APPn, DQT, DHT, COM): skipped
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < BMP_SIZE.size:
        return None
    header, width, height = BMP_SIZE.unpack_from(data)
    if header == BMP_CORE_HEADER:
        header, width, height = BMP_CORE_SIZE.unpack_from(data)
    return abs(width), abs(height)  # a negative height: rows stored top-down


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """The first IFD's ImageWidth and ImageLength."""
    order = TIFF_ORDERS[data[:2]]
    try:
        (version,) = struct.unpack_from(order + "H", data, 2)
        if version == TIFF_CLASSIC:
            count_fmt, entry_fmt, entry_size = "H", "HHI", 12
            (ifd,) = struct.unpack_from(order + "I", data, 4)
        elif version == TIFF_BIG:
            count_fmt, entry_fmt, entry_size = "Q", "HHQ", 20
            (ifd,) = struct.unpack_from(order + "Q", data, 8)
        else:
            return None
        (count,) = struct.unpack_from(order + count_fmt, data, ifd)
        first = ifd + struct.calcsize(order + count_fmt)
        found = {}
        for k in range(min(count, (len(data) - first) // entry_size)):
            at = first + k * entry_size
            tag, kind, _ = struct.unpack_from(order + entry_fmt, data, at)
            if tag in (TIFF_WIDTH, TIFF_LENGTH) and kind in TIFF_VALUE_FORMATS:
                value_at = at + struct.calcsize(order + entry_fmt)  # left-justified in the value field
                (found[tag],) = struct.unpack_from(order + TIFF_VALUE_FORMATS[kind], data, value_at)
    except struct.error:  # an offset past the end: a damaged header
        return None
    if TIFF_WIDTH in found and TIFF_LENGTH in found:
        return found[TIFF_WIDTH], found[TIFF_LENGTH]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[WEBP_CHUNK_AT : WEBP_CHUNK_AT + 4]
    if chunk == b"VP8 " and len(data) >= VP8_SIZE.size:
        width, height = VP8_SIZE.unpack_from(data)
        return width & VP8_DIMENSION_BITS, height & VP8_DIMENSION_BITS
    if chunk == b"VP8L" and len(data) >= VP8L_BITS.size:
        (bits,) = VP8L_BITS.unpack_from(data)
        mask = (1 << VP8L_FIELD_BITS) - 1
        return (bits & mask) + 1, ((bits >> VP8L_FIELD_BITS) & mask) + 1
    if chunk == b"VP8X" and len(data) >= VP8X_CANVAS_AT + 6:
        canvas = data[VP8X_CANVAS_AT : VP8X_CANVAS_AT + 6]
        return int.from_bytes(canvas[:3], "little") + 1, int.from_bytes(canvas[3:], "little") + 1
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` as a PNG, JPEG, BMP, TIFF or WebP header declares it, without decoding;
    None for another format or a header too short to tell (the decoder then judges the file)."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= PNG_IHDR.size:
        _, kind, width, height = PNG_IHDR.unpack_from(data)
        return (width, height) if kind == b"IHDR" else None
    if data.startswith(JPEG_SOI):
        return _jpeg_size(data)
    if data.startswith(BMP_SIGNATURE):
        return _bmp_size(data)
    if data[:2] in TIFF_ORDERS:
        return _tiff_size(data)
    if data.startswith(WEBP_RIFF) and data[8:12] == WEBP_FORM:
        return _webp_size(data)
    return None
