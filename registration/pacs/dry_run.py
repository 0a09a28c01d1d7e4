"""``sonomap cases export DIR --dry-run OUT``: a case's DICOM objects written as files, not sent.

Input: OUT and each case's objects (:mod:`registration.pacs.objects`). Output: the files
``OUT/<study ID>/<case id>/image.dcm`` and the segmentation, named after its kind: ``seg.dcm`` for
the binary one and ``seg-fractional.dcm`` for the fractional one, since the two kinds are different
instances of the same image and an export of one kind must not replace the other's file. Folders are
0700, as the case folders are.

Each file is encoded in memory, then written to a temp file beside its target and renamed over it
(:func:`edge_runtime.atomic.atomic_write_bytes`): a failed write (a full disk) leaves the file
already there whole and no half-written file, and its error is one line naming the file.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from edge_runtime import privacy
from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.errors import SonomapError, os_error_text

OPTION = "--dry-run"  # names OUT in its errors
IMAGE_FILE = "image.dcm"
# a segmentation's file by its SegmentationType: the binary one keeps the name it always had
SEG_FILES = {"BINARY": "seg.dcm", "FRACTIONAL": "seg-fractional.dcm"}


def prepare(out: str | Path) -> Path:
    """OUT, made 0700 when missing: a ConfigError (one line, exit 2) before any case when it is a
    file or cannot be made, rather than the same failure repeated for every case."""
    return privacy.make_private_dir(out, OPTION)


def file_name(ds) -> str:
    """The file name of one of a case's objects: the image, or a segmentation by its kind."""
    return IMAGE_FILE if ds.Modality != "SEG" else SEG_FILES[ds.SegmentationType]


def write_case(objects, out: Path) -> str:
    """Write ``objects`` (a :class:`~registration.pacs.objects.CaseObjects`) under ``out``; the
    report's line. SonomapError naming the file that could not be written."""
    folder = out
    for part in (objects.study_id, objects.case.case_id):  # each level 0700, as the case folders
        folder = privacy.make_private_dir(folder / part, OPTION)
    for ds in objects.datasets:
        encoded = BytesIO()
        # encoded before any file is touched: pydicom's own write errors span lines (with a traceback)
        ds.save_as(encoded, enforce_file_format=True)
        target = folder / file_name(ds)
        try:
            atomic_write_bytes(target, encoded.getvalue())
        except OSError as exc:  # names target (never the temp file), which is left as it was
            raise SonomapError(f"cannot write {os_error_text(exc)}") from exc
    return f"wrote {len(objects.datasets)} file(s) to {folder}"
