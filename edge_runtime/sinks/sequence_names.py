"""Device and transform names made safe for a ``.seq.nrrd`` header (docs/slicer-sequences.md).

An OpenIGTLink sender names its devices freely (any bytes up to 20, decoded by pyigtl), and the
recorder writes them into the header: ``sonomap device:=NAME`` and ``Seq_FrameNNNN_NAMETransform:=…``.
A newline there ends the NRRD header (a blank line) and makes the whole recording unreadable, ``:=``
in a key splits it elsewhere on reading (a duplicate field), and a non-ASCII character cannot be
written at all (the header is ASCII). PLUS names its transforms ``<From>To<To>`` from letters and
digits, and its MetaImage writer and Slicer's sequence reader split keys at ``=``, ``:`` and spaces,
so a name keeps only letters, digits, ``_``, ``-`` and ``.``: every other character becomes ``_``.

Input: the names of one recording file, as they come. Output: for each, the name written; a name
already safe is written as it is, and two different names never share one written name (the later
one gets ``_2``, ``_3``, ...), so one odd name never costs the recording nor merges two transforms.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger("sonomap.sequence")
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")  # what PLUS and Slicer's readers keep whole in a key
REPLACEMENT = "_"
SHOWN_CHARS = 40  # of an odd name in the warning: enough to recognise it, never a flood


class SafeNames:
    """The written name of each name met in one recording file (see module docstring)."""

    def __init__(self, what: str):
        self.what = what  # "transform", "device": for the warning
        self._written: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, name: str) -> str:
        written = self._written.get(name)
        if written is None:
            written = self._new(name)
            self._written[name] = written
            self._taken.add(written)
        return written

    def _new(self, name: str) -> str:
        base = UNSAFE.sub(REPLACEMENT, name) or REPLACEMENT
        written, n = base, 1
        while written in self._taken:  # another name came out the same: keep them apart
            n += 1
            written = f"{base}{REPLACEMENT}{n}"
        if written != name:
            log.warning(
                "sink sequence: %s name %r recorded as %r (a Slicer sequence header holds only "
                "letters, digits, '_', '-' and '.' in a name)",
                self.what,
                name[:SHOWN_CHARS],
                written,
            )
        return written
