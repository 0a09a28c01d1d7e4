"""`sonomap register CASE.yaml --out OUT` refuses an OUT where one of its files (us.png, label.png,
qa.png, report.json) is a FIFO or a folder before it writes anything: found only while writing, the
refusal would come after the earlier case's label and image were replaced and its report removed.

Real CLI runs on simulated cases; the FIFO is a real one (os.mkfifo): a writer opening it would block."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli import EXIT_USER_ERROR, sonomap

OUTPUTS = ("us.png", "label.png", "qa.png", "report.json")


@pytest.fixture()
def two_cases(simulated_cases, tmp_path) -> list[Path]:
    folder = tmp_path / "cases"
    shutil.copytree(simulated_cases(2), folder)
    found = sorted(folder.glob("*/case.yaml"))
    assert len(found) == 2, found
    return found


@pytest.mark.parametrize(("name", "kind"), [("qa.png", "fifo"), ("label.png", "folder")])
def test_an_output_that_is_no_file_is_refused_and_the_earlier_case_kept(two_cases, tmp_path, name, kind):
    first, second = two_cases
    out = tmp_path / "o"
    sonomap("register", first, "--out", out)
    target = out / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    before = {n: (out / n).read_bytes() for n in OUTPUTS if n != name}
    result = sonomap("register", second, "--out", out, check=False, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_USER_ERROR and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("sonomap register: error: ") and name in lines[0], lines[0]
    assert "not a file" in lines[0] and "Traceback" not in result.stderr
    assert {n: (out / n).read_bytes() for n in before} == before  # the first case, whole
    assert target.is_fifo() if kind == "fifo" else target.is_dir()  # left as it was
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no stray temporary file
