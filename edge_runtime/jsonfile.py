"""JSON text every reader can parse: a number that is not finite is written as ``null``.

Python's ``json`` writes NaN and infinity as the bare tokens ``NaN`` and ``Infinity``, which are
not JSON (RFC 8259): ``jq``, JavaScript's ``JSON.parse`` and strict parsers refuse the whole file.
sonomap's figures are NaN where they are undefined (Dice on images without cancer under the
empty-mask policy, a p value with too few cases), so every report, summary and HTTP answer goes
through :func:`json_text`, which writes those as ``null``. Shared by all four stages.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.atomic import atomic_write_text
from edge_runtime.errors import InputError


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every float that is NaN or infinite (also inside dicts, lists and tuples)
    replaced by None, and numpy scalars as plain Python numbers."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def json_text(obj: Any, indent: int | None = 2, default=None) -> str:
    """``obj`` as strict JSON text (non-finite numbers as ``null``); ``default`` as in ``json.dumps``."""
    return json.dumps(finite_or_null(obj), indent=indent, allow_nan=False, default=default)


def read_json(path: str | Path) -> Any:
    """A JSON file's value; a file that cannot be read or parsed (cut short, not UTF-8, nested deeper
    than the decoder's recursion allows) is an InputError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except RecursionError as exc:  # json's decoder recurses once per level: a damaged file, no traceback
        raise InputError(f"{path}: not readable as JSON (nested too deeply)") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({exc})") from exc


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (:func:`json_text`, a final newline) to ``path``, atomically."""
    return atomic_write_text(path, json_text(obj, indent) + "\n")
