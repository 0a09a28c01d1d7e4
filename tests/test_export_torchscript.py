"""`sonomap export torchscript`: the folded model as TorchScript, loaded by the runtime's torch backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_fixtures import shared_checkpoint

from edge_runtime.cli import main
from edge_runtime.manifest import load_manifest, sha256_file
from export.samples import load_frames


@pytest.fixture(scope="module")
def exported(tmp_path_factory, busi_sample):
    root = tmp_path_factory.mktemp("ts")
    ck = shared_checkpoint()
    out = root / "model.ts"
    rc = main(
        [
            "export",
            "torchscript",
            "--checkpoint",
            str(ck),
            "--out",
            str(out),
            "--frames",
            str(busi_sample / "images"),
            "--parity-frames",
            "3",
        ]
    )
    assert rc == 0
    return out, ck


def test_manifest_and_parity(exported):
    out, ck = exported
    m = load_manifest(out)
    assert m.format == "torchscript" and m.preprocessing_in_graph
    assert m.source["checkpoint_sha256"] == sha256_file(ck)
    assert [t["name"] for t in m.io["outputs"]] == ["prob", "mask"]
    section = json.loads(out.with_name(out.name + ".parity.json").read_text())["torchscript"]
    assert section["passed"] and section["frames"] == 3 and section["mask_agreement"] >= 0.999


def test_traced_model_follows_frame_size(exported):
    import torch

    model = torch.jit.load(str(exported[0]))
    for shape in ((1, 1, 97, 131), (2, 1, 300, 200)):
        prob, mask = model(torch.zeros(shape, dtype=torch.uint8))
        assert tuple(prob.shape) == shape and tuple(mask.shape) == shape
        assert prob.dtype == torch.float32 and mask.dtype == torch.uint8


def test_runtime_torch_backend_loads_it(exported, busi_sample):
    """The cart-side torch backend runs the file without importing training."""
    from edge_runtime.backends import create_backend

    out, _ = exported
    backend = create_backend("torch", out, load_manifest(out), device="cpu")
    try:
        _, gray = load_frames(busi_sample / "images", 1)[0]
        pred = backend.infer(gray)
    finally:
        backend.close()
    assert pred.mask.shape == gray.shape and pred.prob.shape == gray.shape
    assert pred.mask.dtype == np.uint8 and 0 < np.count_nonzero(pred.mask) < gray.size


def test_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = main(["export", "torchscript", "--checkpoint", str(bad), "--out", str(tmp_path / "m.ts")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "bad.pt" in err and len(err.splitlines()) == 1
