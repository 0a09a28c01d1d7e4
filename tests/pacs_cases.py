"""Test helper for the PACS export tests: cases made by the real capture (`sonomap replay --cases`
on the synthetic procedure clip, with and without `--study-id`) and `sonomap cases export` run as
the user runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cli import sonomap
from loopback import SONOMAP
from procedure_clip import write_procedure_clip

STUDY_ID = "BX-0042"
FALLBACK_ID = "BX-0099"
OBJECTS_PER_CASE = 2  # the pre-fire image and its segmentation
EXPORT_TIMEOUT_S = 300


def capture(info: dict, cases: Path, *extra) -> list[Path]:
    roi = ",".join(map(str, info["roi"]))
    sonomap(
        "replay", info["clip"], "--roi", roi, "--mm-per-pixel", info["mm_per_pixel"], "--cases", cases, *extra
    )
    return sorted(p for p in cases.iterdir())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_procedure_clip(tmp_path_factory.mktemp("clip") / "procedure.mp4")


@pytest.fixture(scope="module")
def cases(clip, tmp_path_factory) -> Path:
    """Cases captured with --study-id (the operator's pseudonym at session start)."""
    folder = tmp_path_factory.mktemp("captured") / "cases"
    assert len(capture(clip, folder, "--study-id", STUDY_ID)) == len(clip["fires"])
    return folder


@pytest.fixture(scope="module")
def anonymous_cases(clip, tmp_path_factory) -> Path:
    """Cases captured without a study ID."""
    folder = tmp_path_factory.mktemp("captured") / "cases"
    capture(clip, folder)
    return folder


def export(cases: Path, *extra, env=None) -> subprocess.CompletedProcess:
    """``sonomap cases export CASES EXTRA...`` with ``env`` added to the environment."""
    return subprocess.run(
        [*SONOMAP, "cases", "export", str(cases), *map(str, extra)],
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
