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
