"""bench-train runs both loops on the same model and data and reports ratios (no timing asserts)."""

from __future__ import annotations

import pytest
import yaml

from training.bench import bench_train

ITERS, BATCH = 2, 2


@pytest.mark.slow
def test_bench_train_reports_both_variants(tmp_path, busi_dataset):
    data = busi_dataset
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"arch": "unet_small", "width": 4},
                "data": {"input_height": 64, "input_width": 64},
                "train": {"batch_size": BATCH},
            }
        )
    )
    result = bench_train(str(cfg), str(data), iters=ITERS, warmup=1, device="cpu", rounds=1)
    for variant in ("reference", "sonomap"):
        assert result[variant]["images_per_s"] > 0 and result[variant]["peak_mib"] > 0
        assert result["rounds"][variant][0]["images"] == ITERS * BATCH  # same work timed in both
    assert result["throughput_ratio"] == pytest.approx(
        result["sonomap"]["images_per_s"] / result["reference"]["images_per_s"]
    )
