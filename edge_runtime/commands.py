"""`sonomap` subcommands of the edge runtime (replay, live, bench, make-clip, soak).

This module is the CLI's wiring and is imported by every `sonomap` call, `--help` included: each
command imports the part of the runtime it runs (the pipeline, the bench, the service hooks) inside
its handler, so `--help` does not load the whole runtime. The HTTP viewer and OpenIGTLink observers
are imported by name when asked for, so an install without their extras says which flag needs what.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from edge_runtime import config as cfg
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import load_manifest, sha256_file
from edge_runtime.privacy import redact
from edge_runtime.sources import synthetic
from edge_runtime.tools import soak
from edge_runtime.units import DEFAULT_FPS

SYNTHETIC_REPLAY_FRAMES = 90


def _common(p: argparse.ArgumentParser) -> None:
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
        "--config", help="runtime config YAML (sections: source, roi, inference, overlay, sinks, live)"
    )
    p.add_argument("--roi", help="ultrasound area of the screen: x,y,w,h | auto | full (default: auto)")
    p.add_argument(
        "--mm-per-pixel",
        type=float,
        help="ultrasound scale in the ROI (needed to detect needle "
        "fires for --cases; OpenIGTLink images carry their own)",
    )
    p.add_argument("--ema", type=float, help="temporal smoothing weight of the newest probability (0 = off)")
    p.add_argument("--save-masks", metavar="DIR", help="write per-frame mask and ROI PNGs to DIR")
    p.add_argument("--record-raw", metavar="MP4", help="also record the raw input to MP4")
    p.add_argument("--summary", help="write a JSON summary (frames, fps, per-stage latency p50/p95/p99)")
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


def _study_id_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--study-id",
        metavar="ID",
        help="pseudonymous study ID of this session's subject (e.g. BX-0042; never a name or hospital "
        "number), written into each --cases case as capture.study_id; the viewer page can change it",
    )


def _overrides(args, **extra) -> dict:
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
        "sinks": {"masks": args.save_masks, "raw": args.record_raw, "summary": args.summary},
        "live": {},
    }
    for key, value in extra.items():
        section, name = key.split("__")
        o[section][name] = value
    return o


def _config(args, **extra) -> RuntimeConfig:
    return cfg.merge(cfg.load_config(args.config), _overrides(args, **extra))


def _print_summary(summary: dict) -> None:
    lat = summary.get("latency_ms", {})
    print(
        f"frames {summary['frames']}  fps {summary['fps']:.2f}  errors {summary['errors']}  "
        f"drops {summary['drops']}  backend {summary['backend'].get('backend')} {summary['backend'].get('device', '')}"
    )
    for stage, s in lat.items():
        if s.get("n"):
            print(
                f"  {stage:<11} p50 {s['p50']:8.2f}  p95 {s['p95']:8.2f}  p99 {s['p99']:8.2f}  max {s['max']:8.2f} ms"
            )
    for kind, path in summary.get("outputs", {}).items():  # as written: time fields and suffixes resolved
        print(redact(f"wrote {path} ({kind})"))  # a path may repeat a patient's name


def cmd_replay(args) -> int:
    from edge_runtime.pipeline.graph import Pipeline  # deferred for --help (module doc)
    from edge_runtime.sources.opener import SyntheticSource  # deferred for --help (module doc)

    config = _config(
        args,
        source__input=args.input,
        source__loop=args.loop or None,
        source__realtime=args.realtime or None,
        source__max_frames=args.max_frames,
        sinks__video=args.out,
        sinks__window=args.window or None,
    )
    source = None
    if args.input == "synthetic":  # replay of the synthetic screen: a fixed number of frames, not paced
        source = SyntheticSource(
            image=config.source.image,
            frames=args.max_frames or SYNTHETIC_REPLAY_FRAMES,
            live=False,
            width=config.source.width,
            height=config.source.height,
        )
    capture = _capture_observers(args, config)
    sequence = _sequence_observers(args, config, live=False)
    observers = _observer_hooks(args) + capture + sequence
    summary = Pipeline(config, config_path=args.config, source=source, observers=observers).run()
    _print_summary(summary)
    _print_captures(capture)
    _print_sequences(sequence)
    return 0


def _sequence_observers(args, config: RuntimeConfig, live: bool) -> list:
    """[SequenceRecorder] for --record-sequence FILE.seq.nrrd, else []."""
    if not getattr(args, "record_sequence", None):
        return []
    from edge_runtime.sinks.sequence import SequenceRecorder

    return [SequenceRecorder(args.record_sequence, live=live, min_free_gb=config.sinks.min_free_gb)]


def _print_sequences(sequence: list) -> None:
    for recorder in sequence:
        for path in recorder.files:
            print(
                redact(
                    f"wrote {path} ({recorder.frames} frames, {recorder.dropped} dropped; Slicer sequence)"
                )
            )


def _capture_observers(args, config: RuntimeConfig) -> list:
    """[CaptureObserver] for --cases DIR, else []."""
    study_id = getattr(args, "study_id", None)
    if study_id is not None:
        from edge_runtime.biopsy.study_id import check_study_id

        study_id = check_study_id(study_id)  # before anything starts: a one-line error
        if not getattr(args, "cases", None):
            raise ConfigError("--study-id names the subject of captured cases: give --cases DIR too")
    if not getattr(args, "cases", None):
        return []
    from edge_runtime.biopsy.observer import CaptureObserver  # deferred for --help (module doc)

    model = cfg.resolve_model(config)
    manifest = load_manifest(model)
    return [
        CaptureObserver(
            args.cases,
            {"name": manifest.name, "file": model.name, "sha256": manifest.sha256 or sha256_file(model)},
            config.source.input,
            gauge=args.gauge,
            cancer_class=manifest.cancer_index,
            study_id=study_id,
        )
    ]


def _print_captures(capture: list) -> None:
    for observer in capture:
        noun = "biopsy" if observer.captures == 1 else "biopsies"
        print(
            f"captured {observer.captures} {noun} into {observer.directory}"
            + (f" ({observer.writer.errors} could not be written)" if observer.writer.errors else "")
        )


def _observer_hooks(args) -> list:
    """Observers for --http / --igtl-out / --igtl-serve, imported only when asked for (optional extras)."""
    observers = []

    def need(module: str, flag: str):
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise SonomapError(f"{flag}: {module} is not available in this install ({exc})") from exc

    if getattr(args, "http", None):  # replay has no --http
        host, _, port = args.http.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--http: expected HOST:PORT, got {args.http!r}")
        observers.append(
            need("edge_runtime.service.http_server", "--http").make_http_observer(
                host or "127.0.0.1", int(port), args.token, args.tls_cert, args.tls_key
            )
        )
    elif getattr(args, "tls_cert", None) or getattr(args, "tls_key", None):
        raise ConfigError("--tls-cert/--tls-key secure the --http server: give --http too")
    if args.igtl_out:
        observers.append(need("edge_runtime.igtl", "--igtl-out").make_igtl_observer(out=args.igtl_out))
    if args.igtl_serve:
        observers.append(
            need("edge_runtime.igtl", "--igtl-serve").make_igtl_observer(
                serve=args.igtl_serve, allow=args.igtl_allow
            )
        )
    elif args.igtl_allow:
        raise ConfigError("--igtl-allow limits who may connect to --igtl-serve: give --igtl-serve too")
    return observers


def cmd_live(args) -> int:
    from edge_runtime.pipeline.graph import Pipeline  # deferred for --help (module doc)
    from edge_runtime.service import hooks as service  # deferred for --help; sd_notify, signals, reconnect

    config = _config(
        args,
        source__input=args.source,
        source__fps=args.fps,
        source__width=args.width,
        source__height=args.height,
        source__fourcc=args.fourcc,
        live__mode=args.mode,
        live__duration_s=args.duration,
        sinks__video=args.record,
        source__realtime=True,
        sinks__window=False if args.headless else None,
        sinks__fullscreen=args.fullscreen or None,
    )
    if not args.headless and config.sinks.window is False and not args.config:
        config.sinks.window = True
    capture = _capture_observers(args, config)
    sequence = _sequence_observers(args, config, live=True)
    pipeline = Pipeline(
        config,
        config_path=args.config,
        **service.live_kwargs(config, _observer_hooks(args) + capture + sequence),
    )
    pipeline.live_schedule = True  # a file too: newest frame wins, the display never waits on the AI
    handlers = service.install(pipeline)
    try:
        summary = pipeline.run()
    finally:
        handlers.restore()
    _print_summary(summary)
    _print_captures(capture)
    _print_sequences(sequence)
    return 0


def cmd_make_clip(args) -> int:
    width, _, height = args.size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ConfigError(f"--size: expected WxH, got {args.size!r}")
    image = Path(args.image) if args.image else synthetic.default_image()
    info = synthetic.write_clip(
        image,
        Path(args.out),
        args.frames,
        args.fps,
        int(width),
        int(height),
        args.seed,
        args.noise,
        args.patient_line,
    )
    Path(args.out).with_suffix(".json").write_text(json.dumps(info, indent=2))
    print(
        f"wrote {args.out}: {args.frames} frames at {args.fps} fps, ROI {','.join(map(str, info['roi']))} "
        f"({info['mm_per_pixel']:.4f} mm/px) from {image.name}"
    )
    return 0


def cmd_bench(args) -> int:
    if args.source and args.source.startswith("igtl://"):
        from edge_runtime.tools.igtl_bench import run_igtl_bench  # deferred for --help (module doc)

        report = run_igtl_bench(args.source, _config(args), args.frames)
    else:
        from edge_runtime.tools.bench import run_bench  # deferred for --help (module doc)

        report = run_bench(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


def _output_options(p: argparse.ArgumentParser) -> None:
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


def register(sub) -> None:
    """Add the runtime's subcommands to the top-level parser's subparsers."""
    p = sub.add_parser(
        "replay",
        help="run the model over a video, image folder or DICOM cine and write an overlay mp4",
        description="Process every frame (none dropped) of INPUT: a video file (PyAV), an image "
        "folder, a DICOM cine (.dcm) or 'synthetic'; draw the cancer overlay and write H.264 mp4.",
    )
    p.add_argument(
        "input",
        help="video file, image folder, .dcm file, .seq.nrrd or PLUS .igs.mha sequence, or 'synthetic'",
    )
    p.add_argument("--out", help="overlay mp4 to write")
    p.add_argument("--loop", action="store_true", help="loop the input (stop with Ctrl-C)")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace at the clip's frame rate (a sequence: its recorded times)",
    )
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--window", action="store_true", help="also show a window")
    _output_options(p)
    _common(p)
    _study_id_option(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "live",
        help="live overlay from a capture card, stream, OpenIGTLink or the synthetic source",
        description="Live mode: the newest captured frame wins; raw video is shown at capture rate "
        "and the overlay never holds it back.",
    )
    p.add_argument(
        "--source",
        default=None,
        help="synthetic | /dev/videoN | N | rtsp://... | igtl://HOST:PORT?device=NAME | file",
    )
    p.add_argument(
        "--mode",
        choices=["latest", "strict"],
        help="overlay the newest mask (with its age) or only a frame's own mask",
    )
    p.add_argument("--fps", type=float, help="capture frame rate")
    p.add_argument("--width", type=int, help="capture width")
    p.add_argument("--height", type=int, help="capture height")
    p.add_argument("--fourcc", help="capture pixel format (e.g. YUYV, MJPG)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--fullscreen", action="store_true", help="fullscreen window")
    p.add_argument("--record", metavar="MP4", help="record the rendered overlay (fragmented mp4)")
    p.add_argument("--duration", type=float, help="stop after S seconds")
    p.add_argument(
        "--no-ai",
        action="store_true",
        help="start with the AI off: raw video with an 'AI OFF' badge (key 'a' in the window switches it on)",
    )
    p.add_argument("--http", metavar="HOST:PORT", help="serve /healthz, /metrics and a viewer")
    p.add_argument("--token", help="access token for --http when bound beyond localhost")
    p.add_argument("--tls-cert", metavar="PEM", help="serve --http over HTTPS with this certificate (chain)")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    _output_options(p)
    _common(p)
    _study_id_option(p)
    p.set_defaults(func=cmd_live)

    p = sub.add_parser(
        "make-clip",
        help="make a scanner-screen replay clip from a real BUSI image with probe motion",
        description="Render a real ultrasound image into a dark 1080p scanner screen with text, "
        "moving as under a handheld probe, and write H.264 mp4 (+ a .json with the ROI and mm scale).",
    )
    p.add_argument("--image", help="grayscale ultrasound PNG (default: a vendored BUSI malignant image)")
    p.add_argument("--out", required=True, help="mp4 to write")
    p.add_argument("--frames", type=int, default=90, help="number of frames (default 90)")
    p.add_argument("--fps", type=int, default=int(DEFAULT_FPS))
    p.add_argument("--size", default="1920x1080", help="screen size WxH")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--noise",
        type=float,
        default=synthetic.NOISE_SIGMA,
        help=f"frame-independent noise in grey levels (default {synthetic.NOISE_SIGMA:g}: analogue capture; "
        "0: digital scanner output)",
    )
    p.add_argument(
        "--patient-line",
        metavar="TEXT",
        help="burn this patient line (name, ID, birth date) into the "
        "screen above the image, as scanners do, to check de-identification (its box goes in the .json)",
    )
    p.set_defaults(func=cmd_make_clip)

    p = sub.add_parser(
        "bench",
        help="per-stage latency, throughput and the naive-loop comparison",
        description="Replay INPUT through the pipeline and, in the same run, through a naive "
        "sequential loop and the backend alone; print p50/p95/p99/max per stage and the ratios.",
    )
    p.add_argument(
        "input", nargs="?", default=None, help="clip to replay (default: a generated 1080p synthetic clip)"
    )
    p.add_argument("--frames", type=int, default=120, help="frames per measurement")
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument(
        "--source",
        help="live source to measure (default: synthetic 30 fps; igtl://... for OpenIGTLink round trips)",
    )
    p.add_argument(
        "--live-seconds", type=float, default=6.0, help="length of the live measurement (0 = skip)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat backend-only / naive / pipeline this many times, "
        "interleaved, and report the median ratios (steadier on a shared machine)",
    )
    p.add_argument(
        "--compare-bgr", action="store_true", help="also time the pipeline forced onto its BGR path"
    )
    _common(p)
    p.set_defaults(func=cmd_bench)

    soak.register(sub)
