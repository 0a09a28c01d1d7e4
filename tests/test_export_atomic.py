"""`sonomap export onnx` over an existing model: a failed export never replaces the good one, and a
new export leaves no report section or FP16 twin of the previous one beside it.

Real tiny checkpoints: the shared fitted one, a copy with slightly scaled weights (another model that
passes parity) and a copy whose weights are all NaN (fails parity, as a diverged run would)."""

from __future__ import annotations

import json

import pytest
from export_fixtures import shared_checkpoint, tiny_manifest

from edge_runtime.cli import main
from edge_runtime.manifest import load_manifest, manifest_path, sha256_file
from export.staging import STAGING_SUFFIX, failed_path

WEIGHT_SCALE = 1.01  # another model, same architecture: a different file that still passes parity


def _variant(tmp_path, name: str, change) -> str:
    """A copy of the shared checkpoint with ``change`` applied to every float weight."""
    from training.checkpoint import read_checkpoint
    from training.checkpoint_save import save_checkpoint

    payload = read_checkpoint(shared_checkpoint())
    payload["model"] = {k: change(v) if v.is_floating_point() else v for k, v in payload["model"].items()}
    return str(save_checkpoint(payload, tmp_path / "ck" / f"{name}.pt", tiny_manifest()))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import torch

    tmp = tmp_path_factory.mktemp("variants")
    return {
        "good": str(shared_checkpoint()),
        "other": _variant(tmp, "other", lambda w: w * WEIGHT_SCALE),
        "nan": _variant(tmp, "nan", lambda w: torch.full_like(w, float("nan"))),
    }


def _export(checkpoint: str, out, busi_sample, *extra: str) -> int:
    frames = ["--frames", str(busi_sample / "images"), "--parity-frames", "2"]
    return main(["export", "onnx", "--checkpoint", checkpoint, "--out", str(out), *frames, *extra])


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _no_staging_left(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(STAGING_SUFFIX)]


def test_failed_parity_keeps_the_good_model_and_the_failed_files_apart(
    checkpoints, tmp_path, busi_sample, capsys
):
    out = tmp_path / "p2" / "model.onnx"
    assert _export(checkpoints["good"], out, busi_sample) == 0
    good = _files(out.parent)
    assert set(good) == {"model.onnx", "model.onnx.yaml", "model.onnx.parity.json"}
    capsys.readouterr()

    assert _export(checkpoints["nan"], out, busi_sample) == 1
    printed = capsys.readouterr().out
    assert "PARITY FAILED" in printed and str(failed_path(out)) in printed
    assert printed.strip().endswith(f"{out} was left as it was")
    assert _files(out.parent) == good  # byte for byte: model, manifest and report of the good export
    assert load_manifest(out).extra["parity"]["passed"] is True
    kept = failed_path(out)
    assert kept.is_dir() and sorted(p.name for p in kept.iterdir()) == [
        "model.onnx",
        "model.onnx.parity.json",
        "model.onnx.yaml",
    ]
    report = json.loads((kept / "model.onnx.parity.json").read_text())
    assert report["fp32"]["passed"] is False
    assert report["fp32"]["model_sha256"] == sha256_file(kept / "model.onnx")
    assert _no_staging_left(out.parent)


def test_failed_first_export_writes_nothing_at_out(checkpoints, tmp_path, busi_sample, capsys):
    out = tmp_path / "model.onnx"
    assert _export(checkpoints["nan"], out, busi_sample, "--fp16") == 1
    # says so, rather than that a model there was left as it was
    assert capsys.readouterr().out.strip().endswith(f"nothing was written at {out}")
    assert not out.exists() and not manifest_path(out).exists()
    assert not (tmp_path / "model.fp16.onnx").exists()
    assert (failed_path(out) / "model.onnx").is_file()
    assert _no_staging_left(tmp_path)


def test_failed_lint_keeps_the_good_model(checkpoints, tmp_path, busi_sample, monkeypatch):
    """A graph TensorRT would refuse (exit 4) is not installed either."""
    from export import onnx_command

    out = tmp_path / "model.onnx"
    assert _export(checkpoints["good"], out, busi_sample) == 0
    good = _files(tmp_path)
    real_lint = onnx_command.lint_onnx

    def refusing_lint(path):
        report = real_lint(path)
        report.problems.append("a problem TensorRT would report")
        return report

    monkeypatch.setattr(onnx_command, "lint_onnx", refusing_lint)
    assert _export(checkpoints["other"], out, busi_sample) == 4
    assert _files(tmp_path) == good
    assert (failed_path(out) / "model.onnx").is_file() and _no_staging_left(tmp_path)


