"""`sonomap make-clip` + `sonomap replay` on real BUSI images, and golden-frame regression."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap
from clips import decode
from golden_frames import GOLDEN_IDS, GOLDEN_TOLERANCE, Collect, assert_matches_golden, render_golden_ids
from runtime_model import dark_onnx

from edge_runtime.cli import build_parser
from edge_runtime.commands.options import runtime_config
from edge_runtime.commands.replay_live import SYNTHETIC_REPLAY_FRAMES, synthetic_replay_source
from edge_runtime.config import build_config
from edge_runtime.pipeline.graph import Pipeline

# HoloHub's golden-frame rule: summed absolute difference within 0.5 % of the maximum.
CLIP_FRAMES = 12
CLIP_SIZE = (640, 360)
CLIP_ROI = (120, 50, 400, 280)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", CLIP_FRAMES, "--size", f"{CLIP_SIZE[0]}x{CLIP_SIZE[1]}")
    return out


def test_make_clip_writes_a_scanner_screen_clip(clip):
    frames = decode(clip)
    assert len(frames) == CLIP_FRAMES and frames[0].shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3)
    info = json.loads(clip.with_suffix(".json").read_text())
    assert info["roi"] == list(CLIP_ROI) and info["mm_per_pixel"] > 0
    x, y, w, h = CLIP_ROI
    assert frames[0][y + 10 : y + h - 10, x + 10 : x + w - 10].mean() > 40  # ultrasound inside the ROI
    assert frames[0][:, : x - 5].mean() < 15  # dark screen around it
    assert not np.array_equal(frames[0], frames[CLIP_FRAMES - 1])  # the probe moves


def test_replay_writes_overlay_mp4_and_summary(clip, tmp_path):
    out, summary_path = tmp_path / "overlay.mp4", tmp_path / "s.json"
    res = sonomap("replay", clip, "--model", dark_onnx(), "--out", out, "--summary", summary_path)
    assert "frames 12" in res.stdout
    summary = json.loads(summary_path.read_text())
    assert summary["frames"] == CLIP_FRAMES and summary["inferred"] == CLIP_FRAMES and summary["errors"] == 0
    assert summary["fps"] > 0
    for stage in ("decode", "inference", "overlay", "sinks", "end_to_end"):
        assert {"p50", "p95", "p99"} <= set(summary["latency_ms"][stage])
    assert all(abs(a - b) <= 3 for a, b in zip(summary["roi"], CLIP_ROI, strict=False))  # auto-detected ROI
    assert summary["backend"]["backend"] == "onnxruntime"
    rendered, raw = decode(out), decode(clip)
    assert len(rendered) == CLIP_FRAMES
    x, y, w, h = CLIP_ROI
    red = lambda f: (f[y : y + h, x : x + w, 2].astype(int) - f[y : y + h, x : x + w, 1]).mean()  # noqa: E731
    assert red(rendered[5]) > red(raw[5]) + 10  # translucent red overlay
    assert raw[5][y + h + 5 :, : x - 5].max() > 100  # the screen's caption ...
    assert rendered[5][y + h + 5 :, : x - 5].max() < 8  # ... blanked, nothing painted


def test_replay_explicit_roi_save_masks_raw_recording_and_loop(clip, tmp_path):
    masks, raw = tmp_path / "masks", tmp_path / "raw.mp4"
    sonomap(
        "replay",
        clip,
        "--model",
        dark_onnx(),
        "--roi",
        "130,60,300,200",
        "--save-masks",
        masks,
        "--record-raw",
        raw,
        "--loop",
        "--max-frames",
        20,
        "--summary",
        tmp_path / "s.json",
    )
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 20 and summary["roi"] == [130, 60, 300, 200]
    # No overlay video, window or observer: no frame is drawn (the masks and raw video need none).
    assert "overlay" not in summary["latency_ms"] and summary["inferred"] == 20
    mask_files = sorted(masks.glob("*_mask.png"))
    assert len(mask_files) == 20
    m = cv2.imread(str(mask_files[0]), cv2.IMREAD_GRAYSCALE)
    assert m.shape == (200, 300) and set(np.unique(m)) <= {0, 255} and 0 < (m > 0).mean() < 1
    assert len(decode(raw)) == 20


def test_golden_frames(busi_sample, tmp_path):
    """Replay real BUSI images and compare rendered frames with golden PNGs (HUD off: it
    shows timings). Regenerate with SONOMAP_REGEN_GOLDEN=1 after an intended change."""
    collect = render_golden_ids(busi_sample, tmp_path, {"hud": False})
    assert collect.closed and len(collect.frames) == len(GOLDEN_IDS)
    for image_id, rendered in zip(GOLDEN_IDS, collect.frames, strict=False):
        assert_matches_golden(f"replay_{image_id}", rendered)
        raw = cv2.imread(str(busi_sample / "images" / f"{image_id}.png"))
        assert (
            np.abs(raw.astype(np.int32) - rendered).sum() / (255.0 * raw.size) > GOLDEN_TOLERANCE
        )  # overlay drawn


def test_mp4_replay_takes_the_yuv_path_and_looks_like_the_bgr_path(clip, tmp_path):
    """A yuv420p mp4 stays in the decoder's planes from decode to encode; the overlay it writes
    matches the BGR path's within encoder noise. A consumer of BGR (an observer) selects BGR."""
    from edge_runtime.sources.opener import open_source
    from edge_runtime.yuv import YuvFrame

    with open_source(str(clip)) as source:
        assert isinstance(next(iter(source)), YuvFrame)
    outputs = {}
    for prefer_yuv in (True, False):
        out = tmp_path / f"overlay_{prefer_yuv}.mp4"
        config = build_config(
            {
                "source": {"input": str(clip)},
                "inference": {"model": str(dark_onnx())},
                "overlay": {"hud": False},
                "sinks": {"video": str(out)},
            }
        )
        pipeline = Pipeline(config)
        pipeline.prefer_yuv = prefer_yuv
        assert pipeline.run()["frames"] == CLIP_FRAMES
        assert pipeline.yuv_render is prefer_yuv
        outputs[prefer_yuv] = np.stack(decode(out)).astype(np.int16)
    raw = np.stack(decode(clip)).astype(np.int16)
    # Both go through lossy H.264, so tiny input differences re-quantise the texture (~2 grey levels);
    # the paths must differ far less than the overlay itself changes the picture.
    overlay_effect = np.abs(outputs[False] - raw).mean()
    assert np.abs(outputs[True] - outputs[False]).mean() < min(2.5, 0.25 * overlay_effect)
    x, y, w, h = CLIP_ROI
    red = lambda f: (f[:, y : y + h, x : x + w, 2] - f[:, y : y + h, x : x + w, 1]).mean()  # noqa: E731
    assert red(outputs[True]) > red(raw) + 10  # translucent red overlay
    collect = Collect()
    config = build_config(
        {"source": {"input": str(clip), "max_frames": 2}, "inference": {"model": str(dark_onnx())}}
    )
    pipeline = Pipeline(config, observers=[collect])
    pipeline.run()
    assert not pipeline.yuv_render and collect.frames[0].shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3)


