"""bench-slides: seconds and peak memory of `sonomap register` on a scanner-sized JPEG slide, per reader.

Input: real ultrasound images + lesion masks (BUSI layout), a seed, the level-0 width (default
40000 px) and the number of repeats. Steps, all in WORK:
1. simulate one biopsy case (``simulate-biopsy``; its slide is 4 µm/px);
2. re-tile that slide as an Aperio-layout SVS with JPEG tiles, level 0 ``width`` px wide (the
   simulated tissue upscaled, cropped to the tissue rows, with fine noise so JPEG sees texture),
   levels 1/4/16/64 as scanners write them, and the annotations rescaled to its level-0 pixels;
3. for each reader (tifffile, OpenSlide): run ``python -m edge_runtime.cli register`` as a child
   process ``repeats`` times and record its wall and CPU time, the in-process registration time
   (report.json "seconds") and its peak RSS (``wait4``); then, in-process, the time of ``read_slide``
   alone and the CPU time of ``register_case`` (load-robust, unlike wall time on a shared machine);
4. check that every reader's label agrees with the label of the original 4 µm slide.
Prints one line per reader and writes WORK/bench_slides.json. With ``--work``, a slide built by an
earlier run of the same width is reused (WORK/big/slide.json), so runs can be repeated cheaply.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge_runtime.errors import SonomapError
from edge_runtime.image_files import read_image
from registration.pipeline import TARGET_MPP, register_case
from registration.sim.simulate import simulate_cases
from registration.wsi import read_slide
from registration.wsi_write import TILE, write_slide

READERS = ("tifffile", "openslide")
DOWNSAMPLES = (1, 4, 16, 64)
MARGIN_UM = 400.0  # glass kept above and below the tissue
NOISE_SIGMA = 3.0
NOISE_BANK = 32  # distinct noise tiles, cycled (drawing 10^8 normals would dominate the bench)
GLASS_DELTA = 12  # a source pixel this far from the glass colour is tissue (for the crop)
TARGETS = {"seconds": 2.0, "peak_rss_mb": 1536.0}


def _tissue_rows(img: np.ndarray) -> tuple[int, int]:
    glass = np.median(img.reshape(-1, 3), axis=0)
    rows = np.nonzero((np.abs(img.astype(np.int16) - glass).max(axis=2) > GLASS_DELTA).any(axis=1))[0]
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, img.shape[0])


def _tile_source(src: np.ndarray, factor: float, seed: int):
    """TileSource drawing level k from the cropped source: upscaled band by band, plus noise."""
    rng = np.random.default_rng(seed)
    bank = rng.normal(0.0, NOISE_SIGMA, (NOISE_BANK, TILE, TILE, 3)).astype(np.int16)

    def tiles(k: int, shape):
        h, w = shape
        step = DOWNSAMPLES[k] / factor  # source pixels per level pixel
        small = None if step < 1 else cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
        i = 0
        for y in range(0, h, TILE):
            if small is None:
                m = np.float32([[step, 0, 0.5 * step - 0.5], [0, step, (y + 0.5) * step - 0.5]])
                band = cv2.warpAffine(
                    src,
                    m,
                    (w, TILE),
                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                    borderMode=cv2.BORDER_REPLICATE,
                )
            else:
                band = np.full((TILE, w, 3), 255, np.uint8)
                part = small[y : y + TILE]
                band[: part.shape[0]] = part
            for x in range(0, w, TILE):
                tile = np.full((TILE, TILE, 3), 255, np.uint8)
                part = band[:, x : x + TILE]
                tile[:, : part.shape[1]] = part
                i += 1
                yield np.clip(tile + bank[(i * 7 + y) % NOISE_BANK], 0, 255).astype(np.uint8)

    return tiles


def build_big_case(case_dir: Path, out_dir: Path, width: int, seed: int = 0) -> dict:
    """Re-tile a simulated case's slide as a JPEG SVS ``width`` px wide; return its facts."""
    import tifffile  # deferred: optional dependency of the registration extra

    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    with tifffile.TiffFile(str(case_dir / case["pathology"]["wsi"])) as tif:
        src_full = tif.series[0].levels[0].asarray()
        src_mpp = 1e4 / (
            tif.pages[0].tags["XResolution"].value[0] / tif.pages[0].tags["XResolution"].value[1]
        )
    y0, y1 = _tissue_rows(src_full)
    margin = int(MARGIN_UM / src_mpp)
    y0, y1 = max(y0 - margin, 0), min(y1 + margin, src_full.shape[0])
    src = np.ascontiguousarray(src_full[y0:y1])
    factor = width / src.shape[1]
    mpp0 = src_mpp / factor
    shape0 = (int(round(src.shape[0] * factor)), width)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("us.png", "us_prefire.png", "truth.png"):
        if (case_dir / name).is_file():
            shutil.copy(case_dir / name, out_dir / name)
    t0 = time.perf_counter()
    shapes = write_slide(
        out_dir / "core.svs", shape0, mpp0, _tile_source(src, factor, seed), DOWNSAMPLES, "jpeg", "aperio"
    )
    write_s = time.perf_counter() - t0
    gj = json.loads((case_dir / case["pathology"]["annotations"]).read_text())
    for feat in gj["features"]:
        _rescale(feat["geometry"], factor, y0)
    (out_dir / "core.geojson").write_text(json.dumps(gj))
    case["pathology"].update(wsi="core.svs", annotations="core.geojson")
    case["pathology"].pop("mpp", None)
    (out_dir / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    return {
        "level_shapes": [list(s) for s in shapes],
        "mpp0": round(mpp0, 5),
        "write_seconds": round(write_s, 1),
        "file_mb": round((out_dir / "core.svs").stat().st_size / 2**20, 1),
    }


def _rescale(geom: dict, factor: float, y0: int) -> None:
    def walk(c):
        if c and isinstance(c[0], (int, float)):
            return [c[0] * factor, (c[1] - y0) * factor]
        return [walk(v) for v in c]

    if "coordinates" in geom:
        geom["coordinates"] = walk(geom["coordinates"])
    for g in geom.get("geometries", []):
        _rescale(g, factor, y0)


def run_register(case_file: Path, out: Path) -> dict:
    """One `sonomap register` child process: wall seconds, its own peak RSS (MB, the VmHWM it reports:
    ``ru_maxrss`` of a child carries its parent's peak) and its report."""
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_runtime.cli", "register", str(case_file), "--out", str(out)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        log_file = out.parent / f"{out.name}.log"
        lines = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {proc.returncode}"  # its one-line error
        raise SonomapError(f"{case_file}: the `sonomap register` child failed: {why} (log: {log_file})")
    rep = json.loads((out / "report.json").read_text())
    return {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "register_seconds": rep["seconds"],
        "peak_rss_mb": rep["process_peak_rss_mb"],
        "slide": rep["slide"],
    }


def _agreement(a: Path, b: Path) -> float:
    la, lb = (read_image(p / "label.png", cv2.IMREAD_GRAYSCALE) for p in (a, b))
    known = (la != 255) | (lb != 255)
    return float((la[known] == lb[known]).mean()) if known.any() else 1.0


def _measure(big: Path, reader: str, repeats: int) -> dict:
    """``repeats`` child registrations forced to ``reader``, then ``read_slide`` alone in-process."""
    case = yaml.safe_load((big / "case.yaml").read_text())
    case["pathology"]["reader"] = reader
    cf = big / f"case_{reader}.yaml"
    cf.write_text(yaml.safe_dump(case, sort_keys=False))
    runs = [run_register(cf, big / f"out_{reader}") for _ in range(repeats)]
    read_s, cpu_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        read_slide(big / "core.svs", None, TARGET_MPP, reader)
        read_s.append(round(time.perf_counter() - t0, 4))
        c0 = time.process_time()  # all threads of this process: hardly grows with other processes' load
        register_case(cf, big / f"inproc_{reader}")
        cpu_s.append(round(time.process_time() - c0, 3))
    return {
        "slide": runs[0]["slide"],
        "read_seconds": read_s,
        "register_cpu_seconds": cpu_s,
        **{
            k: [round(r[k], 3) for r in runs]
            for k in ("wall_seconds", "cpu_seconds", "register_seconds", "peak_rss_mb")
        },
    }


def run_slide_bench(images, masks, width: int = 40000, repeats: int = 3, seed: int = 1, work=None) -> dict:
    tmp = tempfile.mkdtemp(prefix="sonomap-bench-slides-") if work is None else None
    work = Path(work or tmp)
    try:
        big = work / "big"
        saved = big / "slide.json"
        facts = json.loads(saved.read_text()) if saved.is_file() else None
        if facts is None or facts["level_shapes"][0][1] != width or facts.get("seed") != seed:
            sim = simulate_cases(images, masks, work / "sim", 1, seed)
            facts = build_big_case(work / "sim" / sim["cases"][0]["case_id"], big, width, seed)
            facts.update(seed=seed, case_dir=str(work / "sim" / sim["cases"][0]["case_id"]))
            saved.write_text(json.dumps(facts))
        case_dir = Path(facts["case_dir"])
        run_register(case_dir / "case.yaml", work / "out_original")
        res = {
            "slide": facts,
            "readers": {},
            "load_average_before": [round(v, 2) for v in os.getloadavg()],
            "cpu_cores": os.cpu_count(),
        }
        for reader in READERS:
            res["readers"][reader] = _measure(big, reader, repeats)
            res["readers"][reader]["label_agreement_with_original"] = round(
                _agreement(work / "out_original", big / f"out_{reader}"), 4
            )
        res["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        _print(res, repeats)
        (work / "bench_slides.json").write_text(json.dumps(res, indent=1))
        return res
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _print(res: dict, repeats: int) -> None:
    s = res["slide"]
    h0, w0 = s["level_shapes"][0]
    print(
        f"slide benchmark: JPEG-tiled Aperio SVS, level 0 {w0}x{h0} px at {s['mpp0']} µm/px, "
        f"{len(s['level_shapes'])} levels, {s['file_mb']} MB (written in {s['write_seconds']} s); "
        f"median of {repeats} runs per reader; {res['cpu_cores']} cores, load average "
        f"{res['load_average_before'][0]} before, {res['load_average_after'][0]} after "
        "(wall times grow with other processes' load, CPU times less)"
    )
    for reader, r in res["readers"].items():
        reg, wall, cpu = (float(np.median(r[k])) for k in ("register_seconds", "wall_seconds", "cpu_seconds"))
        ok = reg <= TARGETS["seconds"] and max(r["peak_rss_mb"]) <= TARGETS["peak_rss_mb"]
        print(
            f"  {reader:<10} level {r['slide']['level']} ({r['slide']['level_mpp']} µm/px): read_slide "
            f"{float(np.median(r['read_seconds'])):.3f} s | register_case {reg:.3f} s wall, "
            f"{float(np.median(r['register_cpu_seconds'])):.3f} s CPU | `sonomap register` "
            f"{wall:.3f} s wall, {cpu:.3f} s CPU | peak RSS {max(r['peak_rss_mb']):.0f} MB | label agreement "
            f"with the 4 µm slide {r['label_agreement_with_original']:.4f} | target <= {TARGETS['seconds']} s, "
            f"<= {TARGETS['peak_rss_mb']:.0f} MB: {'PASS' if ok else 'FAIL'}"
        )
