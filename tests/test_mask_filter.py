"""The manifest's mask filter: the rules, its fit on a split, and that evaluation, replay and the
heat-map overlay all apply it (real ONNX Runtime, real images, the `sonomap` command)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap

from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path
from edge_runtime.mask_filter import ANALYSIS_SIDE, MaskFilter, filter_mask
from edge_runtime.render import heatmap
from edge_runtime.render.overlay import Overlay
from training.mask_filter_fit import GRID, choose, criterion, image_score, smallest_lesion
from training.metrics import Counts

LARGEST = MaskFilter(min_area_fraction=0.02, largest_only=True)


def two_blobs(big: int = 30, small: int = 4) -> np.ndarray:
    mask = np.zeros((100, 100), np.uint8)
    mask[10 : 10 + big, 10 : 10 + big] = 1
    mask[80 : 80 + small, 80 : 80 + small] = 1
    return mask


def parts(mask: np.ndarray) -> list[int]:
    count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    return sorted(stats[1:, cv2.CC_STAT_AREA].tolist())


def test_each_rule_drops_what_it_names_and_nothing_else():
    mask = two_blobs()
    assert filter_mask(mask, 0.9, None) is mask and filter_mask(mask, 0.9, MaskFilter()) is mask
    assert parts(filter_mask(mask, 0.9, MaskFilter(min_area_fraction=0.01))) == [900]  # 16 px < 100
    assert parts(filter_mask(mask, 0.9, MaskFilter(min_area_fraction=0.0016))) == [16, 900]
    assert parts(filter_mask(mask, 0.9, MaskFilter(largest_only=True))) == [900]
    gated = filter_mask(mask, 0.69, MaskFilter(min_peak=0.7))
    assert not gated.any() and gated.dtype == mask.dtype
    assert filter_mask(mask, 0.7, MaskFilter(min_peak=0.7)).sum() == mask.sum()
    # nothing large enough: the largest-only rule does not bring a dropped part back
    assert not filter_mask(mask, 0.9, MaskFilter(min_area_fraction=0.5, largest_only=True)).any()
    # bool masks stay bool; diagonal neighbours are one part (8-connected)
    diagonal = np.eye(6, dtype=bool)
    assert filter_mask(diagonal, 1.0, MaskFilter(largest_only=True)).sum() == 6
    assert filter_mask(two_blobs() > 0, 0.9, LARGEST).dtype == bool


def test_a_large_mask_is_analysed_in_blocks_and_every_pixel_keeps_its_parts_verdict():
    mask = np.zeros((840, 1200), np.uint8)
    cv2.circle(mask, (400, 400), 150, 1, -1)  # the lesion
    cv2.circle(mask, (900, 300), 60, 1, -1)  # a second part, far away
    mask[700:703, 100:103] = 1  # a speck: 9 px, much less than a 5 x 5 block
    assert ANALYSIS_SIDE < 1200  # the grid is coarser than the mask here
    largest = filter_mask(mask, 1.0, MaskFilter(largest_only=True))
    lesion = np.zeros_like(mask)
    cv2.circle(lesion, (400, 400), 150, 1, -1)
    np.testing.assert_array_equal(largest, lesion)  # exact to the pixel, edges included
    # the speck is under 0.1 % of the image even counted in blocks; the second part is not
    some = filter_mask(mask, 1.0, MaskFilter(min_area_fraction=0.001))
    assert some[700:703, 100:103].sum() == 0 and (some == mask)[:, 600:].all()
    assert (filter_mask(mask > 0, 1.0, MaskFilter(largest_only=True)) == (lesion > 0)).all()


def test_speckle_noise_is_dropped_part_by_part_and_near_parts_merge_on_a_coarse_grid():
    noise = np.zeros((ANALYSIS_SIDE, ANALYSIS_SIDE), np.uint8)  # one block per pixel
    noise[::2, ::2] = 1  # 16 384 single-pixel parts
    assert not filter_mask(noise, 1.0, MaskFilter(min_area_fraction=0.01)).any()
    noise[50:150, 50:150] = 1
    kept = filter_mask(noise, 1.0, MaskFilter(min_area_fraction=0.01))
    _, labels = cv2.connectedComponents(noise, connectivity=8)
    np.testing.assert_array_equal(kept, labels == labels[100, 100])  # the square and noise touching it
    # at three times the size, pixels two apart share a block: the noise is one part, and stays
    coarse = np.zeros((3 * ANALYSIS_SIDE, 3 * ANALYSIS_SIDE), np.uint8)
    coarse[::2, ::2] = 1
    assert (filter_mask(coarse, 1.0, MaskFilter(min_area_fraction=0.01)) == coarse).all()


def test_the_manifest_carries_it_and_names_a_bad_key():
    data = load_manifest(DEFAULT_MODEL).to_dict()
    data.pop("mask_filter", None)
    assert Manifest.from_dict(data, "m.yaml").mask_filter is None
    data["mask_filter"] = {"min_peak": 0.7, "largest_only": True}
    manifest = Manifest.from_dict(data, "m.yaml")
    assert manifest.mask_filter == MaskFilter(min_peak=0.7, largest_only=True)
    assert Manifest.from_dict(manifest.to_dict(), "again") == manifest
    for bad, key in (
        ({"min_peak": 1.5}, "mask_filter.min_peak"),
        ({"min_area_fraction": 1}, "mask_filter.min_area_fraction"),
    ):
        data["mask_filter"] = bad
        with pytest.raises(ConfigError, match=rf"m.yaml: malformed manifest value: '{key}'"):
            Manifest.from_dict(data, "m.yaml")
    data["mask_filter"] = {"keep": "all"}
    with pytest.raises(ConfigError, match="m.yaml: unknown manifest key 'mask_filter.keep'"):
        Manifest.from_dict(data, "m.yaml")


def test_the_image_score_policy():
    assert image_score(Counts(tp=0, fp=0, fn=0, tn=10)) == 1.0  # no cancer, nothing called
    assert image_score(Counts(tp=0, fp=1, fn=0, tn=9)) == 0.0  # no cancer, one false pixel
    assert image_score(Counts(tp=3, fp=1, fn=2, tn=4)) == pytest.approx(6 / 9)


def lesion_image(prob_peak: float, speck_prob: float | None) -> tuple[np.ndarray, np.ndarray]:
    """A probability map with a true lesion (or none) and an optional false speck, and its label."""
    prob = np.full((100, 100), 0.05, np.float32)
    label = np.zeros((100, 100), np.uint8)
    if prob_peak:
        prob[20:50, 20:50] = prob_peak
        label[20:50, 20:50] = 1
    if speck_prob is not None:
        prob[85:88, 85:88] = speck_prob
    return prob, label


def test_the_fit_turns_a_filter_on_only_when_it_helps():
    clean = [lesion_image(0.95, None), lesion_image(0.9, None), lesion_image(0, None)]
    rule, record = choose(clean, threshold=0.5)
    assert rule == GRID[0] and not rule.active and record["after"] == record["before"]
    specks = [lesion_image(0.95, 0.6), lesion_image(0.9, 0.6), lesion_image(0, 0.6), lesion_image(0, 0.55)]
    rule, record = choose(specks, threshold=0.5)
    assert rule.active, record
    assert record["before"]["negatives_with_fp"] == 2 and record["after"]["negatives_with_fp"] == 0
    assert record["after"]["dice_malignant_mean"] == pytest.approx(1.0)
    assert record["after"]["score"] == pytest.approx(1.0)
    assert record["before"]["score"] < 1.0


def test_size_rules_stay_below_the_smallest_lesion_of_the_split():
    """Large specks on benign images would be best removed by a size cut that also hides the one
    small lesion; the fit may not try a cut that large."""
    images = [lesion_image(0.95, 0.6), lesion_image(0, 0.6), lesion_image(0, 0.6)]
    prob, label = lesion_image(0, None)
    prob[60:63, 60:64], label[60:63, 60:64] = 0.95, 1  # a 12-pixel lesion: 0.12 % of its image
    images.append((prob, label))
    assert smallest_lesion([lab for _, lab in images]) == pytest.approx(0.0012)
    rule, record = choose(images, threshold=0.5)
    assert record["largest_size_rule_tried_below"] == pytest.approx(0.0006)  # half the lesion
    assert rule.min_area_fraction < 0.0006
    assert record["candidates"] == sum(r.min_area_fraction < 0.0006 for r in GRID) < len(GRID)
    kept = filter_mask(prob >= 0.5, float(prob.max()), rule)
    assert kept[60:63, 60:64].all()  # the small lesion survives the chosen filter


def test_heatmap_keeps_the_colour_of_a_dropped_part_but_not_its_contour():
    manifest = load_manifest(DEFAULT_MODEL).derive(mask_filter=LARGEST)
    overlay = Overlay.from_config(manifest, OverlayConfig(style="heatmap", legend=False, hud=False))
    prob = two_blobs(big=30, small=6).astype(np.float32) * 0.9
    mask = filter_mask((prob >= overlay.threshold).astype(np.uint8), 0.9, LARGEST)
    levels = overlay.smooth(mask, prob)
    top = heatmap.level_of(overlay.threshold)
    assert (levels[10:40, 10:40] >= top).all()  # the kept part: contoured
    small = levels[80:86, 80:86]
    assert (small < top).all() and (small >= heatmap.level_of(heatmap.HEAT_FLOOR)).all()  # coloured


@pytest.fixture(scope="module")
def filtered_model(tmp_path_factory):
    """The shipped model twice: as shipped, and with a largest-part filter in its manifest."""
    root = tmp_path_factory.mktemp("mask-filter")
    models = {}
    for name, rule in (("plain", None), ("largest", {"min_area_fraction": 0.02, "largest_only": True})):
        folder = root / name
        folder.mkdir()
        model = folder / "model.onnx"
        shutil.copy(DEFAULT_MODEL, model)
        data = yaml.safe_load(manifest_path(DEFAULT_MODEL).read_text())
        data.pop("mask_filter", None)
        if rule:
            data["mask_filter"] = rule
        manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))
        models[name] = model
    return models


def test_replay_shows_and_saves_the_filtered_mask(filtered_model, busi_sample, tmp_path):
    saved = {}
    for name, model in filtered_model.items():
        out = tmp_path / name
        sonomap(
            "replay",
            busi_sample / "images",
            "--roi",
            "full",
            "--model",
            model,
            "--save-masks",
            out,
            "--out",
            out / "o.mp4",
        )
        saved[name] = {
            p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(out.glob("*_mask.png"))
        }
    assert saved["plain"].keys() == saved["largest"].keys() and len(saved["plain"]) >= 20
    several = [n for n, m in saved["plain"].items() if len(parts(m)) > 1]
    assert several, "the shipped model should give some frame two parts"
    for name, plain in saved["plain"].items():
        np.testing.assert_array_equal(saved["largest"][name], filter_mask(plain, 1.0, LARGEST), err_msg=name)
    assert all(len(parts(saved["largest"][n])) <= 1 for n in several)


def test_calibrate_fits_it_and_evaluate_applies_it(filtered_model, busi_dataset, tmp_path):
    data = busi_dataset
    model = tmp_path / "model.onnx"
    shutil.copy(filtered_model["plain"], model)
    shutil.copy(manifest_path(filtered_model["plain"]), manifest_path(model))
    out = sonomap("calibrate", "--method", "mask-filter", "--checkpoint", model, "--data", data)
    manifest = load_manifest(model)
    record = manifest.extra["mask_filter_fit"]
    below_cap = [r for r in GRID if r.min_area_fraction < record["largest_size_rule_tried_below"]]
    assert record["candidates"] == len(below_cap) and f"mask filter: {record['filter']}" in out.stdout
    assert record["after"]["score"] >= record["before"]["score"]
    assert (manifest.mask_filter.describe() if manifest.mask_filter else "none") == record["filter"]
    # evaluate on the fitted split reproduces the fit's figures, filter applied
    sonomap("evaluate", "--checkpoint", model, "--data", data, "--split", "val", "--out", tmp_path / "ev")
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["mask_filter"] == record["filter"]
    assert summary["n_negative_with_fp"] == record["after"]["negatives_with_fp"]


def test_an_image_with_no_labelled_pixel_does_not_count_as_a_clean_negative_in_the_fit():
    """An all-ignore label scores no image: the fit's criterion leaves it out, as evaluate does."""
    marked_benign = Counts(tp=0, fp=5, fn=0, tn=95)
    unlabelled = Counts(tp=0, fp=0, fn=0, tn=0)
    record = criterion([marked_benign, unlabelled])
    assert record["negatives"] == 1 and record["negatives_with_fp"] == 1 and record["score"] == 0.0
