"""`sonomap upgrade-checkpoint` never writes over a file: not an earlier upgrade's `FILE.orig` (the
original, perhaps its only copy), whether given as `--out` or met by a second in-place upgrade, nor any
other existing `--out` or its manifest; each is one line naming the file, before the checkpoint is
unpickled. And it reads the old checkpoint's bytes once: the weights-only attempt, the trusted load,
the manifest's sha256 check and the backup all use them, proved by Python's audit log of file opens
in a child process. Real files, real torch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from cli import one_line_error
from export_fixtures import tiny_manifest
from file_reads import opened_under
from file_size_limit import sonomap_with_file_size_limit

from edge_runtime.cli import main as sonomap
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from training.models import build_model

ARCH, WIDTH, SIZE = "unet_small", 4, 32
EXIT_USER_ERROR = 2


class CreatesFile:
    """Unpickling this object calls open(path, "w"): the file appears if the old checkpoint is unpickled."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def old_checkpoint(path: Path, extra: dict | None = None) -> Path:
    """An older-format checkpoint (a numpy scalar beside the tensors, refused weights-only) and its
    manifest, signed for its bytes."""
    model = build_model(ARCH, 2, width=WIDTH)
    payload = {
        "model": model.state_dict(),
        "model_config": {"arch": ARCH, "num_classes": 2, "width": WIDTH},
        "manifest": tiny_manifest(ARCH, SIZE).to_dict(),
        "val": {"dice_pos_mean": np.float64(0.25)},
        **(extra or {}),
    }
    torch.save(payload, path)
    save_manifest(tiny_manifest(ARCH, SIZE), path)
    return path


def tree(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_an_earlier_backup_or_any_existing_out_is_never_written_over(tmp_path, capsys):
    best = old_checkpoint(tmp_path / "best.pt")
    original = best.read_bytes()
    assert sonomap(["upgrade-checkpoint", str(best), "--trust-checkpoint"]) == 0, capsys.readouterr().err
    backup = tmp_path / "best.pt.orig"
    assert backup.read_bytes() == original
    other = old_checkpoint(tmp_path / "other.pt")  # one that would convert: only the refusal saves the files
    (tmp_path / "notes.txt").write_text("a file the user keeps\n")
    (tmp_path / "fresh.pt.yaml").write_text("name: a manifest left here\n")
    before = tree(tmp_path)
    for out, why in (
        (backup, f"--out {backup}: exists already (an in-place upgrade's backup of best.pt"),
        (tmp_path / "notes.txt", f"--out {tmp_path / 'notes.txt'}: exists already;"),
        (tmp_path / "fresh.pt", f"its manifest {tmp_path / 'fresh.pt.yaml'} exists already"),
    ):
        code = sonomap(["upgrade-checkpoint", str(other), "--trust-checkpoint", "--out", str(out)])
        err = one_line_error(capsys, code)
        assert why in err and "not written over" in err, err
    assert tree(tmp_path) == before and backup.read_bytes() == original
    # the upgraded best.pt replaced by an older file again: the earlier backup is kept, not renumbered
    marker = tmp_path / "unpickled"
    old_checkpoint(best, {"best": CreatesFile(marker)})
    before = tree(tmp_path)
    err = one_line_error(capsys, sonomap(["upgrade-checkpoint", str(best), "--trust-checkpoint"]))
    assert f"{backup}: exists already" in err and "not written over" in err, err
    assert tree(tmp_path) == before and backup.read_bytes() == original
    assert not marker.exists()  # refused before the file was unpickled


def test_an_old_checkpoint_is_read_once(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    best = old_checkpoint(folder / "best.pt")
    original = best.read_bytes()
    upgraded, opened = opened_under(folder, ["upgrade-checkpoint", str(best), "--trust-checkpoint"])
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    assert (folder / "best.pt.orig").read_bytes() == original
    assert load_manifest(best).sha256 and torch.load(best, weights_only=True)["val"]["dice_pos_mean"] == 0.25
    # the yardstick: a weights-only file, which one read decides (its kind from the first bytes, then the load)
    again, yardstick = opened_under(folder, ["upgrade-checkpoint", str(best)])
    assert "already a weights-only checkpoint" in again.stdout, again.stderr[-2000:]
    assert opened["best.pt"] == yardstick["best.pt"], (opened, yardstick)
    assert opened[manifest_path(best).name] == 1 and opened["best.pt.orig"] == 1, opened
    out = old_checkpoint(folder / "other.pt")
    beside, opened = opened_under(
        folder, ["upgrade-checkpoint", str(out), "--trust-checkpoint", "--out", str(folder / "new.pt")]
    )
    assert beside.returncode == 0, beside.stderr[-2000:]
    assert opened["other.pt"] == yardstick["best.pt"], opened


def test_a_backup_that_cannot_be_written_whole_is_removed_and_the_original_kept(tmp_path):
    best = old_checkpoint(tmp_path / "best.pt")
    before = tree(tmp_path)
    # files capped below the checkpoint's size: the backup is the first file the upgrade writes
    full = sonomap_with_file_size_limit(
        len(before["best.pt"]) // 2, "upgrade-checkpoint", best, "--trust-checkpoint"
    )
    assert full.returncode == EXIT_USER_ERROR, (full.stdout, full.stderr[-2000:])
    err = full.stderr.strip()
    assert (
        "\n" not in err and f"{best}.orig: File too large (writing the backup; {best} is unchanged)" in err
    ), err
    assert tree(tmp_path) == before  # no half backup left to block (or pass for) the original
    assert sonomap(["upgrade-checkpoint", str(best), "--trust-checkpoint"]) == 0  # with room, it goes through
    assert (tmp_path / "best.pt.orig").read_bytes() == before["best.pt"]


def test_a_new_checkpoint_that_cannot_be_written_whole_leaves_the_original_and_no_backup(tmp_path):
    best = old_checkpoint(tmp_path / "best.pt")
    before = tree(tmp_path)
    spare = tmp_path / "spare"  # the same upgrade with room: how large the new checkpoint is
    spare.mkdir()
    assert sonomap(["upgrade-checkpoint", str(old_checkpoint(spare / "best.pt")), "--trust-checkpoint"]) == 0
    assert (spare / "best.pt").stat().st_size > len(before["best.pt"])
    shutil.rmtree(spare)
    # files capped at the original's size: the backup is written whole, the new checkpoint is not
    full = sonomap_with_file_size_limit(
        len(before["best.pt"]), "upgrade-checkpoint", best, "--trust-checkpoint"
    )
    assert full.returncode == EXIT_USER_ERROR, (full.stdout, full.stderr[-2000:])
    assert "File too large" in full.stderr, full.stderr[-2000:]
    # the original and its manifest as they were, no temp file, and no backup to block the rerun
    assert tree(tmp_path) == before
    assert sonomap(["upgrade-checkpoint", str(best), "--trust-checkpoint"]) == 0
    assert (tmp_path / "best.pt.orig").read_bytes() == before["best.pt"]
