"""Slips in a file path typed into case.yaml that waiting for the file will never mend.

A slide or annotation named in case.yaml but not found is normally a case still waiting for the lab
(registration/cases/status.py lists it as pending). Some values name no file this machine will ever
see, and such a case would be listed as pending for good: a Windows path (``C:\\slides\\x.svs``,
``.\\x.svs``), a ``~`` that nothing expands, a space left at either end, a URL, or a relative path
typed from another folder (paths in case.yaml are read from the case's own folder). Input: the value
and the case's folder. Output: why the value is such a slip, without repeating it (paths often carry
the patient's name), or None.
"""

from __future__ import annotations

from pathlib import Path

FROM_THE_FOLDER = "give the file's path on this machine, or its name when it is in the case's folder"


def path_slip(value: str, base: Path) -> str | None:
    """Why ``value`` (a case.yaml file path that names no file from ``base``, the case's folder) will
    never name one (module docstring), or None when it may still arrive."""
    if "\\" in value:
        return f"is a Windows path (it has a backslash '\\'): write it with '/'; {FROM_THE_FOLDER}"
    if value != value.strip():
        return "has a space at its start or end: remove it"
    if value.startswith("~"):
        return f"starts with '~', which is not expanded here: {FROM_THE_FOLDER}"
    if "://" in value:
        return f"is a URL, not a file path: {FROM_THE_FOLDER}"
    if not Path(value).is_absolute():
        try:
            elsewhere = (Path.cwd() / value).is_file()
        except OSError:  # no current folder (deleted), or a name the file system refuses: no hint
            elsewhere = False
        if elsewhere:
            return (
                "is a relative path, and relative paths are read from the case's folder: there is no such "
                "file there (there is one from the current folder); write the path from the case's folder, "
                "or the full path"
            )
    return None
