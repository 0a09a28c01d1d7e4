"""Test helper: Python source that makes packages absent in a fresh interpreter, the way importlib
reports a package that is not installed (ModuleNotFoundError from a meta path finder), so a test can
run the real runtime as on a machine without them. Prepend :func:`prelude` to the ``-c`` code."""

from __future__ import annotations

PRELUDE = """
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {absent!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Absent())
"""


def prelude(absent) -> str:
    """Code that makes every package named in ``absent`` (top-level names) unimportable."""
    return PRELUDE.format(absent=sorted(absent))
