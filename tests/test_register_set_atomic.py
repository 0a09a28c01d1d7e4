"""`register` writes its four outputs as one set: a run that fails part way (here the disk full, as a
real file size limit, while writing qa.png) leaves an earlier run's us.png, label.png, qa.png and
report.json byte for byte, and no temp file. Before, report.json was deleted and the images replaced
one by one, so the folder held one case's label beside another's QA picture and no report. A stop
(SIGINT, SIGTERM) while the set is renamed into place acts once the last file is in place."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from cli import simulate_biopsy, sonomap
from file_size_limit import sonomap_with_file_size_limit

from registration.pipeline import register_case

OUTPUTS = ("us.png", "label.png", "qa.png", "report.json")
IMAGES = ("us.png", "label.png", "qa.png")
RENAME_ORDER = ["qa.png", "label.png", "us.png", "report.json"]  # report.json last: it marks the case done


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_run_that_fails_part_way_leaves_the_earlier_outputs_whole(tmp_path, busi_sample):
    cases = tmp_path / "cases"
    simulate_biopsy(busi_sample, cases, n=2, seed=0)
    first, second = sorted(p.parent for p in cases.glob("*/case.yaml"))
    out, probe = tmp_path / "out", tmp_path / "probe"
    sonomap("register", first / "case.yaml", "--out", out)
    sonomap("register", second / "case.yaml", "--out", probe)  # the second case's sizes, to aim the limit
    sizes = {name: (probe / name).stat().st_size for name in OUTPUTS}
    limit = max(sizes["us.png"], sizes["label.png"], sizes["report.json"]) + 1
    assert limit <= sizes["qa.png"], sizes  # every output fits but the QA picture
    before = _files(out)
    assert sorted(before) == sorted(OUTPUTS)

    failed = sonomap_with_file_size_limit(limit, "register", second / "case.yaml", "--out", out)
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith(f"sonomap register: error: {out / 'qa.png'}: ")
    assert _files(out) == before  # the earlier set, whole; no hidden temp file beside it


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_set_is_renamed_acts_after_the_last_rename(
    tmp_path, busi_sample, monkeypatch, signum
):
    """A real signal right after the first rename into OUT (os.replace is wrapped only to send it at
    that moment) stopped the switch there: the new qa.png beside the earlier us.png and label.png, and
    no report.json. Now it acts once the new set is whole. Both signals get Python's Ctrl-C handler
    (a background process inherits SIGINT ignored), so a stop acting inside the renames would end them."""
    cases = tmp_path / "cases"
    simulate_biopsy(busi_sample, cases, n=2, seed=0)
    first, second = sorted(p.parent for p in cases.glob("*/case.yaml"))
    out, probe = tmp_path / "out", tmp_path / "probe"
    sonomap("register", first / "case.yaml", "--out", out)
    sonomap("register", second / "case.yaml", "--out", probe)  # the second case's set, to compare
    real_replace, renamed = os.replace, []

    def replace_then_stop(src, dst):
        real_replace(src, dst)
        if Path(dst).parent == out:
            renamed.append(Path(dst).name)
            if len(renamed) == 1:
                signal.raise_signal(signum)

    previous = {
        sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
            patch.setattr(os, "replace", replace_then_stop)
            register_case(second / "case.yaml", out)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert renamed == RENAME_ORDER
    now = _files(out)
    assert sorted(now) == sorted(OUTPUTS)  # the whole set, no hidden temp file beside it
    assert {name: now[name] for name in IMAGES} == {name: (probe / name).read_bytes() for name in IMAGES}
    assert json.loads(now["report.json"])["case_id"] == second.name
