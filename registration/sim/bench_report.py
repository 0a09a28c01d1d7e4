"""What ``sonomap bench-registration`` prints: one line per metric with its target, PASS or FAIL.

Input: the summary of :func:`registration.sim.bench.run_bench` (plain or ``--lab``). Output: lines
on stdout. The targets are here, beside the lines that compare against them.
"""

from __future__ import annotations

from registration.sim.bench_lab import print_breakdown

TARGETS = {"dice": 0.95, "boundary_mm": 0.25, "known": 0.70, "needle_pass": 0.95, "seconds": 2.0}
LAB_TARGETS = {**TARGETS, "boundary_mm": 0.35, "known": 0.80, "rss_mb": 1536.0}


def _line(name: str, value: str, target: str, ok: bool) -> str:
    return f"  {name:<44} {value:<42} target {target:<8} {'PASS' if ok else 'FAIL'}"


def print_report(res: dict, images, seed: int) -> None:
    t = LAB_TARGETS if res.get("lab") else TARGETS
    print(
        f"registration benchmark: {res['n']} simulated cases from {images} (seed {seed}); "
        f"simulation took {res['simulate_seconds']} s"
    )
    print(
        _line(
            "Dice on cancer over known pixels",
            f"mean {res['dice_mean']:.4f} min {res['dice_min']:.4f} pooled {res['dice_pooled']:.4f}",
            f">= {t['dice']}",
            res["dice_mean"] >= t["dice"],
        )
    )
    print(
        _line(
            "along-tract boundary error",
            f"mean {res['boundary_mean_mm']:.3f} mm p95 {res['boundary_p95_mm']:.3f} (n={res['boundaries']})",
            f"<= {t['boundary_mm']}",
            res["boundary_mean_mm"] <= t["boundary_mm"],
        )
    )
    print(
        _line(
            "known fraction of the tract band",
            f"mean {res['known_mean']:.3f} min {res['known_min']:.3f}",
            f">= {t['known']}",
            res["known_mean"] >= t["known"],
        )
    )
    if res.get("lab"):
        _print_lab(res, t)
        return
    tip, ang = res["needle_tip_median_mm"], res["needle_angle_median_deg"]
    print(
        _line(
            "needle auto-detection (angle<=2deg, tip<=1mm)",
            f"{100 * res['needle_pass']:.1f}% pass; median tip "
            f"{tip if tip is None else round(tip, 3)} mm, angle {ang if ang is None else round(ang, 3)} deg",
            f">= {100 * t['needle_pass']:.0f}%",
            res["needle_pass"] >= t["needle_pass"],
        )
    )
    if res["auto_dice_mean"] is not None:
        print(f"  {'Dice with the auto-detected needle tract':<44} mean {res['auto_dice_mean']:.4f}")
    print(
        f"  {'register seconds per simulated case':<44} mean {res['register_seconds_mean']:.3f} s "
        f"(level-0 mpp 4 µm); cases with warnings: {res['cases_with_warnings']}"
    )
    if "timing" in res:
        tm = res["timing"]
        print(
            _line(
                f"seconds per case, level 0 {tm['level0_shape'][1]}x{tm['level0_shape'][0]}",
                f"median {tm['median_seconds']:.3f} s of {len(tm['seconds'])} (Dice {tm['dice']:.4f})",
                f"<= {t['seconds']}",
                tm["median_seconds"] <= t["seconds"],
            )
        )


def _print_lab(res: dict, t: dict) -> None:
    print(_line("cases that failed to open or register", str(len(res["failed"])), "0", not res["failed"]))
    for f in res["failed"]:
        print(f"    {f['case_id']}: {f['error']}")
    print(
        f"  {'boundary floor (linear within a fragment)':<44} mean {res['floor_mean_mm']:.3f} mm at the same "
        "boundaries"
    )
    print(f"  {'register seconds per simulated case':<44} mean {res['register_seconds_mean']:.3f} s")
    if "memory" in res:
        m = res["memory"]
        measured = f"{m['peak_rss_mb']:.0f} MB" if m["ok"] else f"register failed: {m['error']}"
        print(
            _line(
                "peak RSS of one `sonomap register` (child)",
                measured,
                f"<= {t['rss_mb']:.0f}",
                m["ok"] and m["peak_rss_mb"] <= t["rss_mb"],
            )
        )
    print_breakdown(res["breakdown"])
