"""Where the first frame of a ``.seq.nrrd`` starts in its data file (NRRD's ``byte skip``).

Input: the header's ``byte skip`` (0 when absent), where the data file's bytes count from (0 for a
detached data file, the header's end for an attached one), the encoding and the bytes the header's
sizes need. Output: the offset of the first frame; ``-1`` (raw data only, as the NRRD format defines
it) puts the data at the end of the file, however long what comes before it. An offset the data cannot
fill is left for :func:`edge_runtime.sources.sequence.check_data` to report as truncated. Errors: one
line naming the header file and the key for a negative skip other than -1, or -1 with compressed data
(its length is unknown until inflated).
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import InputError

DATA_AT_END = -1  # NRRD's `byte skip: -1`: the raw data is the last bytes of the data file


def data_offset(header: Path, data: Path, skip: int, base: int, raw: bool, needed: int) -> int:
    """The first frame's offset in ``data`` (see module docstring); ``header`` names the errors."""
    if skip == DATA_AT_END and raw:
        try:
            size = data.stat().st_size
        except OSError:  # missing: the caller names it as such
            return base
        return max(base, size - needed)  # short data: from base, so the caller reports it truncated
    if skip == DATA_AT_END:
        raise InputError(f"{header}: byte skip: -1 (data at the end of the file) is only for raw data")
    if skip < 0:
        raise InputError(
            f"{header}: byte skip: {skip}: must be -1 (data at the end) or a count of bytes >= 0"
        )
    return base + skip
