"""Fold several trained checkpoints into one ensemble checkpoint: one graph, the mean of their logits.

Why: networks trained from different seeds make partly independent errors, so the mean of their
logits usually segments better than either; unlike a weight average (:mod:`training.average`),
which needs one basin, it works for independent runs. The cost is at inference: each member runs
on every frame (two members: about twice the network's time).

Usage: ``python -m training.ensemble --out OUT/best.pt CK1 CK2 [...]``. Inputs: checkpoints whose
manifests agree on input size, normalisation and classes. Output: ``OUT/best.pt`` + manifest
(``arch: ensemble``, ``source.ensemble_of`` naming each member by file name and sha256, never by
path: a folder above a checkpoint may be named after a patient). The members'
calibration is not carried over: their logits are averaged before any temperature, so the
ensemble is calibrated afresh (``sonomap calibrate``) like any new model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import Manifest, sha256_file
from training.checkpoint import load_model_and_config
from training.checkpoint_save import save_checkpoint
from training.models import ENSEMBLE_ARCH, LogitEnsemble
from training.output_checks import refuse_existing

MIN_MEMBERS = 2


def _same_contract(first: Manifest, other: Manifest, where: Path) -> None:
    for field in ("input_height", "input_width", "mean", "std"):
        if getattr(first, field) != getattr(other, field):
            raise ConfigError(
                f"{where}: manifest '{field}' is {getattr(other, field)}, the first member's is "
                f"{getattr(first, field)}; members must share one preprocessing contract"
            )
    if [(c.id, c.name) for c in first.classes] != [(c.id, c.name) for c in other.classes]:
        raise ConfigError(f"{where}: manifest 'classes' differ from the first member's")


def ensemble_checkpoints(checkpoints: list[str | Path], out: str | Path) -> Path:
    """Write the ensemble of ``checkpoints`` to ``out`` (+ manifest); returns ``out``."""
    paths = [Path(c) for c in checkpoints]
    if len(paths) < MIN_MEMBERS:
        raise ConfigError(f"give at least {MIN_MEMBERS} checkpoints to ensemble")
    refuse_existing(out, what="a trained run's best.pt, or a member")  # before any member is read
    members, configs, sources = [], [], []
    first: Manifest | None = None
    for path in paths:
        model, manifest, config = load_model_and_config(path)
        if first is None:
            first = manifest
        else:
            _same_contract(first, manifest, path)
        digest = sha256_file(path)
        twin = next((m["checkpoint"] for m in sources if m["sha256"] == digest), None)
        if twin is not None:  # one network twice: its cost twice, and called an ensemble of two
            raise ConfigError(f"{path}: the same checkpoint as the member {twin} (sha256 {digest[:12]}…)")
        members.append(model)
        configs.append(config)
        sources.append({"checkpoint": path.name, "sha256": digest})
    ensemble = LogitEnsemble(members).eval()
    model_config = {"arch": ENSEMBLE_ARCH, "num_classes": first.num_classes, "members": configs}
    manifest = first.derive(
        name=f"{first.name}-ensemble{len(paths)}",
        arch=ENSEMBLE_ARCH,
        threshold=0.5,
        temperature=1.0,
        calibration_curve=None,
        mask_filter=None,
        source={"ensemble_of": sources},
        metrics={},
        extra={"model_config": model_config},
    )
    return save_checkpoint(
        {"model": ensemble.state_dict(), "model_config": model_config, "manifest": manifest.to_dict()},
        out,
        manifest,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ensemble", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="member checkpoints (best.pt)")
    parser.add_argument("--out", required=True, help="output checkpoint (best.pt)")
    args = parser.parse_args(argv)
    try:
        print(ensemble_checkpoints(args.checkpoints, args.out))
    except SonomapError as exc:  # a bad input: one line naming the file, no traceback
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
