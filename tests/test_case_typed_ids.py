"""A case id typed by hand (case.yaml ``id``) becomes dataset file names (``images/<id>.png``) and
report rows, so it passes the rule a case folder's name passes: a capture's name, or a pseudonym with
a letter and a digit, never a name with a birth date or a bare record number. The refusal names the
file and what to change, never the value. Through the real CLI on a simulated case."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cli import simulate_biopsy, sonomap

NAMED_ID = "Doe_Jane_1970"  # how case folders are often named after the patient
RECORD_NUMBER = "12345678"  # a hospital number typed as the id
EXIT_USER_ERROR = 2


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, busi_sample) -> Path:
    """One case made by `sonomap simulate-biopsy` (its case.yaml is what the tests then edit)."""
    cases = tmp_path_factory.mktemp("sim") / "cases"
    simulate_biopsy(busi_sample, cases, n=1, seed=3)
    (case,) = [p.parent for p in cases.glob("*/case.yaml")]
    return case


def _copy(simulated: Path, dest: Path, case_id: str) -> Path:
    shutil.copytree(simulated, dest)
    spec = yaml.safe_load((dest / "case.yaml").read_text())
    spec["id"] = case_id
    (dest / "case.yaml").write_text(yaml.safe_dump(spec))
    return dest / "case.yaml"


def _files_and_text(root: Path) -> str:
    """Every path under ``root`` and every file's text, for checking a value appears nowhere."""
    parts = []
    for path in root.rglob("*"):
        parts.append(str(path.relative_to(root)))
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.mark.parametrize(("typed", "why"), [(NAMED_ID, "reads as a name"), (RECORD_NUMBER, "has no letter")])
def test_register_refuses_an_identifying_id_without_repeating_it(simulated, tmp_path, typed, why):
    case_yaml = _copy(simulated, tmp_path / "cases" / "c1", typed)
    result = sonomap("register", case_yaml, "--out", tmp_path / "reg", check=False)
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    err = result.stderr.strip()
    assert "\n" not in err and f"{case_yaml}: id refused ({why}" in err, err
    assert typed not in err
    assert not (tmp_path / "reg").exists()


def test_register_batch_files_a_pseudonym_and_refuses_a_name(simulated, tmp_path):
    cases, dataset = tmp_path / "cases", tmp_path / "dataset"
    _copy(simulated, cases / "c1", "BX-0042-1")
    _copy(simulated, cases / "c2", NAMED_ID)
    result = sonomap("register-batch", cases, "--out", dataset, "--no-progress")
    assert "registered 1, already done 0, failed 1" in result.stdout, result.stdout
    assert sorted(p.name for p in (dataset / "images").iterdir()) == ["BX-0042-1.png"]
    assert NAMED_ID not in result.stdout + result.stderr
    assert NAMED_ID not in _files_and_text(dataset)


def test_cases_lists_a_case_with_an_identifying_id_as_broken_without_it(simulated, tmp_path):
    cases = tmp_path / "cases"
    _copy(simulated, cases / "c1", "BX-0042-1")
    _copy(simulated, cases / "c2", NAMED_ID)
    result = sonomap("cases", cases, check=False)
    out = result.stdout + result.stderr
    assert NAMED_ID not in out, out
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[:2]}
    assert rows == {"c1": "complete", "c2": "broken"}, out  # the listing names a case by its folder
    assert "c2/case.yaml: id refused (reads as a name" in out, out
