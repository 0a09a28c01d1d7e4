"""Export into a hidden staging folder beside the target; install the files only once they pass.

An export writes files that belong together (model, manifest, FP16 twin and its manifest, parity
report). :func:`staged` makes ``.<name>.<pid>.XXXX.staging/`` in the target's folder, and the
export writes there under the final names (so every name recorded inside the files is already right).
Then exactly one of:

- :meth:`Staging.install` renames each file into the target's folder (same file system: each
  rename is atomic). The model's own manifest goes last: until then a reader sees the previous
  manifest, whose sha256 no longer matches, and refuses the pair instead of trusting it. Every final
  name is checked first (a folder or device there is refused before any rename, not after some), and
  SIGINT and SIGTERM are held from the first rename to the last, so a stop never ends the export there;
- :meth:`Staging.keep_failed` moves the whole folder to ``<name>.failed/`` beside the target
  (replacing an older failed one) for inspection: the previous good model is left as it was,
  and no loader looks inside a ``.failed`` folder by itself;
- on an error, Ctrl-C or SIGTERM (the export commands turn it into Ctrl-C) the staging folder is
  deleted when :func:`staged` exits.

A process killed outright (SIGKILL, power loss) can delete nothing: its folder, tens of MB, stays.
The writer's process id in the name lets the next export to the same target delete such leftovers
(:func:`remove_leftovers`) while leaving the folder of an export still running alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.atomic import check_creatable
from edge_runtime.errors import ConfigError
from edge_runtime.processes import orphans
from edge_runtime.stop_signals import signals_held

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
            tempfile.mkdtemp(
                prefix=f".{target.name}.{os.getpid()}.", suffix=STAGING_SUFFIX, dir=target.parent
            )
        )

    def path(self, name: str | None = None) -> Path:
        """The staged copy of the target (or of the file ``name`` beside it)."""
        return self.folder / (name or self.target.name)

    def install(self, names: list[str]) -> list[Path]:
        """Rename the staged files ``names`` (in this order) into the target's folder; returns their
        final paths. The staging folder is deleted afterwards with anything left in it."""
        finals = [self.target.with_name(name) for name in names]
        for final in finals:  # checked before the first rename: a later refusal would leave a mixed set
            if final.is_symlink() or not final.exists() or final.is_file():
                continue
            kind = "a folder" if final.is_dir() else "not a file"
            raise ConfigError(
                f"{final}: is {kind}, where the export installs that file: move it away; {untouched(self.target)}"
            )
        installed = []
        with signals_held():  # a stop between two renames would leave the new model beside the old manifest
            for name, final in zip(names, finals, strict=True):
                try:
                    os.replace(self.folder / name, final)
                except OSError as exc:
                    done = ", ".join(p.name for p in installed) or "none"
                    raise OSError(
                        exc.errno,
                        f"{exc.strerror or exc} (installing {name}; already installed: {done}): the files at "
                        f"{self.target.parent} are not one export now: export again",
                        str(final),
                    ) from exc
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


def untouched(target: Path) -> str:
    """What a failed export did to ``target``, for its last line: nothing, either way."""
    return f"{target} was left as it was" if target.exists() else f"nothing was written at {target}"


def check_target(target: Path, flag: str = "--out") -> None:
    """Refuse a target that cannot become a file before any work: a folder, a device or a pipe, or
    one below a file or in a folder this process may not write (named here, not as the hidden
    staging folder the failing call would name)."""
    if target.is_dir():
        raise ConfigError(f"{flag} {target}: is a folder, not a file: give a file name")
    if target.exists() and not target.is_file():
        raise ConfigError(f"{flag} {target}: is a device, pipe or socket, not a file: give a file name")
    check_creatable(target, flag)


def remove_leftovers(target: Path) -> list[Path]:
    """Delete the staging folders of ``target`` whose export process is gone (killed outright);
    return them. A folder of a process still running (another export to the same target) stays."""
    removed = []
    for folder in orphans(target, STAGING_SUFFIX):
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            shutil.rmtree(folder)
        except OSError as exc:  # e.g. another user's: this export does not need it gone
            print(f"could not delete {folder.name}, left by an export that was killed ({exc.strerror})")
            continue
        removed.append(folder)
    return removed


@contextmanager
def staged(target: str | Path) -> Iterator[Staging]:
    """A :class:`Staging` for ``target`` (its folder is made when missing); whatever is still staged
    when the block ends, by an error or without install/keep_failed, is deleted."""
    target = Path(target)
    check_target(target)
    made = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    for folder in remove_leftovers(target):
        print(f"removed {folder.name}: the unfinished files of an export that was killed")
    try:
        stage = Staging(target)
    except OSError as exc:
        raise staging_error(exc, target, target.parent) from exc
    try:
        yield stage
    except OSError as exc:
        raise staging_error(exc, target, stage.folder) from exc
    finally:
        stage.discard()  # a no-op after install or keep_failed: the folder is gone by then
        remove_empty(made)


def remove_empty(folders: list[Path]) -> None:
    """Delete the folders an export made for ``--out`` (deepest first) that hold nothing: an export
    that failed before it wrote anything leaves no trace at ``--out``, not even its folder."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink() or any(folder.iterdir()):
            return  # something is in it (a kept failed export): it and the folders above it stay
        try:
            folder.rmdir()
        except OSError:  # another export wrote into it since: it is theirs now
            return


def staging_error(exc: OSError, target: Path, folder: Path) -> OSError:
    """``exc`` about a file in the staging ``folder`` (a full disk, a quota) as an OSError naming
    ``target`` as the user gave it, the staged file and that nothing was replaced: the hidden
    staging path is deleted by the time the message is read. Errors about other files come back as
    they are (a checkpoint that cannot be read names the checkpoint)."""
    written = Path(exc.filename) if exc.filename else None
    if exc.errno is None or written is None or not (written == folder or folder in written.parents):
        return exc
    what = f" (writing {written.name})" if written != folder else ""
    return OSError(exc.errno, f"{exc.strerror or exc}{what}; {untouched(target)}", str(target))
