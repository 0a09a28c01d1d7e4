"""Text that the export writes into DICOM attributes, cleaned to what the attribute's VR may hold.

Input: a value (text from case.yaml such as ``capture.trigger`` or ``capture.model.name``, the
case folder's name, or sonomap's own constants) and the attribute's VR. Output: the value as text
in which every character the VR does not allow is replaced by ``?``, cut to the VR's length
(PS3.5 6.2). Every text attribute sonomap sets goes through :func:`dicom_text`, so a hostile
case.yaml can neither make an invalid object nor put terminal escapes, NUL or line breaks into a
PACS's database and viewers.

The objects carry no Specific Character Set, so their text is in the default repertoire (ISO-IR 6):
printable ASCII, 0x20-0x7E. No control character (NUL, ESC, newline, DEL) is allowed in any of the
VRs used here. A backslash separates values in SH, LO and PN, so it is replaced there too (LT is
one value and keeps it), as are PN's component and group delimiters ``^`` and ``=``: the subject's
name is the pseudonym, one component.
"""

from __future__ import annotations

SH, LO, LT, PN = "SH", "LO", "LT", "PN"
MAX_CHARS = {SH: 16, LO: 64, LT: 10240, PN: 64}  # PS3.5 6.2, Table 6.2-1 (PN: per component group)
# printable characters a VR still does not take as text: the value separator, PN's delimiters
DELIMITERS = {SH: "\\", LO: "\\", LT: "", PN: "\\^="}
FIRST_PRINTABLE, LAST_PRINTABLE = 0x20, 0x7E  # the default repertoire's graphic characters
REPLACEMENT = "?"  # stands for each character cleaned out, so the reader sees that one was there


def _allowed(char: str, vr: str) -> bool:
    return FIRST_PRINTABLE <= ord(char) <= LAST_PRINTABLE and char not in DELIMITERS[vr]


def dicom_text(value, vr: str) -> str:
    """``value`` (as ``str()`` gives it) with each character VR ``vr`` (SH, LO, LT or PN) does not
    allow replaced by ``?``, cut to the VR's maximum length. A VR not in :data:`MAX_CHARS` is a
    KeyError: every VR the export writes is listed there."""
    limit = MAX_CHARS[vr]
    text = str(value)[:limit]  # cut first: a value of megabytes is not scanned whole
    return "".join(char if _allowed(char, vr) else REPLACEMENT for char in text)
