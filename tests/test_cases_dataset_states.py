"""`sonomap cases --dataset` and `register-batch` on a real batch of simulated cases, edited as users
edit case folders after a run: a copied case folder (pending or broken in the copy) is refused with
its original."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from cli import simulate_biopsy, sonomap

FIRST = "sim_0000"
COPY = f"{FIRST} - Copy"  # Explorer's copy: the same id inside


def _batch(tmp_path, busi_sample, n: int = 2):
    """CASES and DATASET after a first register-batch of ``n`` simulated cases."""
    cases, ds = tmp_path / "cases", tmp_path / "dataset"
    simulate_biopsy(busi_sample, cases, n=n, seed=0)
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    return cases, ds


def _edit(case_yaml, section: str, **values) -> None:
    case = yaml.safe_load(case_yaml.read_text())
    case[section].update(values)
    case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))


def _listing(cases, ds) -> dict[str, str]:
    """Case folder -> its line of `sonomap cases CASES --dataset DATASET`."""
    out = sonomap("cases", cases, "--dataset", ds).stdout.splitlines()[:-1]
    return {row.split("  ")[0].strip(): row for row in out}


@pytest.mark.parametrize(
    "section,values",
    [("pathology", {"wsi": None}), ("needle", {"tip": "abc"})],
    ids=["pending-copy", "broken-copy"],
)
def test_a_copy_of_a_registered_case_that_is_pending_or_broken_is_refused_with_it(
    tmp_path, busi_sample, section, values
):
    cases, ds = _batch(tmp_path, busi_sample)
    shutil.copytree(cases / FIRST, cases / COPY)
    _edit(cases / COPY / "case.yaml", section, **values)
    rows = _listing(cases, ds)
    for name in (FIRST, COPY):
        assert "  broken  " in rows[name] and f"case id '{FIRST}' is also used by" in rows[name], rows[name]
    assert "registered" in rows["sim_0001"]
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    report = json.loads((ds / "batch_report.json").read_text())
    clashes = [f for f in report["failures"] if f"case id '{FIRST}' is also used by" in f["error"]]
    assert len(clashes) == 2 and report["pending"] == 0, report["failures"]
    assert not (ds / "images" / f"{FIRST}.png").exists()  # the original left the dataset with its copy
    assert (ds / "images" / "sim_0001.png").is_file()


def test_a_failure_stays_with_its_case_not_with_the_case_now_at_its_place(tmp_path, busi_sample):
    """The first case fails to load; it is then deleted and another case takes its place among the
    case files (`case 1 of 2`): that case is ready to register, not failed with the old error."""
    cases, ds = _batch(tmp_path, busi_sample)
    _edit(cases / FIRST / "case.yaml", "needle", tip="abc")
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    (failure,) = json.loads((ds / "batch_report.json").read_text())["failures"]
    assert failure["case"] == "case 1 of 2" and failure["id"] == FIRST, failure
    shutil.rmtree(cases / FIRST)
    shutil.copytree(cases / "sim_0001", cases / "sim_00000")  # sorts first now
    case = yaml.safe_load((cases / "sim_00000" / "case.yaml").read_text())
    (cases / "sim_00000" / "case.yaml").write_text(
        yaml.safe_dump({**case, "id": "sim_00000"}, sort_keys=False)
    )
    rows = _listing(cases, ds)
    assert "  complete  " in rows["sim_00000"] and "needle.tip" not in rows["sim_00000"], rows["sim_00000"]
    assert "  registered  " in rows["sim_0001"]


def test_a_registered_case_missing_its_image_or_label_is_not_called_held(tmp_path, busi_sample):
    """Held is what the last run kept out for review (batch_report.json's low_quality); a case whose
    images/ or labels/ file was deleted from the dataset says which file is missing."""
    cases, ds = _batch(tmp_path, busi_sample)
    (ds / "images" / f"{FIRST}.png").unlink()
    (ds / "labels" / "sim_0001.png").unlink()
    rows = _listing(cases, ds)
    assert (
        "  complete  " in rows[FIRST]
        and f"incomplete in the dataset: images/{FIRST}.png missing" in rows[FIRST]
    )
    assert "  complete  " in rows["sim_0001"] and "labels/sim_0001.png missing" in rows["sim_0001"]
    sonomap("register-batch", cases, "--out", ds, "--no-progress", "--min-quality", "1")  # holds both
    report = json.loads((ds / "batch_report.json").read_text())
    assert {h["id"] for h in report["low_quality"]} == {FIRST, "sim_0001"}
    assert all("  held  " in row for row in _listing(cases, ds).values())
