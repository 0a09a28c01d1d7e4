"""Test helper: which files a command reads, proved without mocking the image library.

- :func:`decodes`, a fixture: every file decoded through ``training.data``'s loader, counted by a
  wrapper that calls the real one (path -> times);
- :func:`opened_under`: ``sonomap ARGS`` in a child process that logs every ``open()`` of a file under
  a folder through Python's audit hook (an access log, not a wrapper).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import training.data as data_module

CHILD_TIMEOUT_S = 600
# the child: `sonomap ARGS`, printing each file it opens under ROOT (Python's audit log)
OPEN_LOG = """
import os, sys
root = os.path.realpath(sys.argv[1])
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(root + os.sep):
            opened.append(os.path.relpath(path, root))
sys.addaudithook(hook)
from edge_runtime.cli import main
code = main(sys.argv[2:])
print("\\n".join(["OPENED"] + opened))
sys.exit(code)
"""


@pytest.fixture
def decodes(monkeypatch) -> Counter:
    """Every file decoded through training.data's loader (the real one, counted): path -> times."""
    counted: Counter = Counter()
    real = data_module.read_image

    def counting(path, *args, **kwargs):
        counted[Path(path)] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(data_module, "read_image", counting)
    return counted


def opened_under(root: Path, args: list[str]) -> tuple[subprocess.CompletedProcess, Counter]:
    """``sonomap ARGS`` run in a child process; (the finished process, files under ``root`` it
    opened, by path relative to ``root`` -> times)."""
    child = subprocess.run(
        [sys.executable, "-c", OPEN_LOG, str(root), *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    listed = child.stdout.split("OPENED\n", 1)[1].split() if "OPENED\n" in child.stdout else []
    return child, Counter(listed)
