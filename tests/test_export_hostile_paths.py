"""Export commands given paths a hurried operator may type: a checkpoint path with no file name,
``--onnx`` naming the checkpoint, the manifest or a folder, an engine cache ``--out`` that is empty,
an ONNX model whose weights are in external data files, a name that is only a suffix or an FP16
twin's; and a stop that arrives while a finished export is renamed into place. Each mistake is one line, exit 2,
before TensorRT is looked for (real files, real ONNX models, ONNX Runtime and real signals)."""

from __future__ import annotations

import os
import signal

import pytest
from export_fixtures import EXTERNAL_DATA, external_copy, shared_tiny_onnx

from edge_runtime.cli import main
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import manifest_path
from edge_runtime.stop_signals import sigterm_as_interrupt
from edge_runtime.tensorrt.cache import check_cache_dir
from export.staging import STAGING_SUFFIX, staged
from export.trt_lint import lint_onnx


@pytest.fixture(scope="module")
def tiny_onnx():
    return shared_tiny_onnx()


def one_line_error(capsys, rc) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("target", "checkpoint"),
    [(t, c) for t in ("onnx", "torchscript") for c in ("", ".", "/")]
    + [("tensorrt", "."), ("tensorrt", "/")],
)
def test_a_checkpoint_path_without_a_file_name_is_one_line(tmp_path, capsys, target, checkpoint):
    """``--checkpoint .`` (or an unset shell variable) raised ValueError from Path.with_name."""
    out = {"onnx": "model.onnx", "torchscript": "model.ts", "tensorrt": "engines"}[target]
    via = ["--via", "torch-tensorrt"] if target == "tensorrt" else ["--parity-frames", "1"]
    rc = main(["export", target, *via, "--checkpoint", checkpoint, "--out", str(tmp_path / out)])
    err = one_line_error(capsys, rc)
    assert "--checkpoint" in err and "not a checkpoint file name" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("given", ["checkpoint", "manifest", "folder"])
def test_export_tensorrt_names_an_onnx_argument_that_is_not_a_model(tiny_onnx, tmp_path, capsys, given):
    """The checkpoint (or the manifest) given as --onnx was called a corrupt ONNX file, a folder a
    missing manifest ``folder.yaml``."""
    path = {
        "checkpoint": tiny_onnx.parent / "ck" / "tiny.pt",
        "manifest": manifest_path(tiny_onnx),
        "folder": tiny_onnx.parent,
    }[given]
    rc = main(["export", "tensorrt", "--onnx", str(path), "--out", str(tmp_path / "engines")])
    err = one_line_error(capsys, rc)
    assert err.startswith(f"sonomap export: error: --onnx {path}: ") and "not a readable" not in err
    assert ("is a folder" if given == "folder" else "must end in .onnx") in err
    assert not (tmp_path / "engines").exists()


def test_the_engine_cache_check_refuses_an_empty_folder_name(tmp_path):
    """``--out ""`` (an unset variable) was the working folder: engines built wherever the shell was.
    The parser refuses it (tests/test_cli_args.py); the cache check refuses it for any other caller."""
    with pytest.raises(ConfigError, match=r"^--out is empty: give the engine cache folder"):
        check_cache_dir("", "--out")
    with pytest.raises(ConfigError, match=r"^--cache-dir is empty"):
        check_cache_dir("  ", "--cache-dir")
    check_cache_dir(tmp_path, "--out")  # an existing folder passes


@pytest.mark.parametrize("keep_data", [True, False])
def test_a_model_with_external_weights_is_refused_before_tensorrt(tiny_onnx, tmp_path, capsys, keep_data):
    """The manifest's sha256 (and the engine cache key) covers model.onnx only: the weights beside
    it could be replaced by others' and every check, and a cached engine, would still pass."""
    model = external_copy(tiny_onnx, tmp_path / "m", keep_data)
    with pytest.raises(ConfigError, match=f"keeps its weights in {EXTERNAL_DATA}"):
        lint_onnx(model)
    cache = tmp_path / "engines"
    rc = main(["export", "tensorrt", "--onnx", str(model), "--out", str(cache)])
    err = one_line_error(capsys, rc)
    assert f"{model}: keeps its weights in {EXTERNAL_DATA} (ONNX external data)" in err
    rc = main(["selfcheck", "--model", str(model), "--max-frames", "1", "--cache-dir", str(cache)])
    assert "ONNX external data" in one_line_error(capsys, rc)


def test_a_self_contained_model_still_passes_the_lint(tiny_onnx):
    assert lint_onnx(tiny_onnx).passed


@pytest.mark.parametrize(("target", "name"), [("onnx", ".onnx"), ("torchscript", ".ts")])
def test_a_name_that_is_only_the_suffix_is_named_as_such(tmp_path, capsys, target, name):
    """``--out .onnx`` was told 'the ONNX file name must end in .onnx'."""
    out = tmp_path / name
    rc = main(["export", target, "--checkpoint", str(tmp_path / "best.pt"), "--out", str(out)])
    err = one_line_error(capsys, rc)
    assert f"--out {out}: give the" in err and f"a name before {name}" in err


def test_an_out_named_like_an_fp16_twin_is_refused_and_the_twin_kept(tmp_path, capsys):
    """``--out model.fp16.onnx`` replaced the FP16 twin of the export beside it with an FP32 graph, and
    the next export of ``model.onnx`` then removed it as a stale twin."""
    twin = tmp_path / "model.fp16.onnx"
    twin.write_text("an earlier export's FP16 twin")
    rc = main(["export", "onnx", "--checkpoint", str(tmp_path / "best.pt"), "--out", str(twin)])
    err = one_line_error(capsys, rc)
    assert (
        f"--out {twin}: a name ending in .fp16.onnx is the FP16 twin" in err
        and "(model.onnx) and add --fp16" in err
    )
    assert twin.read_text() == "an earlier export's FP16 twin" and sorted(tmp_path.iterdir()) == [twin]


def test_export_tensorrt_given_the_checkpoint_as_out_is_told_out_is_the_cache_folder(tmp_path, capsys):
    """``--via torch-tensorrt --out best.pt`` was told to give another file name; --out is the engine
    cache folder there."""
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"a trained model")
    rc = main(
        [
            "export",
            "tensorrt",
            "--via",
            "torch-tensorrt",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(checkpoint),
        ]
    )
    err = one_line_error(capsys, rc)
    assert err.endswith(f"--out {checkpoint}: exists and is not a folder: give the engine cache folder"), err
    assert checkpoint.read_bytes() == b"a trained model"


def test_a_stop_while_the_files_are_renamed_into_place_acts_after_the_last(tmp_path, monkeypatch):
    """A real SIGTERM right after the first rename (os.replace is wrapped only to send it at that
    moment) stopped the install there: the new model beside the previous manifest, which refuses it,
    and the new manifest deleted with the staging folder. Now the stop acts once all are in place."""
    out = tmp_path / "model.onnx"
    out.write_text("previous model")
    manifest_path(out).write_text("previous manifest")
    real_replace = os.replace

    def replace_then_stop(src, dst):
        real_replace(src, dst)
        signal.raise_signal(signal.SIGTERM)

    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
        with staged(out) as stage:
            stage.path().write_text("new model")
            stage.path(manifest_path(out).name).write_text("new manifest")
            with monkeypatch.context() as patch:
                patch.setattr(os, "replace", replace_then_stop)
                stage.install([out.name, manifest_path(out).name])
    assert out.read_text() == "new model" and manifest_path(out).read_text() == "new manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.yaml"]
    assert not any(p.name.endswith(STAGING_SUFFIX) for p in tmp_path.iterdir())
