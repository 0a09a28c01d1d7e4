"""Training inputs out of any plausible range, refused in one line before any work: a learning rate
above MAX_LR in a config (`train.lr`) or on pretrain's command line (`--lr`), which used to end in a
torch RuntimeError traceback; and `sonomap evaluate` on a run whose metrics.csv (the training curves'
log beside the checkpoint) has a row that is not numbers names the file and line, keeping an earlier
report as it was. Real runs of `sonomap` (in process) on the vendored BUSI sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cli import one_line_error

import training.evaluate as evaluate_module
from edge_runtime.cli import main as sonomap
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest
from edge_runtime.privacy import redact
from training.checkpoint import load_model, read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.config import load_config
from training.config_schema import MAX_LR, MAX_LR_MULT
from training.train import run

WEIGHT_DIMS = 4  # a convolution's weight: out, in, height, width

TINY = {
    "name": "tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}
EXIT_USER_ERROR = 2
HUGE_LRS = (1e308, 1e39, 2.0)  # any double; just above float32's range; a step larger than a weight
NOTE_ROW = "note: run stopped by hand" + "," * 14  # a line typed into the log in a spreadsheet


def _config(folder: Path, **train) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], **train}}))
    return path


@pytest.mark.parametrize("lr", HUGE_LRS)
def test_a_config_lr_above_the_limit_is_one_line_naming_the_key(tmp_path, busi_dataset, capsys, lr):
    cfg = _config(tmp_path, lr=lr)
    out = tmp_path / "run"
    code = sonomap(
        ["train", "--config", str(cfg), "--data", str(busi_dataset), "--out", str(out), "--no-progress"]
        + ["--device", "cpu"]
    )
    err = one_line_error(capsys, code)
    assert f"config key 'train.lr' must be a number > 0.0 and <= {MAX_LR}" in err, err
    assert not out.exists()


def test_the_learning_rates_of_the_recipes_still_load(tmp_path, repo_root):
    for recipe in sorted((repo_root / "configs").glob("*.yaml")):
        assert 0 < load_config(recipe).train.lr <= MAX_LR
    assert load_config(_config(tmp_path, lr=MAX_LR)).train.lr == MAX_LR


@pytest.mark.parametrize("lr", HUGE_LRS)
def test_pretrain_lr_above_the_limit_is_refused_by_the_parser(tmp_path, busi_dataset, capsys, lr):
    out = tmp_path / "pre"
    args = ["pretrain", "--config", _config(tmp_path), "--data", busi_dataset, "--out", out]
    with pytest.raises(SystemExit) as exc:
        sonomap([str(a) for a in [*args, "--epochs", "1", "--lr", str(lr)]])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_USER_ERROR and "Traceback" not in err
    assert f"argument --lr: must be a learning rate > 0 and <= {MAX_LR:g}, got {lr}" in err, err
    assert not out.exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, busi_dataset) -> Path:
    """A one-epoch run at 32x32: RUN/best.pt (+ yaml) and the run's metrics.csv."""
    folder = tmp_path_factory.mktemp("run")
    out = folder / "run"
    run(_config(folder), busi_dataset, out, show_progress=False, device="cpu")
    return out


def test_evaluate_names_the_metrics_csv_line_that_is_not_numbers_and_keeps_the_earlier_report(
    trained, busi_dataset, tmp_path, capsys, monkeypatch
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("best.pt", "best.pt.yaml", "metrics.csv"):
        shutil.copy(trained / name, run_dir / name)
    report = tmp_path / "report"
    args = ["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--data", str(busi_dataset)]
    args += ["--split", "val", "--out", str(report)]
    assert sonomap(args) == 0
    before = {p.name: p.read_bytes() for p in report.iterdir() if p.is_file()}
    log = run_dir / "metrics.csv"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([*lines, NOTE_ROW]) + "\n")
    capsys.readouterr()
    scored = []  # the log is checked before any image is scored, not after
    real_read_pair = evaluate_module.read_pair
    monkeypatch.setattr(evaluate_module, "read_pair", lambda s: scored.append(s.id) or real_read_pair(s))
    err = one_line_error(capsys, sonomap(args))
    assert redact(f"{log}:{len(lines) + 1}: epoch") in err and "not a number" in err, err
    assert scored == []
    assert {p.name: p.read_bytes() for p in report.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "run"]  # no staging folder left


def test_an_aux_lr_multiplier_beyond_the_limit_is_one_line_naming_the_key(tmp_path, busi_dataset, capsys):
    cfg = _config(tmp_path, aux_lr_mult=MAX_LR_MULT * 10)
    out = tmp_path / "run"
    args = ["train", "--config", cfg, "--data", busi_dataset, "--out", out, "--no-progress"]
    err = one_line_error(capsys, sonomap([str(a) for a in args]))
    assert f"config key 'train.aux_lr_mult' must be a number > 0.0 and <= {MAX_LR_MULT}" in err, err
    assert not out.exists()


def test_weights_that_do_not_fit_name_the_keys_in_one_line(trained, tmp_path):
    """torch's own message starts 'Error(s) in loading state_dict for X:' and names the keys on the
    lines after: the one-line error keeps those, not the first line alone."""
    state = read_checkpoint(trained / "best.pt")
    first = next(k for k, v in state["model"].items() if v.ndim == WEIGHT_DIMS)
    state["model"][first] = state["model"][first][:1].clone()  # one output channel instead of all
    dropped = next(k for k in reversed(list(state["model"])) if k.endswith("bias"))
    del state["model"][dropped]
    broken = tmp_path / "broken" / "best.pt"
    save_checkpoint(state, broken, load_manifest(trained / "best.pt"))
    with pytest.raises(ConfigError) as info:
        load_model(broken)
    message = str(info.value)
    assert "\n" not in message and "weights do not fit unet_small: " in message, message
    assert f"size mismatch for {first}" in message and dropped in message, message


def test_a_run_folder_given_as_the_checkpoint_is_named_as_a_folder(trained):
    with pytest.raises(InputError, match=r"is a folder, not a checkpoint file \(e\.g\. .*best\.pt\)"):
        read_checkpoint(trained)


@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resume"])
def test_an_out_that_is_a_file_is_named_as_evaluate_names_it(tmp_path, busi_dataset, capsys, resume):
    """The same one line as evaluate, crossval and prepare-busi, not ``OUT/tb: Not a directory``."""
    cfg = _config(tmp_path)  # --out is the config itself, as a slip of the shell's completion gives
    before = cfg.read_text()
    args = ["train", "--config", str(cfg), "--data", str(busi_dataset), "--out", str(cfg), "--device", "cpu"]
    code = sonomap([*args, "--no-progress", *(["--resume"] if resume else [])])
    err = one_line_error(capsys, code)
    assert err == redact(f"sonomap train: error: --out {cfg}: is a file; give a run folder"), err
    assert cfg.read_text() == before


def test_pretrain_refuses_an_out_that_is_a_file_as_train_does(tmp_path, busi_dataset, capsys):
    """The same one line, naming the file itself, before the dataset is read (not
    ``--out FILE/pretrained.pt: FILE is a file`` once every image was decoded)."""
    cfg = _config(tmp_path)
    before = cfg.read_text()
    args = ["pretrain", "--config", str(cfg), "--data", str(busi_dataset), "--out", str(cfg), "--epochs", "1"]
    err = one_line_error(capsys, sonomap(args))
    assert err == redact(f"sonomap pretrain: error: --out {cfg}: is a file; give a run folder"), err
    assert cfg.read_text() == before
