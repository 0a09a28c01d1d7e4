"""Seed ensembles folded into one checkpoint and one exported graph (:mod:`training.ensemble`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_fixtures import tiny_manifest

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, sha256_file
from export.onnx_export import export_onnx
from export.shapes import ShapeSpec
from training.checkpoint import load_model
from training.checkpoint_save import save_checkpoint
from training.ensemble import ensemble_checkpoints
from training.models import build_model

SIZE = 48
CONFIG = {"arch": "unet_small", "num_classes": 2, "aux": False, "width": 4}


def _member(out: Path, seed: int, **manifest_changes) -> Path:
    torch.manual_seed(seed)
    model = build_model("unet_small", 2, width=CONFIG["width"]).eval()
    manifest = tiny_manifest("unet_small", SIZE).derive(temperature=1.7 + seed, **manifest_changes)
    payload = {"model": model.state_dict(), "model_config": CONFIG, "manifest": manifest.to_dict()}
    return save_checkpoint(payload, out / f"m{seed}" / "best.pt", manifest)


@pytest.fixture
def members(tmp_path) -> list[Path]:
    return [_member(tmp_path, 1), _member(tmp_path, 2)]


def test_the_ensemble_is_the_mean_of_its_members_logits(members, tmp_path):
    out = ensemble_checkpoints(members, tmp_path / "ens" / "best.pt")
    ensemble, manifest = load_model(out)
    x = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        logits = [load_model(m)[0](x) for m in members]
        got = ensemble(x)
    assert not torch.allclose(logits[0], logits[1])
    torch.testing.assert_close(got, (logits[0] + logits[1]) / 2)
    assert manifest.arch == "ensemble"
    # the members' temperatures (2.7, 3.7) apply to their own logits, not to the mean: re-calibrate
    assert manifest.temperature == 1.0 and manifest.calibration_curve is None and manifest.mask_filter is None
    named = manifest.source["ensemble_of"]
    # each member by file name and sha256, never by path: m1/, m2/ (a folder a patient could name) stay out
    assert [e["checkpoint"] for e in named] == ["best.pt", "best.pt"]
    assert [e["sha256"] for e in named] == [sha256_file(m) for m in members]
    assert [e["sha256"] for e in named] == [load_manifest(m).sha256 for m in members]
    assert not any(part in str(named) for part in ("/", "\\", "m1", "m2", tmp_path.name))


def test_the_exported_ensemble_is_one_graph_that_onnx_runtime_runs_like_torch(members, tmp_path):
    out = ensemble_checkpoints(members, tmp_path / "ens" / "best.pt")
    onnx_path = tmp_path / "ens" / "model.onnx"
    export_onnx(out, onnx_path, ShapeSpec(min_hw=(32, 32), opt_hw=(SIZE, SIZE), max_hw=(96, 96)))
    backend = OnnxRuntimeBackend(onnx_path, load_manifest(onnx_path), device="cpu")
    gray = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    prediction = backend.infer(gray)
    ensemble, manifest = load_model(out)
    x = torch.from_numpy(((gray / 255.0 - manifest.mean) / manifest.std).astype(np.float32))[None, None]
    with torch.no_grad():
        prob = torch.softmax(ensemble(x), dim=1)[0, 1].numpy()
    np.testing.assert_allclose(prediction.prob, prob, atol=1e-4)


def test_members_with_another_normalisation_are_refused_naming_the_file_and_field(members, tmp_path):
    other = _member(tmp_path, 3, mean=0.4)
    with pytest.raises(ConfigError, match=r"m3/best.pt: manifest 'mean' is 0.4.*one preprocessing contract"):
        ensemble_checkpoints([members[0], other], tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="at least 2"):
        ensemble_checkpoints(members[:1], tmp_path / "one.pt")
    assert not (tmp_path / "bad.pt").exists() and not (tmp_path / "one.pt").exists()


def test_the_command_names_a_member_without_manifest_in_one_line(members, tmp_path):
    (members[1].parent / "best.pt.yaml").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "training.ensemble", *map(str, members), "--out", str(tmp_path / "e.pt")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "m2/best.pt.yaml" in done.stderr, done.stderr
    assert not (tmp_path / "e.pt").exists()


def _one_line_refusal(module: str, *args) -> str:
    done = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("module", ["training.ensemble", "training.average"])
def test_a_trained_runs_best_pt_or_an_input_is_never_written_over(members, tmp_path, module):
    before = {p: p.read_bytes() for m in members for p in (m, m.with_name("best.pt.yaml"))}
    data = ("--data", tmp_path / "no-dataset") if module == "training.average" else ()
    for out in (members[0], tmp_path / "elsewhere.pt"):
        if out == tmp_path / "elsewhere.pt":
            out.with_name("elsewhere.pt.yaml").write_text("name: kept\n")  # a manifest without its file
        err = _one_line_refusal(module, *members, *data, "--out", out)
        assert f"--out {out}" in err and "exists already" in err and "not written over" in err, err
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "elsewhere.pt").exists()


def test_the_same_checkpoint_twice_is_no_ensemble(members, tmp_path):
    err = _one_line_refusal("training.ensemble", members[0], members[0], "--out", tmp_path / "e.pt")
    assert "the same checkpoint as the member best.pt" in err, err
    assert not (tmp_path / "e.pt").exists()


def test_average_names_a_bad_input_in_one_line(members, tmp_path):
    err = _one_line_refusal(
        "training.average", *members, "--data", tmp_path / "no-dataset", "--out", tmp_path / "a.pt"
    )
    assert "no-dataset" in err, err
    assert not (tmp_path / "a.pt").exists()
