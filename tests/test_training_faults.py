"""Training under faults: a checkpoint write on a full disk is one line naming the file, a batch or a
val split without any labelled pixel, a config asking for more than two classes, SIGTERM mid-run,
a folder that cannot be resumed, and `python -m training.recover`'s errors and existing OUT.
Real runs of `sonomap train` on the vendored BUSI sample at 64x64, width 4; real files throughout."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from file_size_limit import python_with_file_size_limit, sonomap_with_file_size_limit
from sigterm_stop import sigterm_when

from edge_runtime.errors import ConfigError, InputError
from training.checkpoint import read_checkpoint
from training.config import load_config
from training.config_schema import LOSSES
from training.data import CANCER, IGNORE_INDEX, read_cases
from training.losses import SegLoss
from training.recover import main as recover_main
from training.train import run

TINY = {
    "name": "tiny-faults",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3},
}
EXIT_USER_ERROR = 2
SHIPPED_ONNX = Path(__file__).resolve().parents[1] / "edge_runtime" / "models" / "default" / "model.onnx"


def _config(folder: Path, **train) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], **train}}))
    return path


def _train_args(cfg: Path, data: Path, out: Path) -> list[str]:
    return ["train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--no-progress"]


def _one_line(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert result.returncode == EXIT_USER_ERROR, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return err


def _unlabel(data: Path, split: str, count: int | None = None) -> list[str]:
    """Set every pixel of the labels of SPLIT (the first COUNT of them) to 255, unknown."""
    chosen = [s for s in read_cases(data) if s.split == split][:count]
    for sample in chosen:
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(sample.label), np.full_like(label, IGNORE_INDEX))
    return [s.id for s in chosen]


def test_checkpoint_write_on_a_full_disk_is_one_line_naming_the_file(tmp_path, busi_dataset):
    """RLIMIT_FSIZE between best.pt's and last.pt's size: best.pt is written, last.pt fails as on a
    full disk (EFBIG, SIGXFSZ ignored); torch reports it as a RuntimeError, sonomap names last.pt."""
    cfg = _config(tmp_path, epochs=1)
    sizes = tmp_path / "sizes"
    run(cfg, busi_dataset, sizes, show_progress=False, device="cpu")
    best, last = (sizes / "best.pt").stat().st_size, (sizes / "last.pt").stat().st_size
    assert best < last
    out = tmp_path / "run"
    result = sonomap_with_file_size_limit((best + last) // 2, *_train_args(cfg, busi_dataset, out))
    err = _one_line(result)
    assert err.endswith(f"{out / 'last.pt'}: File too large (writing the checkpoint)"), err
    assert not list(out.glob(".*.tmp"))  # the half-written temp file is gone
    assert read_checkpoint(out / "best.pt")["epoch"] == 0  # written before the limit bit


def test_a_failed_write_keeps_the_earlier_checkpoint_intact(tmp_path):
    path = tmp_path / "ck.pt"
    code = (
        "import torch\nfrom training.checkpoint_save import save_checkpoint\n"
        f"save_checkpoint({{'model': {{'w': torch.zeros(100_000)}}, 'model_config': {{}}}}, {str(path)!r})"
    )
    small = python_with_file_size_limit(1_000_000, "-c", code.replace("100_000", "10"))
    assert small.returncode == 0, small.stderr
    before = path.read_bytes()
    big = python_with_file_size_limit(1_000_000, "-c", code.replace("100_000", "1_000_000"))
    assert big.returncode != 0
    assert f"OSError: [Errno 27] File too large (writing the checkpoint): '{path}'" in big.stderr
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("kind", LOSSES)
def test_a_batch_without_any_labelled_pixel_has_loss_zero(kind):
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    loss = SegLoss(kind, [0.3, 2.0], image_weight=0.5)(logits, torch.full((2, 8, 8), IGNORE_INDEX))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    if kind != "focal_dice":  # focal + soft Dice already were 0 here; cross-entropy was 0/0 = NaN
        with torch.no_grad():
            assert float(SegLoss(kind, [0.3, 2.0])(logits, torch.full((2, 8, 8), IGNORE_INDEX))) == 0.0


def test_training_goes_on_through_batches_without_labelled_pixels(tmp_path, busi_dataset):
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    train = [s for s in read_cases(data) if s.split == "train"]
    kept = next(s for s in train if (cv2.imread(str(s.label), cv2.IMREAD_UNCHANGED) == CANCER).any())
    _unlabel(data, "train")  # all 255 but one image: the dataset contract allows it
    shutil.copy(busi_dataset / "labels" / kept.label.name, kept.label)  # a split with no cancer is refused
    out = tmp_path / "run"
    # one image a batch: every batch but one has no labelled pixel, and a NaN loss would stop the run
    cfg = _config(tmp_path, loss="ce_dice", batch_size=1)
    summary = run(cfg, data, out, show_progress=False, device="cpu")
    assert summary["epochs_done"] == TINY["train"]["epochs"]
    losses = [float(r.split(",")[3]) for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert len(losses) == TINY["train"]["epochs"] and all(math.isfinite(v) for v in losses), losses


def test_a_val_split_without_labelled_pixels_is_refused_before_training(tmp_path, busi_dataset):
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    _unlabel(data, "val")
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"cases.csv: split 'val' has no labelled pixel"):
        run(_config(tmp_path), data, out, show_progress=False, device="cpu")
    assert not out.exists()


def test_more_than_two_classes_are_refused_at_config_load(tmp_path):
    path = tmp_path / "c3.yaml"
    path.write_text(yaml.safe_dump({**TINY, "model": {**TINY["model"], "num_classes": 3}}))
    with pytest.raises(ConfigError, match=r"c3.yaml: config key 'model.num_classes' must be 2 .*got 3"):
        load_config(path)


def test_sigterm_stops_training_cleanly(tmp_path, busi_dataset):
    out = tmp_path / "run"
    sigterm_when(_train_args(_config(tmp_path, epochs=500), busi_dataset, out), (out / "last.pt").exists)
    assert not list(out.glob(".*.tmp"))
    assert read_checkpoint(out / "last.pt")["epoch"] >= 0


def test_a_folder_without_last_pt_is_not_advised_to_be_resumed(tmp_path, busi_dataset):
    cfg = _config(tmp_path, epochs=1)
    first = tmp_path / "first"
    run(cfg, busi_dataset, first, show_progress=False, device="cpu")
    stopped = tmp_path / "stopped"  # what a run stopped in epoch 0 after best.pt leaves
    stopped.mkdir()
    shutil.copy(first / "best.pt", stopped / "best.pt")
    with pytest.raises(ConfigError) as caught:
        run(cfg, busi_dataset, stopped, show_progress=False, device="cpu")
    assert f"or delete {stopped} (it holds no last.pt" in str(caught.value)
    assert "--resume" not in str(caught.value)
    with pytest.raises(ConfigError, match="add --resume"):  # a folder with last.pt: resume it
        run(cfg, busi_dataset, first, show_progress=False, device="cpu")


def test_recover_errors_are_one_line_and_an_existing_out_is_kept(tmp_path, capsys):
    assert recover_main([str(tmp_path / "nope.onnx"), str(tmp_path / "x.pt")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert err == f"python -m training.recover: error: {tmp_path / 'nope.onnx'}: ONNX model not found"
    out = tmp_path / "run" / "best.pt"
    out.parent.mkdir()
    out.write_bytes(b"a training run's best.pt")
    assert recover_main([str(SHIPPED_ONNX), str(out)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{out}: exists already" in err and "--overwrite" in err
    assert out.read_bytes() == b"a training run's best.pt"
    assert recover_main([str(SHIPPED_ONNX), str(out), "--overwrite"]) == 0
    assert read_checkpoint(out)["model_config"]["arch"] == "unet_small"
