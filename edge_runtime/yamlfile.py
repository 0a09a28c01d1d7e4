"""Read a YAML file that must hold a mapping, with errors that name the file.

Shared by every stage that reads YAML a person wrote (runtime config, model manifest,
case.yaml, training config), so each gives the same one-line messages.

Nesting is limited to ``MAX_DEPTH`` levels: PyYAML's composer recurses once per level, so a
file of ``a: [[[ ... ]]]`` thousands deep would end in a RecursionError traceback; no file
sonomap reads comes near the limit. The pure-Python ``SafeLoader`` is used on purpose: its
scanner and parser keep their state on explicit stacks, so the depth check below stops such a
file after ``MAX_DEPTH`` levels, before the Python stack grows (libyaml's ``CSafeLoader``
composes in compiled code this check cannot reach).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edge_runtime.errors import ConfigError, InputError

MAX_DEPTH = 100  # nested mappings/lists; real configs and case files stay under 10


class _DepthLimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses nesting deeper than ``MAX_DEPTH``."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"nested deeper than {MAX_DEPTH} levels at line {mark.line + 1}, column {mark.column + 1}"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml_mapping(path: str | Path, what: str, allow_empty: bool = False) -> dict[str, Any]:
    """``path`` -> its top-level mapping. ``what`` names the file's role in messages
    (e.g. "config file"). An empty file gives ``{}`` when ``allow_empty``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_DepthLimitedLoader)
    except UnicodeDecodeError as exc:  # a binary file given where YAML belongs
        raise ConfigError(f"{path}: a {what} must be UTF-8 text (byte {exc.start} is not)") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    except RecursionError as exc:  # belt and braces: the depth check should stop it first
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from exc
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a YAML mapping, got {type(data).__name__}")
    return data
