"""A dataset image or label whose PNG header declares more than `training.data.MAX_DATASET_PIXELS` (a
decompression bomb: a 30000x30000 PNG of zeros is about 1 MB on disk and 900 MB decoded) is refused
from its header, before it is decoded, in one line naming the file, its size and the limit, by
`read_pair`, which train, evaluate and calibrate share. Proved with real PNG files written here (a
complete, valid one and one whose header alone declares 60000x60000), and in a child process whose
peak memory is measured around the refusal. Real dataset images are never refused: the vendored BUSI
sample and a 4000x3000 needle-tract-sized pair read as before."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from export_fixtures import shared_tiny_onnx

from edge_runtime.cli import main as sonomap
from edge_runtime.errors import InputError
from edge_runtime.privacy import redact
from edge_runtime.sources.frame_size import MAX_FRAME_PIXELS
from training.data import MAX_DATASET_PIXELS, Sample, read_cases, read_pair

EXIT_USER_ERROR = 2
BOMB_SIDE = 30000  # 900 Mpx: 900 MB as gray once decoded, about 1 MB as a PNG of zeros
HEADER_ONLY_SIDE = 60000  # 3.6 Gpx declared by a header followed by a few rows' data
PNG_GRAY, PNG_RGB = 0, 2  # PNG colour types
MAX_RSS_GROWTH_KIB = 64 * 1024  # far below the 900 MB a decode would take
CHILD_TIMEOUT_S = 120
CHILD = """
import resource, sys
from pathlib import Path
from edge_runtime.errors import InputError
from training.data import Sample, read_pair
sample = Sample("bomb", "case", "test", Path(sys.argv[1]), Path(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_pair(sample)
except InputError as exc:
    print("REFUSED", exc)
print("GROWTH_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int, rows: int | None = None, colour: int = PNG_GRAY) -> bytes:
    """A PNG of WIDTH x HEIGHT zeros (8 bits per channel), compressed row by row so it is never held
    whole; ROWS: write only that many rows' data (the header still declares HEIGHT)."""
    channels = 3 if colour == PNG_RGB else 1
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = bytes(1 + width * channels)  # filter byte 0, then the row's samples
    body = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows))
    body += compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A complete, valid 30000x30000 gray PNG of zeros (about 1 MB)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(png_of_zeros(BOMB_SIDE, BOMB_SIDE))
    return path


def _pair(folder: Path, image: bytes | np.ndarray, label: bytes | np.ndarray) -> Sample:
    sample = Sample("x", "case", "test", folder / "images" / "x.png", folder / "labels" / "x.png")
    for path, content in ((sample.image, image), (sample.label, label)):
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            assert cv2.imwrite(str(path), content)
    return sample


def test_the_crafted_png_is_a_valid_image():
    """The writer makes real PNGs: a small one decodes to its zeros, at the size its header declares."""
    for colour, shape in ((PNG_GRAY, (48, 64)), (PNG_RGB, (48, 64, 3))):
        decoded = cv2.imdecode(
            np.frombuffer(png_of_zeros(64, 48, colour=colour), np.uint8), cv2.IMREAD_UNCHANGED
        )
        assert decoded is not None and decoded.shape == shape and not decoded.any()


def test_a_valid_png_declaring_900_mpx_is_refused_in_one_line_naming_it(bomb, tmp_path):
    assert bomb.stat().st_size < 2 * 1024 * 1024  # small on disk: the danger is the decoded size
    sample = _pair(tmp_path, bomb.read_bytes(), np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError) as caught:
        read_pair(sample)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{sample.image}: declares {BOMB_SIDE}x{BOMB_SIDE} px (900.0 Mpx)"), message
    assert f"more than the {MAX_DATASET_PIXELS / 1e6:.1f} Mpx a dataset image or label may have" in message


@pytest.mark.parametrize("colour", [PNG_GRAY, PNG_RGB])
def test_a_label_whose_header_alone_declares_60000x60000_is_refused(colour, tmp_path):
    header_only = png_of_zeros(HEADER_ONLY_SIDE, HEADER_ONLY_SIDE, rows=2, colour=colour)
    sample = _pair(tmp_path, np.zeros((4, 4), np.uint8), header_only)
    with pytest.raises(InputError, match=f"declares {HEADER_ONLY_SIDE}x{HEADER_ONLY_SIDE} px") as caught:
        read_pair(sample)
    assert str(caught.value).startswith(f"{sample.label}: ")


def test_the_refusal_comes_from_the_header_without_the_memory_a_decode_takes(bomb, tmp_path):
    """In a child process: the peak resident memory barely moves while the 900 Mpx file is refused."""
    label = tmp_path / "label.png"
    assert cv2.imwrite(str(label), np.zeros((4, 4), np.uint8))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(bomb), str(label)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in child.stdout.splitlines())
    assert f"{BOMB_SIDE}x{BOMB_SIDE} px" in lines["REFUSED"], child.stdout
    assert int(lines["GROWTH_KIB"]) < MAX_RSS_GROWTH_KIB, child.stdout


def test_real_dataset_images_are_never_refused(busi_dataset, tmp_path):
    """The limit is generous: above the runtime's largest frame, the BUSI sample and a needle-tract
    sized pair (4000x3000, 12 Mpx) read as before."""
    assert MAX_DATASET_PIXELS > MAX_FRAME_PIXELS and MAX_DATASET_PIXELS >= 8192 * 8192
    for sample in read_cases(busi_dataset):
        gray, label = read_pair(sample)
        assert gray.shape == label.shape
    label = np.zeros((3000, 4000), np.uint8)
    label[1000:1200, 1500:1800] = 1
    gray, read = read_pair(_pair(tmp_path, np.full((3000, 4000), 90, np.uint8), label))
    assert gray.shape == (3000, 4000) and np.array_equal(read, label)


def test_evaluate_refuses_a_bomb_in_its_split_in_one_line(bomb, busi_dataset, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    victim = next(s for s in read_cases(data) if s.split == "test")
    shutil.copy(bomb, victim.image)
    out = tmp_path / "report"
    args = ["evaluate", "--checkpoint", str(shared_tiny_onnx()), "--data", str(data), "--split", "test"]
    code = sonomap([*args, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    assert redact(f"{victim.image}: declares {BOMB_SIDE}x{BOMB_SIDE} px") in err, err
    assert not out.exists()


def test_pretrain_refuses_a_bomb_among_its_unlabelled_images_in_one_line(
    bomb, busi_dataset, tmp_path, capsys
):
    """pretrain's --images folders may hold anything: the same limit, before any decode or write."""
    extra = tmp_path / "unlabelled"
    extra.mkdir()
    shutil.copy(bomb, extra / "scan.png")
    out = tmp_path / "run"
    config = Path(__file__).resolve().parents[1] / "configs" / "cpu-fast.yaml"
    args = ["pretrain", "--config", str(config), "--data", str(busi_dataset), "--images", str(extra)]
    code = sonomap([*args, "--out", str(out), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    assert redact(f"{extra / 'scan.png'}: declares {BOMB_SIDE}x{BOMB_SIDE} px") in err, err
    assert not (out / "pretrained.pt").exists()
