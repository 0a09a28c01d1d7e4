"""`sonomap cases` and `sonomap cases export` on hostile case folders: a case.yaml of YAML aliases
that expand to 10^9 nodes, a slide file name longer than the file system allows, a report.json or
input_stats.json nested 100 000 deep. Each shows as that one case broken (or failed, or with its
damaged report named) in one line naming the file and key, never a traceback, a hang or the lab's
file name; the other cases are listed or exported as usual."""

from __future__ import annotations

import re
import resource
import subprocess
import sys

import pytest
import yaml
from captured_cases import write_captured_case

from edge_runtime.case_report import REPORT, read_input_stats, read_report
from edge_runtime.errors import InputError

# ten lines of nested aliases, 10^9 leaves once expanded (a file of about 500 bytes)
ANCHORS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 9)
)
BOMB = "*a8"
LONG_NAME = "x" * 300 + ".tif"  # one path component over the usual 255-byte limit
DEEP = 100_000
RUN_TIMEOUT_S = 60  # seconds; a case.yaml is read in milliseconds, the old reader never finished
MEMORY_LIMIT = 4 * 2**30  # bytes of address space: a reader expanding the aliases stops, not the machine
EXIT_ERROR, EXIT_SOME_FAILED = 2, 1


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _sonomap(*args) -> subprocess.CompletedProcess:
    """The real ``sonomap ARGS`` in a process with bounded memory and time."""
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        preexec_fn=_limit_memory,
    )


def _edit(folder, change) -> None:
    """Rewrite ``folder``'s case.yaml: ``change(case)`` edits the mapping, and a value ``BOMB`` becomes
    the alias of the anchors above."""
    case = yaml.safe_load((folder / "case.yaml").read_text())
    change(case)
    text = yaml.safe_dump(case, sort_keys=False).replace(f"'{BOMB}'", BOMB)
    (folder / "case.yaml").write_text((ANCHORS if BOMB in text else "") + text)


def _exportable(capture: dict) -> None:
    capture["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-12-01T10:00:00Z"}
    capture["study_id"] = "BX-0001"


def test_an_alias_bomb_case_is_listed_as_broken_and_the_others_are_listed(tmp_path):
    cases = tmp_path / "cases"
    bomb = write_captured_case(cases / "20261201T100000Z-1")
    _edit(bomb, lambda case: case.update(id=BOMB))
    write_captured_case(cases / "20261201T100001Z-2")
    out = _sonomap("cases", cases)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    (broken,) = [line for line in lines if line.startswith(bomb.name)]
    assert " broken " in broken and f"error: {bomb / 'case.yaml'}: case file refused (its aliases" in broken
    assert lines[-1] == "2 case(s): 0 registered, 0 held, 0 failed, 0 complete, 1 pending, 1 broken"


def test_an_alias_bomb_case_fails_its_own_export_and_the_others_are_exported(tmp_path):
    cases = tmp_path / "cases"
    bomb = write_captured_case(cases / "20261201T100000Z-1")
    _edit(bomb, lambda case: (_exportable(case["capture"]), case["capture"].update(trigger=BOMB)))
    good = write_captured_case(cases / "20261201T100001Z-2")
    _edit(good, lambda case: _exportable(case["capture"]))
    out = _sonomap("cases", "export", cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"{bomb.name}  FAILED: case.yaml: captured case refused (its aliases" in out.stdout
    assert f"{good.name}  BX-0001  wrote 2 file(s)" in out.stdout


def test_a_slide_name_too_long_for_the_file_system_makes_that_case_broken(tmp_path):
    cases = tmp_path / "cases"
    long = write_captured_case(cases / "20261201T100000Z-1")
    _edit(long, lambda case: case["pathology"].update(wsi=LONG_NAME))
    write_captured_case(cases / "20261201T100001Z-2")
    out = _sonomap("cases", cases)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert LONG_NAME[:100] not in out.stdout + out.stderr  # the lab's file name is never printed
    lines = out.stdout.splitlines()
    (broken,) = [line for line in lines if line.startswith(long.name)]
    assert f"error: {long / 'case.yaml'}: pathology.wsi: the file it names cannot be looked up" in broken
    assert lines[-1] == "2 case(s): 0 registered, 0 held, 0 failed, 0 complete, 1 pending, 1 broken"


@pytest.mark.parametrize("text", ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP])
def test_a_deeply_nested_report_is_damaged_and_deep_input_stats_are_none(tmp_path, text):
    folder = tmp_path / "registration" / "20261201T100000Z-1"
    folder.mkdir(parents=True)
    report = folder / REPORT
    report.write_text(text)
    with pytest.raises(
        InputError, match=rf"^{re.escape(str(report))}: damaged report\.json \(nested too deeply\)"
    ):
        read_report(report)
    report.write_text('{"case_id": "20261201T100000Z-1", "patient_id": "P-1"}')
    (folder / "input_stats.json").write_text(text)
    assert read_input_stats(report) == {}
