"""The frames of encapsulated (compressed) DICOM pixel data, found item by item, and which are whole.

An encapsulated Pixel Data value is a sequence of items (PS3.5 A.4): the Basic Offset Table, then the
fragments of the frames' compressed data, then a sequence delimiter. A frame is found:

- by the Basic Offset Table, when it lists every declared frame: frame i is the fragments from its
  offset up to the next frame's. It is whole when its last fragment ends exactly where the next
  frame's offset begins; the last listed frame, when the sequence ends after it, or (JPEG family) its
  last fragment ends with the end-of-image marker, or (RLE, whose every frame is one fragment) it is
  one whole fragment (a file cut between its fragments has no end, and more of them may be missing);
- otherwise (no table, or one listing fewer frames than declared, which is malformed), for the JPEG
  family by its markers: a frame begins at a fragment that begins with the start-of-image marker, and
  the last one found is whole when the sequence ends after it or its last fragment ends with the
  end-of-image marker;
- else one fragment a frame (the rule for RLE and with an Extended Offset Table), when there are no
  more fragments than frames; more are an error naming the file: its frames cannot be located.

:func:`locate_frames` gives the whole frames of a value (from a whole file or one cut short);
:func:`with_frames_found` gives a whole file whose Basic Offset Table lists fewer frames than it
declares an offset table that lists the frames found without it: all of them, or fewer, which
:func:`frames_held` counts and a frame past which is :func:`fewer_frames_error` (the file is not cut
short); frames that cannot be located are an error naming the file.

Inputs: an encapsulated Pixel Data value from its Basic Offset Table item on, its transfer syntax, the
declared frame count, a dataset. Outputs: each whole frame's compressed bytes, the dataset with its
frames encapsulated again, an InputError naming the file. Files: none.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass

from edge_runtime.errors import InputError

ITEM = struct.Struct("<HHL")  # an item's or the sequence delimiter's tag, then its length (PS3.5 A.4)
ITEM_TAG = (0xFFFE, 0xE000)
SEQUENCE_END_TAG = (0xFFFE, 0xE0DD)
OFFSET_BYTES = 4  # each Basic Offset Table entry is a 32-bit offset
# The markers a frame of the JPEG family begins with: SOI for JPEG and JPEG-LS; for a JPEG 2000 or HTJ2K
# codestream SOC and then SIZ, which must follow it (ISO/IEC 15444-1 A.4). SOC alone is no sign: JPEG 2000's
# packet data may hold its two bytes (an FF byte there is followed by a byte below 90), so a fragment split
# there would be taken for a new frame. JPEG's and JPEG-LS's entropy-coded data never hold SOI (an FF byte
# there is followed by 00, a restart marker or a byte below 80), nor any of them END_OF_IMAGE: a fragment
# that begins with the start marker begins a frame, and a fragment that ends with END_OF_IMAGE ends one.
JPEG_SOI, J2K_SOC_SIZ = b"\xff\xd8", b"\xff\x4f\xff\x51"
END_OF_IMAGE = b"\xff\xd9"  # JPEG's EOI and JPEG 2000's EOC alike
END_MARKER_TAIL = 10  # the last bytes of a frame searched for it, past the padding (as pydicom searches)
# The frames a whole file holds when fewer than it declares, kept on its dataset as a Python attribute (no
# DICOM element): its NumberOfFrames still declares the frames it was written with.
FRAMES_HELD = "sonomap_frames_held"


@dataclass(frozen=True)
class Items:
    """The items of an encapsulated value: ``listed``, the Basic Offset Table's offsets (empty when it
    has none); ``fragments``, each whole fragment in order; ``starts``, where each one's item begins,
    counted from the first fragment's item as the table counts; ``ended``, whether the sequence ends
    after them (False when the value is cut short: inside an item, or before its delimiter)."""

    listed: list[int]
    fragments: list[bytes]
    starts: list[int]
    ended: bool

    @property
    def end(self) -> int:
        """Where the whole fragments' items end, counted as ``starts``."""
        return self.starts[-1] + ITEM.size + len(self.fragments[-1]) if self.fragments else 0


def read_items(value: bytes, *, delimited: bool) -> Items:
    """The items of the encapsulated ``value``, from its Basic Offset Table item on; ``delimited``
    when ``value`` ends where its sequence does (a whole file's Pixel Data as pydicom reads it, without
    the delimiter). No item at all when it holds no whole offset table item (cut inside it, or none)."""
    listed, first = _offset_table(value)
    if not first:
        return Items([], [], [], ended=False)
    fragments: list[bytes] = []
    starts: list[int] = []
    at = first
    while at + ITEM.size <= len(value):
        group, element, length = ITEM.unpack_from(value, at)
        if (group, element) == SEQUENCE_END_TAG:
            return Items(listed, fragments, starts, ended=True)
        if (group, element) != ITEM_TAG or at + ITEM.size + length > len(value):
            break  # cut inside this fragment, or no item where one begins: the whole items end here
        starts.append(at - first)
        fragments.append(value[at + ITEM.size : at + ITEM.size + length])
        at += ITEM.size + length
    return Items(listed, fragments, starts, ended=delimited and at == len(value))


def locate_frames(items: Items, syntax: str, declared: int, where: str) -> list[bytes]:
    """Each whole frame's compressed bytes of ``items``, in order, up to the first frame not whole and
    at most ``declared``. InputError naming ``where`` when the frames cannot be located."""
    start = _start_marker(syntax)
    if len(items.listed) >= declared:
        return _by_offsets(items, declared, start, syntax == _rle())
    if start is not None and items.fragments and items.fragments[0].startswith(start):
        return _by_markers(items, start)[:declared]
    if len(items.fragments) > declared:
        raise _not_located(where, items, declared)
    return list(items.fragments)


