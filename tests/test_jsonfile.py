"""Reports and HTTP answers are strict JSON: an undefined figure is null, never a bare NaN token."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.errors import InputError
from edge_runtime.jsonfile import atomic_write_json, finite_or_null, json_text, read_json


def _strict(text: str):
    """Parse as a strict reader (jq, JSON.parse) would: NaN/Infinity tokens are an error."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth():
    obj = {
        "dice": float("nan"),
        "ci95": (np.float32(0.25), np.float64("inf")),
        "rows": [{"p": np.nan, "n": np.int64(3), "ok": np.bool_(True)}, -np.inf],
        "name": "val",
    }
    assert finite_or_null(obj) == {
        "dice": None,
        "ci95": [0.25, None],
        "rows": [{"p": None, "n": 3, "ok": True}, None],
        "name": "val",
    }
    assert _strict(json_text(obj))["rows"][0] == {"p": None, "n": 3, "ok": True}
    with pytest.raises(ValueError, match="NaN"):
        _strict(json.dumps(obj["dice"]))  # what json.dumps alone wrote


def test_atomic_write_json_writes_a_strict_file_and_keeps_the_old_one_on_failure(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"dice_mean": np.nan, "n": 2})
    assert _strict(path.read_text()) == {"dice_mean": None, "n": 2}
    with pytest.raises(TypeError):
        atomic_write_json(path, {"when": object()})  # not JSON at all: refused, old file intact
    assert _strict(path.read_text()) == {"dice_mean": None, "n": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


@pytest.mark.parametrize(
    "content, why",
    [
        ('{"a": 1', "not readable as JSON"),
        (b"\xff\xfe", "not readable as JSON"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_read_json_names_the_damaged_file(tmp_path, content, why):
    path = tmp_path / "summary.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=why) as caught:
        read_json(path)
    assert str(caught.value).startswith(f"{path}: ")
    good = tmp_path / "ok.json"
    good.write_text('{"a": [1]}')
    assert read_json(good) == {"a": [1]}
