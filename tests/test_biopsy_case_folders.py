"""Case folders when sessions share one --cases folder, the folder goes away, or a writer is killed:
no session removes or replaces another's case (same names from two processes at once, or a clock
set back), a deleted folder is made again, and at start the half-written folders of a killed writer
are removed while those of a running (here: stopped, SIGSTOP) writer are kept. Real processes and
folders throughout."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge_runtime.biopsy.case_writer import Capture, CaseWriter, FrameRecord, write_case

ROOT = Path(__file__).resolve().parents[1]
WHEN = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)  # every case of these tests: one second
CASES_EACH = 12  # per writer process
SLOW_SIDE = 5000  # a case this wide and high takes its writer long enough to be caught mid-write
PARTIAL_TIMEOUT_S = 60
WRITER = """
import sys
from pathlib import Path
import numpy as np
from datetime import datetime, timezone
from edge_runtime.biopsy.case_writer import Capture, FrameRecord, write_case
folder, level, count, side = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
when = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
image = np.random.default_rng(level).integers(0, 255, (side, side), dtype=np.uint8) if side else None
for number in range(1, count + 1):
    pixels = image if image is not None else np.full((60, 80), level, np.uint8)
    record = FrameRecord(number, None, when, pixels, None)
    roi = [0, 0, pixels.shape[1], pixels.shape[0]]
    write_case(folder, Capture(number, "key", record, record, None, roi, 0.1, 14, {"name": "m"}, "synthetic"))
"""


def _capture(number: int, level: int) -> Capture:
    record = FrameRecord(number, None, WHEN, np.full((60, 80), level, np.uint8), None)
    return Capture(number, "key", record, record, None, [0, 0, 80, 60], 0.1, 14, {"name": "m"}, "synthetic")


def _writer(folder: Path, level: int, count: int, side: int = 0) -> subprocess.Popen:
    """A process writing ``count`` cases numbered from 1, all at WHEN, of gray ``level`` (or of noise
    ``side`` pixels square)."""
    argv = [sys.executable, "-c", WRITER, str(folder), str(level), str(count), str(side)]
    return subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _level(folder: Path) -> int:
    return int(cv2.imread(str(folder / "prefire.png"), cv2.IMREAD_UNCHANGED)[0, 0])


def _case_id(folder: Path) -> str:
    return yaml.safe_load((folder / "case.yaml").read_text())["id"]


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.partial"))


def _wait_for_partial(folder: Path, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + PARTIAL_TIMEOUT_S
    while time.monotonic() < deadline and not _partials(folder):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    (partial,) = _partials(folder)
    return partial


def test_a_case_named_like_an_existing_one_gets_the_next_free_name(tmp_path):
    """One session after the clock was set back: the same UTC second and capture number again."""
    first = write_case(tmp_path, _capture(1, 10))
    second = write_case(tmp_path, _capture(1, 200))
    assert second != first and second.name == f"{first.name}-2"
    assert (_level(first), _level(second)) == (10, 200)
    assert (_case_id(first), _case_id(second)) == (first.name, second.name)


def test_two_sessions_writing_the_same_names_at_once_keep_every_case(tmp_path):
    writers = [_writer(tmp_path, level, CASES_EACH) for level in (10, 200)]
    for proc in writers:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 2 * CASES_EACH
    assert sorted(_level(f) for f in folders) == [10] * CASES_EACH + [200] * CASES_EACH
    assert all(_case_id(f) == f.name for f in folders)


def test_another_sessions_half_written_case_is_never_removed(tmp_path):
    name = f"{WHEN:%Y%m%dT%H%M%SZ}-1"
    theirs = tmp_path / f".{name}.partial"  # the hidden folder another session writes this case in
    theirs.mkdir()
    (theirs / "prefire.png").write_bytes(b"their pixels")
    mine = write_case(tmp_path, _capture(1, 10))
    assert (theirs / "prefire.png").read_bytes() == b"their pixels"
    assert _level(mine) == 10


def test_the_cases_folder_is_made_again_when_it_goes_away(tmp_path):
    cases = tmp_path / "cases"
    writer = CaseWriter(cases)
    os.rmdir(cases)  # deleted, or its disk re-mounted, mid-session
    assert writer.submit(_capture(1, 10))
    writer.close()
    assert writer.errors == 0 and [p.parent for p in writer.written] == [cases]
    assert stat.S_IMODE(cases.stat().st_mode) == 0o700


def test_a_killed_writers_partial_is_removed_at_start(tmp_path, caplog):
    proc = _writer(tmp_path, 1, 1, SLOW_SIDE)
    _wait_for_partial(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)  # kill -9 mid-case: its hidden folder holds ultrasound pixels
    proc.wait(timeout=30)
    with caplog.at_level(logging.WARNING, logger="sonomap.biopsy"):
        CaseWriter(tmp_path).close()
    assert _partials(tmp_path) == [] and list(tmp_path.iterdir()) == []
    assert [r.getMessage() for r in caplog.records if "unfinished" in r.getMessage()] == [
        "--cases: removed 1 unfinished case folder(s) left by a session that was killed"
    ]


def test_a_running_writers_partial_is_kept_when_another_session_starts_and_writes_its_name(tmp_path):
    proc = _writer(tmp_path, 1, 1, SLOW_SIDE)
    partial = _wait_for_partial(tmp_path, proc)
    proc.send_signal(signal.SIGSTOP)  # alive, mid-case, while another session starts
    try:
        writer = CaseWriter(tmp_path)
        assert writer.submit(_capture(1, 10))  # the same UTC second and number: the same name
        writer.close()
        assert partial.is_dir() and writer.errors == 0
    finally:
        proc.send_signal(signal.SIGCONT)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    cases = sorted(tmp_path.iterdir())
    assert [_case_id(case) for case in cases] == [case.name for case in cases] and len(cases) == 2
    assert [_level(case) for case in cases].count(10) == 1 and all(
        (c / "postfire.png").is_file() for c in cases
    )