def test_an_error_mid_export_leaves_the_old_model_and_no_staging(checkpoints, tmp_path, busi_sample):
    out = tmp_path / "model.onnx"
    assert _export(checkpoints["good"], out, busi_sample) == 0
    good = _files(tmp_path)
    assert _export(checkpoints["other"], out, busi_sample, "--opset", "11") == 2
    assert _files(tmp_path) == good and _no_staging_left(tmp_path)
    assert not failed_path(out).exists()  # nothing was exported, so nothing to inspect


def test_reexport_writes_a_fresh_report_and_removes_the_stale_twin(
    checkpoints, tmp_path, busi_sample, capsys
):
    out = tmp_path / "model.onnx"
    assert _export(checkpoints["good"], out, busi_sample, "--fp16") == 0
    twin = tmp_path / "model.fp16.onnx"
    report = json.loads((tmp_path / "model.onnx.parity.json").read_text())
    assert set(report) == {"fp32", "fp16"}
    assert report["fp16"]["model"] == twin.name and report["fp16"]["model_sha256"] == sha256_file(twin)
    capsys.readouterr()

    assert _export(checkpoints["other"], out, busi_sample) == 0
    assert "removed model.fp16.onnx" in capsys.readouterr().out
    report = json.loads((tmp_path / "model.onnx.parity.json").read_text())
    assert set(report) == {"fp32"}  # no FP16 section of the previous model
    assert report["fp32"]["model"] == "model.onnx" and report["fp32"]["model_sha256"] == sha256_file(out)
    assert not twin.exists() and not manifest_path(twin).exists()
    assert load_manifest(out).source["checkpoint_sha256"] == sha256_file(checkpoints["other"])


def test_a_twin_of_this_very_model_is_kept(checkpoints, tmp_path, busi_sample):
    """Only a twin converted from another FP32 file is stale; one whose recorded fp32_onnx_sha256 is
    the new model's own still belongs to it."""
    from export.fp16 import stale_twin

    out = tmp_path / "model.onnx"
    assert _export(checkpoints["good"], out, busi_sample, "--fp16") == 0
    twin = tmp_path / "model.fp16.onnx"
    assert stale_twin(out, sha256_file(out)) is None
    assert stale_twin(out, "0" * 64) == twin
    manifest_path(twin).write_text("not: [valid")
    assert stale_twin(out, sha256_file(out)) == twin  # an unreadable manifest proves nothing


def test_out_that_is_a_folder_is_refused_before_any_work(checkpoints, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.mkdir()
    rc = main(["export", "onnx", "--checkpoint", checkpoints["good"], "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--out" in err and "is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"] and not any(out.iterdir())


def test_torchscript_failed_parity_keeps_the_good_model(checkpoints, tmp_path, busi_sample, capsys):
    out = tmp_path / "model.ts"
    frames = ["--frames", str(busi_sample / "images"), "--parity-frames", "1"]
    ts = ["export", "torchscript", "--out", str(out), *frames]
    assert main([*ts, "--checkpoint", checkpoints["good"]]) == 0
    good = _files(tmp_path)
    assert set(good) == {"model.ts", "model.ts.yaml", "model.ts.parity.json"}
    assert main([*ts, "--checkpoint", checkpoints["nan"]]) == 1
    assert "PARITY FAILED" in capsys.readouterr().out
    assert _files(tmp_path) == good
    assert (failed_path(out) / "model.ts").is_file() and _no_staging_left(tmp_path)


def test_a_folder_where_an_export_file_goes_leaves_the_earlier_export_whole(
    checkpoints, tmp_path, busi_sample, capsys
):
    """A folder named like the parity report: the FP16 twin and its manifest were renamed into place
    before the report's rename failed, so the twin belonged to a model that was not beside it, and the
    error called --out the folder and the earlier export untouched. Now every name is checked before
    the first rename, and the error names the folder."""
    out = tmp_path / "model.onnx"
    assert _export(checkpoints["good"], out, busi_sample, "--fp16") == 0
    report = tmp_path / "model.onnx.parity.json"
    report.unlink()
    report.mkdir()
    before = _files(tmp_path)
    capsys.readouterr()
    assert _export(checkpoints["other"], out, busi_sample, "--fp16") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{report}: is a folder, where the export installs that file: move it away; {out} was left as it was"
    )
    assert _files(tmp_path) == before and _no_staging_left(tmp_path)