def test_parallel_overlay_workers_write_frames_in_order(clip, tmp_path, monkeypatch):
    """Replay draws frames on several workers (large hosts) and must still write them in order:
    three workers give the same encoded frames as one, and the EMA state follows frame order."""
    import edge_runtime.pipeline.replay as replay

    outputs = {}
    for workers in (1, 3):
        monkeypatch.setattr(replay, "render_workers", lambda n=workers: n)
        out = tmp_path / f"overlay_{workers}.mp4"
        config = build_config(
            {
                "source": {"input": str(clip)},
                "inference": {"model": str(dark_onnx())},
                "overlay": {"hud": False, "ema": 0.5},
                "sinks": {"video": str(out)},
            }
        )
        assert Pipeline(config).run()["frames"] == CLIP_FRAMES
        outputs[workers] = decode(out)
    assert len(outputs[3]) == CLIP_FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(outputs[1], outputs[3], strict=False))


def test_make_clip_noise_option(tmp_path):
    """--noise 0 gives a digital scanner's clean output: same picture, far fewer bits than the
    default analogue-capture noise; a negative level is refused by the parser (usage, then one error
    line naming the option), before anything is written."""
    sizes = {}
    for noise in ("0", "6"):
        out = tmp_path / f"clip{noise}.mp4"
        sonomap("make-clip", "--out", out, "--frames", 6, "--size", "640x360", "--noise", noise)
        assert json.loads(out.with_suffix(".json").read_text())["noise_sigma"] == float(noise)
        sizes[noise] = out.stat().st_size
    assert sizes["0"] < 0.6 * sizes["6"]
    bad = sonomap("make-clip", "--out", tmp_path / "bad.mp4", "--noise", "-1", check=False)
    last = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert last == "sonomap make-clip: error: argument --noise: must be a finite number >= 0, got -1"
    assert not (tmp_path / "bad.mp4").exists()


@pytest.mark.parametrize(
    ("flags", "frames"),
    [
        ([], SYNTHETIC_REPLAY_FRAMES),
        (["--loop"], None),
        (["--loop", "--max-frames", "7"], 7),
        (["--max-frames", "5"], 5),
    ],
)
def test_replay_of_the_synthetic_screen_is_endless_only_with_loop(flags, frames):
    """`--loop` means what its help says (until Ctrl-C) for the synthetic screen too; without it a
    replay is a fixed clip of SYNTHETIC_REPLAY_FRAMES."""
    args = build_parser("replay").parse_args(["replay", "synthetic", *flags])
    source = synthetic_replay_source(args, runtime_config(args))
    assert source.frames == frames
    if frames is None:  # endless: more frames than the fixed clip come out
        produced = sum(1 for _ in itertools.islice(source, SYNTHETIC_REPLAY_FRAMES + 1))
        assert produced == SYNTHETIC_REPLAY_FRAMES + 1
