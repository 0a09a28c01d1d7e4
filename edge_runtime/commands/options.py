"""The options and the runtime config that several runtime subcommands share.

Input: the parsed arguments. Output: argparse options added to a subcommand's parser, the runtime
config (``--config`` YAML merged with the command-line overrides), and the run summary printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection

from edge_runtime import config as cfg
from edge_runtime.config_schema import RuntimeConfig, rect_text
from edge_runtime.errors import ConfigError
from edge_runtime.privacy import redact


def add_common_options(p: argparse.ArgumentParser) -> None:
    """The options of replay and live: the model and ROI, the files a run writes, biopsy capture."""
    add_model_options(p)
    add_run_file_options(p)
    add_capture_options(p)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model, its backend, the runtime config and the ROI: what every measured run needs."""
    p.add_argument(
        "--model",
        help="model file (.onnx, .engine, .ts) with its manifest beside it "
        "(default: edge_runtime/models/default/model.onnx)",
    )
    p.add_argument(
        "--backend", choices=["auto", "onnxruntime", "tensorrt", "torch"], help="inference backend"
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="inference device")
    p.add_argument(
        "--config",
        help="runtime config YAML (sections: source, roi, inference, overlay, sinks, live, privacy)",
    )
    p.add_argument("--roi", help="ultrasound area of the screen: x,y,w,h | auto | full (default: auto)")
    p.add_argument(
        "--mm-per-pixel",
        type=float,
        help="ultrasound scale in the ROI (needed to detect needle fires for --cases); a source "
        "that carries its own (OpenIGTLink, a DICOM cine's PixelSpacing, the synthetic source) wins, with a warning",
    )
    p.add_argument("--ema", type=float, help="temporal smoothing weight of the newest probability (0 = off)")


def add_run_file_options(p: argparse.ArgumentParser) -> None:
    """The files a replay or live run writes besides its video. Not bench's: it writes only its report,
    and a flag it took without writing the file would pass for a recording that does not exist."""
    p.add_argument("--save-masks", metavar="DIR", help="write per-frame mask and ROI PNGs to DIR")
    p.add_argument("--record-raw", metavar="MP4", help="also record the raw input to MP4")
    p.add_argument("--summary", help="write a JSON summary (frames, fps, per-stage latency p50/p95/p99)")


def add_capture_options(p: argparse.ArgumentParser) -> None:
    """Biopsy capture into registration case folders."""
    p.add_argument(
        "--cases",
        metavar="DIR",
        help="capture every biopsy (detected needle fire, or a manual mark: "
        "key 'b', POST /mark, SIGUSR1) as a registration case folder in DIR",
    )
    p.add_argument(
        "--gauge",
        type=int,
        choices=[14, 16, 18],
        default=14,
        help="core needle gauge for --cases (sets the notch geometry registration assumes; default 14)",
    )


def add_study_id_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--study-id",
        metavar="ID",
        help="pseudonymous study ID of this session's subject (e.g. BX-0042; never a name or hospital "
        "number), written into each --cases case as capture.study_id; the viewer page can change it",
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    """OpenIGTLink out and the session recording in Slicer's format: replay and live."""
    p.add_argument(
        "--record-sequence",
        metavar="FILE.seq.nrrd",
        help="record ROI image, labelmap, probability, timestamps and OpenIGTLink transforms "
        "losslessly as 3D Slicer / PLUS sequences (needs pynrrd: sonomap[sequences])",
    )
    p.add_argument("--igtl-out", metavar="HOST:PORT", help="send predictions to an OpenIGTLink server")
    p.add_argument(
        "--igtl-serve",
        metavar="[HOST:]PORT",
        help="serve predictions as an OpenIGTLink server "
        "(HOST defaults to 127.0.0.1; another address needs --igtl-allow)",
    )
    p.add_argument(
        "--igtl-allow",
        metavar="CIDR",
        action="append",
        help="let viewers from this network connect to --igtl-serve (repeatable)",
    )


def overrides(args, **extra) -> dict:
    o = {
        "source": {},
        "roi": {"rect": getattr(args, "roi", None), "mm_per_pixel": getattr(args, "mm_per_pixel", None)},
        "inference": {
            "model": args.model,
            "backend": args.backend,
            "device": args.device,
            "enabled": False if getattr(args, "no_ai", False) else None,
        },
        "overlay": {"ema": args.ema},
        "sinks": {  # absent on a parser without add_run_file_options (bench)
            "masks": getattr(args, "save_masks", None),
            "raw": getattr(args, "record_raw", None),
            "summary": getattr(args, "summary", None),
        },
        "live": {},
    }
    for key, value in extra.items():
        section, name = key.split("__")
        o[section][name] = value
    return o


def runtime_overrides(args, **extra) -> dict:
    """The command line's overrides of the config file (section -> key -> value, None: not given;
    ``extra``: ``section__key=value`` of the subcommand's own flags), ``--roi`` checked. The pipeline
    keeps them and merges them again over the file at every reload."""
    roi = getattr(args, "roi", None)
    if roi is not None and not rect_text(roi):  # named as typed: the user gave a flag, not roi.rect
        raise ConfigError(f"--roi: expected auto, full or x,y,w,h numbers, got {roi!r}")
    return overrides(args, **extra)


def runtime_config(args, **extra) -> RuntimeConfig:
    """``--config`` (or the defaults) with :func:`runtime_overrides` merged over it."""
    return cfg.load_with_overrides(args.config, runtime_overrides(args, **extra))


def print_summary(summary: dict, failed: Collection[str] = ()) -> None:
    """The run's counts and per-stage latency, then ``wrote PATH (KIND)`` for each file the run wrote,
    except those in ``failed`` (paths whose recorder stopped on an error: the command reports them)."""
    lat = summary.get("latency_ms", {})
    print(
        f"frames {summary['frames']}  fps {summary['fps']:.2f}  errors {summary['errors']}  "
        # no image: frames whose ROI was undecided (blanked, AI OFF), which "without AI" does not count
        f"without AI {summary.get('frames_without_ai', 0)}  no image {summary.get('roi_undecided_frames', 0)}  "
        f"drops {summary['drops']}  "
        f"backend {summary['backend'].get('backend')} {summary['backend'].get('device', '')}"
    )
    for stage, s in lat.items():
        if s.get("n"):
            print(
                f"  {stage:<11} p50 {s['p50']:8.2f}  p95 {s['p95']:8.2f}  p99 {s['p99']:8.2f}  max {s['max']:8.2f} ms"
            )
    if summary.get("input_frames_skipped"):
        print(f"  skipped {summary['input_frames_skipped']} corrupt input frame(s): the outputs lack them")
    for kind, path in summary.get("outputs", {}).items():  # as written: time fields and suffixes resolved
        if path not in failed:
            print(redact(f"wrote {path} ({kind})"))  # a path may repeat a patient's name
