"""Export into a hidden staging folder beside the target; install the files only once they pass.

An export writes files that belong together (model, manifest, FP16 twin and its manifest, parity
report). :func:`staged` makes ``.<name>.XXXX.staging/`` in the target's folder, and the export
writes there under the final names (so every name recorded inside the files is already right).
Then exactly one of:

- :meth:`Staging.install` renames each file into the target's folder (same file system: each
  rename is atomic). The model's own manifest goes last: until then a reader sees the previous
  manifest, whose sha256 no longer matches, and refuses the pair instead of trusting it;
- :meth:`Staging.keep_failed` moves the whole folder to ``<name>.failed/`` beside the target
  (replacing an older failed one) for inspection: the previous good model is left as it was,
  and no loader looks inside a ``.failed`` folder by itself;
- on an error or Ctrl-C the staging folder is deleted when :func:`staged` exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.errors import ConfigError

STAGING_SUFFIX = ".staging"
FAILED_SUFFIX = ".failed"
FOLDER_MODE = 0o755  # mkdtemp makes 0700; a kept failed export is shared with the team like the model


def failed_path(target: str | Path) -> Path:
    """Where the files of a failed export of ``target`` are kept: ``model.onnx`` -> ``model.onnx.failed/``."""
    target = Path(target)
    return target.with_name(target.name + FAILED_SUFFIX)


class Staging:
    def __init__(self, target: Path):
        self.target = target
        self.folder = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=STAGING_SUFFIX, dir=target.parent)
        )

    def path(self, name: str | None = None) -> Path:
        """The staged copy of the target (or of the file ``name`` beside it)."""
        return self.folder / (name or self.target.name)

    def install(self, names: list[str]) -> list[Path]:
        """Rename the staged files ``names`` (in this order) into the target's folder; returns their
        final paths. The staging folder is deleted afterwards with anything left in it."""
        installed = []
        for name in names:
            final = self.target.with_name(name)
            os.replace(self.folder / name, final)
            installed.append(final)
        self.discard()
        return installed

    def keep_failed(self) -> Path:
        """Move the staged files to ``<target>.failed/`` (an older one is replaced); returns it."""
        kept = failed_path(self.target)
        if kept.is_dir() and not kept.is_symlink():
            shutil.rmtree(kept)
        elif kept.exists() or kept.is_symlink():
            kept.unlink()
        os.replace(self.folder, kept)
        kept.chmod(FOLDER_MODE)
        return kept

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def check_target(target: Path, flag: str = "--out") -> None:
    """Refuse a target that cannot become a file before any work: a folder, a device or a pipe."""
    if target.is_dir():
        raise ConfigError(f"{flag} {target}: is a folder, not a file: give a file name")
    if target.exists() and not target.is_file():
        raise ConfigError(f"{flag} {target}: is a device, pipe or socket, not a file: give a file name")


@contextmanager
def staged(target: str | Path) -> Iterator[Staging]:
    """A :class:`Staging` for ``target`` (its folder is made when missing); whatever is still staged
    when the block ends, by an error or without install/keep_failed, is deleted."""
    target = Path(target)
    check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Staging(target)
    try:
        yield stage
    finally:
        stage.discard()  # a no-op after install or keep_failed: the folder is gone by then
