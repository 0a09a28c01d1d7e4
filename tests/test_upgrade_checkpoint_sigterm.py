"""`sonomap upgrade-checkpoint` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C: one line
saying so, exit 143 (128 + SIGTERM), the new checkpoint's hidden temp file removed, and the original
checkpoint and its manifest as they were, byte for byte, with no backup left to block the rerun. A real
process and a real signal, sent as it starts writing the new checkpoint's temp file
(tests/sigterm_stop.py `sigterm_at_write`), or as it gives the backup the original's mode, the last step
of writing it (`sigterm_at_event`)."""

from __future__ import annotations

import pytest
from sigterm_stop import sigterm_at_event, sigterm_at_write
from test_upgrade_checkpoint_writes import old_checkpoint, tree

from edge_runtime.cli import main as sonomap

# where the signal comes: as the new checkpoint's temp file is opened for writing; or at shutil.copystat's
# chmod of best.pt.orig, when the backup's bytes are on disk and the original is not yet replaced
STOPS = {
    "writing the new checkpoint": lambda args, best, ready: sigterm_at_write(
        args, f".{best.name}.*.tmp", ready
    ),
    "finishing the backup": lambda args, best, ready: sigterm_at_event(
        args, "os.chmod", f"{best.name}.orig", ready
    ),
}


@pytest.mark.parametrize("moment", STOPS)
def test_sigterm_stops_an_in_place_upgrade_and_keeps_the_original_without_a_backup(tmp_path, moment):
    folder = tmp_path / "run"
    folder.mkdir()
    best = old_checkpoint(folder / "best.pt")
    before = tree(folder)
    stderr = STOPS[moment](["upgrade-checkpoint", best, "--trust-checkpoint"], best, tmp_path / "writing")
    assert len(stderr.strip().splitlines()) == 1, stderr
    # best.pt and its manifest byte for byte, no hidden temp file, and no backup: the original was never
    # replaced, and a backup left would make the rerun refuse to write over it
    assert tree(folder) == before
    assert sonomap(["upgrade-checkpoint", str(best), "--trust-checkpoint"]) == 0
    assert (folder / f"{best.name}.orig").read_bytes() == before[best.name]