def with_frames_found(ds, declared: int, where: str):
    """``ds`` (a whole file's dataset) as it is, unless its Basic Offset Table lists fewer than its
    ``declared`` frames (pydicom would join every frame past the last one listed into it): then with the
    frames found without the table encapsulated again behind one that lists them, and, when they are
    fewer than declared, their count recorded (:func:`frames_held`). InputError naming ``where`` when
    they cannot be located without the table."""
    from pydicom.encaps import encapsulate  # deferred: the optional [dicom] extra

    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None or not syntax.is_encapsulated or "PixelData" not in ds or "ExtendedOffsetTable" in ds:
        return ds  # uncompressed, or found by the Extended Offset Table, which pydicom prefers
    # the table alone first: a well-formed file's items are not walked
    listed, _end = _offset_table(ds.PixelData)
    if not 0 < len(listed) < declared:
        return ds  # no table item (the decoder says so), an empty table, or one that lists every frame
    items = read_items(ds.PixelData, delimited=True)
    frames = locate_frames(items, syntax, declared, where)
    ds.PixelData = encapsulate(frames, has_bot=True)
    if len(frames) < declared:
        setattr(ds, FRAMES_HELD, len(frames))
    return ds


def frames_held(ds) -> int | None:
    """How many frames the whole file of ``ds`` holds when :func:`with_frames_found` found fewer than
    it declares, else None."""
    return getattr(ds, FRAMES_HELD, None)


def fewer_frames_error(where: str, held: int, declared: int) -> InputError:
    """The error for a frame past the ``held`` ones of a whole file; ``where`` names the frame."""
    return InputError(
        f"{where}: the pixel data holds {held} frame(s) of the {declared} the file declares, though the file "
        "is not cut short (its NumberOfFrames or its Basic Offset Table is wrong)"
    )


def _offset_table(value: bytes) -> tuple[list[int], int]:
    """The offsets of the Basic Offset Table item that begins ``value``, and where that item ends; ([], 0)
    when ``value`` begins with no whole offset table item."""
    if len(value) < ITEM.size:
        return [], 0
    group, element, length = ITEM.unpack_from(value)
    end = ITEM.size + length
    if (group, element) != ITEM_TAG or length % OFFSET_BYTES or len(value) < end:
        return [], 0
    return list(struct.unpack_from(f"<{length // OFFSET_BYTES}L", value, ITEM.size)), end


def _not_located(where: str, items: Items, declared: int) -> InputError:
    """The error for the frames of ``items`` that cannot be located: more fragments than the ``declared``
    frames, no offset table listing them all and no marker telling where each frame begins."""
    state = "the file is malformed, not cut short" if items.ended else "the file is cut short"
    count = len(items.listed)
    table = f"its Basic Offset Table lists {count} of them" if count else "its Basic Offset Table is empty"
    return InputError(
        f"{where}: its frames cannot be located ({state}): {table}, and its {len(items.fragments)} "
        f"fragment(s) are not one a frame of the {declared} it declares"
    )


def _start_marker(syntax: str) -> bytes | None:
    """The marker each frame of the transfer syntax ``syntax`` begins with; None when it has none."""
    from pydicom import uid  # deferred: the optional [dicom] extra

    if syntax in uid.JPEGTransferSyntaxes or syntax in uid.JPEGLSTransferSyntaxes:
        return JPEG_SOI
    return J2K_SOC_SIZ if syntax in uid.JPEG2000TransferSyntaxes else None


def _by_offsets(items: Items, declared: int, start: bytes | None, one_fragment: bool) -> list[bytes]:
    """The whole frames the Basic Offset Table of ``items`` lists: each one's fragments end exactly
    where the next frame's offset begins; the last one's, where the sequence ends, or (a value cut
    short) with the end-of-image marker, for a syntax whose frames begin with ``start``, or in one
    fragment, for a syntax whose frames are ``one_fragment`` each."""
    bounds = {*items.starts, items.end}
    frames = []
    for i, begin in enumerate(items.listed[:declared]):
        last = i + 1 == len(items.listed)
        stop = items.end if last else items.listed[i + 1]
        if stop not in bounds:
            break
        pieces = items.fragments[bisect_left(items.starts, begin) : bisect_left(items.starts, stop)]
        frame = b"".join(pieces)
        ends_image = start is not None and END_OF_IMAGE in frame[-END_MARKER_TAIL:]
        if last and not items.ended and not ends_image and not (one_fragment and len(pieces) == 1):
            break  # cut between its fragments, or after them: whole only when it ends an image or is one
        frames.append(frame)
    return frames


def _rle() -> str:
    """RLE Lossless, whose every frame is one fragment (PS3.5 A.4.2)."""
    from pydicom.uid import RLELossless  # deferred: the optional [dicom] extra

    return RLELossless


def _by_markers(items: Items, start: bytes) -> list[bytes]:
    """The whole frames of ``items`` told apart by their markers: each begins at a fragment that
    begins with ``start``; the last one is whole when the sequence ends after it or it ends an image."""
    frames: list[bytes] = []
    current: list[bytes] = []
    for fragment in items.fragments:
        if fragment.startswith(start) and current:  # the next frame begins: the one before is whole
            frames.append(b"".join(current))
            current = []
        current.append(fragment)
    if current and (items.ended or END_OF_IMAGE in current[-1][-END_MARKER_TAIL:]):
        frames.append(b"".join(current))
    return frames
