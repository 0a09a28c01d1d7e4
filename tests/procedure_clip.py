"""Test helper: the synthetic biopsy procedure clip (:mod:`registration.sim.procedure`), and one copy
of the default clip shared by the test files of this run that only read it."""

import copy
from pathlib import Path

from run_shared import made_once

from registration.sim.procedure import NO_FIRE, PROCEDURE, THROW_MM, write_procedure_clip

__all__ = ["NO_FIRE", "PROCEDURE", "THROW_MM", "shared_procedure_clip", "write_procedure_clip"]


# Writing the clip draws and encodes every frame (seconds of CPU); the capture and PACS test files
# each replay the same default clip, so one test run writes it once (run_shared). Tests must not
# change its files.
def _write_default(folder: Path) -> dict:
    return write_procedure_clip(folder / "procedure.mp4")


def shared_procedure_clip() -> dict:
    """``write_procedure_clip`` with its defaults, written once per test run: its info (a copy)."""
    return copy.deepcopy(made_once("procedure-clip", _write_default))
