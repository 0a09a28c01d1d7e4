"""Read a YAML file that must hold a mapping, with errors that name the file.

Shared by every stage that reads YAML a person wrote (runtime config, model manifest,
case.yaml, training config), so each gives the same one-line messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edge_runtime.errors import ConfigError, InputError


def read_yaml_mapping(path: str | Path, what: str, allow_empty: bool = False) -> dict[str, Any]:
    """``path`` -> its top-level mapping. ``what`` names the file's role in messages
    (e.g. "config file"). An empty file gives ``{}`` when ``allow_empty``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:  # a binary file given where YAML belongs
        raise ConfigError(f"{path}: a {what} must be UTF-8 text (byte {exc.start} is not)") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a YAML mapping, got {type(data).__name__}")
    return data
