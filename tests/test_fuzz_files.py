"""Hypothesis fuzzing of the files a research team writes by hand: training configs and
case.yaml. Contract: a validated result the next stages can use, or a clean SonomapError naming
the file (and key); never another exception. Plus one bad value of each through the real CLI."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import yaml
from cli import sonomap
from fuzz_values import values
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_runtime.errors import SonomapError
from edge_runtime.safe_names import safe_name
from edge_runtime.typed_config import section_keys
from registration.case import load_case
from training.config import config_hash, load_config
from training.config_schema import ARCH_NAMES, TrainingConfig
from training.losses import build_loss
from training.models import ARCHS
from training.optim import PolySchedule, build_optimizer
from training.transforms import make_example

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EXAMPLE_SIZE = (24, 24)  # augmentations are exercised at a small size; the config's size is only checked

# values of the right shape, so that fuzzing also reaches the stages that use a config
plausible = st.one_of(
    st.integers(-3, 300),
    st.floats(-2.0, 2.0),
    st.booleans(),
    st.sampled_from(
        [
            "auto",
            "adamw",
            "sgd",
            "ce",
            "weighted_ce",
            "ce_dice",
            "dice_mean",
            "unet_small",
            "1e-3",
            "abc",
            "",
            "../x",
        ]
    ),
    st.lists(st.one_of(st.floats(-0.5, 2.0), st.integers(0, 3)), max_size=3),
)
anything = st.one_of(values, plausible)


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_config_knows_every_architecture():
    assert set(ARCH_NAMES) == set(ARCHS)


# --------------------------------------------------------------------- training config


def training_configs():
    sections = {
        name: st.dictionaries(st.sampled_from(sorted(keys) + ["bogus"]), anything, max_size=4)
        for name, keys in section_keys(TrainingConfig).items()
    }
    return st.fixed_dictionaries({}, optional={**sections, "name": anything, "bogus": anything})


def use_training_config(cfg: dict) -> None:
    """What training does with the values before it touches data: augment, loss, optimiser, schedule."""
    tc, classes = cfg.train, cfg.model.num_classes
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    label = (gray > 128).astype(np.uint8)
    x, y = make_example(gray, label, EXAMPLE_SIZE, 0.5, 0.25, rng, cfg.augment)
    assert x.shape == (1, *EXAMPLE_SIZE) and np.isfinite(x).all() and y.shape == EXAMPLE_SIZE
    loss = build_loss(tc)(torch.zeros(1, classes, *EXAMPLE_SIZE), torch.from_numpy(y).long().unsqueeze(0))
    assert math.isfinite(float(loss))
    optimizer = build_optimizer(torch.nn.Conv2d(1, classes, 1), tc)
    PolySchedule(optimizer, tc.warmup_iters, tc.poly_power).step(0.5)
    assert len(config_hash(cfg)) == 64


@FUZZ
@given(data=training_configs())
@example(
    data={
        "augment": {"scale": [0.5, 2.0], "gamma": [0.5, 1.5], "blur_p": 1.0, "speckle_p": 1.0},
        "train": {"loss": "weighted_ce", "optimizer": "sgd", "lr": "1e-3", "warmup_iters": 0},
    }
)
@example(data={"model": {"num_classes": 3}, "train": {"class_weights": [1, 2, 0.5], "loss": "ce_dice"}})
def test_fuzz_training_config_values(tmp_path, data):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        cfg = load_config(path)
    except SonomapError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    use_training_config(cfg)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.sampled_from(
            [
                "train: [",
                "train:\n  epochs: abc",
                "- 1",
                "model: {arch: [x]}",
                "\t\x00",
                "eval:\n  threshold: .nan",
                "*x",
                "&a [*a]",
                "train:\n  lr: 1e999",
            ]
        ),
    )
)
def test_fuzz_training_config_text(tmp_path, text):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    try:
        use_training_config(load_config(path))
    except SonomapError as exc:
        assert str(path) in str(exc)


def test_cli_train_names_the_bad_key_and_file(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("train:\n  epochs: abc\n")
    err = one_line_error(
        sonomap(
            "train", "--config", config, "--data", tmp_path / "none", "--out", tmp_path / "r", check=False
        )
    )
    assert f"{config}: config key 'train.epochs' must be an integer >= 1" in err and "got 'abc'" in err
    config.write_text("augment:\n  scale: [1.5, 0.5]\n")
    err = one_line_error(sonomap("bench-train", "--config", config, "--data", tmp_path / "none", check=False))
    assert f"{config}: config key 'augment.scale' must be a range [low, high]" in err


# --------------------------------------------------------------------- case.yaml

VALID_CASE = {
    "id": "case_1",
    "patient_id": "P1",
    "source": {"image_id": "x"},
    "ultrasound": {"image": "us.png", "mm_per_pixel": 0.1, "frame": 0},
    "needle": {"tip": [40, 30], "shaft": [10, 10], "gauge": 14},
    "pathology": {"wsi": "core.tif", "annotations": "core.geojson", "mpp": 4.0, "tip_end": "left"},
}
CASE_PATHS = [
    "id",
    "patient_id",
    "source",
    "notes",
    "bogus",
    "ultrasound",
    "needle",
    "tract",
    "pathology",
    "ultrasound.image",
    "ultrasound.mm_per_pixel",
    "ultrasound.frame",
    "ultrasound.dataset_image",
    "ultrasound.dataset_frame",
    "needle.tip",
    "needle.shaft",
    "needle.gauge",
    "needle.notch_mm",
    "needle.tip_offset_mm",
    "needle.width_mm",
    "tract.start",
    "tract.end",
    "tract.width_mm",
    "pathology.wsi",
    "pathology.roi",
    "pathology.mpp",
    "pathology.annotations",
    "pathology.annotation_mpp",
    "pathology.cancer_classes",
    "pathology.tip_end",
    "pathology.shrinkage",
    "pathology.fresh_length_mm",
    "pathology.flip_across",
    "pathology.bogus",
]
case_values = st.one_of(
    anything,
    st.sampled_from(
        [
            "us.png",
            "core.tif",
            "auto",
            "../../x",
            "/etc/passwd",
            "a\x00b",
            "x" * 300,
            [1, 2],
            [0, 0, 10, 10],
            14,
            0.85,
        ]
    ),
)


def mutate(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        if not section:
            out[key] = value
        elif isinstance(out.get(section), dict):
            out[section][key] = value
        else:
            out[section] = {key: value}
    return out


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(CASE_PATHS), case_values, max_size=4))
@example(changes={"ultrasound.image": "x" * 300})
@example(changes={"pathology.wsi": "a\x00b", "id": "../../x"})
@example(changes={"source": "text", "needle": "auto"})
def test_fuzz_case_yaml_values(case_dir, changes):
    path = case_dir / "case.yaml"
    path.write_text(yaml.safe_dump(mutate(VALID_CASE, changes)))
    try:
        spec = load_case(path)
    except SonomapError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert safe_name(spec.id, "id") == spec.id and safe_name(spec.patient_id, "patient_id") == spec.patient_id
    assert spec.image.is_file() and spec.pathology.wsi.is_file() and spec.pathology.annotations.is_file()
    for value in (spec.mm_per_pixel or ()) + (spec.pathology.mpp or 1.0, spec.pathology.shrinkage or 1.0):
        assert math.isfinite(value) and value > 0


@FUZZ
@given(
    text=st.one_of(st.text(max_size=200), st.sampled_from(["id: [", "- 1", "ultrasound: 3", "\t\x00", "*x"]))
)
def test_fuzz_case_yaml_text(case_dir, text):
    path = case_dir / "case.yaml"
    path.write_text(text)
    try:
        load_case(path)
    except SonomapError as exc:
        assert str(path) in str(exc)


def test_cli_register_names_the_bad_key_and_file(case_dir, tmp_path):
    path = case_dir / "bad_frame.yaml"
    path.write_text(yaml.safe_dump(mutate(VALID_CASE, {"ultrasound.frame": "abc"})))
    err = one_line_error(sonomap("register", path, "--out", tmp_path / "out", check=False))
    assert f"{path}: ultrasound.frame must be an integer >= 0, got 'abc'" in err
    assert not (tmp_path / "out").exists()
