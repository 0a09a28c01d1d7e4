"""`sonomap calibrate` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C: one line saying
so, exit 143 (128 + SIGTERM), the manifest's hidden temp file removed and the manifest as it was. A
real process and a real signal, sent as it starts writing the manifest's temp file, the one file it
writes (tests/sigterm_stop.py `sigterm_at_write`)."""

from __future__ import annotations

from export_fixtures import copy_model, shared_checkpoint
from sigterm_stop import sigterm_at_write

from edge_runtime.manifest import manifest_path


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_sigterm_stops_calibrate_and_keeps_the_manifest(busi_dataset, tmp_path):
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    before = _files(ck.parent)
    args = ["calibrate", "--checkpoint", ck, "--data", busi_dataset]
    stderr = sigterm_at_write(args, f".{manifest_path(ck).name}.*.tmp", tmp_path / "writing")
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert _files(ck.parent) == before  # no hidden temp file, the manifest byte for byte
