"""Read a YAML file that must hold a mapping, with errors that name the file.

Shared by every stage that reads YAML a person wrote (runtime config, model manifest,
case.yaml, training config), so each gives the same one-line messages.

Input: a path and the file's role ("case file"). Output: the file's top-level mapping, or one
``InputError`` (missing or unreadable file) / ``ConfigError`` (not YAML, not a mapping, or refused
as below) naming the file.

Two limits keep a small hostile file from hanging or crashing the reader's callers:

- Nesting is limited to ``MAX_DEPTH`` levels: PyYAML's composer recurses once per level, so a
  file of ``a: [[[ ... ]]]`` thousands deep would end in a RecursionError traceback. The
  pure-Python ``SafeLoader`` is used on purpose: its scanner and parser keep their state on
  explicit stacks, so the depth check below stops such a file after ``MAX_DEPTH`` levels, before
  the Python stack grows (libyaml's ``CSafeLoader`` composes in compiled code this check cannot
  reach).
- Aliases may add at most ``MAX_ALIASED_NODES`` nodes to what the file writes out. An alias
  (``*a``) stands for the whole node anchored as ``&a``; PyYAML shares that node instead of copying
  it, so loading stays fast, but every caller that walks the data (``str()``, ``repr()`` in an
  error, a validator) walks each use again: ten lines of nested aliases make 10^9 leaves, and
  ``sonomap cases`` would hang on a 1 KB case.yaml. Each node's size and depth as the data holds
  it (aliases expanded) is counted while composing, from its children's counts, so the check costs
  one step per node written however far the aliases would expand; the depth limit applies to that
  expanded depth too, and an alias inside the node it names (a loop) is refused. Anchors and
  aliases within these limits load as before: a config may reuse a section that way.

Where a file is not valid YAML, the message gives the line and column and what to change for the
slips a text editor makes most (never the text there: a path on that line may carry the patient's
name, and the message reaches logs and reports): a tab in the indentation, a Windows path in double
quotes (``"C:\\Users\\..."``: ``\\U`` starts an escape), and a file saved as UTF-16 (Notepad's
"Unicode").

A key given twice in one mapping is refused too (:class:`DuplicateKey`, naming the key and both
lines). PyYAML would keep the last value without a word, so a case.yaml with two ``patient_id`` or
two ``pathology`` blocks would pair the core with whichever came last. Keys a merge (``<<: *base``)
brings in are not duplicates: keys written in the mapping override them, as YAML means.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

from edge_runtime.errors import ConfigError, InputError

MAX_DEPTH = 100  # nested mappings/lists; real configs and case files stay under 10
# A config, case.yaml or manifest is kilobytes (the largest sonomap writes, a manifest with its
# calibration curve, is under 10 KB); a 300 MB one took a minute and a gigabyte to read, and its
# free text was copied into every report.
MAX_YAML_BYTES = 8 * 1024 * 1024
# nodes aliases may add beyond those written out; no sonomap file uses anywhere near this many,
# and a caller walks this many nodes in well under a second
MAX_ALIASED_NODES = 100_000
SHOWN_KEY_CHARS = 40  # a duplicate key longer than this is cut in the message (one line)
MERGE_TAG = "tag:yaml.org,2002:merge"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
SNIFF_BYTES = 64  # UTF-16 without a mark: ASCII text has a NUL byte beside each character


class RefusedYaml(yaml.YAMLError):
    """A document that is valid YAML but too large or too deep once its aliases are expanded."""


class DuplicateKey(RefusedYaml):
    """A mapping that gives one key twice: which value was meant cannot be known."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses nesting deeper than ``MAX_DEPTH`` (as written or through
    aliases) and aliases adding more than ``MAX_ALIASED_NODES`` nodes (module docstring)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0
        self._written = 0  # nodes composed from the text (aliases not counted)
        self._expanded: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, depth) aliases expanded

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)  # the anchored node, shared, or a ComposerError
            if id(node) not in self._expanded:  # its anchor's node is still being composed
                raise RefusedYaml(f"an alias inside the node it names (a loop) at {where}")
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels at {where}")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._written += 1
        self._measure(node, where)
        if isinstance(node, yaml.MappingNode):
            self._refuse_duplicates(node)
        return node

    def _measure(self, node, where: str) -> None:
        """Record ``node``'s size and depth with its aliases expanded (its children, composed
        before it, are recorded already); RefusedYaml past a limit."""
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        counts = [self._expanded[id(child)] for child in children]
        nodes = 1 + sum(n for n, _ in counts)
        depth = 1 + max((d for _, d in counts), default=0)
        if depth > MAX_DEPTH:
            raise RefusedYaml(f"nested deeper than {MAX_DEPTH} levels through aliases, at {where}")
        # the nodes written so far include all of this node's own, so this never overcounts
        if nodes - self._written > MAX_ALIASED_NODES:
            raise RefusedYaml(
                f"its aliases expand to more than {MAX_ALIASED_NODES} nodes beyond those written, at {where}"
            )
        self._expanded[id(node)] = (nodes, depth)

    def _refuse_duplicates(self, node) -> None:
        """DuplicateKey when the mapping ``node`` writes one scalar key twice, compared as Python
        compares the keys it loads (``1`` and ``0x1`` are one key). Checked as composed, before
        construction flattens merges in: keys a merge brings are overridden by written ones, as meant."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
                continue  # a collection as a key is unhashable: SafeLoader's own error names it
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKey(
                    f"key {_shown(key)} given twice in one mapping, at lines {seen[key]} and {line}"
                )
            seen[key] = line


def _shown(key: Any) -> str:
    """``key`` quoted for a one-line message, cut after SHOWN_KEY_CHARS characters."""
    text = str(key)
    return repr(text if len(text) <= SHOWN_KEY_CHARS else text[:SHOWN_KEY_CHARS] + "...")


def _where(exc: yaml.MarkedYAMLError) -> str:
    """What PyYAML found wrong, where, and what to change for the common slips (module docstring)."""
    mark = exc.problem_mark
    problem = exc.problem or "not valid here"
    if mark is None:
        return problem
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    buffer = mark.buffer or ""
    if 0 <= mark.pointer < len(buffer) and buffer[mark.pointer] == "\t":
        return f"a tab at {where}: YAML indents with spaces only; replace the tab with spaces"
    if "escape" in problem:
        return (
            f"{problem} at {where}: a backslash in double quotes starts an escape; write a Windows path "
            "with '/', or in single quotes"
        )
    return f"{problem} at {where}"


def _not_utf8(path: Path, what: str, exc: UnicodeDecodeError) -> ConfigError:
    try:
        head = path.read_bytes()[:SNIFF_BYTES]
    except OSError:
        head = b""
    halves = (head[1::2], head[0::2])  # UTF-16 LE, BE: the high bytes of ASCII text are all NUL
    if head.startswith(UTF16_BOMS) or any(half and not half.strip(b"\x00") for half in halves):
        return ConfigError(
            f"{path}: the {what} was saved as UTF-16 (Notepad's 'Unicode'); save it again as UTF-8"
        )
    return ConfigError(f"{path}: a {what} must be UTF-8 text (byte {exc.start} is not)")


def read_yaml_mapping(path: str | Path, what: str, allow_empty: bool = False) -> dict[str, Any]:
    """``path`` -> its top-level mapping. ``what`` names the file's role in messages
    (e.g. "config file"). An empty file gives ``{}`` when ``allow_empty``. A file over
    ``MAX_YAML_BYTES``, or no regular file (a folder, a pipe, a device), is refused before reading."""
    path = Path(path)
    try:
        if not path.is_file():
            if path.is_dir():
                raise InputError(f"{path}: is a folder, not a {what}")
            there = path.exists()  # a pipe or a device is there, but no file to read
            raise InputError(f"{path}: {what} " + ("is not a regular file" if there else "not found"))
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{path}: {what} refused ({size} bytes; a {what} is kilobytes, at most {MAX_YAML_BYTES})"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a binary file given where YAML belongs, or UTF-16 from Notepad
        raise _not_utf8(path, what, exc) from exc
    except OSError as exc:  # unreadable (permissions), or a name the file system refuses
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from exc
    try:
        data = yaml.load(text, Loader=_BoundedLoader)
    except RefusedYaml as exc:
        raise ConfigError(f"{path}: {what} refused ({exc})") from exc
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({_where(exc)})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    except RecursionError as exc:  # belt and braces: the depth check should stop it first
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from exc
    if data is None and allow_empty:
        return {}
    if data is None:  # an empty file, or one of comments only: a copy cut short, or never filled in
        raise ConfigError(f"{path}: the {what} is empty (it holds no YAML mapping)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a YAML mapping, got {type(data).__name__}")
    return data
