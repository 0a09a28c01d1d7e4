"""A detached sequence header's data files are inputs too: `sonomap replay other.nhdr --record-sequence
s.seq.nrrd`, where other.nhdr reads s.seq.raw, used to cut s.seq.raw to 0 bytes while it was memory-mapped
(SIGBUS, every s.* file lost). Now any output that would write a data file the input's header names
(NRRD ``data file:`` one, LIST or pattern; MetaImage ``ElementDataFile``) is refused in one line before
anything is written (edge_runtime/commands/output_paths.py, edge_runtime/sources/sequence_data_files.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli import EXIT_USER_ERROR, one_line_error
from cli import sonomap as run_cli

from edge_runtime.cli import main as sonomap
from edge_runtime.sources.sequence_data_files import data_files

FRAMES, HEIGHT, WIDTH = 3, 24, 32  # at least 16x16: the pipeline refuses smaller frames
COMPANIONS = ("s.seq.nrrd", "s.seq.raw", "s.labelmap.seq.nrrd", "s.labelmap.seq.raw")
NHDR = "NRRD0004\ntype: unsigned char\ndimension: 4\nsizes: {w} {h} 1 {n}\nkinds: domain domain domain list\n"


def nhdr(path: Path, data_file: str, after: str = "") -> Path:
    head = NHDR.format(w=WIDTH, h=HEIGHT, n=FRAMES) + f"encoding: raw\ndata file: {data_file}\n"
    path.write_text(head + ("" if after else "\n") + after)
    return path


def recording(folder: Path) -> dict[str, bytes]:
    """A recording's files (what the run must not touch), by name."""
    folder.mkdir()
    files = {name: os.urandom(WIDTH * HEIGHT * FRAMES) for name in COMPANIONS}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def refused(capsys, folder: Path, header: Path, *outputs: str) -> str:
    before = recording(folder)
    err = one_line_error(capsys, sonomap(["replay", str(header), *outputs, "--out", str(folder / "x.mp4")]))
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name in before} == before
    assert not (folder / "x.mp4").exists()
    return err


def test_replay_never_records_over_the_data_file_it_reads(tmp_path):
    """The tester's case, in a child process: without the check it dies of SIGBUS (rc 135)."""
    same = tmp_path / "same"
    before = recording(same)
    header = nhdr(same / "other.nhdr", "s.seq.raw")
    run = run_cli(
        "replay", header, "--record-sequence", same / "s.seq.nrrd", "--out", same / "x.mp4", check=False
    )
    assert run.returncode == EXIT_USER_ERROR and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert f"--record-sequence {same / 's.seq.raw'} is the same file as the input data file" in run.stderr
    assert {name: (same / name).read_bytes() for name in before} == before
    assert not (same / "x.mp4").exists()


def test_a_relative_data_file_and_a_companion_file_count(tmp_path, capsys):
    """The data file named relative to the header's folder, and a labelmap companion of the output."""
    same = tmp_path / "same"
    same.mkdir()
    header = nhdr(same / "other.nhdr", "s.labelmap.seq.raw")
    err = one_line_error(
        capsys, sonomap(["replay", str(header), "--record-sequence", str(same / "s.seq.nrrd")])
    )
    assert "s.labelmap.seq.raw is the same file as the input data file" in err


def test_metaimage_listed_and_pattern_data_files_count(tmp_path, capsys):
    folder = tmp_path / "rec"
    mhd = tmp_path / "plus.mhd"
    mhd.write_text(f"ObjectType = Image\nNDims = 3\nElementDataFile = {folder / 's.seq.raw'}\n")
    err = refused(capsys, folder, mhd, "--record-sequence", str(folder / "s.seq.nrrd"))
    assert "is the same file as the input data file" in err

    listed = nhdr(tmp_path / "listed.nhdr", "LIST", after=f"{tmp_path / 'a.raw'}\n{folder / 's.seq.raw'}\n")
    err = one_line_error(
        capsys, sonomap(["replay", str(listed), "--record-sequence", str(folder / "s.seq.nrrd")])
    )
    assert "is the same file as the input data file 2 of 2" in err

    pattern = nhdr(tmp_path / "pattern.nhdr", "part%d.raw 1 3 1")
    err = one_line_error(capsys, sonomap(["replay", str(pattern), "--out", str(tmp_path / "part2.raw")]))
    assert "--out" in err and "is the same file as the input data file 2 of 3" in err


def test_data_files_of_headers(tmp_path):
    assert data_files(nhdr(tmp_path / "a.nhdr", "d.raw")) == [tmp_path / "d.raw"]
    attached = tmp_path / "attached.seq.nrrd"
    attached.write_bytes(NHDR.encode() + b"encoding: raw\n\n" + bytes(WIDTH * HEIGHT * FRAMES))
    assert data_files(attached) == []
    local = tmp_path / "local.mha"
    local.write_text("NDims = 3\nElementDataFile = LOCAL\n")
    assert data_files(local) == []
    fifo = tmp_path / "fifo.nhdr"
    os.mkfifo(fifo)
    assert data_files(fifo) == []  # never opened: nobody writes it, the read would block for ever


@pytest.mark.parametrize("name", ["clip.mp4", "frame.png"])
def test_other_sources_name_no_data_file(tmp_path, name):
    (tmp_path / name).write_text("data file: x.raw\n")
    assert data_files(tmp_path / name) == []
