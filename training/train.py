"""`sonomap train`: config + dataset -> RUN/best.pt (+ best.pt.yaml), RUN/last.pt, logs.

Inputs: a config YAML (:mod:`training.config`), a dataset in the layout of
:mod:`training.data`. Outputs in RUN/:
- ``best.pt`` + ``best.pt.yaml``: the model with the best validation Dice and its manifest;
- ``cycleK.pt`` (+ yaml), only with ``train.schedule: cosine`` and ``cycles`` > 1: the best
  validation epoch within each warm-restart cycle K (snapshots for `python -m training.average`);
- ``last.pt`` (+ yaml): everything ``--resume`` needs (model, optimiser, schedule, scaler,
  epoch, RNG states, best so far, elapsed time, history);
- ``metrics.csv`` (one row per epoch), ``summary.json``, TensorBoard scalars in ``tb/``
  (:mod:`training.tblog`, written by torch.utils.tensorboard).
Runs as one process or under torchrun (DDP, SyncBatchNorm, DistributedSampler; rank 0 writes).
A RUN that is, lies inside or contains the dataset is refused before anything is written; so,
without ``--resume``, is a RUN that already holds a run's files (checkpoints, metrics.csv,
summary.json). ``--resume`` needs the same config and dataset.
A NaN/inf training loss or weight stops the run with a one-line error naming the epoch (and the
iteration): the files of earlier epochs stay as they were, and non-finite weights are never saved.
The checkpoints are written by :mod:`training.run_checkpoints`, the time budget kept by
:mod:`training.run_clock`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from edge_runtime.atomic import check_apart
from edge_runtime.jsonfile import atomic_write_json
from edge_runtime.manifest import sha256_file
from training import distributed as D
from training.checkpoint import read_checkpoint
from training.config import config_hash, load_config, use_cpu_bf16
from training.config import model_config as checkpoint_model_config
from training.data import read_cases
from training.ema import build_ema
from training.engine import check_finite_weights, selected_metric, train_one_epoch, validate
from training.losses import build_loss
from training.metrics import summarize
from training.optim import build_optimizer, build_schedule
from training.provenance import VAL_METRICS, dataset_hash
from training.resume_state import SECONDS_PER_MINUTE, check_resume, restore, stored_budget_s, stored_init_from
from training.rng import seed_all
from training.run_checkpoints import RunProgress, RunRecord, TrainingParts, save_last, save_snapshot
from training.run_clock import RunClock
from training.run_setup import (
    RUN_FILES,
    RUN_LOGS,
    build_loaders,
    build_run_model,
    check_run_folder,
    refuse_files,
    refuse_lone_samples,
    resume_advice,
)
from training.run_summary import best_text, reported_best
from training.tblog import EventWriter, write_history_csv
from training.warmstart import load_initial_weights

log = logging.getLogger("sonomap.train")


def run(
    config: str | Path,
    data: str | Path,
    out: str | Path,
    max_minutes: float | None = None,
    resume: bool = False,
    deterministic: bool = False,
    backbone_weights: str | None = None,
    device: str = "auto",
    show_progress: bool = True,
    stop_after_epochs: int | None = None,
    init_from: str | Path | None = None,
) -> dict:
    """Train; returns the summary dict (also written to RUN/summary.json on rank 0).

    ``stop_after_epochs``: end this session after that many epochs (e.g. a scheduler's wall-time
    slot); ``--resume`` then continues exactly where it stopped. ``init_from``: a checkpoint whose
    weights the model starts from (fine-tuning, :mod:`training.warmstart`); on resume the run's own,
    recorded in last.pt, is kept (:mod:`training.resume_state`).
    """
    cfg = load_config(config)
    mc, tc = cfg.model, cfg.train
    out = Path(out)
    check_apart(data, out, "--data")  # a run written into the dataset would mix with (or replace) its files
    check_run_folder(out)
    if not resume:  # before the process group: every rank reads the same folder and refuses alike
        refuse_files(
            out,
            (*RUN_FILES, *RUN_LOGS),
            f"which a new run would replace or mix with its own; give a new --out folder, {resume_advice(out)}",
        )
    info, dev = D.init(D.pick_device(device))
    try:
        seed_all(int(tc.seed), deterministic)
        samples = read_cases(data)
        mean, std, train_ds, sampler, loader, val_loader = build_loaders(cfg, samples, data, info, dev)
        model, bare, channels_last = build_run_model(cfg, backbone_weights, info, dev)
        refuse_lone_samples(cfg, config, data, loader, bare, info, dev)  # before any epoch or file
        optimizer = build_optimizer(bare, tc)
        schedule = build_schedule(optimizer, tc)
        scaler = torch.amp.GradScaler("cuda") if (dev.type == "cuda" and tc.amp) else None
        cpu_bf16 = torch.bfloat16 if (dev.type == "cpu" and use_cpu_bf16(tc.amp_cpu_bf16)) else None
        loss_fn = build_loss(tc).to(dev)
        ema = build_ema(bare, float(tc.ema_decay))
        scored = ema.module if ema is not None else bare  # what is validated and saved as best.pt
        parts = TrainingParts(bare, optimizer, schedule, scaler, ema)

        chash = config_hash(cfg)
        dhash = dataset_hash(data, samples)
        model_config = checkpoint_model_config(cfg)
        epochs, iters_per_epoch = int(tc.epochs), len(loader)
        total_iters = max(1, epochs * iters_per_epoch)
        budget_s = max_minutes * SECONDS_PER_MINUTE if max_minutes else None
        # where the loop starts: nothing done yet, or the progress last.pt recorded (--resume)
        start = RunProgress(
            epoch=-1,
            best={"metric": tc.select_metric, "value": -1.0, "epoch": -1},
            cycle_best={},
            elapsed_s=0.0,
            finished=False,
            history=[],
        )
        init_sha = None
        # DDP has broadcast rank 0's start already: load_initial_weights copies its result to every rank
        if init_from and not resume:
            load_initial_weights(bare, init_from, model_config, loader, dev, (mean, std))
            init_sha = sha256_file(init_from)
        if resume:
            state = read_checkpoint(out / "last.pt")
            check_resume(out / "last.pt", state, config, chash, data, dhash, epochs, max_minutes, info.world)
            budget_s = stored_budget_s(state)
            init_from = stored_init_from(state)  # the run's provenance, not this command line's
            init_sha = state.get("init_from_sha256")
            start = restore(state, parts)
        start_epoch, history, best, cycle_best = start.epoch + 1, start.history, start.best, start.cycle_best
        record = RunRecord(
            cfg, config, chash, data, dhash, mean, std, init_from, init_sha, budget_s, info.world
        )

        writer = EventWriter(out / "tb") if info.main else None
        if info.main:
            out.mkdir(parents=True, exist_ok=True)
            log.info(
                "training %s on %d images (val %d), %s, world %d",
                mc.arch,
                len(train_ds),
                len(val_loader.dataset),
                dev,
                info.world,
            )
        clock = RunClock(info, dev, schedule, total_iters, budget_s, start.elapsed_s)
        epoch = start_epoch - 1
        for epoch in range(start_epoch, epochs):
            sampler.set_epoch(epoch)
            train_ds.set_epoch(epoch)
            stats = train_one_epoch(
                model,
                loader,
                loss_fn,
                optimizer,
                schedule,
                scaler,
                dev,
                float(tc.grad_clip),
                clock.progress,
                clock.time_up,
                show_progress and info.main,
                f"epoch {epoch}",
                channels_last,
                cpu_bf16,
                (lambda: ema.update_parameters(bare)) if ema is not None else None,
            )
            # a last step with a finite loss can still leave NaN/inf weights, which validate to
            # Dice 0 and would beat the initial best of -1: stop before anything is saved
            check_finite_weights(bare, f"epoch {epoch}")
            if scored is not bare:
                check_finite_weights(scored, f"epoch {epoch} (weight average)")
            last = stats["stopped"] or epoch == epochs - 1
            row = {
                "epoch": epoch,
                "iteration": schedule.iteration,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": D.mean_float(info, stats["loss"], dev),  # each rank's loss is its shard's
                "train_images_per_s": stats["images_per_s"] * info.world,
                "epoch_seconds": stats["seconds"],
            }
            selected_by = tc.select_metric  # what this epoch's line names when it validates no split
            if info.main and ((epoch + 1) % int(tc.val_every) == 0 or last):
                summary = summarize(validate(scored, val_loader, dev, float(cfg.eval.threshold)))
                row.update({f"val_{k}": summary[k] for k in VAL_METRICS})
                selected_by, value = selected_metric(summary, tc.select_metric)
                row["selected"] = value

                cycle = str(schedule.cycle(clock.last_progress()))
                if int(tc.cycles) > 1 and value > cycle_best.get(cycle, -1.0):
                    cycle_best[cycle] = float(value)
                    snap = {"metric": selected_by, "value": float(value), "epoch": epoch}
                    save_snapshot(record, scored, out / f"cycle{cycle}.pt", snap, epoch, summary)
                if value > best["value"]:
                    best = {"metric": selected_by, "value": float(value), "epoch": epoch}
                    save_snapshot(record, scored, out / "best.pt", best, epoch, summary)
            row.update({"elapsed_s": clock.elapsed(), "best": reported_best(best)["value"]})
            if info.main:
                history.append(row)
                write_history_csv(out / "metrics.csv", history)
                if writer is not None:
                    writer.add_scalars(
                        {k: float(v) for k, v in row.items() if k != "epoch" and v is not None}, epoch
                    )
                log.info(
                    "epoch %d loss %.4f val %s %.4f best %s %.0fs",
                    epoch,
                    row["train_loss"],
                    selected_by,
                    row.get("selected", float("nan")),
                    best_text(best),
                    clock.elapsed(),
                )
                progress = RunProgress(
                    epoch=epoch,
                    best=best,
                    cycle_best=cycle_best,
                    elapsed_s=clock.elapsed(),
                    finished=last,
                    history=history,
                )
                save_last(record, out / "last.pt", parts, progress)
            D.barrier(info)
            if stats["stopped"] or (stop_after_epochs and epoch + 1 - start_epoch >= stop_after_epochs):
                break
        result = {
            "run": out.name,  # not its path: a folder above the run may be named after the patient
            "epochs_done": epoch + 1,
            "iterations": schedule.iteration,
            "elapsed_s": clock.elapsed(),
            "best": reported_best(best),  # value and epoch null until an epoch was validated
            "cycle_best": cycle_best,
            **record.init_record(),
            "world_size": info.world,
            "device": str(dev),
            "mean": mean,
            "std": std,
        }
        if info.main:
            atomic_write_json(out / "summary.json", result)
            if writer is not None:
                writer.close()
        return result
    finally:
        D.shutdown(info)
