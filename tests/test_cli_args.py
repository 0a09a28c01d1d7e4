"""The shared argument types, through the real CLI: a bad number is one line naming the option, exit 2,
before any work (nothing written)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from cli import sonomap

from edge_runtime.cli_args import MAX_MINUTES, at_least, minutes, non_negative_float, positive_float, seed


def test_types_accept_good_values_and_refuse_bad_ones():
    assert seed("0") == 0 and seed("7") == 7
    assert at_least(1)("3") == 3 and non_negative_float("0") == 0.0
    for parse, bad in (
        (seed, "-1"),
        (seed, "x"),
        (at_least(1), "0"),
        (non_negative_float, "-1"),
        (non_negative_float, "nan"),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


SEEDED = [
    ["make-clip", "--frames", "2"],
    ["prepare-busi", "--busi", "{busi}"],  # the real sample: it used to write images/ and labels/ first
    ["evaluate", "--checkpoint", "{busi}/missing.pt", "--data", "{busi}"],
    ["concordance", "{busi}", "--dataset", "{busi}"],
]


@pytest.mark.parametrize("command", SEEDED, ids=lambda c: c[0])
def test_a_negative_seed_is_one_line_before_any_work(tmp_path, busi_sample, command):
    out = tmp_path / ("clip.mp4" if command[0] == "make-clip" else "out")
    args = [a.format(busi=busi_sample) for a in command]
    result = sonomap(*args, "--out", out, "--seed", "-1", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--seed" in result.stderr and ">= 0" in result.stderr
    assert not out.exists()


def test_crossfit_refuses_a_negative_seed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training.crossfit", str(tmp_path / "ck.pt"), str(tmp_path), "--seed", "-3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --seed" in result.stderr and ">= 0" in result.stderr


# (command, option, bad value, what the error says): counts and durations refused by the parser
BAD_NUMBERS = [
    (["bench", "{clip}"], "--frames", "0", ">= 1"),
    (["bench", "{clip}"], "--frames", "-5", ">= 1"),
    (["bench", "{clip}"], "--rounds", "0", ">= 1"),
    (["bench", "{clip}"], "--rounds", "-2", ">= 1"),
    (["bench", "{clip}"], "--live-seconds", "-1", ">= 0"),
    (["make-clip", "--out", "{tmp}/c.mp4"], "--frames", "0", ">= 1"),
    (["make-clip", "--out", "{tmp}/c.mp4"], "--fps", "0", ">= 1"),
    (["make-clip", "--out", "{tmp}/c.mp4"], "--noise", "-1", ">= 0"),
    (["selfcheck"], "--max-frames", "0", ">= 1"),
    (["selfcheck"], "--max-frames", "-1", ">= 1"),
    (
        ["export", "onnx", "--checkpoint", "{tmp}/ck.pt", "--out", "{tmp}/m.onnx"],
        "--parity-frames",
        "0",
        ">= 1",
    ),
    (
        ["export", "onnx", "--checkpoint", "{tmp}/ck.pt", "--out", "{tmp}/m.onnx"],
        "--parity-frames",
        "-1",
        ">= 1",
    ),
    (
        ["export", "torchscript", "--checkpoint", "{tmp}/ck.pt", "--out", "{tmp}/m.ts"],
        "--parity-frames",
        "0",
        ">= 1",
    ),
    (["soak"], "--minutes", "0", "> 0"),
    (["soak"], "--minutes", "1e308", f"<= {MAX_MINUTES}"),  # "for ever" by a typo
    (
        ["train", "--config", "{tmp}/c.yaml", "--data", "{tmp}", "--out", "{tmp}/run"],
        "--max-minutes",
        "1e308",
        "<= ",
    ),
    (
        ["pretrain", "--config", "{tmp}/c.yaml", "--data", "{tmp}", "--out", "{tmp}/run"],
        "--max-minutes",
        "1e9",
        "<= ",
    ),
    (
        ["crossval", "--config", "{tmp}/c.yaml", "--data", "{tmp}", "--out", "{tmp}/cv"],
        "--max-minutes",
        "inf",
        "<= ",
    ),
    (["soak"], "--sample-s", "-1", "> 0"),
    (["soak"], "--max-growth", "-0.1", ">= 0"),
    (["bench-train", "--config", "{tmp}/c.yaml", "--data", "{tmp}"], "--rounds", "0", ">= 1"),
    (["bench-train", "--config", "{tmp}/c.yaml", "--data", "{tmp}"], "--iters", "0", ">= 1"),
    (["bench-train", "--config", "{tmp}/c.yaml", "--data", "{tmp}"], "--warmup", "-1", ">= 0"),
]


@pytest.mark.parametrize(
    ("command", "option", "value", "says"), BAD_NUMBERS, ids=lambda v: v[0] if isinstance(v, list) else v
)
def test_bad_counts_and_durations_are_one_line_before_any_work(tmp_path, command, option, value, says):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")  # never opened: the parser refuses first
    args = [a.format(clip=clip, tmp=tmp_path) for a in command]
    result = sonomap(*args, option, value, check=False, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument {option}" in result.stderr and says in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # nothing written


@pytest.mark.parametrize("text", ["nan", "inf", "0", "-1"])
def test_a_positive_number_option_says_what_it_wants_for_every_refused_value(text):
    with pytest.raises(argparse.ArgumentTypeError, match=rf"^must be a finite number > 0, got {text}$"):
        positive_float(text)
    assert positive_float("0.5") == 0.5


def test_a_budget_in_minutes_is_bounded_by_thirty_days():
    assert minutes("0.5") == 0.5 and minutes(str(MAX_MINUTES)) == MAX_MINUTES == 30 * 24 * 60
    for text in ("0", "-1", "nan", "inf", str(MAX_MINUTES + 1), "1e308"):
        with pytest.raises(
            argparse.ArgumentTypeError, match=rf"^must be a number of minutes > 0 and <= {MAX_MINUTES}"
        ):
            minutes(text)


@pytest.mark.parametrize(
    "args,option",
    [
        (("selfcheck", "--cache-dir", ""), "--cache-dir"),
        (("selfcheck", "--model", "  "), "--model"),
        (("export", "onnx", "--checkpoint", "c.pt", "--out", "m.onnx", "--frames", ""), "--frames"),
        (("export", "torchscript", "--checkpoint", "c.pt", "--out", "m.ts", "--frames", ""), "--frames"),
        (("export", "onnx", "--checkpoint", "c.pt", "--out", ""), "--out"),
        (("export", "torchscript", "--checkpoint", "c.pt", "--out", " "), "--out"),
        (("export", "tensorrt", "--onnx", "m.onnx", "--out", ""), "--out"),
    ],
)
def test_an_empty_path_is_refused_naming_the_option(args, option):
    run = sonomap(*args, check=False)
    assert run.returncode == 2
    assert f"error: argument {option}: must name a file or folder, got an empty value" in run.stderr


def test_evaluate_refuses_a_checkpoint_beside_compare_rather_than_dropping_it(tmp_path):
    run = sonomap(
        "evaluate", "--checkpoint", "a.pt", "--compare", "a.pt", "b.pt", "--data", tmp_path, "--out", tmp_path / "e",
        check=False,
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.strip().endswith(
        "give --checkpoint CK or --compare CK_A CK_B, not both"
    )
    assert not (tmp_path / "e").exists()


def test_a_value_starting_with_a_dash_gets_the_way_to_write_it(tmp_path):
    """argparse reads ``--roi -10,...`` as --roi without its value: the error says to write --roi=VALUE,
    and written so the value reaches the ROI rule, which names it."""
    out = sonomap("replay", tmp_path / "x.mp4", "--roi", "-10,10,100,100", check=False)
    assert out.returncode == 2
    assert out.stderr.strip().endswith(
        "argument --roi: expected one argument (a value that starts with '-' is written --roi=VALUE)"
    ), out.stderr
    out = sonomap("make-clip", "--out", tmp_path / "c.mp4", "--frames", 2, "--size", "320x180")
    out = sonomap("replay", tmp_path / "c.mp4", "--roi=-10,10,100,100", check=False)
    assert out.returncode == 2 and "-10" in out.stderr and "expected one argument" not in out.stderr, (
        out.stderr
    )
