"""`sonomap cases export` applies the site's pseudonym format, `privacy.study_id_pattern` of the
runtime config (`--config PATH`, else the cart's /etc/sonomap/config.yaml when it exists): a study
ID outside it (`DOE1970`, a name with a digit that the general rule lets through) is refused in one
line, without the value, before anything of it is written or sent. `--study-id` stops the whole
export; a case's own `capture.study_id` fails that case, and the others are exported."""

from __future__ import annotations

import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import export

from edge_runtime.errors import ConfigError

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")
pytest.importorskip("dicomweb_client.api", reason="dicomweb-client not installed (pacs extra)")

PATTERN = "BX-[0-9]{4}"
NAME_LIKE = "DOE1970"  # passes the general rule (a letter and a digit), not the site's format
IN_FORMAT = "BX-0007"
EXIT_ERROR, EXIT_SOME_FAILED = 2, 1


def _case(folder, study_id: str | None = None):
    """A hand-made captured case with the pre-fire frame export needs."""
    write_captured_case(folder, study_id=study_id)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-12-01T10:00:00Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def _site_config(folder, pattern: str = PATTERN):
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"privacy": {"study_id_pattern": pattern}}))
    return path


def test_a_study_id_outside_the_site_format_is_refused_before_anything_is_written(tmp_path):
    cases = tmp_path / "cases"
    _case(cases / "20261201T100000Z-1")  # captured without a study ID
    out = export(
        cases, "--dry-run", tmp_path / "dcm", "--study-id", NAME_LIKE, "--config", _site_config(tmp_path)
    )
    assert out.returncode == EXIT_ERROR and "Traceback" not in out.stderr, out.stdout + out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("sonomap cases: error: --study-id refused (not in this site's format")
    assert "privacy.study_id_pattern" in line and NAME_LIKE not in line
    assert out.stdout == "" and not (tmp_path / "dcm").exists()


def test_a_case_whose_own_study_id_is_outside_the_format_fails_alone(tmp_path):
    cases = tmp_path / "cases"
    named = _case(cases / "20261201T100000Z-1", study_id=NAME_LIKE)
    good = _case(cases / "20261201T100001Z-2", study_id=IN_FORMAT)
    out = export(cases, "--dry-run", tmp_path / "dcm", "--config", _site_config(tmp_path))
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stdout + out.stderr
    (failed,) = [line for line in out.stdout.splitlines() if "FAILED" in line]
    assert failed.startswith(f"{named.name}  FAILED: case.yaml: capture.study_id refused"), failed
    assert "privacy.study_id_pattern" in failed and NAME_LIKE not in failed
    assert not (tmp_path / "dcm" / NAME_LIKE).exists()
    assert (tmp_path / "dcm" / IN_FORMAT / good.name / "image.dcm").is_file()
    assert "1 of 2 case(s) exported, 1 failed" in out.stdout


def test_the_pattern_comes_from_config_else_the_cart_config_else_none(tmp_path):
    from registration.pacs.export import site_pattern

    (tmp_path / "given").mkdir()
    given = _site_config(tmp_path / "given", "ZZ-[0-9]{2}")
    cart = _site_config(tmp_path)
    assert site_pattern(str(given), cart_config=cart) == "ZZ-[0-9]{2}"  # --config wins
    assert site_pattern(None, cart_config=cart) == PATTERN  # the cart's, as sonomap.service reads it
    assert site_pattern(None, cart_config=tmp_path / "absent.yaml") is None  # no config: none
    broken = _site_config(tmp_path / "given", "BX-[0-9")
    with pytest.raises(ConfigError, match=r"config\.yaml: config key 'privacy\.study_id_pattern' is not"):
        site_pattern(str(broken))
