"""Shared YAML reading (one-line errors naming the file) and the CPU bf16 switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.yamlfile import read_yaml_mapping
from training import config as tconfig


def test_yaml_mapping_errors_name_the_file(tmp_path: Path):
    with pytest.raises(InputError, match=r"nope\.yaml: config file not found"):
        read_yaml_mapping(tmp_path / "nope.yaml", "config file")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        read_yaml_mapping(bad, "config file")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: a case file must be a YAML mapping, got list"):
        read_yaml_mapping(listy, "case file")
    binary = tmp_path / "model.onnx"
    binary.write_bytes(b"\x08\x07\x12\x07pytorch\xff\xfe\x00")
    with pytest.raises(
        ConfigError, match=r"model\.onnx: a config file must be UTF-8 text \(byte 11 is not\)"
    ):
        read_yaml_mapping(binary, "config file")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml_mapping(empty, "config file", allow_empty=True) == {}
    with pytest.raises(ConfigError):
        read_yaml_mapping(empty, "config file")


def test_cpu_bf16_auto_follows_cpu_flags(monkeypatch, tmp_path: Path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    monkeypatch.setattr(tconfig, "CPUINFO", fake)
    assert tconfig.use_cpu_bf16("auto") is False
    assert tconfig.use_cpu_bf16(True) is True
    fake.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert tconfig.use_cpu_bf16("auto") is True
    assert tconfig.use_cpu_bf16(False) is False


def test_amp_cpu_bf16_rejects_other_values(tmp_path: Path, repo_root: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  amp_cpu_bf16: sometimes\n")
    with pytest.raises(ConfigError, match="train.amp_cpu_bf16"):
        tconfig.load_config(cfg)
    assert tconfig.load_config(repo_root / "configs" / "cpu-fast.yaml").train.amp_cpu_bf16 == "auto"


def test_aliases_within_the_limits_load_and_beyond_them_are_refused_naming_the_file(tmp_path: Path):
    reused = tmp_path / "reused.yaml"  # anchors a person may use to share a section
    reused.write_text(
        "base: &b {alpha: 0.4, boxes: [[1, 2, 3, 4]]}\noverlay: *b\nother:\n  <<: *b\n  ema: 0.1\n"
    )
    data = read_yaml_mapping(reused, "config file")
    assert data["overlay"] == data["base"] and data["other"] == {**data["base"], "ema": 0.1}
    refused = {
        # ten nested aliases per level: 10^7 leaves from a few hundred bytes
        "bomb": "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 7)),
        # merge keys expand the same way
        "merges": "m0: &m0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}\n"
        + "".join(f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * 10)}]}}\n" for n in range(1, 7)),
        "loop": "a: &a [1, *a]\n",
        # 60 levels written, reused inside 60 more: 120 once expanded
        "deep": "a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 60 + "*a" + "]" * 60 + "\n",
    }
    for name, text in refused.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        with pytest.raises(
            ConfigError, match=rf"{name}\.yaml: case file refused \((its aliases|an alias|nested)"
        ):
            read_yaml_mapping(path, "case file")


def test_a_name_the_file_system_cannot_look_up_is_one_line(tmp_path: Path):
    with pytest.raises(InputError, match=r"\.yaml: cannot read the case file \(File name too long\)"):
        read_yaml_mapping(tmp_path / ("x" * 300 + ".yaml"), "case file")


def test_a_key_given_twice_is_refused_naming_the_file_line_and_key(tmp_path: Path):
    twice = {
        # the lab's patient id entered twice under pathology: which core belongs to whom is unknown
        "pathology": (
            "id: c1\npathology:\n  wsi: slide.tif\n  patient_id: pat-c\n  patient_id: pat-a\n",
            "'patient_id' given twice in one mapping, at lines 4 and 5",
        ),
        "top": (
            "patient_id: pat-x\nid: c1\npatient_id: pat-y\n",
            "'patient_id' given twice .* lines 1 and 3",
        ),
        "blocks": ("pathology: {wsi: a.tif}\npathology: {wsi: b.tif}\n", "'pathology' given twice"),
        "flow": ("capture: {number: 1, number: 2}\n", "'number' given twice .* lines 1 and 1"),
        "same_value": ("classes: {1: tumor, 0x1: stroma}\n", "'1' given twice"),
    }
    for name, (text, why) in twice.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=rf"{name}\.yaml: case file refused \(key {why}"):
            read_yaml_mapping(path, "case file")
    merged = tmp_path / "merged.yaml"  # a key written beside a merge overrides the merged one
    merged.write_text("base: &b {alpha: 0.4, ema: 0.2}\nother:\n  <<: *b\n  ema: 0.1\n")
    assert read_yaml_mapping(merged, "config file")["other"] == {"alpha": 0.4, "ema": 0.1}


def test_shipped_yaml_files_give_no_key_twice(repo_root: Path):
    shipped = [
        *sorted((repo_root / "configs").glob("*.yaml")),
        *sorted((repo_root / "edge_runtime" / "configs").glob("*.yaml")),
        *sorted((repo_root / "edge_runtime" / "models").rglob("*.yaml")),
        repo_root / "systemd" / "config.yaml",
    ]
    assert len(shipped) > 3
    for path in shipped:
        read_yaml_mapping(path, "shipped file", allow_empty=True)  # ConfigError on a key given twice


def test_a_tab_an_escape_and_utf16_say_what_to_change_in_any_yaml_file(tmp_path):
    tabbed = tmp_path / "runtime.yaml"
    tabbed.write_text("overlay:\n\talpha: 0.5\n")
    with pytest.raises(ConfigError, match=r"runtime\.yaml: not valid YAML \(a tab at line 2, column 1: YAML"):
        read_yaml_mapping(tabbed, "config file")
    windows = tmp_path / "paths.yaml"
    windows.write_text('model: "C:\\Users\\Doe_Jane\\model.onnx"\n')
    with pytest.raises(ConfigError) as escaped:
        read_yaml_mapping(windows, "config file")
    assert "line 1, column" in str(escaped.value) and "single quotes" in str(escaped.value)
    assert "Doe_Jane" not in str(escaped.value)  # the line's text is never quoted
    notepad = tmp_path / "notepad.yaml"
    notepad.write_text("overlay:\n  alpha: 0.5\n", encoding="utf-16")
    with pytest.raises(ConfigError, match=r"notepad\.yaml: the config file was saved as UTF-16"):
        read_yaml_mapping(notepad, "config file")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_yaml_file_is_named_as_empty(tmp_path, text):
    path = tmp_path / "model.onnx.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"model\.onnx\.yaml: the model manifest is empty"):
        read_yaml_mapping(path, "model manifest")
    assert read_yaml_mapping(path, "model manifest", allow_empty=True) == {}


def test_an_empty_training_config_is_refused_and_braces_ask_for_the_defaults(tmp_path: Path):
    empty = tmp_path / "cut.yaml"
    empty.write_text("# a copy cut short\n")
    with pytest.raises(
        ConfigError, match=r"cut\.yaml: the config file is empty \(it holds no YAML mapping\)"
    ):
        tconfig.load_config(empty)
    braces = tmp_path / "defaults.yaml"
    braces.write_text("{}\n")
    assert tconfig.load_config(braces).model.arch == tconfig.TrainingConfig().model.arch
