"""The training commands refuse bad flags and inputs in one line, before any work: numeric flags
(argparse), bench-train's batch and --json, upgrade-checkpoint's --out over a manifest,
--backbone-weights files torch cannot use, prepare-busi's repeated ids, hash limits and empty splits,
cases.csv with a byte-order mark, a checkpoint whose model_config is no mapping; and an interrupted
pretraining run never leaves the old run's summary beside its own files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from cli import one_line_error
from export_fixtures import tiny_manifest

import training.bench as bench_module
import training.pretrain as pretrain_module
from edge_runtime.cli import main as sonomap
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import manifest_path
from training.bench import bench_train
from training.busi import prepare_busi
from training.checkpoint import load_model, read_checkpoint
from training.checkpoint_kind import not_a_checkpoint
from training.checkpoint_save import save_checkpoint
from training.data import read_cases
from training.models import build_model

TINY = {
    "name": "tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 48, "input_width": 48, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 0},
}
EXIT_USER_ERROR = 2
TRAIN_IMAGES = 21  # the vendored sample's train split


def refused_by_argparse(capsys, args: list, flag: str) -> None:
    with pytest.raises(SystemExit) as exc:
        sonomap([str(a) for a in args])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_USER_ERROR and f"argument {flag}" in err, (args, err)


@pytest.fixture()
def tiny_cfg(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("pretrain", "--lr", "-1"),
        ("pretrain", "--lr", "nan"),
        ("pretrain", "--epochs", "0"),
        ("pretrain", "--epochs", "-3"),
        ("pretrain", "--max-minutes", "-1"),
        ("train", "--max-minutes", "0"),
        ("train", "--max-minutes", "-1"),
        ("train", "--max-minutes", "nan"),
        ("train", "--max-minutes", "inf"),
        ("train", "--stop-after-epochs", "0"),
        ("train", "--stop-after-epochs", "-1"),
    ],
)
def test_numeric_run_flags_are_refused_before_any_work(tmp_path, capsys, command, flag, value):
    out = tmp_path / "out"
    args = [command, "--config", tmp_path / "c.yaml", "--data", tmp_path, "--out", out, flag, value]
    refused_by_argparse(capsys, args, flag)
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value"), [("--phash-max", "-1"), ("--phash-max", "65"), ("--dhash-max", "1000")]
)
def test_hash_limits_beyond_a_64_bit_hash_are_refused(tmp_path, capsys, busi_sample, flag, value):
    out = tmp_path / "ds"
    refused_by_argparse(capsys, ["prepare-busi", "--busi", busi_sample, "--out", out, flag, value], flag)
    with pytest.raises(ConfigError, match="--phash-max -1"):
        prepare_busi(busi_sample, out, phash_max=-1)
    assert not out.exists()


def test_hash_limits_that_merge_everything_write_nothing(tmp_path, busi_sample):
    out = tmp_path / "ds"
    with pytest.raises(ConfigError, match="would be empty"):
        prepare_busi(busi_sample, out, phash_max=64, dhash_max=64)
    assert not out.exists()


def test_a_repeated_id_in_index_csv_is_refused_naming_the_line(tmp_path, busi_sample):
    busi = tmp_path / "busi"
    shutil.copytree(busi_sample, busi)
    lines = (busi / "index.csv").read_text().splitlines()
    (busi / "index.csv").write_text("\n".join([*lines, lines[2]]) + "\n")  # the second image again
    out = tmp_path / "ds"
    with pytest.raises(
        InputError, match=rf"index.csv:{len(lines) + 1}: id .* listed twice \(first on line 3\)"
    ):
        prepare_busi(busi, out)
    assert not out.exists()


def test_cases_csv_with_a_byte_order_mark_is_read(tmp_path, busi_dataset):
    data = tmp_path / "ds"
    data.mkdir()
    for folder in ("images", "labels"):
        (data / folder).symlink_to(busi_dataset / folder)
    (data / "cases.csv").write_bytes(b"\xef\xbb\xbf" + (busi_dataset / "cases.csv").read_bytes())
    assert read_cases(data) == [
        s.__class__(s.id, s.case_id, s.split, data / "images" / s.image.name, data / "labels" / s.label.name)
        for s in read_cases(busi_dataset)
    ]
    (data / "cases.csv").write_bytes("id,case_id,split\nb\xe9,1,train\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_cases(data)


def test_bench_train_refuses_a_batch_larger_than_the_train_split(tmp_path, busi_dataset):
    cfg = tmp_path / "big.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "train": {"batch_size": TRAIN_IMAGES + 1}}))
    with pytest.raises(ConfigError, match=rf"batch_size {TRAIN_IMAGES + 1} .* {TRAIN_IMAGES} images"):
        bench_train(str(cfg), str(busi_dataset), iters=1, warmup=0, device="cpu", rounds=1)


def test_bench_train_json_is_checked_before_and_written_after(
    tmp_path, busi_dataset, tiny_cfg, capsys, monkeypatch
):
    ran = []

    def fake_bench(*args):
        ran.append(args)
        variant = {"images_per_s": 1.0, "peak_mib": 1.0}
        return {"reference": variant, "sonomap": variant, "throughput_ratio": 1.0, "peak_memory_ratio": 1.0}

    monkeypatch.setattr(bench_module, "bench_train", fake_bench)
    base = ["bench-train", "--config", str(tiny_cfg), "--data", str(busi_dataset), "--json"]
    (tmp_path / "file").write_text("x")
    config_before = tiny_cfg.read_bytes()
    for bad, why in (
        (tmp_path / "file" / "x.json", "is a file, not a folder"),
        (tmp_path, "is a folder"),
        (tiny_cfg, "is the same file as --config"),  # the JSON written over the config it measured
        (busi_dataset / "bench.json", "lies inside --data"),
    ):
        err = one_line_error(capsys, sonomap([*base, str(bad)]))
        assert "--json" in err and why in err, err
    assert not ran  # refused before the benchmark
    assert tiny_cfg.read_bytes() == config_before and not (busi_dataset / "bench.json").exists()
    target = tmp_path / "new" / "r.json"  # a missing folder is made, as every writer does
    assert sonomap([*base, str(target)]) == 0
    assert len(ran) == 1 and json.loads(target.read_text())["throughput_ratio"] == 1.0


def test_upgrade_checkpoint_never_writes_over_a_manifest_or_its_input(tmp_path, capsys):
    model = build_model("unet_small", 2, width=4)
    payload = {
        "model": model.state_dict(),
        "model_config": {"arch": "unet_small", "num_classes": 2, "width": 4},
    }
    ck = save_checkpoint(payload, tmp_path / "a.pt", tiny_manifest("unet_small", 32))
    other = tmp_path / "model.onnx"
    other.write_bytes(b"onnx")
    (tmp_path / "model.onnx.yaml").write_text("name: x\n")
    named_yaml = save_checkpoint(payload, tmp_path / "weights.yaml")  # a checkpoint with an odd name
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for source, out, why in (
        (ck, manifest_path(ck), "is the manifest of"),
        (ck, tmp_path / "model.onnx.yaml", "is the manifest of"),
        (named_yaml, tmp_path / "weights", "would be written over"),
        (ck, tmp_path / "q.onnx", ".onnx names onnx models, not checkpoints; give a name such as NEW.pt"),
        (ck, tmp_path / "q.engine", ".engine names tensorrt models"),
    ):
        code = sonomap(["upgrade-checkpoint", str(source), "--trust-checkpoint", "--out", str(out)])
        err = one_line_error(capsys, code)
        assert f"--out {out}" in err and why in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_backbone_weights_torch_cannot_use_are_one_line_config_errors(tmp_path):
    net = build_model("lraspp_mobilenet_v3_large", 2).net
    backbone = net.backbone.state_dict()
    name = next(iter(backbone))
    good = tmp_path / "good.pth"
    torch.save(backbone, good)
    partial = tmp_path / "partial.pth"
    torch.save(dict(list(backbone.items())[: len(backbone) // 2]), partial)  # the rest would stay random
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    wrong = tmp_path / "wrong.pth"
    torch.save({name: torch.zeros(5, 5)}, wrong)  # the backbone's name, another shape
    listed = tmp_path / "list.pth"
    torch.save([1, 2, 3], listed)
    for path, why in (
        (truncated, "not a readable torch state dict"),
        (garbage, "not a readable torch state dict"),
        (wrong, "does not fit"),
        (partial, "does not fit the LRASPP backbone: lacks"),
        (listed, "holds a list, not a state dict of tensors"),
    ):
        with pytest.raises(ConfigError, match=f"--backbone-weights {path}: {why}") as exc:
            build_model("lraspp_mobilenet_v3_large", 2, backbone_weights=path)
        assert "\n" not in str(exc.value)
    build_model("lraspp_mobilenet_v3_large", 2, backbone_weights=good)  # a fitting file still loads


def test_a_model_config_that_is_no_mapping_is_a_one_line_error(tmp_path):
    path = save_checkpoint({"model": {}, "model_config": "unet_small"}, tmp_path / "best.pt")
    with pytest.raises(InputError, match="'model_config' is 'unet_small', not the mapping"):
        read_checkpoint(path)
    with pytest.raises(InputError, match="model_config"):
        load_model(path, verify_manifest=False)
    no_classes = save_checkpoint({"model": {}, "model_config": {"arch": "unet_small"}}, tmp_path / "b.pt")
    with pytest.raises(InputError, match=r"'model_config' is \{'arch': 'unet_small'\}"):
        load_model(no_classes, verify_manifest=False)


def test_the_hint_names_the_checkpoint_evaluate_and_export_accept(tmp_path):
    empty = tmp_path / "best.pt"
    empty.write_bytes(b"")
    hint = not_a_checkpoint(empty)
    assert "best.pt.yaml" in hint and "last.pt" not in hint


def test_an_interrupted_pretraining_never_keeps_the_old_runs_summary(
    tmp_path, tiny_cfg, busi_dataset, monkeypatch
):
    out = tmp_path / "pre"
    pretrain_module.run(tiny_cfg, busi_dataset, out, epochs=2, lr=1e-3)
    assert json.loads((out / "summary.json").read_text())["epochs_done"] == 2
    real_save, saves = pretrain_module._save, []

    def stop_at_second_epoch(*args):
        saves.append(args)
        if len(saves) == 2:
            raise KeyboardInterrupt  # the user stops the new run during its second epoch
        real_save(*args)

    monkeypatch.setattr(pretrain_module, "_save", stop_at_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain_module.run(tiny_cfg, busi_dataset, out, epochs=5, lr=2e-3)
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert summary["epochs_done"] == len(rows) == 1 and summary["finished"] is False
    assert summary["final_loss"] == pytest.approx(float(rows[0]["loss"]))
    assert read_checkpoint(out / "pretrained.pt")["pretext"]["epoch"] == 0
