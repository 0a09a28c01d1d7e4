"""A manifest must vouch for the artifact beside it: its ``sha256``, ``file``, ``format`` and ``schema``.

Tampered copies of the shipped model (real files, as an operator could leave them on a cart): a
manifest without a hash, one naming another file or another kind of file, one without a schema is
a one-line error naming the key, in the library and in ``sonomap replay``. ``save_manifest`` never
writes a manifest for a file that does not exist. ``sonomap calibrate --method mask-filter`` on an
ONNX model writes the filter into both precisions' manifests, or into neither.
"""

from __future__ import annotations

import shutil
import signal

import pytest
import yaml
from cli import sonomap

from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.stop_signals import sigterm_as_interrupt
from training import mask_filter_fit
from training.mask_filter_fit import twin_manifest, twin_of, write_together

FP16_MODEL = DEFAULT_MODEL.with_name("model.fp16.onnx")


def _copy(folder, *models):
    """The shipped model files (and their manifests) copied into ``folder``; the FP32 copy's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for model in models or (DEFAULT_MODEL,):
        shutil.copy(model, folder / model.name)
        shutil.copy(manifest_path(model), manifest_path(folder / model.name))
    return folder / DEFAULT_MODEL.name


def _edit(model, change):
    data = yaml.safe_load(manifest_path(model).read_text())
    change(data)
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))


def _replay(model, busi_sample, out):
    return sonomap(
        "replay",
        busi_sample / "images",
        *("--roi", "full", "--model", model, "--backend", "onnxruntime", "--max-frames", 1),
        *("--out", out / "o.mp4"),
        check=False,
    )


@pytest.mark.parametrize("how", ["removed", "empty"])
def test_a_manifest_without_sha256_is_refused(tmp_path, how):
    model = _copy(tmp_path)
    _edit(model, (lambda m: m.pop("sha256")) if how == "removed" else (lambda m: m.update(sha256="")))
    with pytest.raises(ConfigError) as caught:
        load_manifest(model)
    message = str(caught.value)
    assert "'sha256'" in message and str(manifest_path(model)) in message and "\n" not in message


def test_replay_refuses_the_fp16_file_copied_over_the_model_with_its_hash_deleted(tmp_path, busi_sample):
    model = _copy(tmp_path, DEFAULT_MODEL, FP16_MODEL)
    shutil.copy(FP16_MODEL, model)
    _edit(model, lambda m: m.pop("sha256"))
    run = _replay(model, busi_sample, tmp_path)
    assert run.returncode != 0 and "'sha256'" in run.stderr and not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    "key, change",
    [
        ("file", lambda m: m.update(file="other.onnx")),
        ("format", lambda m: m.update(format="checkpoint")),
        ("schema", lambda m: m.pop("schema")),
    ],
)
def test_a_manifest_of_another_file_or_without_schema_is_refused(tmp_path, key, change):
    model = _copy(tmp_path)
    _edit(model, change)
    with pytest.raises(ConfigError, match=f"'{key}'") as caught:
        load_manifest(model)
    assert str(manifest_path(model)) in str(caught.value) and "\n" not in str(caught.value)


def test_replay_refuses_a_checkpoint_manifest_beside_an_onnx_file(tmp_path, busi_sample):
    model = _copy(tmp_path)
    _edit(model, lambda m: m.update(format="checkpoint"))
    run = _replay(model, busi_sample, tmp_path)
    assert run.returncode != 0 and "'format'" in run.stderr


def test_save_manifest_refuses_an_artifact_that_does_not_exist(tmp_path):
    manifest = load_manifest(DEFAULT_MODEL)
    with pytest.raises(InputError, match="missing.onnx"):
        save_manifest(manifest, tmp_path / "missing.onnx")
    assert list(tmp_path.iterdir()) == []


def test_calibrate_writes_the_mask_filter_into_both_precisions(tmp_path, busi_dataset):
    model = _copy(tmp_path, DEFAULT_MODEL, FP16_MODEL)
    twin = tmp_path / FP16_MODEL.name
    for path in (model, twin):  # start from no filter, so the fit's choice is what is compared
        _edit(path, lambda m: m.pop("mask_filter", None))
    out = sonomap("calibrate", "--method", "mask-filter", "--checkpoint", model, "--data", busi_dataset)
    fp32, fp16 = load_manifest(model), load_manifest(twin)  # both still match their files
    assert fp32.mask_filter == fp16.mask_filter
    record = fp32.extra["mask_filter_fit"]
    assert fp16.extra["mask_filter_fit"] == {**record, "fitted_with": model.name}
    # by name: the folders above may be the patient's
    assert f"also written to {manifest_path(twin).name}" in out.stdout


def test_the_twins_are_each_others(tmp_path):
    assert twin_of(tmp_path / "model.onnx") == tmp_path / "model.fp16.onnx"
    assert twin_of(tmp_path / "model.fp16.onnx") == tmp_path / "model.onnx"
    assert twin_of(tmp_path / "best.pt") is None


def test_a_twin_from_another_export_is_refused_before_the_fit(tmp_path):
    model = _copy(tmp_path, DEFAULT_MODEL, FP16_MODEL)
    twin = tmp_path / FP16_MODEL.name
    assert twin_manifest(twin, load_manifest(twin))[0] == model  # fitted on FP16: the FP32 file too
    _edit(twin, lambda m: m["source"].update(fp32_onnx_sha256="1" * 64))
    with pytest.raises(ConfigError, match="fp32_onnx_sha256"):
        twin_manifest(model, load_manifest(model))


def test_a_failed_second_write_puts_the_first_manifest_back(tmp_path):
    model = _copy(tmp_path, DEFAULT_MODEL, FP16_MODEL)
    twin = tmp_path / FP16_MODEL.name
    before = manifest_path(model).read_bytes()
    fp32, fp16 = load_manifest(model), load_manifest(twin)
    twin.unlink()  # its manifest stays: the second save is refused after the first was written
    with pytest.raises(InputError, match="model.fp16.onnx"):
        write_together([(fp32.derive(threshold=0.9), model), (fp16.derive(threshold=0.9), twin)])
    assert manifest_path(model).read_bytes() == before


def test_a_stop_between_the_two_writes_acts_once_both_are_written(tmp_path, monkeypatch):
    """A real SIGTERM right after the first manifest is saved (save_manifest is wrapped only to send it
    at that moment) left the FP32 manifest with the new setting and its twin with the old one. Now the
    stop acts once both are written."""
    model = _copy(tmp_path, DEFAULT_MODEL, FP16_MODEL)
    twin = tmp_path / FP16_MODEL.name
    fp32, fp16 = load_manifest(model), load_manifest(twin)
    real_save, saved = mask_filter_fit.save_manifest, []

    def save_then_stop(manifest, artifact):
        real_save(manifest, artifact)
        saved.append(artifact)
        if len(saved) == 1:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(mask_filter_fit, "save_manifest", save_then_stop)
    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
        write_together([(fp32.derive(threshold=0.9), model), (fp16.derive(threshold=0.9), twin)])
    assert saved == [model, twin]
    assert load_manifest(model).threshold == load_manifest(twin).threshold == 0.9
