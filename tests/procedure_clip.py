"""Test helper: the synthetic biopsy procedure clip (:mod:`registration.sim.procedure`), and one copy
of the default clip shared by the test files of this process that only read it."""

import atexit
import copy
import functools
import shutil
import tempfile
from pathlib import Path

from registration.sim.procedure import NO_FIRE, PROCEDURE, THROW_MM, write_procedure_clip

__all__ = ["NO_FIRE", "PROCEDURE", "THROW_MM", "shared_procedure_clip", "write_procedure_clip"]

# Writing the clip draws and encodes every frame (seconds of CPU); the capture and PACS test files
# each replay the same default clip, so one process writes it once. Tests must not change its files.
_SHARED = Path(tempfile.mkdtemp(prefix="sonomap-procedure-clip-"))
atexit.register(shutil.rmtree, _SHARED, True)


@functools.cache
def _default_clip() -> dict:
    return write_procedure_clip(_SHARED / "procedure.mp4")


def shared_procedure_clip() -> dict:
    """``write_procedure_clip`` with its defaults, written once per process: its info (a copy)."""
    return copy.deepcopy(_default_clip())
