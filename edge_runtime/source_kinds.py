"""What a source is called outside the process: its kind, never its file or folder name.

A file or folder name often carries the patient's name or record number, so log lines, frame
metadata (``meta["source"]``) and a biopsy case's ``capture.source`` name a source by its kind.
The sources (:mod:`edge_runtime.sources`) and the case writer (:mod:`edge_runtime.biopsy`) share
these names, and the opener dispatches a path on the same suffixes, so what a case records is the
kind of source that really read the frames.
"""

from __future__ import annotations

from pathlib import Path

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


def path_kind(path: Path) -> str:
    """The kind of a file or folder source: ``image folder`` for a folder, else by suffix
    (``DICOM cine``, ``Slicer sequence``, ``PLUS sequence``, ``image file``), and ``video file``
    for any other file (the opener hands it to the video decoder). Reads only whether ``path`` is
    a folder."""
    if path.is_dir():
        return IMAGE_FOLDER
    suffix = path.suffix.lower()
    return next((kind for suffixes, kind in FILE_KINDS if suffix in suffixes), VIDEO_FILE)
