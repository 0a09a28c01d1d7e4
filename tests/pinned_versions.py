"""Test helper: the versions ``constraints.txt`` pins (the environment the suite and the golden
frames were checked with), by canonical distribution name."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pins() -> dict[str, str]:
    """Distribution name -> pinned version; a line that is not NAME==VERSION fails, naming it."""
    out = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{CONSTRAINTS.name} line {number}: expected NAME==VERSION, got {line!r}"
        out[canonicalize_name(name)] = version
    return out
