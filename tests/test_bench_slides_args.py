"""`sonomap bench-slides`: out-of-range --width/--repeats are refused by argparse in one line before
any work, and a failed `sonomap register` child is one SonomapError with the child's own message."""

from __future__ import annotations

import pytest
from cli import sonomap

from edge_runtime.errors import SonomapError
from registration.sim.bench_slides import run_register


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--width", "0", "argument --width: must be a whole number >= 2048, got 0"),
        ("--width", "100", "argument --width: must be a whole number >= 2048, got 100"),
        ("--repeats", "0", "argument --repeats: must be a whole number >= 1, got 0"),
        ("--repeats", "-1", "argument --repeats: must be a whole number >= 1, got -1"),
    ],
)
def test_out_of_range_options_are_refused_in_one_line(tmp_path, option, value, message):
    out = sonomap(
        "bench-slides",
        "--images",
        tmp_path,
        "--masks",
        tmp_path,
        option,
        value,
        "--work",
        tmp_path,
        check=False,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip().splitlines()[-1] == f"sonomap bench-slides: error: {message}"
    )  # after argparse's usage
    assert not list(tmp_path.iterdir())  # nothing was started


def test_a_failed_register_child_is_a_sonomap_error_with_its_message(tmp_path):
    case = tmp_path / "case.yaml"
    case.write_text("ultrasound: {image: missing.png}\n")
    with pytest.raises(
        SonomapError, match=r"case.yaml: the `sonomap register` child failed: sonomap register: error: "
    ) as exc:
        run_register(case, tmp_path / "out")
    assert "\n" not in str(exc.value)
