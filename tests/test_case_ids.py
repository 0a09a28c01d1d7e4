"""Case and patient ids from case.yaml / cases.csv become file names: a path there is a one-line
error, and no write ever lands outside the output folder. A case id typed by hand passes the rule a
case folder's name passes (a capture's name, or a pseudonym with a letter and a digit, never a name
with a birth date or a bare record number), and the refusal never repeats the value. Through the real
CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cli import simulate_biopsy, sonomap

from edge_runtime.biopsy.study_id import without_case_folder
from edge_runtime.errors import ConfigError
from edge_runtime.safe_names import safe_name

NAMED_ID = "Doe_Jane_1970"  # how case folders are often named after the patient
RECORD_NUMBER = "12345678"  # a hospital number typed as the id
EXIT_USER_ERROR = 2
BAD_IDS = ["../../x", "/tmp/sonomap-escape", "a/b", "..", ".", "a\\..\\b", "x\ny", ""]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, busi_sample) -> Path:
    """One case made by `sonomap simulate-biopsy` (its case.yaml is what the tests then edit)."""
    cases = tmp_path_factory.mktemp("sim") / "cases"
    simulate_biopsy(busi_sample, cases, n=1, seed=3)
    (case,) = [p.parent for p in cases.glob("*/case.yaml")]
    return case


def copy_case(src: Path, dest: Path, **keys) -> Path:
    shutil.copytree(src, dest)
    spec = yaml.safe_load((dest / "case.yaml").read_text())
    spec.update(keys)
    (dest / "case.yaml").write_text(yaml.safe_dump(spec))
    return dest / "case.yaml"


@pytest.mark.parametrize("bad", BAD_IDS)
def test_safe_name_rejects_paths(bad):
    with pytest.raises(ConfigError, match="case.yaml: id"):
        safe_name(bad, "case.yaml: id")


@pytest.mark.parametrize("good", ["case_0001", "P-17.b", 42, "Mamma links 3"])
def test_safe_name_keeps_plain_names(good):
    assert safe_name(good, "x") == str(good)


@pytest.mark.parametrize("key", ["id", "patient_id"])
def test_register_rejects_a_path_as_id_and_writes_nothing(simulated, tmp_path, key):
    work = tmp_path / "work"
    case_yaml = copy_case(simulated, work / "cases" / "c1", **{key: "../../x"})
    before = tree(tmp_path)
    err = one_line_error(sonomap("register", case_yaml, "--out", work / "out" / "reg", check=False))
    # both ids pass the study id's rule, whose error does not repeat the value
    assert f"{case_yaml}: {key} refused (contains a character other than" in err
    assert "../../x" not in err
    assert tree(tmp_path) == before  # not even the output folder: the case is refused before any write


def test_register_batch_refuses_bad_ids_and_keeps_every_write_inside(simulated, tmp_path):
    work = tmp_path / "work"
    cases = work / "cases"
    copy_case(simulated, cases / "good", id="good1")
    copy_case(simulated, cases / "up", id="../../x")
    copy_case(simulated, cases / "absolute", id=str(tmp_path / "abs"))
    copy_case(simulated, cases / "patient", id="p1", patient_id="../../../etc/x")
    copy_case(simulated, cases / "backslash", id="a\\b")
    dataset = work / "dataset"
    outside_before = tree(tmp_path) - {p for p in tree(tmp_path) if p.startswith("work/dataset")}
    result = sonomap("register-batch", cases, "--out", dataset, "--no-progress")
    assert "registered 1, already done 0, failed 4" in result.stdout
    failures = [line for line in result.stdout.splitlines() if line.startswith("  failed:")]
    assert len(failures) == 4
    # the study id's rule refuses them, and its errors do not repeat the value
    assert sum(": id refused (" in line for line in failures) == 3, failures
    assert sum(": patient_id refused (contains a character other than" in line for line in failures) == 1
    assert not any("../" in line or "abs" in line or "a\\b" in line for line in failures), failures
    after = tree(tmp_path)
    assert {p for p in after if not p.startswith("work/dataset")} == outside_before
    assert sorted(p.name for p in (dataset / "images").iterdir()) == ["good1.png"]
    assert sorted(p.name for p in (dataset / "registration").iterdir()) == ["good1"]
    assert not (tmp_path / "abs").exists() and not (tmp_path / "abs.png").exists()


def test_dataset_index_with_a_path_as_id_is_refused(tmp_path, repo_root):
    """cases.csv ids name images/<id>.png and evaluate's pred/<id>.png: same rule."""
    data = tmp_path / "dataset"
    (data / "images").mkdir(parents=True)
    (data / "cases.csv").write_text("id,case_id,split\n../../x,p1,train\n")
    err = one_line_error(
        sonomap(
            "train",
            "--config",
            repo_root / "configs" / "cpu-fast.yaml",
            "--data",
            data,
            "--out",
            tmp_path / "run",
            "--no-progress",
            check=False,
        )
    )
    assert f"{data / 'cases.csv'}:2: id '../../x' must be a plain name" in err
    assert not (tmp_path / "run").exists()


