"""The whole frames of a DICOM file cut short inside its pixel data (a copy stopped part way).

A video cut short plays up to its cut, and so does a DICOM cine. pydicom refuses such a file whole:
uncompressed pixel data because it is shorter than the frames the header declares, compressed
(encapsulated) pixel data because its item sequence never ends, for which pydicom reads back an
empty dataset. Here:

- :func:`recover_encapsulated` reads a compressed file's pixel data up to the cut, keeps its whole
  frames (found as :mod:`edge_runtime.dicom_encapsulated` finds them) and encapsulates them again
  behind a Basic Offset Table that lists them alone, recording how many are whole;
- :func:`whole_frames` counts the whole frames a dataset's pixel data holds when it is cut short:
  uncompressed, by its length; compressed, as recorded when recovered (None when nothing is missing);
- :func:`cut_short_error` is the one message for a frame past the cut, naming the file or the frame.

A compressed file is cut short only when its item sequence has no end: a whole file whose offset table
lists fewer frames than it declares is malformed, not cut (:mod:`edge_runtime.dicom_encapsulated`).

Inputs: a dataset, or a file and its header. Outputs: a frame count, the header with the whole
frames as its pixel data, an error. Files: the input, read only.
"""

from __future__ import annotations

import struct

from edge_runtime import privacy
from edge_runtime.dicom_encapsulated import locate_frames, read_items
from edge_runtime.errors import InputError

BITS_PER_BYTE = 8
PIXEL_DATA_TAG = (0x7FE0, 0x0010)
UNDEFINED_LENGTH = 0xFFFFFFFF
# An encapsulated Pixel Data element's header: its tag, the VR "OB", two reserved bytes and the
# undefined length; every encapsulated transfer syntax is explicit VR little endian (PS3.5 A.4).
ELEMENT_HEADER = struct.Struct("<HH2sHL")
EXTENDED_OFFSETS = ("ExtendedOffsetTable", "ExtendedOffsetTableLengths")  # they describe the data as written
# A recovered dataset's whole frames, kept on it as a Python attribute (no DICOM element): its NumberOfFrames
# still declares the frames the file was written with.
WHOLE_FRAMES = "sonomap_whole_frames"


def cut_short_error(where: str, whole: int, declared: int) -> InputError:
    """The error for a frame past the cut of a file cut short; ``where`` names the file or the frame."""
    return InputError(
        f"{where}: the file is cut short: its pixel data holds {whole} whole frame(s) of the {declared} "
        "it declares (copy it again from the scanner or PACS)"
    )


def whole_frames(ds, declared: int) -> int | None:
    """How many whole frames the pixel data of ``ds`` holds when it is cut short (fewer than the
    ``declared`` ones), else None. Uncompressed: its length over a frame's. Compressed: those
    :func:`recover_encapsulated` kept, when fewer than declared."""
    syntax = ds.file_meta.get("TransferSyntaxUID")
    data = ds.get("PixelData")
    if syntax is None or data is None:
        return None
    if syntax.is_encapsulated:
        whole = getattr(ds, WHOLE_FRAMES, None)  # only a file cut short has been recovered
        return whole if whole is not None and whole < declared else None
    bits = int(ds.get("BitsAllocated") or 0)
    if syntax.is_compressed or bits % BITS_PER_BYTE:
        return None
    frame_bytes = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1) * bits // BITS_PER_BYTE
    if frame_bytes <= 0 or len(data) >= frame_bytes * declared:
        return None
    return len(data) // frame_bytes


def recover_encapsulated(path, header, declared: int, where: str):
    """``header`` (the dataset of the file at ``path`` read up to its pixel data) with the whole frames
    of the file's compressed pixel data, which the file's end cuts short, as its Pixel Data; None when
    the file is not cut inside an encapsulated Pixel Data element. InputError naming ``where`` when
    not one of its ``declared`` frames is whole, or when its frames cannot be located."""
    import pydicom  # deferred: the optional [dicom] extra, which the caller has checked
    from pydicom.encaps import encapsulate

    syntax = header.file_meta.get("TransferSyntaxUID")
    if syntax is None or not syntax.is_encapsulated:
        return None
    try:
        with open(privacy.library_path(path), "rb") as fh:
            pydicom.dcmread(fh, stop_before_pixels=True)  # leaves the file at the pixel data's element
            head = fh.read(ELEMENT_HEADER.size)
            data = fh.read()
    except OSError as exc:  # read whole a moment ago: gone or unreadable since
        raise InputError(f"{where}: cannot read the file again ({exc})") from exc
    if len(head) < ELEMENT_HEADER.size:
        return None
    group, element, _vr, _reserved, length = ELEMENT_HEADER.unpack(head)
    if (group, element) != PIXEL_DATA_TAG or length != UNDEFINED_LENGTH:
        return None
    frames = locate_frames(read_items(data, delimited=False), syntax, declared, where)
    if not frames:
        raise cut_short_error(where, 0, declared)
    for keyword in EXTENDED_OFFSETS:
        if keyword in header:
            del header[keyword]
    header.PixelData = encapsulate(frames, has_bot=True)
    setattr(header, WHOLE_FRAMES, len(frames))
    return header
