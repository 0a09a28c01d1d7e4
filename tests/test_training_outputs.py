"""What the training commands write, and what they must never overwrite: evaluate refuses a run
folder and replaces an earlier report whole; train refuses a used run folder and resumes only on its
own dataset; pretrain refuses a training run; prepare-busi never writes into the BUSI release and
names an image it cannot write; upgrade-checkpoint keeps its backup however the path is spelled.
Real runs of `sonomap` (in process) on the vendored BUSI sample; every refusal is one line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli import one_line_error
from file_trees import tree_bytes

from edge_runtime.cli import main as sonomap
from edge_runtime.manifest import load_manifest, save_manifest
from edge_runtime.privacy import redact
from training.data import read_cases, select_split
from training.train import run

TINY = {
    "name": "tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": "auto", "std": "auto"},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, busi_dataset, tiny_cfg) -> Path:
    """A one-epoch run at 32x32: RUN/best.pt (+ yaml), last.pt, metrics.csv, summary.json, tb/."""
    out = tmp_path_factory.mktemp("run") / "run"
    run(tiny_cfg, busi_dataset, out, show_progress=False, device="cpu")
    return out


def test_evaluate_and_pretrain_refuse_a_training_run_folder(
    trained, busi_dataset, tiny_cfg, tmp_path, capsys
):
    before = tree_bytes(trained)
    code = sonomap(
        ["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(busi_dataset)]
        + ["--out", str(trained)]
    )
    err = one_line_error(capsys, code)
    assert redact(f"--out {trained}") in err and "training run" in err
    code = sonomap(
        ["pretrain", "--config", str(tiny_cfg), "--data", str(busi_dataset), "--out", str(trained)]
        + ["--epochs", "1"]
    )
    err = one_line_error(capsys, code)
    assert redact(f"--out {trained}") in err and "training run" in err
    assert tree_bytes(trained) == before
    assert sorted(p.name for p in trained.parent.iterdir()) == ["run"]  # no staging folder left


def _pred_ids(report: Path) -> set[str]:
    return {p.stem for p in (report / "pred").iterdir()}


def test_evaluate_replaces_an_earlier_report_whole_and_a_failure_keeps_it(
    trained, busi_dataset, tmp_path, capsys
):
    report = tmp_path / "report"
    args = ["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(busi_dataset)]
    assert sonomap([*args, "--split", "val", "--out", str(report)]) == 0
    assert sonomap([*args, "--split", "test", "--out", str(report)]) == 0
    samples = read_cases(busi_dataset)
    test_ids = {s.id for s in select_split(samples, "test", busi_dataset)}
    assert _pred_ids(report) == test_ids  # the val split's masks are gone with its report
    assert {r["id"] for r in csv.DictReader(open(report / "metrics.csv"))} == test_ids
    assert (report / "training_curves.png").is_file()  # from the run's own metrics.csv

    # an image that cannot be read, met half-way through: the earlier report stays as it was
    broken = tmp_path / "broken"
    shutil.copytree(busi_dataset, broken)
    unreadable = select_split(read_cases(broken), "val", broken)[-1].image
    unreadable.write_bytes(b"not a png")
    before = tree_bytes(report)
    capsys.readouterr()
    code = sonomap(
        ["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(broken)]
        + ["--split", "val", "--out", str(report)]
    )
    assert redact(str(unreadable)) in one_line_error(capsys, code)
    assert tree_bytes(report) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "report"]  # no staging folder left

    # a folder evaluate did not write is never replaced
    (report / "notes.txt").write_text("mine")
    before = tree_bytes(report)
    code = sonomap([*args, "--split", "val", "--out", str(report)])
    assert "notes.txt" in one_line_error(capsys, code)
    assert tree_bytes(report) == before


def test_train_refuses_a_used_run_folder(trained, busi_dataset, tiny_cfg, capsys):
    before = tree_bytes(trained)
    code = sonomap(
        ["train", "--config", str(tiny_cfg), "--data", str(busi_dataset), "--out", str(trained)]
        + ["--no-progress", "--device", "cpu"]
    )
    err = one_line_error(capsys, code)
    assert redact(f"--out {trained}") in err and "--resume" in err
    assert tree_bytes(trained) == before


def test_resume_on_another_dataset_is_refused(trained, busi_dataset, tiny_cfg, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(busi_dataset, other)
    rows = (other / "cases.csv").read_text().splitlines()
    (other / "cases.csv").write_text(
        "\n".join([rows[0], *rows[2:], rows[1]]) + "\n"
    )  # same images, reordered
    before = tree_bytes(trained)
    code = sonomap(
        ["train", "--config", str(tiny_cfg), "--data", str(other), "--out", str(trained), "--resume"]
        + ["--no-progress", "--device", "cpu"]
    )
    err = one_line_error(capsys, code)
    assert (
        redact(str(trained / "last.pt")) in err
        and f"dataset {busi_dataset.name} " in err
        and redact(str(other)) in err
    )
    assert tree_bytes(trained) == before


def test_prepare_busi_never_writes_into_the_busi_release(busi_sample, tmp_path, capsys):
    busi = tmp_path / "busi"
    shutil.copytree(busi_sample, busi)
    before = tree_bytes(busi)
    for out in (busi, busi / "dataset", tmp_path):  # the release itself, inside it, around it
        code = sonomap(["prepare-busi", "--busi", str(busi), "--out", str(out)])
        assert redact(f"--out {out}") in one_line_error(capsys, code)
    assert tree_bytes(busi) == before


def test_an_image_that_cannot_be_written_is_a_one_line_error(busi_sample, busi_dataset, tmp_path, capsys):
    out = tmp_path / "ds"
    first = read_cases(busi_dataset)[0].id
    blocker = out / "images" / f"{first}.png"
    blocker.mkdir(parents=True)  # a folder where the image goes
    code = sonomap(["prepare-busi", "--busi", str(busi_sample), "--out", str(out)])
    assert redact(str(blocker)) in one_line_error(capsys, code)


def test_upgrade_checkpoint_in_place_by_another_spelling_keeps_the_backup(
    trained, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "ck"
    folder.mkdir()
    # the older format: a numpy scalar beside the tensors, which a weights-only read refuses
    payload = torch.load(trained / "best.pt", map_location="cpu", weights_only=True)
    torch.save({**payload, "val": {"dice_pos_mean": np.float64(0.25)}}, folder / "best.pt")
    save_manifest(load_manifest(trained / "best.pt"), folder / "best.pt")  # signed for the new bytes
    original = (folder / "best.pt").read_bytes()
    monkeypatch.chdir(tmp_path)
    code = sonomap(
        ["upgrade-checkpoint", "ck/best.pt", "--out", str(folder / "best.pt"), "--trust-checkpoint"]
    )
    assert code == 0, capsys.readouterr().err
    assert (folder / "best.pt.orig").read_bytes() == original
    assert "original kept" in capsys.readouterr().out
