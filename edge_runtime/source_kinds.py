"""What a source is called outside the process: its kind, never its file or folder name.

A file or folder name often carries the patient's name or record number, so log lines, frame
metadata (``meta["source"]``) and a biopsy case's ``capture.source`` name a source by its kind.
The sources (:mod:`edge_runtime.sources`) and the case writer (:mod:`edge_runtime.biopsy`) share
these names, and the opener dispatches a path on the same suffixes, so what a case records is the
kind of source that really read the frames.
"""

from __future__ import annotations

import re
from pathlib import Path

from edge_runtime.privacy import without_userinfo

VIDEO_FILE = "video file"
IMAGE_FOLDER = "image folder"
IMAGE_FILE = "image file"
DICOM_CINE = "DICOM cine"
SLICER_SEQUENCE = "Slicer sequence"
PLUS_SEQUENCE = "PLUS sequence"
SYNTHETIC = "synthetic"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
SEQUENCE_SUFFIXES = (".nrrd", ".nhdr")
PLUS_METAIMAGE_SUFFIXES = (".mha", ".mhd")
FILE_KINDS = (
    (DICOM_SUFFIXES, DICOM_CINE),
    (SEQUENCE_SUFFIXES, SLICER_SEQUENCE),
    (PLUS_METAIMAGE_SUFFIXES, PLUS_SEQUENCE),
    (IMAGE_SUFFIXES, IMAGE_FILE),
)

CAPTURE_DEVICE = re.compile(r"^(?:/dev/video)?(\d+)$")  # /dev/videoN, or N as --source takes it
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]")  # scheme://authority...: a stream, not a path


def path_kind(path: Path) -> str:
    """The kind of a file or folder source: ``image folder`` for a folder, else by suffix
    (``DICOM cine``, ``Slicer sequence``, ``PLUS sequence``, ``image file``), and ``video file``
    for any other file (the opener hands it to the video decoder). Reads only whether ``path`` is
    a folder."""
    if path.is_dir():
        return IMAGE_FOLDER
    suffix = path.suffix.lower()
    return next((kind for suffixes, kind in FILE_KINDS if suffix in suffixes), VIDEO_FILE)


def public_source(source: str | None) -> str:
    """What a case records as ``capture.source``, and bench prints: the kind of source, never a file
    or folder name (both often carry the patient's name or record number).

    Input: the source as given to ``live``/``replay`` (a path, a stream URL, a capture device or
    ``synthetic``). Output: a stream URL without user:password, query and fragment;
    ``capture device /dev/videoN``; ``synthetic``; for a path its kind: ``DICOM cine``,
    ``Slicer sequence``, ``PLUS sequence``, ``image file``, ``image folder`` or ``video file``;
    "" when no source is known. Reads nothing but whether a path is a folder."""
    if source is None or str(source) == "":
        return ""
    text = str(source)
    if URL.match(text):  # credentials out first: a parser misreads a password typed with a / or [
        return re.split(r"[?#]", without_userinfo(text), maxsplit=1)[0]
    if text == SYNTHETIC:
        return SYNTHETIC
    device = CAPTURE_DEVICE.match(text)
    if device:
        return f"capture device /dev/video{device.group(1)}"
    return path_kind(Path(text))
