"""`register` writes its four outputs as one set: a run that fails part way (here the disk full, as a
real file size limit, while writing qa.png) leaves an earlier run's us.png, label.png, qa.png and
report.json byte for byte, and no temp file. Before, report.json was deleted and the images replaced
one by one, so the folder held one case's label beside another's QA picture and no report."""

from __future__ import annotations

from pathlib import Path

from cli import simulate_biopsy, sonomap
from file_size_limit import sonomap_with_file_size_limit

OUTPUTS = ("us.png", "label.png", "qa.png", "report.json")


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
