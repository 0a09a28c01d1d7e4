"""Test helper for the PACS export tests: cases made by the real capture (`sonomap replay --cases`
on the synthetic procedure clip, with and without `--study-id`) and `sonomap cases export` run as
the user runs it."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
from cli import sonomap
from procedure_clip import shared_procedure_clip
from run_shared import made_once

STUDY_ID = "BX-0042"
FALLBACK_ID = "BX-0099"
OBJECTS_PER_CASE = 2  # the pre-fire image and its segmentation
EXPORT_TIMEOUT_S = 300


def case_folders(cases: Path) -> list[Path]:
    """The case folders capture wrote in ``cases``, sorted: not the hidden numbering lock beside them."""
    return sorted(p for p in cases.iterdir() if not p.name.startswith("."))


def capture(info: dict, cases: Path, *extra) -> list[Path]:
    roi = ",".join(map(str, info["roi"]))
    sonomap(
        "replay", info["clip"], "--roi", roi, "--mm-per-pixel", info["mm_per_pixel"], "--cases", cases, *extra
    )
    return case_folders(cases)


@pytest.fixture(scope="module")
def clip():
    return shared_procedure_clip()


# The captures below are made once per test run (run_shared) and shared by the PACS test files:
# `cases export` only reads a cases folder, and a test that changes one works on its own copy.
def _captured(*extra: str) -> Path:
    name = "captured-" + ("-".join(extra) or "anonymous")
    return made_once(name, functools.partial(_capture_into, extra))


def _capture_into(extra: tuple[str, ...], folder: Path) -> Path:
    capture(shared_procedure_clip(), folder / "cases", *extra)
    return folder / "cases"


@pytest.fixture(scope="module")
def cases(clip) -> Path:
    """Cases captured with --study-id (the operator's pseudonym at session start)."""
    folder = _captured("--study-id", STUDY_ID)
    assert len(case_folders(folder)) == len(clip["fires"])
    return folder


@pytest.fixture(scope="module")
def anonymous_cases(clip) -> Path:
    """Cases captured without a study ID."""
    return _captured()


def export(cases: Path, *extra, env=None) -> subprocess.CompletedProcess:
    """``sonomap cases export CASES EXTRA...`` with ``env`` added to the environment (forked, as
    tests/cli.py's commands are)."""
    return sonomap("cases", "export", cases, *extra, check=False, timeout=EXPORT_TIMEOUT_S, env=env)
