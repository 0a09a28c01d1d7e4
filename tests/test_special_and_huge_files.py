"""A YAML file that is no regular file (a folder, a named pipe) or far larger than any config, case
or manifest is refused before it is read, in one line naming it: a pipe would block the reader for
ever, and a 300 MB case.yaml took a minute and a gigabyte and had its free text copied into every
report. A case.yaml naming a pipe or a device as its slide or annotation file says so, instead of
"file not found". Real files, pipes and `sonomap register`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from cli import sonomap

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.yamlfile import MAX_YAML_BYTES, read_yaml_mapping

EXIT_USER_ERROR = 2
pytestmark = pytest.mark.timeout(120)  # a reader that opened a pipe would hang here, not fail


def test_a_pipe_or_a_folder_is_no_yaml_file(tmp_path):
    pipe = tmp_path / "config.yaml"
    os.mkfifo(pipe)
    with pytest.raises(InputError, match=r"config\.yaml: config file is not a regular file$"):
        read_yaml_mapping(pipe, "config file")
    folder = tmp_path / "case.yaml"
    folder.mkdir()
    with pytest.raises(InputError, match=r"case\.yaml: is a folder, not a case file$"):
        read_yaml_mapping(folder, "case file")


def test_a_yaml_file_far_larger_than_any_config_is_refused_unread(tmp_path):
    big = tmp_path / "case.yaml"
    with open(big, "wb") as fh:  # sparse: nothing to read would be valid YAML, so the size decides
        fh.truncate(MAX_YAML_BYTES + 1)
    with pytest.raises(ConfigError, match=rf"case\.yaml: case file refused \({MAX_YAML_BYTES + 1} bytes"):
        read_yaml_mapping(big, "case file")
    fits = tmp_path / "fits.yaml"
    fits.write_text("source:\n  note: '" + "x" * (MAX_YAML_BYTES // 2) + "'\n")
    assert len(read_yaml_mapping(fits, "case file")["source"]["note"]) == MAX_YAML_BYTES // 2


@pytest.mark.parametrize("key", ["wsi", "annotations"])
def test_register_names_a_pipe_given_as_a_pathology_file(simulated_case, tmp_path, key):
    folder = tmp_path / "case"
    shutil.copytree(simulated_case, folder)
    path = folder / "case.yaml"
    case = yaml.safe_load(path.read_text())
    os.mkfifo(folder / "pipe")
    case["pathology"][key] = "pipe"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    out = tmp_path / "out"
    r = sonomap("register", path, "--out", out, check=False, timeout=60)
    assert r.returncode == EXIT_USER_ERROR and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pathology.{key}" in lines[0], lines
    assert f"{Path(folder / 'pipe')} is not a regular file" in lines[0], lines[0]
    assert not out.exists()
