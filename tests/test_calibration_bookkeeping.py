"""What `sonomap calibrate` records and refuses: the threshold a temperature fit restores after any
number of curve refits (the model's own, never a previous curve's), a fit that ends at a search
bound (refused in one line, manifest unchanged, never saved as fitted), a bad
``threshold_before`` record, and a mask filter removed by a later temperature or curve fit (it was
chosen on the probabilities that fit replaces). Real tiny checkpoints, `sonomap` run in process on the prepared
BUSI sample; the bound cases also through :func:`fit_temperature` on logits made by hand."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import yaml
from export_fixtures import shared_checkpoint

from edge_runtime.cli import EXIT_USER_ERROR
from edge_runtime.cli import main as sonomap
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from training.checkpoint import read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.isotonic import LOGIT_PARITY_THRESHOLD, uncalibrated_threshold
from training.mask_filter_record import FIT_RECORD
from training.temperature import T_MAX, T_MIN, LogitMap, TemperatureAtBound, fit_temperature

SPLIT = ("--split", "train")  # the sample's train split has the most pixels (as test_calibration_curve)
HEAD_SCALE = 0.002  # shrinks the classifier's logits until no T in range can sharpen them enough
MAP_SIZE = 48
# train images kept, malignant first (the band needs cancer): a few calibrations of the whole sample at
# each image's own size would take minutes
TRAIN_KEPT = 4


def _cut_train_split(folder, busi_dataset, malignant: int, benign: int = 0):
    """A copy of the prepared sample (the shared dataset is read-only) whose train split keeps its
    first ``malignant`` malignant and ``benign`` benign images."""
    out = folder / "ds"
    shutil.copytree(busi_dataset, out)
    with open(out / "cases.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    train = [r for r in rows if r["split"] == "train"]
    kept = [r for r in train if r["id"].startswith("malig")][:malignant]
    kept += [r for r in train if not r["id"].startswith("malig")][:benign]
    with open(out / "cases.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([r for r in rows if r["split"] != "train"] + kept)
    return out


@pytest.fixture(scope="module")
def few_images(tmp_path_factory, busi_dataset):
    """The prepared sample with its train split cut to TRAIN_KEPT malignant images."""
    return _cut_train_split(tmp_path_factory.mktemp("few"), busi_dataset, TRAIN_KEPT)


@pytest.fixture(scope="module")
def mixed_images(tmp_path_factory, busi_dataset):
    """Its train split cut to two malignant and two benign images: the tiny model marks false pixels
    on the benign ones, so the mask filter fitted there is one that does something (a peak gate)."""
    return _cut_train_split(tmp_path_factory.mktemp("mixed"), busi_dataset, 2, 2)


def _copy(tmp_path, name: str):
    ck = tmp_path / name / "tiny.pt"
    ck.parent.mkdir()
    shutil.copy2(shared_checkpoint(), ck)
    save_manifest(load_manifest(shared_checkpoint()), ck)
    return ck


def _calibrate(ck, data, *method) -> None:
    assert sonomap(["calibrate", "--checkpoint", str(ck), "--data", str(data), *SPLIT, *method]) == 0


def test_a_temperature_after_two_curve_fits_restores_the_models_own_threshold(tmp_path, few_images):
    """Curve, curve again, then temperature: the threshold goes back to the uncalibrated model's
    (0.5, logit parity), not to the first curve's value, and T is the one fitted on that band: the
    same as a temperature fitted straight on the uncalibrated checkpoint."""
    plain, refit = _copy(tmp_path, "plain"), _copy(tmp_path, "refit")
    original = load_manifest(plain).threshold
    _calibrate(plain, few_images)
    _calibrate(refit, few_images, "--method", "curve")
    first = load_manifest(refit)
    assert first.extra["calibration"]["threshold_before"] == original
    _calibrate(refit, few_images, "--method", "curve")
    second = load_manifest(refit)
    assert first.threshold != original  # the curve moved it: a stale copy would be visible
    assert second.extra["calibration"]["threshold_before"] == original
    _calibrate(refit, few_images)
    after, direct = load_manifest(refit), load_manifest(plain)
    assert after.calibration_curve is None and after.threshold == original
    assert after.temperature == pytest.approx(direct.temperature, rel=1e-6)
    assert after.extra["calibration"]["pixels"] == direct.extra["calibration"]["pixels"]


def test_a_bad_threshold_before_record_is_refused_naming_the_key(tmp_path, few_images, capsys):
    ck = _copy(tmp_path, "bad")
    _calibrate(ck, few_images, "--method", "curve")
    data = yaml.safe_load(manifest_path(ck).read_text())
    data["extra"]["calibration"]["threshold_before"] = "half"
    manifest_path(ck).write_text(yaml.safe_dump(data, sort_keys=False))
    before = manifest_path(ck).read_bytes()
    code = sonomap(["calibrate", "--checkpoint", str(ck), "--data", str(few_images), *SPLIT])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and len(err.splitlines()) == 1, err
    assert str(manifest_path(ck)) in err and "'extra.calibration.threshold_before'" in err
    assert manifest_path(ck).read_bytes() == before


def test_a_curve_without_a_record_goes_back_to_logit_parity():
    manifest = load_manifest(shared_checkpoint())
    curved = manifest.derive(
        calibration_curve={"margin": [-2.0, 0.0, 2.0], "prob": [0.1, 0.3, 0.9]}, threshold=0.3, extra={}
    )
    assert uncalibrated_threshold(curved, "m.yaml") == LOGIT_PARITY_THRESHOLD
    assert uncalibrated_threshold(manifest.derive(threshold=0.4), "m.yaml") == 0.4  # no curve: its own
    broken = curved.derive(extra={"calibration": {"threshold_before": 1.5}})
    with pytest.raises(ConfigError, match="m.yaml: 'extra.calibration.threshold_before'"):
        uncalibrated_threshold(broken, "m.yaml")


def _maps(truth_of, scale: float) -> list[LogitMap]:
    """Hand-made two-class logits: cancer margin ``d * scale``, truth ``truth_of(d)``."""
    rng = np.random.default_rng(0)
    maps = []
    for i in range(4):
        d = rng.normal(0.0, 3.0, (MAP_SIZE, MAP_SIZE)).astype(np.float32)
        logits = np.stack([np.zeros_like(d), d * np.float32(scale)])
        label = truth_of(d).astype(np.uint8)
        maps.append(LogitMap(f"img{i}", logits, label, np.zeros_like(label)))
    return maps


@pytest.mark.parametrize(
    "truth_of, scale, bound",
    [
        (lambda d: d > 0, 1e-3, T_MIN),  # perfectly separated, tiny margins: the NLL falls as T -> 0
        (lambda d: d < 0, 1.0, T_MAX),  # every confident call wrong: the NLL falls as T grows
    ],
    ids=["lower", "upper"],
)
def test_a_fit_that_ends_at_a_search_bound_is_refused(truth_of, scale, bound):
    with pytest.raises(TemperatureAtBound, match=f"search bound T = {bound:g}"):
        fit_temperature(_maps(truth_of, scale), cancer_index=1, band_px=1000)


@pytest.fixture(scope="module")
def flat_checkpoint(tmp_path_factory):
    """The shared tiny checkpoint with its classifier scaled down: the ranking of its pixels is kept
    but its logits barely differ, so the band NLL still falls at T = T_MIN."""
    folder = tmp_path_factory.mktemp("flat_ck")
    state = read_checkpoint(shared_checkpoint())
    for name, tensor in state["model"].items():
        if name.startswith("net.classifier.") and tensor.is_floating_point():
            tensor.mul_(HEAD_SCALE)
    return save_checkpoint(state, folder / "tiny.pt", load_manifest(shared_checkpoint()))


def test_calibrate_refuses_a_temperature_at_the_search_bound_and_keeps_the_manifest(
    flat_checkpoint, few_images, capsys
):
    before = manifest_path(flat_checkpoint).read_bytes()
    code = sonomap(["calibrate", "--checkpoint", str(flat_checkpoint), "--data", str(few_images), *SPLIT])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(flat_checkpoint) in err and "split train" in err and f"T = {T_MIN:g}" in err, err
    assert manifest_path(flat_checkpoint).read_bytes() == before  # nothing saved as "fitted"


def test_a_threshold_other_than_half_is_kept_as_a_probability_and_said_to_move_the_mask(
    tmp_path, few_images, capsys
):
    """At 0.5 a temperature keeps the mask (p >= 0.5 where the cancer logit wins); at 0.4 it does not,
    and the result line says so instead of a bare "kept"."""
    half, other = _copy(tmp_path, "half"), _copy(tmp_path, "other")
    save_manifest(load_manifest(other).derive(threshold=0.4), other)
    _calibrate(half, few_images)
    said_half = capsys.readouterr().out
    _calibrate(other, few_images)
    said_other = capsys.readouterr().out
    assert "threshold 0.5 kept (the same mask" in said_half
    assert "threshold 0.4 kept as a probability: unlike 0.5 its mask moves with the temperature" in said_other
    assert load_manifest(other).threshold == 0.4


def test_a_temperature_or_curve_fit_removes_the_mask_filter_fitted_on_the_probabilities_before(
    tmp_path, mixed_images, capsys
):
    """Curve, mask filter, temperature; then mask filter, curve: each probability fit drops the filter
    and its record (its min_peak and figures were of the probabilities replaced) and says so in one
    line; a fit with no filter to remove says nothing of one."""
    ck = _copy(tmp_path, "filtered")
    _calibrate(ck, mixed_images, "--method", "curve")
    for method in ((), ("--method", "curve")):
        _calibrate(ck, mixed_images, "--method", "mask-filter")
        fitted = load_manifest(ck)
        assert FIT_RECORD in fitted.extra
        chosen = fitted.extra[FIT_RECORD]["filter"]
        assert fitted.mask_filter is not None and fitted.mask_filter.describe() == chosen != "none"
        capsys.readouterr()
        _calibrate(ck, mixed_images, *method)
        said = capsys.readouterr().out.splitlines()
        after = load_manifest(ck)
        assert after.mask_filter is None and FIT_RECORD not in after.extra, method
        assert (after.calibration_curve is not None) == bool(method)  # the fit itself was written
        removed = [line for line in said if line.startswith("mask filter removed")]
        assert removed == [
            f"mask filter removed ({chosen}, and its record extra.mask_filter_fit): it was fitted on the "
            "previous probabilities; run `sonomap calibrate --method mask-filter` again"
        ], said
    _calibrate(ck, mixed_images)
    assert "mask filter" not in capsys.readouterr().out
