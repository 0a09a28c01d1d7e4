"""The simulators check their inputs before writing anything: simulate-procedure keeps the earlier clip,
truth and lesion when a later run's image has no lesion mask; a negative --seed and a --wsi-mpp that
registration would refuse are one-line argparse errors (exit 2) before any work."""

from __future__ import annotations

import shutil

import pytest
from cli import sonomap

EXIT_USAGE = 2


def _state(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_simulate_procedure_leaves_the_earlier_clip_truth_and_lesion(tmp_path, busi_sample):
    out = tmp_path / "proc" / "clip.mp4"
    sonomap("simulate-procedure", out)
    before = _state(out.parent)
    assert set(before) == {"clip.mp4", "clip.truth.json", "clip.lesion.png"}
    lone = tmp_path / "lone" / "image.png"  # no masks/ folder beside it
    lone.parent.mkdir()
    shutil.copy(sorted((busi_sample / "images").glob("*.png"))[0], lone)
    res = sonomap("simulate-procedure", "--image", lone, out, check=False)
    assert res.returncode == EXIT_USAGE and "no lesion mask" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert _state(out.parent) == before  # no new clip beside the old truth, no temp file left


@pytest.mark.parametrize(
    "args",
    [
        ["simulate-procedure", "{tmp}/c.mp4", "--seed", "-1"],
        ["simulate-pathology", "{tmp}", "--truth", "{tmp}/t.json", "--seed", "-1"],
        ["simulate-biopsy", "--images", "{tmp}", "--masks", "{tmp}", "--out", "{tmp}/o", "--seed", "-1"],
        ["register-batch", "{tmp}", "--out", "{tmp}/ds", "--seed", "-1"],
    ],
)
def test_a_negative_seed_is_refused_up_front(tmp_path, args):
    res = sonomap(*[a.format(tmp=tmp_path) for a in args], check=False)
    assert res.returncode == EXIT_USAGE and "argument --seed" in res.stderr and ">= 0" in res.stderr
    assert "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("command", ["simulate-pathology", "simulate-biopsy"])
@pytest.mark.parametrize("mpp", ["1e9", "0.01", "nan", "0"])
def test_a_slide_scale_registration_would_refuse_is_refused_up_front(tmp_path, command, mpp):
    if command == "simulate-pathology":
        args = [command, tmp_path, "--truth", tmp_path / "t.json", "--wsi-mpp", mpp]
    else:
        args = [command, "--images", tmp_path, "--masks", tmp_path, "--out", tmp_path / "o", "--wsi-mpp", mpp]
    res = sonomap(*args, check=False)
    assert res.returncode == EXIT_USAGE and "argument --wsi-mpp" in res.stderr
    assert "between 0.05 and 50" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
