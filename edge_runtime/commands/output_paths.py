"""Where a command's outputs go, checked before anything is read or written.

Input: the outputs a command was asked to write (:class:`Output`: the option that named it, the
path as the run writes it, file or folder) and the files it reads (the input and the data files its
header names, ``--config``, ``--model``). Output: nothing, or a one-line
:class:`~edge_runtime.errors.ConfigError` naming the option(s) and the path when an output

- is one of the inputs: writing it would destroy what is being read;
- is the same file as another output: two writers in one file leave neither readable;
- cannot be created: an existing folder where a file goes (or a file where a folder goes), a
  parent that is a file, a folder this process may not write in;
- exists and is neither a regular file nor a folder (a FIFO, a device such as ``/dev/null``, a
  socket): an :class:`~edge_runtime.errors.InputError` naming its kind. Opening a FIFO nobody reads
  blocks for ever (signals included); a device swallows the output or fails it after the run; and
  live keeps an existing recording and records beside it under a new name
  (:mod:`edge_runtime.sinks.recordings`), which would put ``/dev/null-1`` in ``/dev``.

The commands run these checks before any sink opens, so a bad path is refused at once instead of
after a long run, and a file already there is never touched by a run that was going to fail.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from edge_runtime import source_kinds
from edge_runtime.atomic import check_creatable, same_file
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.model_files import model_files

# The runtime's file outputs by ``sinks`` key, and the option that sets each (``video`` differs:
# ``--out`` for replay, ``--record`` for live).
SINK_OPTIONS = {"raw": "--record-raw", "masks": "--save-masks", "summary": "--summary"}
VIDEO_SINKS, VIDEO_SUFFIX = ("video", "raw"), ".mp4"  # the sinks that record H.264 MP4
FOLDER_SINKS = ("masks",)  # a folder of files, not one file
LITERAL_SINKS = ("summary",)  # written as named: no strftime fields (the recorders expand theirs)
# What an existing path that is neither a regular file nor a folder is, by its stat type.
SPECIAL_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class Output:
    """One thing a command writes: ``option`` names it in errors, ``path`` is where it goes."""

    option: str
    path: Path
    folder: bool = False  # a folder of files (--save-masks, --cases) rather than one file
    # the name's ending the writer's format needs: a recorder writes H.264 MP4 whatever the name says,
    # and x.png would then hold a video (or replace a mask of --save-masks)
    suffix: str | None = None


def sink_options(args, video_option: str) -> dict[str, str]:
    """``sinks`` key -> the name to give it in messages: the command-line option when it was given,
    else the config key (``sinks.video`` from ``--config``)."""
    names = {}
    for kind, option in {"video": video_option, **SINK_OPTIONS}.items():
        given = getattr(args, option.lstrip("-").replace("-", "_"), None)
        names[kind] = option if given else f"sinks.{kind}"
    return names


def runtime_outputs(args, config, video_option: str) -> list[Output]:
    """What ``replay``/``live`` will write: the ``sinks`` files (strftime fields filled in as the
    recorders will), the ``--record-sequence`` headers and data files, the ``--cases`` folder."""
    from edge_runtime.sinks import recordings  # deferred for --help: loads the recorders' helpers
    from edge_runtime.sinks import sequence_layout as layout

    names = sink_options(args, video_option)
    outputs = []
    for kind, name in names.items():
        template = getattr(config.sinks, kind)
        if template:
            path = Path(template) if kind in LITERAL_SINKS else recordings.expand(template)
            suffix = VIDEO_SUFFIX if kind in VIDEO_SINKS else None
            outputs.append(Output(name, path, folder=kind in FOLDER_SINKS, suffix=suffix))
    if getattr(args, "record_sequence", None):
        for header in layout.sequence_paths(recordings.expand(args.record_sequence)).values():
            outputs += [
                Output("--record-sequence", header),
                Output("--record-sequence", layout.data_path(header)),
            ]
    if getattr(args, "cases", None):
        outputs.append(Output("--cases", Path(args.cases), folder=True))
    return outputs


def runtime_inputs(args, config, input_name: str) -> dict[str, Path]:
    """The local files ``replay``/``live`` read, by the name to give them in messages: the source
    (only when it is a file or folder, not 'synthetic', a camera or a stream) and the data files its
    header names (a detached ``.nhdr``/``.mhd``: its pixels are read from them), the config, the model
    (the shipped default when none is named) and its manifest, without which the model cannot load."""
    from edge_runtime.sources.opener import is_device_or_stream  # deferred for --help (loads the sources)
    from edge_runtime.sources.sequence_data_files import data_files  # deferred for --help, as above

    source = config.source.input
    named = {
        input_name: None
        if source in (None, source_kinds.SYNTHETIC) or is_device_or_stream(source)
        else source,
        "--config": getattr(args, "config", None),
        **model_files(config.inference.model),
    }
    if named[input_name]:
        data = data_files(Path(named[input_name]))
        for n, path in enumerate(data, 1):
            named[f"{input_name} data file" + (f" {n} of {len(data)}" if len(data) > 1 else "")] = path
    return {name: Path(path) for name, path in named.items() if path}


def check_outputs(outputs: list[Output], inputs: dict[str, Path]) -> None:
    """Raise ConfigError unless every output can be created and none is an input or another output."""
    for i, out in enumerate(outputs):
        for name, path in inputs.items():
            if same_file(out.path, path):
                raise ConfigError(
                    f"{out.option} {out.path} is the same file as {name} {path}: "
                    "writing it would destroy what is being read; give another name"
                )
        for other in outputs[:i]:
            if same_file(out.path, other.path):
                raise ConfigError(
                    f"{other.option} and {out.option} both write {out.path}: give each its own name"
                )
    for out in outputs:
        check_writable(out)
        if out.suffix and out.path.suffix.lower() != out.suffix:
            raise ConfigError(
                f"{out.option} {out.path}: the video is written as H.264 MP4; name it *{out.suffix}"
            )


def special_kind(path: Path) -> str | None:
    """What ``path`` (links followed) is when it exists and is neither a regular file nor a folder:
    ``a FIFO (named pipe)``, ``a device``, ...; None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # absent (or a dangling link): created by the writer, checked by check_creatable
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return SPECIAL_KINDS.get(stat.S_IFMT(mode), "a special file")


def check_writable(out: Output) -> None:
    """Raise ConfigError naming ``out`` unless it can be created (or replaced) where it is: a file
    output must not be a folder, a folder output not a file, and when it does not exist yet the nearest
    existing folder above it must be one this process can write in (the writers create the missing
    folders between). InputError naming its kind when it exists and is a FIFO, device or socket."""
    path = out.path
    kind = special_kind(path)
    if kind is not None:
        expected, wanted = ("folder", "a folder name") if out.folder else ("regular file", "a file name")
        raise InputError(f"{out.option} {path}: exists and is not a {expected}; it is {kind}: give {wanted}")
    if path.exists():
        if out.folder and not path.is_dir():
            raise ConfigError(f"{out.option} {path}: is a file, not a folder")
        if not out.folder and path.is_dir():
            raise ConfigError(f"{out.option} {path}: is a folder; give a file name")
        # Replaced or written into by replay, kept by live (which records under a new name beside
        # it): its own permissions are for the writer to report.
        return
    check_creatable(path, out.option)
