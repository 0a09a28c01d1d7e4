"""Patient ids in case.yaml (top-level ``patient_id``, ``pathology.patient_id``) pass the study id's
privacy rule, and must be YAML text, as must a case's own ``id``: a name or a bare hospital number,
and an unquoted number (0042 is the octal 34) or date, are one-line errors naming the file and key,
never repeating the value."""

from __future__ import annotations

import shutil

import pytest
import yaml

from edge_runtime.errors import ConfigError
from registration.batch import register_batch
from registration.case import load_case

NAME_AND_BIRTH_DATE = "Doe^Jane 1970-01-01"
HOSPITAL_NUMBER = "12345678"


def _case(simulated_case, tmp_path, text: str):
    """A copy of the simulated case whose case.yaml ends with ``text`` under ``pathology:`` (or at
    the top level when ``text`` is not indented), written as a person types it."""
    folder = tmp_path / "cases" / simulated_case.name
    shutil.copytree(simulated_case, folder)
    path = folder / "case.yaml"
    case = yaml.safe_load(path.read_text())
    case.pop("patient_id", None)
    if text.startswith("id:"):
        case.pop("id")
    lines = yaml.safe_dump(case, sort_keys=False).splitlines()
    at = lines.index("pathology:") + 1 if text.startswith(" ") else len(lines)
    path.write_text("\n".join([*lines[:at], text, *lines[at:]]) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (f"  patient_id: {NAME_AND_BIRTH_DATE}", "pathology.patient_id"),
        (f"  patient_id: {HOSPITAL_NUMBER}", "pathology.patient_id"),
        (f"patient_id: '{HOSPITAL_NUMBER}'", "patient_id"),
        ("patient_id: Doe^Jane", "patient_id"),
    ],
)
def test_a_name_or_hospital_number_as_patient_id_is_refused_without_repeating_it(
    simulated_case, tmp_path, line, key
):
    path = _case(simulated_case, tmp_path, line)
    with pytest.raises(ConfigError) as err:
        load_case(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}") and "\n" not in message
    assert "Doe" not in message and HOSPITAL_NUMBER not in message


def test_refused_patient_ids_stay_out_of_the_dataset(simulated_case, tmp_path):
    path = _case(simulated_case, tmp_path, f"  patient_id: {NAME_AND_BIRTH_DATE}")
    summary = register_batch(path.parent.parent, tmp_path / "ds", progress=False)
    assert summary["registered"] == 0 and summary["failed"] == 1
    dumped = (tmp_path / "ds" / "batch_report.json").read_text() + (tmp_path / "ds" / "cases.csv").read_text()
    assert "Doe" not in dumped


@pytest.mark.parametrize("typed", ["0042", "42", "1970-01-01"])
@pytest.mark.parametrize("indent", ["", "  "])
def test_an_unquoted_number_or_date_as_patient_id_says_to_quote_it(simulated_case, tmp_path, typed, indent):
    path = _case(simulated_case, tmp_path, f"{indent}patient_id: {typed}")
    key = "pathology.patient_id" if indent else "patient_id"
    with pytest.raises(ConfigError, match=rf"^{path}: {key} must be text, got a YAML .*put the id in quotes"):
        load_case(path)


def test_a_quoted_pseudonym_is_kept_as_typed(simulated_case, tmp_path):
    path = _case(simulated_case, tmp_path, "  patient_id: 'P-0042'")
    assert load_case(path).patient_id == "P-0042"


@pytest.mark.parametrize("typed", ["0042", "42", "2024-01-31"])
def test_an_unquoted_number_or_date_as_case_id_says_to_quote_it(simulated_case, tmp_path, typed):
    # unquoted, 0042 is the octal 34: the case would be filed (images/34.png) and split as another case
    path = _case(simulated_case, tmp_path, f"id: {typed}")
    with pytest.raises(ConfigError, match=rf"^{path}: id must be text, got a YAML .*put it in quotes"):
        load_case(path)
    summary = register_batch(path.parent.parent, tmp_path / "ds", progress=False)
    assert summary["registered"] == 0 and summary["failed"] == 1


def test_a_quoted_case_id_is_kept_as_typed(simulated_case, tmp_path):
    path = _case(simulated_case, tmp_path, "id: 'BX-0042-1'")
    assert load_case(path).id == "BX-0042-1"


def test_a_quoted_bare_number_as_case_id_is_refused_without_repeating_it(simulated_case, tmp_path):
    # digits alone may be the hospital's record number, which would become images/<id>.png
    path = _case(simulated_case, tmp_path, "id: '12345678'")
    with pytest.raises(ConfigError, match=rf"^{path}: id refused \(has no letter\)") as caught:
        load_case(path)
    assert "12345678" not in str(caught.value)