def test_a_huge_written_value_gives_a_short_error_line():
    with pytest.raises(ConfigError) as caught:
        safe_name(list(range(100_000)), "case.yaml: id")
    assert str(caught.value).startswith("case.yaml: id must be a name (text), got list [0, 1, 2")
    assert len(str(caught.value)) < 200


# --- ids typed by hand ---------------------------------------------------------------------


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
    case_yaml = copy_case(simulated, tmp_path / "cases" / "c1", id=typed)
    result = sonomap("register", case_yaml, "--out", tmp_path / "reg", check=False)
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    err = result.stderr.strip()
    assert "\n" not in err and f"{case_yaml}: id refused ({why}" in err, err
    assert typed not in err
    assert not (tmp_path / "reg").exists()


def test_register_batch_files_a_pseudonym_and_refuses_a_name(simulated, tmp_path):
    cases, dataset = tmp_path / "cases", tmp_path / "dataset"
    copy_case(simulated, cases / "c1", id="BX-0042-1")
    copy_case(simulated, cases / "c2", id=NAMED_ID)
    result = sonomap("register-batch", cases, "--out", dataset, "--no-progress")
    assert "registered 1, already done 0, failed 1" in result.stdout, result.stdout
    assert sorted(p.name for p in (dataset / "images").iterdir()) == ["BX-0042-1.png"]
    assert NAMED_ID not in result.stdout + result.stderr
    assert NAMED_ID not in _files_and_text(dataset)


def test_cases_lists_a_case_with_an_identifying_id_as_broken_without_it(simulated, tmp_path):
    cases = tmp_path / "cases"
    copy_case(simulated, cases / "c1", id="BX-0042-1")
    copy_case(simulated, cases / "c2", id=NAMED_ID)
    result = sonomap("cases", cases, check=False)
    out = result.stdout + result.stderr
    assert NAMED_ID not in out, out
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[:2]}
    assert rows == {"c1": "complete", "c2": "broken"}, out  # the listing names a case by its folder
    assert "c2/case.yaml: id refused (reads as a name" in out, out


def test_a_reason_about_one_case_never_spells_its_folder_however_it_was_reached(tmp_path):
    real = tmp_path / "Doe_Jane_1970" / "20261130T034535Z-1"
    real.mkdir(parents=True)
    link = tmp_path / "today"
    link.symlink_to(real.parent)
    reached = link / real.name  # as a cases folder given through a link names it
    text = (
        f"{reached}/case.yaml: ultrasound: missing; {reached.resolve()}/prefire_mask.png: unreadable; "
        f"{reached} is not writable"
    )
    reason = without_case_folder(text, reached)
    assert NAMED_ID not in reason and str(tmp_path) not in reason, reason
    assert (
        reason
        == "case.yaml: ultrasound: missing; prefire_mask.png: unreadable; the case's folder is not writable"
    )
