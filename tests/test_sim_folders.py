"""simulate-biopsy, bench-registration and bench-slides on mistaken folders and sizes: --masks that
is --images, an output folder that is (or lies inside) an input folder, or is a file, and a slide
width no scanner makes; register-batch with its dataset among its cases. Each is one line naming the
option (exit 2) before anything is simulated or registered, and the input folders stay as they were."""

from __future__ import annotations

import shutil

import pytest
from cli import sonomap

USER_ERROR = 2
USAGE = "sonomap {command}: error: "


@pytest.fixture
def busi_copy(busi_sample, tmp_path):
    """A writable copy of the vendored sample: (images, masks, their names before the run)."""
    root = tmp_path / "busi"
    shutil.copytree(busi_sample, root)
    images, masks = root / "images", root / "masks"
    return images, masks, (sorted(p.name for p in images.iterdir()), sorted(p.name for p in masks.iterdir()))


def _refused(res, command: str, *words: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == USER_ERROR and len(lines) == 1, res.stderr
    assert lines[0].startswith(USAGE.format(command=command)) and all(w in lines[0] for w in words), lines


def _untouched(busi_copy) -> None:
    images, masks, names = busi_copy
    assert (sorted(p.name for p in images.iterdir()), sorted(p.name for p in masks.iterdir())) == names


def test_masks_that_are_the_images_are_refused(busi_copy, tmp_path):
    images, _masks, _ = busi_copy
    out = tmp_path / "cases"
    res = sonomap(
        "simulate-biopsy", "--images", images, "--masks", images, "--out", out, "--n", 1, check=False
    )
    _refused(res, "simulate-biopsy", f"--masks {images}", "is --images")
    assert not out.exists()


@pytest.mark.parametrize("where", ["images", "masks", "inside masks"])
def test_an_out_folder_in_the_inputs_is_refused(busi_copy, where):
    images, masks, _ = busi_copy
    out = {"images": images, "masks": masks, "inside masks": masks / "sim"}[where]
    res = sonomap(
        "simulate-biopsy", "--images", images, "--masks", masks, "--out", out, "--n", 1, check=False
    )
    _refused(res, "simulate-biopsy", f"--out {out}", "apart from it")
    _untouched(busi_copy)


@pytest.mark.parametrize("command", ["simulate-biopsy", "bench-registration"])
def test_an_output_folder_that_is_a_file_is_named(busi_copy, tmp_path, command):
    images, masks, _ = busi_copy
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    flag, more = (
        ("--out", ["--n", 1]) if command == "simulate-biopsy" else ("--work", ["--n", 1, "--no-timing"])
    )
    res = sonomap(command, "--images", images, "--masks", masks, flag, notes, *more, check=False)
    _refused(res, command, f"{flag} {notes}: is a file")
    assert notes.read_text() == "mine"


def test_a_bench_work_folder_inside_the_masks_is_refused(busi_copy):
    images, masks, _ = busi_copy
    res = sonomap("bench-slides", "--images", images, "--masks", masks, "--work", masks / "w", check=False)
    _refused(res, "bench-slides", f"--work {masks / 'w'}", "apart from it")
    _untouched(busi_copy)


def test_a_slide_width_no_scanner_makes_is_refused_up_front(busi_copy, tmp_path):
    images, masks, _ = busi_copy
    work = tmp_path / "work"
    res = sonomap(
        "bench-slides",
        "--images",
        images,
        "--masks",
        masks,
        "--work",
        work,
        "--width",
        99_999_999,
        check=False,
    )
    last = res.stderr.strip().splitlines()[-1]  # after argparse's usage line
    assert res.returncode == USER_ERROR and "Traceback" not in res.stderr, res.stderr
    assert last.startswith("sonomap bench-slides: error: argument --width") and "<= 200000" in last, last
    assert not work.exists()


def test_cases_of_an_earlier_larger_run_are_refused_and_kept(busi_copy, tmp_path):
    """A rerun with a smaller --n would leave sim_0002... of the first run beside its own, and
    register-batch would take both runs' truth as one set; the same --n again writes over its own."""
    images, masks, _ = busi_copy
    out = tmp_path / "cases"
    args = ("simulate-biopsy", "--images", images, "--masks", masks, "--out", out, "--seed", 0)
    sonomap(*args, "--n", 3)
    before = {p.name: (p / "case.yaml").read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["sim_0000", "sim_0001", "sim_0002"]
    _refused(
        sonomap(*args, "--n", 2, check=False),
        "simulate-biopsy",
        f"--out {out}",
        "1 simulated case(s)",
        "sim_0002",
    )
    assert {p.name: (p / "case.yaml").read_bytes() for p in out.iterdir()} == before  # nothing written
    sonomap(*args, "--n", 3)  # the same run again replaces its own cases
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    _untouched(busi_copy)


@pytest.mark.parametrize("where", ["the cases", "inside a case", "above the cases"])
def test_register_batch_refuses_a_dataset_among_its_cases(simulated_case, tmp_path, where):
    cases = tmp_path / "cases"
    shutil.copytree(simulated_case, cases / simulated_case.name)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    out = {
        "the cases": cases,
        "inside a case": cases / simulated_case.name / "ds",
        "above the cases": tmp_path,
    }
    res = sonomap("register-batch", cases, "--out", out[where], check=False)
    _refused(res, "register-batch", f"--out {out[where]}", "CASES_DIR", "apart from it")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing written
