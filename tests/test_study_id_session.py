"""The session's pseudonymous study ID: `sonomap live/replay --study-id`, and the viewer's field
(`POST /study-id`, same token rules as `POST /mark`). Captured cases carry it as
`capture.study_id`; a value that is no pseudonym is refused with one line that never repeats it."""

from __future__ import annotations

import json
import signal
import time

import pytest
import yaml
from cli import sonomap
from loopback import LIVE_START_TIMEOUT_S, free_port, request, start_live, wait_healthy

from edge_runtime.biopsy.study_id import STUDY_ID
from edge_runtime.service.http_server import make_http_observer

TOKEN = "study-token-0123456789abcdef"


@pytest.mark.parametrize("bad", ["Jane Doe", "12345678", "Doe^Jane"])
@pytest.mark.parametrize("command", ["live", "replay"])
def test_a_study_id_that_is_no_pseudonym_is_refused_in_one_line(command, bad, tmp_path):
    source = ["--source", "synthetic"] if command == "live" else ["synthetic"]
    out = sonomap(command, *source, "--study-id", bad, "--cases", tmp_path / "cases", check=False)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "--study-id refused" in out.stderr
    assert bad not in out.stdout + out.stderr  # it may be the patient's name
    assert not (tmp_path / "cases").exists()  # refused before anything started


def test_a_study_id_needs_cases(tmp_path):
    out = sonomap("replay", "synthetic", "--study-id", "BX-0042", check=False)
    assert out.returncode != 0 and "give --cases DIR too" in out.stderr


def test_the_viewer_sets_the_study_id_of_the_next_cases(tmp_path):
    port, cases = free_port(), tmp_path / "cases"
    proc = start_live("--cases", cases, "--study-id", "BX-0001", "--duration", 60, port=port)
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_healthy(base, proc, LIVE_START_TIMEOUT_S)
        assert json.loads(request(base + "study-id")[1]) == {"study_id": "BX-0001", "capturing": True}
        assert request(base + "mark", "POST") == (200, "mark queued for the next frame\n")
        _wait_for_cases(cases, 1)
        code, text = request(base + "study-id", "POST", b"Jane Doe")
        assert code == 400 and "refused (contains a space)" in text and "Jane" not in text
        assert request(base + "study-id", "POST", b"BX-0002\n") == (200, "study ID set\n")
        assert json.loads(request(base + "study-id")[1])["study_id"] == "BX-0002"
        assert request(base + "study-id", "POST", b"x" * 65)[0] == 400  # over the body limit
        assert request(base + "mark", "POST") == (200, "mark queued for the next frame\n")
        _wait_for_cases(cases, 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    folders = sorted(p for p in cases.iterdir() if not p.name.startswith("."))  # not the numbering lock
    ids = [yaml.safe_load((f / "case.yaml").read_text())["capture"]["study_id"] for f in folders]
    assert ids == ["BX-0001", "BX-0002"]
    assert "Jane" not in out + err


def _wait_for_cases(cases, n: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len([p for p in cases.iterdir() if not p.name.startswith(".")]) < n:
        time.sleep(0.2)
    assert len([p for p in cases.iterdir() if not p.name.startswith(".")]) == n


def test_the_study_id_endpoint_keeps_the_token_rules_and_needs_capture():
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    try:
        base = obs.url.rstrip("/") + "/"
        assert request(base + "study-id", "POST", b"BX-0003")[0] == 401  # no token
        assert request(base + "study-id")[0] == 401
        assert request(base + "study-id", "POST", b"BX-0003", TOKEN) == (
            409,
            "not capturing: start with --cases DIR\n",
        )
        assert STUDY_ID.value is None
    finally:
        obs.close()


def test_study_id_rule():
    from edge_runtime.biopsy.study_id import check_study_id
    from edge_runtime.errors import ConfigError

    for good in (
        "BX-0042",
        "p1",
        "SITE2_0001",
        "A" * 15 + "1",
        "SITE2024-001",
        "BX-2024-17",
        "20261130T034535Z",
    ):
        assert check_study_id(good) == good
    for bad, why in (
        ("Jane Doe", "contains a space"),
        ("Smith", "has no digit"),
        ("0042", "has no letter"),
        ("-BX1", "starts with"),
        ("BX.0042", "other than"),
        ("A" * 16 + "1", "17 characters"),
        ("Doe_Jane_1970", "a name with a birth year"),
        ("Poe_Ann_1950", "a name with a birth year"),
        ("DOE-J-19700101", "a name with a birth year or date"),
        ("", "empty"),
        (42, "not text"),
    ):
        with pytest.raises(ConfigError, match=why):
            check_study_id(bad, "the field")


def test_a_site_pattern_refuses_an_id_the_general_rule_lets_through(tmp_path):
    """privacy.study_id_pattern: a name with a digit in it (DOE1970) passes the general rule but not
    the site's own format; on the command line, and in the viewer's slot (POST /study-id)."""
    from edge_runtime.biopsy.study_id import StudyIdSlot, check_study_id
    from edge_runtime.errors import ConfigError

    assert check_study_id("DOE1970") == "DOE1970"
    config = tmp_path / "site.yaml"
    config.write_text("privacy:\n  study_id_pattern: 'BX-[0-9]{4}'\n")
    out = sonomap(
        "replay",
        "synthetic",
        "--config",
        config,
        "--study-id",
        "DOE1970",
        "--cases",
        tmp_path / "c",
        check=False,
    )
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "not in this site's format" in out.stderr and "DOE1970" not in out.stderr
    assert not (tmp_path / "c").exists()
    slot = StudyIdSlot()
    slot.pattern = "BX-[0-9]{4}"
    with pytest.raises(ConfigError, match="POST /study-id refused .not in this site's format"):
        slot.set("DOE1970", "POST /study-id")
    assert slot.set("BX-0042", "POST /study-id") == "BX-0042" and slot.value == "BX-0042"
    with pytest.raises(ConfigError, match="not in this site's format"):  # matched whole, not as a prefix
        check_study_id("BX-0042x", pattern="BX-[0-9]{4}")


def test_a_site_pattern_that_is_no_regular_expression_is_refused_at_load(tmp_path):
    config = tmp_path / "site.yaml"
    config.write_text("privacy:\n  study_id_pattern: 'BX-[0-9'\n")
    out = sonomap("replay", "synthetic", "--config", config, check=False)
    assert out.returncode == 2
    assert "config key 'privacy.study_id_pattern' is not a regular expression" in out.stderr


def test_capture_without_a_site_format_says_so_once(tmp_path):
    """With --cases, study IDs reach case.yaml and DICOM: without privacy.study_id_pattern the start-up
    log says only the general rule guards them; with the site's format set, it says nothing."""
    from edge_runtime.commands.observers import NO_SITE_FORMAT

    out = sonomap("replay", "synthetic", "--max-frames", 3, "--cases", tmp_path / "a")
    assert out.stderr.count(NO_SITE_FORMAT) == 1
    config = tmp_path / "site.yaml"
    config.write_text("privacy:\n  study_id_pattern: 'BX-[0-9]{4}'\n")
    out = sonomap("replay", "synthetic", "--max-frames", 3, "--config", config, "--cases", tmp_path / "b")
    assert "study_id_pattern" not in out.stderr
