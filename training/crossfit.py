"""Cross-fitted calibration error: how well a calibration curve fitted on validation generalises.

``python -m training.crossfit CK DATASET [--repeats N] [--seed S]``. Input: a checkpoint whose
manifest carries a temperature and a calibration curve (`sonomap calibrate`, then
`--method curve`) and the dataset. Output (printed, nothing written): the decision-band ECE of
the served probability scored on the validation cases the curve was fitted on, and cross-fitted:
the curve re-fitted on half of the validation cases and scored on the other half, both ways,
averaged over ``N`` random halvings by case (the temperature is kept).

Why: a 16-knot isotonic curve scored on the pixels it was fitted on makes any model look
calibrated (ECE about 0.01); comparing two models' calibration on validation needs an estimate
from pixels the curve has not seen, without touching the test split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge_runtime import cli_args
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import manifest_path
from training.calibration import PIXEL_BINS, CalibrationAccumulator, reliability
from training.checkpoint import load_model
from training.data import read_cases, select_split
from training.isotonic import CurveFitError, calibrate_curve, served_prob, uncalibrated_threshold
from training.temperature import LogitMap, logit_maps

FOLDS = 2


def _accumulate(maps: list[LogitMap], manifest) -> CalibrationAccumulator:
    acc = CalibrationAccumulator(manifest.threshold)
    for m in maps:
        prob = served_prob(m.logits, manifest, m.label.shape)
        acc.add(prob, m.label, prob >= manifest.threshold)
    return acc


def crossfit_ece(checkpoint: str | Path, data: str | Path, repeats: int = 40, seed: int = 0) -> dict:
    """-> {"in_sample", "cross_fitted" (mean), "min", "max", "repeats", "cases"}."""
    model, manifest = load_model(checkpoint)
    if not manifest.calibration_curve:
        raise ConfigError(
            f"{checkpoint}: its manifest has no calibration curve (sonomap calibrate --method curve)"
        )
    samples = select_split(read_cases(data), "val", data)
    maps = logit_maps(model, manifest, samples)
    by_case: dict[str, list[LogitMap]] = {}
    for sample, m in zip(samples, maps, strict=True):
        by_case.setdefault(sample.case_id, []).append(m)
    cases = sorted(by_case)
    if len(cases) < 2 * FOLDS:
        raise ConfigError(f"{data}: {len(cases)} validation cases are too few to cross-fit")
    # the curve moved the threshold to its value at logit parity; start each re-fit from before it
    before = uncalibrated_threshold(manifest, manifest_path(checkpoint))
    uncurved = manifest.derive(calibration_curve=None, threshold=before)
    rng = np.random.default_rng(seed)
    eces = []
    for _ in range(repeats):
        order = rng.permutation(len(cases))
        halves = [{cases[i] for i in order[k::FOLDS]} for k in range(FOLDS)]
        probs, truths = [], []
        for held in halves:
            fit = [m for c in cases if c not in held for m in by_case[c]]
            try:
                fitted, _record = calibrate_curve(fit, uncurved)
            except CurveFitError as exc:
                raise ConfigError(
                    f"{data}: half of the validation cases cannot carry a curve: {exc}"
                ) from exc
            scored = _accumulate([m for c in sorted(held) for m in by_case[c]], fitted).summary_arrays()
            probs.append(scored[0])
            truths.append(scored[1])
        eces.append(reliability(np.concatenate(probs), np.concatenate(truths), PIXEL_BINS)["ece"])
    return {
        "in_sample": _accumulate(maps, manifest).summary()["pixel"]["ece"],
        "cross_fitted": float(np.mean(eces)),
        "min": float(min(eces)),
        "max": float(max(eces)),
        "repeats": repeats,
        "cases": len(cases),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.crossfit", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="checkpoint with a fitted temperature and calibration curve")
    parser.add_argument("data", help="dataset directory (its val split is used)")
    parser.add_argument(
        "--repeats", type=cli_args.at_least(1), default=40, help="random halvings (default 40)"
    )
    parser.add_argument("--seed", type=cli_args.seed, default=0)
    args = parser.parse_args(argv)
    try:
        r = crossfit_ece(args.checkpoint, args.data, args.repeats, args.seed)
    except SonomapError as exc:  # a bad checkpoint or dataset: one line, as sonomap's commands
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(
        f"{args.checkpoint}: band ECE on val, curve fitted on the same cases {r['in_sample']:.4f}; "
        f"cross-fitted {r['cross_fitted']:.4f} (min {r['min']:.4f}, max {r['max']:.4f}; "
        f"{r['repeats']} halvings of {r['cases']} cases)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
