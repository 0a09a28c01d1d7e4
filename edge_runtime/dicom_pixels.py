"""DICOM pixel data as 8-bit display pixels: the one place that reads a DICOM image's colours.

Used by the runtime's DICOM cine source and by registration's ultrasound reader, so a frame
replayed and the same frame registered are the same picture.

pydicom 3 decodes the pixel data and already delivers RGB for YBR_FULL / YBR_FULL_422 (its
default colour conversion) and for JPEG 2000's YBR_RCT / YBR_ICT (converted by the codec); the
decoder says which colour space it returned, and that, not the header, decides what is done here:

- MONOCHROME2: as is; MONOCHROME1 (0 is white): inverted;
- RGB: as is;
- PALETTE COLOR: through the file's lookup table (``pydicom.pixels.apply_color_lut``), 16-bit
  table entries scaled to 8 bits.

Anything else (more than 8 bits per sample, signed samples, a colour space pydicom leaves
unconverted such as YBR_PARTIAL_420, a palette without its table) is a one-line
:class:`~edge_runtime.errors.InputError` naming the file. pydicom is the optional ``[dicom]`` extra:
callers have read the dataset with it already; version 3 or later is needed (``pydicom.pixels``).
Compressed transfer syntaxes need a pydicom pixel-data plugin (Pillow decodes JPEG baseline and
JPEG 2000). A plugin that fails logs its exception with a traceback on pydicom's decoder logger:
that record is lowered to DEBUG without the traceback (:func:`_quiet_plugin_failure`), since the
one-line error carries the plugin's message. A file whose NumberOfFrames is 0 holds no image: an
error saying so, not the decoder's TypeError.

:func:`read_dicom` reads a file for both callers: its header first, whose patient identifiers are
registered for redaction before anything else can fail (a file cut short inside its pixel data may
read back whole as an empty dataset, and its error would then name the file unredacted), then the
whole file; a file without pixel data is an error saying so, and whether it was cut short. A file
cut short inside its pixel data keeps its whole frames, compressed or not
(:mod:`edge_runtime.dicom_cut_short`): each decodes as in the whole file, and a frame past the cut is
an error naming it and how many whole frames the file holds. A whole file whose Basic Offset Table
lists fewer frames than it declares is not cut short: its frames are found without the table, or the
error says they cannot be located; fewer frames found than declared play, and the frame past them is
an error saying the file is not cut short (:mod:`edge_runtime.dicom_encapsulated`).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from edge_runtime import privacy
from edge_runtime.dicom_cut_short import cut_short_error, recover_encapsulated, whole_frames
from edge_runtime.dicom_encapsulated import fewer_frames_error, frames_held, with_frames_found
from edge_runtime.errors import InputError, SonomapError

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
RGB, PALETTE = "RGB", "PALETTE COLOR"
LUT_16_BIT = 16
DECODER_LOGGER = "pydicom.pixels.decoders.base"  # logs each failing plugin's exception, traceback and all


def _quiet_plugin_failure(record: logging.LogRecord) -> bool:
    """A failing plugin's record, kept at DEBUG without its traceback: the InputError says it in one line."""
    if record.exc_info:
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        # the logger let it through as an ERROR: whether DEBUG is wanted is asked again here
        return logging.getLogger(DECODER_LOGGER).isEnabledFor(logging.DEBUG)
    return True


PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def read_header(path, where: str):
    """The header of the DICOM file at ``path`` (no pixel data read), its patient identifiers
    registered for redaction (:func:`edge_runtime.privacy.register_dicom`): from now on they are
    [REDACTED] in logs and errors. InputError naming ``where`` when it is no readable DICOM."""
    import pydicom  # deferred: the optional [dicom] extra, which the caller has checked

    try:
        header = pydicom.dcmread(privacy.library_path(path), stop_before_pixels=True)
    except Exception as exc:  # InvalidDicomError and friends: pydicom raises many types for broken files
        raise InputError(f"{where}: not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    privacy.register_dicom(header)
    return header


def read_dicom(path, where: str):
    """The DICOM dataset at ``path`` (pydicom, read by the caller's import of it), its identifiers
    registered for redaction (:func:`edge_runtime.privacy.register_dicom`) from the header before the
    whole file is read. InputError naming ``where``: not DICOM, unreadable, no pixel data, or compressed
    frames that cannot be located."""
    import pydicom  # deferred: the optional [dicom] extra, which the caller has checked

    name = privacy.library_path(path)  # absolute: pydicom's log lines then lose the path whole
    header = read_header(path, where)
    try:
        ds = pydicom.dcmread(name)
    except Exception as exc:
        raise InputError(f"{where}: not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        cut = len(ds) < len(header)  # pydicom gives up on a file cut short and returns less than its header
        recovered = recover_encapsulated(path, header, frame_count(header), where) if cut else None
        if recovered is not None:  # compressed frames cut short: the whole ones are played
            return recovered
        raise InputError(
            f"{where}: holds no pixel data"
            + (
                " (the file is cut short: copy it again from the scanner or PACS)"
                if cut
                else ": cut short, or no image"
            )
        )
    # a whole file whose offset table lists too few frames: found without it, or an error naming the file
    return with_frames_found(ds, frame_count(ds), where)


def frame_count(ds) -> int:
    """The number of frames the dataset holds (1 when NumberOfFrames is absent or empty)."""
    try:
        return max(int(getattr(ds, "NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _declared_frames(ds) -> int | None:
    """NumberOfFrames as written, or None when absent, empty or not a number (then one frame)."""
    try:
        raw = getattr(ds, "NumberOfFrames", None)
        return None if raw is None or raw == "" else int(raw)
    except (TypeError, ValueError):
        return None


def _decode(ds, where: str, index: int | None):
    if _declared_frames(ds) == 0:  # pydicom would assume one frame and fail on the empty data
        raise InputError(f"{where}: holds no image (NumberOfFrames is 0)")
    logging.getLogger(DECODER_LOGGER).addFilter(_quiet_plugin_failure)  # once: the same filter is kept once
    try:
        from pydicom.pixels import get_decoder  # deferred: pydicom is an optional extra
    except ImportError as exc:  # pydicom 2 has no pydicom.pixels
        raise SonomapError(
            f"{where}: reading DICOM pixels needs pydicom >= 3 (pip install -U 'pydicom>=3')"
        ) from exc
    try:
        decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
        return decoder.as_array(ds, index=index, as_rgb=True, validate=_whole_in_cut_file(ds, where, index))
    except SonomapError:
        raise
    except Exception as exc:  # pydicom raises many types for missing, broken or undecodable pixel data
        reason = " ".join(str(exc).split())  # pydicom lists each plugin on a line of its own: one line
        raise InputError(
            f"{where}: cannot decode the DICOM pixel data ({type(exc).__name__}: {reason})"
        ) from exc


def _whole_in_cut_file(ds, where: str, index: int | None) -> bool:
    """Whether pydicom should check the pixel data's length (True), or may decode frame ``index``
    of an uncompressed cine cut short, which it would refuse whole though the frame lies in the
    part that is there (False). InputError naming the frame when it lies past the cut of a file cut
    short (:mod:`edge_runtime.dicom_cut_short`): the frames before it have been played, as a video
    cut short plays up to its cut; or past the frames a whole file holds, when fewer than it declares
    (:mod:`edge_runtime.dicom_encapsulated`)."""
    if index is None:
        return True
    declared = frame_count(ds)
    held = frames_held(ds)
    if held is not None and index >= held:  # not cut short: its NumberOfFrames declares too many
        raise fewer_frames_error(where, held, declared)
    whole = whole_frames(ds, declared)
    if whole is None:
        return True
    if index >= whole:
        raise cut_short_error(where, whole, declared)
    return bool(ds.file_meta.TransferSyntaxUID.is_encapsulated)  # compressed: its whole frames, checked


def _palette(arr: np.ndarray, ds, where: str) -> np.ndarray:
    from pydicom.pixels import apply_color_lut  # deferred: pydicom is an optional extra

    try:
        rgb = apply_color_lut(arr, ds)
    except Exception as exc:  # a missing or malformed lookup table
        raise InputError(
            f"{where}: unusable PALETTE COLOR lookup table ({type(exc).__name__}: {exc})"
        ) from exc
    if rgb.dtype.itemsize * 8 >= LUT_16_BIT:
        return (rgb >> 8).astype(np.uint8)  # 16-bit table entries span 0..65535
    return rgb.astype(np.uint8)


def dicom_pixels(ds, where: str, index: int | None = None) -> np.ndarray:
    """Frame ``index`` as uint8 ``[H, W]`` gray or ``[H, W, 3]`` RGB; with ``index=None`` every
    frame, stacked ``[N, H, W(, 3)]`` (N >= 1). ``where`` (the file as the user gave it) names it in
    errors. The caller checks ``index`` against :func:`frame_count`."""
    arr, meta = _decode(ds, where, index)
    if index is None and frame_count(ds) == 1:
        arr = arr[None]
    photometric = str(
        getattr(meta["photometric_interpretation"], "value", meta["photometric_interpretation"])
    )
    bits = int(meta.get("bits_allocated", 8))
    if bits != 8 or arr.dtype != np.uint8:
        raise InputError(
            f"{where}: unsupported pixel format: {bits}-bit {arr.dtype} samples "
            f"(DICOM images are read as 8-bit unsigned)"
        )
    if photometric == "MONOCHROME1":
        return 255 - arr
    if photometric == "MONOCHROME2" or (photometric == RGB and arr.shape[-1] == 3):
        return np.ascontiguousarray(arr)
    if photometric == PALETTE:
        return _palette(arr, ds, where)
    raise InputError(
        f"{where}: unsupported photometric interpretation {photometric!r} "
        f"(readable: {', '.join((*MONOCHROME, 'RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_RCT', 'YBR_ICT', PALETTE))})"
    )


def dicom_gray(ds, where: str, index: int | None = None) -> np.ndarray:
    """:func:`dicom_pixels` as 8-bit gray (ITU-R 601 luma for colour): ``[H, W]`` or ``[N, H, W]``."""
    pixels = dicom_pixels(ds, where, index)
    single = index is not None
    if pixels.ndim == (3 if single else 4):
        flat = pixels.reshape(-1, pixels.shape[-2], 3)  # frames stacked along rows: one cvtColor call
        gray = cv2.cvtColor(np.ascontiguousarray(flat), cv2.COLOR_RGB2GRAY)
        return gray.reshape(pixels.shape[:-1])
    return pixels
