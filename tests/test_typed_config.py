"""The typed config layer (edge_runtime/typed_config.py) and the four files declared with it:
runtime config, training config, case.yaml, model manifest. Error shape: one line naming the file
and the full key path; the shipped examples agree with the defaults declared in the structs."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_runtime import config as runtime_config
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import Manifest, load_manifest
from edge_runtime.typed_config import as_dict, section_keys
from registration.case import load_case
from registration.case_example import CASE_EXAMPLE
from registration.case_schema import CaseFile
from training import config as training_config
from training.config_schema import TrainingConfig

REPO = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEFAULT_MODEL = REPO / "edge_runtime" / "models" / "default" / "model.onnx"
SHIPPED_RUNTIME_CHANGES = {("source", "input"): "synthetic"}  # default.yaml runs out of the box

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 3)), inner, max_size=3),
    ),
    max_leaves=10,
)


def assert_one_line(exc: SonomapError, origin: str) -> str:
    text = str(exc)
    assert "\n" not in text and text.startswith(origin), text
    return text


def with_changes(base: dict, data: dict) -> dict:
    """``base`` with values replaced at (section, key) paths chosen by hypothesis."""
    out = copy.deepcopy(base)
    for (section, key), value in data.items():
        if section is None:
            out[key] = value
        elif isinstance(out.get(section), dict):
            out[section][key] = value
        else:
            out[section] = {key: value}
    return out


def paths_of(sections: dict[str, tuple[str, ...]], top: tuple[str, ...] = ()) -> list:
    return [(s, k) for s, keys in sections.items() for k in (*keys, "bogus")] + [(None, k) for k in top]


# --------------------------------------------------------------------- error shape


def test_runtime_errors_name_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    cases = {
        "overlay: {alpha: abc}": "config key 'overlay.alpha' must be a number in [0, 0.7], got 'abc'",
        "overlay: {alpha: true}": "config key 'overlay.alpha' must be a number in [0, 0.7], got True",
        "source: {fps: .inf}": "config key 'source.fps' must be a number in [1, 240] (frames per second), got inf",
        "overlay: {alphaa: 1}": "config key 'overlay.alphaa' is unknown (known: alpha, classes,",
        "overlays: {}": "unknown config section 'overlays' (stages: source, roi,",
        "overlay: 3": "config section 'overlay' must be a mapping, got 3",
        "privacy: {blank: [[0, 0, 4, x]]}": "config key 'privacy.blank' must be a list of [x, y, w, h]",
        "inference: {threads: {a: [1]}}": "config key 'inference.threads' must be an integer >= 1",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            runtime_config.load_config(path)
        assert assert_one_line(err.value, str(path)).startswith(f"{path}: {message}"), err.value


def test_runtime_numbers_keep_their_type_and_overrides_leave_the_original():
    config = runtime_config.build_config({"sinks": {"fps": 30}, "roi": {"rect": [1, 2, 30, 40]}})
    assert config.sinks.fps == 30 and isinstance(config.sinks.fps, int)
    assert config.roi.rect == (1, 2, 30, 40)
    merged = runtime_config.merge(config, {"sinks": {"video": "out.mp4", "fps": None}})
    assert merged.sinks.video == "out.mp4" and merged.sinks.fps == 30 and config.sinks.video is None
    with pytest.raises(ConfigError, match="config key 'sinks.vidoe' is unknown"):
        runtime_config.merge(config, {"sinks": {"vidoe": "x"}})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"roi": {"mm_per_pixel": -1}}, "'roi.mm_per_pixel' must be a number > 0, got -1"),
        ({"source": {"fps": 0}}, "'source.fps' must be a number in [1, 240] (frames per second), got 0"),
        ({"source": {"max_frames": -3}}, "'source.max_frames' must be an integer >= 1, got -3"),
        ({"inference": {"stall_restart_s": 0.01}}, "'inference.stall_restart_s' (0.01 s) must be longer"),
    ],
)
def test_a_flag_is_validated_like_the_file_key_it_sets(overrides, message):
    """Overrides go through the same checks as a YAML file, cross-key rules included."""
    with pytest.raises(ConfigError) as err:
        runtime_config.merge(runtime_config.build_config(), overrides)
    assert str(err.value).startswith("command line: config key ") and message in str(err.value)


def test_a_bad_flag_value_is_one_line_before_anything_runs(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "live",
            "--source",
            "synthetic",
            "--headless",
            "--fps",
            "-5",
            "--duration",
            "1",
            "--summary",
            str(tmp_path / "s.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        "sonomap live: error: command line: config key 'source.fps' must be a number in [1, 240] "
        "(frames per second), got -5.0"
    ]
    assert not (tmp_path / "s.json").exists()


def test_training_epochs_abc_is_one_line_naming_key_and_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("train:\n  epochs: abc\n")
    with pytest.raises(ConfigError) as err:
        training_config.load_config(path)
    assert assert_one_line(err.value, str(path)) == (
        f"{path}: config key 'train.epochs' must be an integer >= 1 and <= 100000, got 'abc'"
    )
    path.write_text("train:\n  lr: 1e-3\n  lr_rate: 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train.lr_rate' \(known: amp, "):
        training_config.load_config(path)
    path.write_text("train:\n  lr: 1e-3\naugment:\n  gain: ['5e-1', 2]\n")
    cfg = training_config.load_config(path)
    assert cfg.train.lr == pytest.approx(1e-3) and cfg.augment.gain == [0.5, 2]


def test_manifest_errors_name_the_key_path(tmp_path):
    data = load_manifest(DEFAULT_MODEL).to_dict()
    bad = copy.deepcopy(data)
    bad["classes"][1]["color"] = "red"
    with pytest.raises(ConfigError, match=r"m.yaml: malformed manifest value: 'classes\[1\].color' must be"):
        Manifest.from_dict(bad, "m.yaml")
    del bad["input"]["height"]
    with pytest.raises(ConfigError, match="m.yaml: missing key 'input.height'"):
        Manifest.from_dict(bad, "m.yaml")
    with pytest.raises(ConfigError, match="m.yaml: unknown manifest key 'bias'"):
        Manifest.from_dict({**data, "bias": 0.1}, "m.yaml")
    data["classes"][1]["name"] = "lesion"
    with pytest.raises(ConfigError, match="m.yaml: no class named 'cancer' in 'classes'"):
        Manifest.from_dict(data, "m.yaml")


def test_manifest_round_trips_byte_for_byte():
    text = (REPO / "edge_runtime" / "models" / "default" / "model.onnx.yaml").read_text()
    manifest = Manifest.from_dict(yaml.safe_load(text), "model.onnx.yaml")
    assert yaml.safe_dump(manifest.to_dict(), sort_keys=False) == text
    assert manifest.derive(temperature=2.0).temperature == 2.0 and manifest.temperature != 2.0


def test_case_errors_keep_their_shape(case_dir):
    path = case_dir / "case.yaml"
    for change, message in {
        ("ultrasound", "frame"): "ultrasound.frame must be an integer >= 0, got 'abc'",
        (
            "needle",
            "gauge",
        ): "needle.gauge must be an integer in [7, 25] (a biopsy needle's gauge), got 'abc'",
        (
            "pathology",
            "reader",
        ): "pathology.reader must be one of ('auto', 'tifffile', 'openslide'), got 'abc'",
        ("pathology", "shrinkag"): "unknown key(s) ['shrinkag'] in 'pathology' (allowed: [",
    }.items():
        path.write_text(yaml.safe_dump(with_changes(VALID_CASE, {change: "abc"})))
        with pytest.raises(ConfigError) as err:
            load_case(path)
        assert assert_one_line(err.value, str(path)).startswith(f"{path}: {message}"), err.value


# --------------------------------------------------------------------- defaults vs shipped examples


def test_shipped_runtime_config_spells_out_every_default():
    shipped = yaml.safe_load((REPO / "edge_runtime" / "configs" / "default.yaml").read_text())
    defaults = as_dict(RuntimeConfig())
    assert {s: sorted(v) for s, v in shipped.items()} == {s: sorted(v) for s, v in defaults.items()}
    for section, keys in defaults.items():
        for key, value in keys.items():
            want = SHIPPED_RUNTIME_CHANGES.get((section, key), value)
            assert shipped[section][key] == want, f"default.yaml {section}.{key}: {shipped[section][key]!r}"


def test_training_recipes_load_and_only_override_known_keys():
    recipes = sorted((REPO / "configs").glob("*.yaml"))
    assert recipes
    for recipe in recipes:
        cfg = training_config.load_config(recipe)
        assert isinstance(cfg, TrainingConfig)
    assert training_config.validate({}, "<defaults>") == TrainingConfig()


def test_case_example_names_every_key_and_shows_the_defaults(case_dir):
    example = yaml.safe_load(CASE_EXAMPLE.replace("# fresh_length_mm", "  fresh_length_mm"))
    sections = section_keys(CaseFile)
    listed = {k: set(v) for k, v in example.items() if isinstance(v, dict) and k in sections}
    for name, keys in sections.items():
        expected = set(keys)
        assert expected <= listed.get(name, set()), (
            f"CASE_EXAMPLE lacks {name}: {expected - listed.get(name, set())}"
        )
    assert set(CaseFile.__struct_fields__) - set(example) <= {"notes", "capture"}
    assert example["pathology"]["tip_end"] == "left" and example["pathology"]["reader"] == "auto"
    assert example["needle"]["gauge"] == 14 and example["ultrasound"]["frame"] == 0


# --------------------------------------------------------------------- fuzzing all four


RUNTIME_PATHS = paths_of(section_keys(RuntimeConfig))
TRAINING_PATHS = paths_of(section_keys(TrainingConfig), ("name", "bogus"))
CASE_PATHS = paths_of(section_keys(CaseFile), ("id", "patient_id", "source", "notes", "capture", "bogus"))
MANIFEST_PATHS = (
    [
        (None, k)
        for k in ("name", "arch", "format", "classes", "threshold", "temperature", "io", "bogus", "extra")
    ]
    + [("input", k) for k in ("height", "width", "channels", "x")]
    + [("normalisation", k) for k in ("mean", "std", "scale", "x")]
)


def check_error(exc: SonomapError, origin: str, changes: dict) -> None:
    """One line, starting with the file, naming (a section or key of) what was changed."""
    text = assert_one_line(exc, origin)
    assert "Traceback" not in text and len(text) < 600, text
    names = {name for path in changes for name in path if name is not None}
    assert any(name in text[len(origin) :] for name in names), text


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(RUNTIME_PATHS), garbage, max_size=4))
def test_fuzz_runtime_config_structure(changes):
    try:
        config = runtime_config.build_config(with_changes({}, changes), "fuzz.yaml")
    except SonomapError as exc:
        check_error(exc, "fuzz.yaml", changes)
        return
    assert runtime_config.build_config(as_dict(config)) == config


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(TRAINING_PATHS), garbage, max_size=4))
def test_fuzz_training_config_structure(changes):
    try:
        cfg = training_config.validate(with_changes({}, changes), "train.yaml")
    except SonomapError as exc:
        check_error(exc, "train.yaml", changes)
        return
    assert len(training_config.config_hash(cfg)) == 64
    assert cfg.data.input_size is None and len(cfg.train.class_weights) == cfg.model.num_classes


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(MANIFEST_PATHS), garbage, max_size=3))
def test_fuzz_manifest(changes):
    base = load_manifest(DEFAULT_MODEL).to_dict()
    try:
        manifest = Manifest.from_dict(with_changes(base, changes), "model.onnx.yaml")
    except SonomapError as exc:
        check_error(exc, "model.onnx.yaml", changes)
        return
    assert Manifest.from_dict(manifest.to_dict(), "again") == manifest
    assert 0 <= manifest.cancer_index < manifest.num_classes


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(CASE_PATHS), garbage, max_size=3))
def test_fuzz_case_yaml_structure(case_dir, changes):
    path = case_dir / "case.yaml"
    path.write_text(yaml.safe_dump(with_changes(VALID_CASE, changes)))
    try:
        spec = load_case(path)
    except SonomapError as exc:
        check_error(exc, str(path), changes)
        return
    assert spec.image.is_file() and spec.pathology.wsi.is_file()


VALID_CASE = {
    "id": "case_1",
    "ultrasound": {"image": "us.png", "mm_per_pixel": 0.1, "frame": 0},
    "needle": {"tip": [40, 30], "shaft": [10, 10], "gauge": 14},
    "pathology": {"wsi": "core.tif", "annotations": "core.geojson", "mpp": 4.0},
}
