"""Export commands against files a site engineer may hand them: a graph whose tensors are not the
ones its manifest lists, an empty ONNX file, 16-bit frames, a disk that fills up mid-export. Each
is one line naming the file, exit 2, with nothing at ``--out`` replaced (real files, ONNX Runtime
and real exports; the full disk is a real per-process file size limit)."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import onnx
import pytest
from export_fixtures import copy_model, shared_checkpoint, shared_tiny_onnx
from file_size_limit import sonomap_with_file_size_limit

from edge_runtime.cli import main
from edge_runtime.errors import EXIT_USER_ERROR, InputError
from edge_runtime.manifest import load_manifest, save_manifest
from export.samples import load_frames

SMALL_DISK = 1_000_000  # bytes a file may grow to: far below a model (the tiny one is ~13 MB)
SAMPLE_FRAMES = 3


def edited_copy(tmp_path, edit):
    """A copy of the tiny folded model with ``edit(model)`` applied to its graph and a manifest that
    vouches for the new bytes (so only the graph/manifest disagreement is left to find)."""
    src = shared_tiny_onnx()
    model = onnx.load(str(src))
    edit(model.graph)
    out = tmp_path / "model.onnx"
    onnx.save(model, str(out))
    save_manifest(load_manifest(src), out)
    return out


def rename_input(graph):
    old = graph.input[0].name
    graph.input[0].name = "image"
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = "image"


def fix_input_size(graph):
    for dim, value in zip(graph.input[0].type.tensor_type.shape.dim, (1, 1, 32, 32), strict=True):
        dim.dim_value = value


def three_channels(graph):
    graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3


def export_on_a_small_disk(kind: str, out):
    """``sonomap export KIND`` of the shared checkpoint to ``out`` with files capped at SMALL_DISK."""
    args = ("export", kind, "--checkpoint", shared_checkpoint(), "--out", out, "--parity-frames", "1")
    return sonomap_with_file_size_limit(SMALL_DISK, *args)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_command(command: str, model, tmp_path, busi_sample) -> list[str]:
    if command == "replay":  # the runtime's ONNX Runtime backend, as the cart opens a model
        return [
            "replay",
            str(busi_sample / "images"),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "o.mp4"),
        ]
    if command == "selfcheck":
        return [
            "selfcheck",
            "--model",
            str(model),
            "--frames",
            str(busi_sample / "images"),
            "--max-frames",
            str(SAMPLE_FRAMES),
            "--cache-dir",
            str(tmp_path / "engines"),
        ]
    return ["export", "tensorrt", "--onnx", str(model), "--out", str(tmp_path / "engines")]


@pytest.mark.parametrize("command", ["selfcheck", "tensorrt"])
@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (rename_input, "lists ['frame'] but the graph model.onnx takes ['image']"),
        (fix_input_size, "shape [1, 1, height, width] but the graph model.onnx takes [1, 1, 32, 32]"),
        (three_channels, "takes [1, 3, height, width]"),
    ],
)
def test_a_graph_whose_input_is_not_the_manifests_is_one_line(
    command, edit, says, tmp_path, busi_sample, capsys
):
    """ONNX Runtime would fail on the first frame with its own traceback, TensorRT minutes into a
    build with a profile the graph cannot take: both commands name the manifest and the key first."""
    model = edited_copy(tmp_path, edit)
    rc = main(run_command(command, model, tmp_path, busi_sample))
    line = one_error_line(capsys.readouterr().err)
    assert rc == EXIT_USER_ERROR
    assert "model.onnx.yaml: 'io.inputs'" in line and says in line


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (rename_input, "takes ['image']"),
        (three_channels, "takes [1, 3, height, width]"),
        (fix_input_size, None),
    ],
)
def test_the_runtime_refuses_a_graph_whose_input_is_not_the_manifests_at_start(
    edit, says, tmp_path, busi_sample, capsys
):
    """The ONNX Runtime backend, as the cart opens a model: a renamed or 3-channel input is one line
    before any frame (it failed on every frame, behind the fail-safe); a fixed height and width is a
    model the backend feeds the resized ROI, so it plays."""
    model = edited_copy(tmp_path, edit)
    rc = main(run_command("replay", model, tmp_path, busi_sample))
    err = capsys.readouterr().err
    if says is None:
        assert rc == 0, err
        return
    line = one_error_line(err)
    assert rc == EXIT_USER_ERROR
    assert "model.onnx.yaml: 'io.inputs'" in line and says in line


@pytest.mark.parametrize("command", ["selfcheck", "tensorrt"])
def test_an_empty_onnx_file_is_named(command, tmp_path, busi_sample, capsys):
    model = copy_model(shared_tiny_onnx(), tmp_path / "m")
    model.write_bytes(b"")
    save_manifest(load_manifest(shared_tiny_onnx()), model)  # the manifest vouches for the empty file
    rc = main(run_command(command, model, tmp_path, busi_sample))
    line = one_error_line(capsys.readouterr().err)
    assert rc == EXIT_USER_ERROR and f"{model}: not an ONNX model: it holds no graph (0 bytes)" in line


def test_16_bit_frames_are_refused_not_darkened(busi_sample, tmp_path):
    """Read as 8-bit, 12-bit data in a 16-bit PNG comes out nearly black, and parity would be judged
    on frames with nothing in them."""
    source = sorted((busi_sample / "images").glob("*.png"))[0]
    gray = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.png"), gray.astype(np.uint16) * 16)
    with pytest.raises(InputError, match=r"a\.png: a 16-bit image \(uint16\); parity frames must be 8-bit"):
        load_frames(frames, 1)
    cv2.imwrite(str(frames / "a.png"), gray)  # the same picture at 8 bits is read as before
    (_, read), *_ = load_frames(frames, 1)
    assert np.array_equal(read, gray)


def test_torchscript_export_on_a_full_disk_is_one_line(tmp_path):
    """torch's file writer fails a short write inside a C++ destructor, which aborts the process
    (no message of ours, the staging folder left behind); the export writes the bytes itself."""
    out = tmp_path / "model.ts"
    result = export_on_a_small_disk("torchscript", out)
    line = one_error_line(result.stderr)
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    assert f"{out}: File too large (writing model.ts); nothing was written at {out}" in line
    assert list(tmp_path.iterdir()) == []  # no staging folder, no partial file


def test_onnx_export_on_a_full_disk_names_out_and_keeps_the_old_model(tmp_path):
    """The write fails in the hidden staging folder; the message names ``--out`` as given and says
    the previous model was left as it was (it is, byte for byte)."""
    old = copy_model(shared_tiny_onnx(), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = export_on_a_small_disk("onnx", old)
    line = one_error_line(result.stderr)
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    assert f"{old}: File too large (writing model.onnx); {old} was left as it was" in line
    assert ".staging" not in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    shutil.rmtree(tmp_path)


def test_a_failed_first_export_leaves_no_folder_at_out(tmp_path, capsys):
    """The folders made for a new ``--out`` are removed again when the export fails before writing."""
    checkpoint = tmp_path / "ck" / "best.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    rc = main(
        [
            "export",
            "onnx",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "new" / "a" / "model.onnx"),
        ]
    )
    assert rc == EXIT_USER_ERROR and "is an empty file (0 bytes)" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()
