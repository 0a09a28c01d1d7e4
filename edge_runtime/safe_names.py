"""Names that come from files a person wrote (case ids, patient ids, dataset ids) and become
part of a file path (``images/<id>.png``, ``registration/<id>/``).

Input: the value as read (YAML or CSV). Output: the same name as a ``str`` when it is one plain
path component; otherwise a ``ConfigError`` naming where it came from. A plain component can
never climb out of the folder it is joined to, so no write lands outside the output folder.
"""

from __future__ import annotations

from edge_runtime.errors import ConfigError
from edge_runtime.typed_config import shown

MAX_NAME_CHARS = 128  # leaves room for a suffix within the usual 255-byte file-name limit
FORBIDDEN = ("/", "\\", "..")
FIRST_PRINTABLE = 0x20  # below: control characters (NUL, newline, ...)
DELETE = 0x7F


def safe_name(value, where: str) -> str:
    """``value`` as one plain file-name component, or ``ConfigError`` saying ``where`` and why.

    Accepted: a non-empty string (or integer) of at most ``MAX_NAME_CHARS`` characters with no
    path separator, no ``..``, no control character and no leading/trailing space.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"{where} must be a name (text), got {type(value).__name__} {shown(value)}")
    name = str(value)
    if not name or name != name.strip():
        raise ConfigError(f"{where} {name!r} is not a usable name (empty, or leading/trailing space)")
    if len(name) > MAX_NAME_CHARS:
        raise ConfigError(f"{where} is {len(name)} characters long (at most {MAX_NAME_CHARS})")
    bad = [part for part in FORBIDDEN if part in name]
    if bad or name == ".":
        raise ConfigError(
            f"{where} {name!r} must be a plain name, not a path "
            f"(no '/', '\\', '..'; it becomes a file name inside the output folder)"
        )
    if any(ord(ch) < FIRST_PRINTABLE or ord(ch) == DELETE for ch in name):
        raise ConfigError(f"{where} {name!r} contains a control character")
    return name
