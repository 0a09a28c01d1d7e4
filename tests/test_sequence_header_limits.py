"""What a `.seq.nrrd` or PLUS MetaImage header declares is checked before a pixel is read: a frame
beyond the frame-size limit (edge_runtime/sources/frame_size.py), an empty frame axis and a bad
``byte skip`` are one-line errors naming the file (exit status 2), and ``byte skip: -1`` (NRRD: the
raw data is the last bytes of the file) reads the frames it says."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from cli import EXIT_USER_ERROR, sonomap

from edge_runtime.errors import InputError
from edge_runtime.sources.frame_size import FrameTooLarge
from edge_runtime.sources.plus_metaimage import PlusMetaImageSource
from edge_runtime.sources.sequence import SequenceSource

pytest.importorskip("nrrd")
HUGE = 16000  # px a side: one frame 256 MB gray, 768 MB as BGR
HUGE_GZIP = 20000
TOO_LARGE = r"frame 0 is {0}x{0}, larger than the maximum"
FRAMES, HEIGHT, WIDTH = 3, 4, 5
JUNK = 7  # bytes before the data that `byte skip: -1` must skip, whatever their number


def header(sizes: str, encoding: str = "raw", extra: str = "", data_file: str | None = "s.raw") -> bytes:
    lines = [
        "NRRD0004",
        "type: unsigned char",
        "dimension: 4",
        f"sizes: {sizes}",
        "kinds: domain domain domain list",
        f"encoding: {encoding}",
        *([f"data file: {data_file}"] if data_file else []),
        *([extra] if extra else []),
    ]
    return ("\n".join(lines) + "\n\n").encode("ascii")


def sparse(path: Path, size: int) -> None:
    """A data file of ``size`` bytes that takes no disk (a hole)."""
    with open(path, "wb") as fh:
        fh.truncate(size)


def test_an_oversized_sequence_frame_is_refused_before_its_pixels(tmp_path):
    path = tmp_path / "big.seq.nrrd"
    path.write_bytes(header(f"{HUGE} {HUGE} 1 2"))
    sparse(tmp_path / "s.raw", HUGE * HUGE * 2)
    with pytest.raises(FrameTooLarge, match=r"big\.seq\.nrrd: " + TOO_LARGE.format(HUGE)):
        SequenceSource(path)
    run = sonomap("replay", path, check=False)
    assert run.returncode == EXIT_USER_ERROR and "Traceback" not in run.stderr, run.stderr
    assert TOO_LARGE.format(HUGE).split(",")[0] in run.stderr.strip().splitlines()[-1]


def test_an_oversized_gzip_sequence_frame_is_refused(tmp_path):
    path = tmp_path / "big.seq.nrrd"
    path.write_bytes(
        header(f"{HUGE_GZIP} {HUGE_GZIP} 1 1", "gzip", data_file=None) + gzip.compress(b"\0" * 4096)
    )
    with pytest.raises(FrameTooLarge, match=TOO_LARGE.format(HUGE_GZIP)):
        SequenceSource(path)


@pytest.mark.parametrize("suffix", [".mhd", ".igs.mha"])
def test_an_oversized_plus_frame_is_refused_before_its_pixels(tmp_path, suffix):
    pytest.importorskip("SimpleITK", reason="PLUS MetaImage sequences are read through SimpleITK")
    path = tmp_path / f"big{suffix}"
    fields = [
        "ObjectType = Image",
        "NDims = 3",
        "BinaryData = True",
        "CompressedData = False",
        f"DimSize = {HUGE} {HUGE} 2",
        "ElementType = MET_UCHAR",
        "ElementDataFile = big.raw",
    ]
    path.write_text("\n".join(fields) + "\n")
    sparse(tmp_path / "big.raw", HUGE * HUGE * 2)
    with pytest.raises(FrameTooLarge, match=rf"big{suffix}: " + TOO_LARGE.format(HUGE)):
        PlusMetaImageSource(path)


def test_a_zero_size_is_one_line_naming_the_key(tmp_path):
    path = tmp_path / "empty.seq.nrrd"
    path.write_bytes(header("0 200 1 10"))
    sparse(tmp_path / "s.raw", 4000)
    with pytest.raises(InputError, match=r"empty\.seq\.nrrd: sizes: 0 200 1 10: a frame axis must hold"):
        SequenceSource(path)
    run = sonomap("replay", path, check=False)
    assert run.returncode == EXIT_USER_ERROR and "Traceback" not in run.stderr, run.stderr
    assert "sizes: 0 200 1 10" in run.stderr.strip().splitlines()[-1]


def frames() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (FRAMES, HEIGHT, WIDTH), dtype=np.uint8)


@pytest.mark.parametrize("detached", [True, False])
def test_byte_skip_minus_one_reads_the_data_at_the_end(tmp_path, detached):
    expected = frames()
    path = tmp_path / "end.seq.nrrd"
    sizes = f"{WIDTH} {HEIGHT} 1 {FRAMES}"
    data = b"\x01" * JUNK + expected.tobytes()
    if detached:
        path.write_bytes(header(sizes, extra="byte skip: -1"))
        (tmp_path / "s.raw").write_bytes(data)
    else:
        path.write_bytes(header(sizes, extra="byte skip: -1", data_file=None) + data)
    got = list(SequenceSource(path).images())
    assert [g.tolist() for g in got] == expected.tolist()


def test_byte_skip_minus_one_on_short_data_is_truncated(tmp_path):
    path = tmp_path / "short.seq.nrrd"
    path.write_bytes(header(f"{WIDTH} {HEIGHT} 1 {FRAMES}", extra="byte skip: -1"))
    (tmp_path / "s.raw").write_bytes(frames().tobytes()[: -WIDTH * HEIGHT - 1])
    with pytest.raises(InputError, match=r"short\.seq\.nrrd: data ends in frame 1 of 3 .*truncated"):
        SequenceSource(path)


@pytest.mark.parametrize(
    ("encoding", "skip", "message"),
    [("gzip", -1, "byte skip: -1 .* only for raw data"), ("raw", -2, "byte skip: -2: must be -1")],
)
def test_a_bad_byte_skip_is_one_line(tmp_path, encoding, skip, message):
    path = tmp_path / "skip.seq.nrrd"
    path.write_bytes(header(f"{WIDTH} {HEIGHT} 1 {FRAMES}", encoding, extra=f"byte skip: {skip}"))
    (tmp_path / "s.raw").write_bytes(gzip.compress(frames().tobytes()))
    with pytest.raises(InputError, match=r"skip\.seq\.nrrd: " + message):
        SequenceSource(path)
    run = sonomap("replay", path, check=False)
    assert run.returncode == EXIT_USER_ERROR and "Traceback" not in run.stderr, run.stderr


def test_a_datafile_spelled_as_one_word_is_read_from_that_file(tmp_path):
    """NRRD allows ``datafile:`` as well as ``data file:``; both name where the pixels are."""
    expected = frames()
    path = tmp_path / "one-word.seq.nrrd"
    path.write_bytes(header(f"{WIDTH} {HEIGHT} 1 {FRAMES}", data_file=None, extra="datafile: s.raw"))
    (tmp_path / "s.raw").write_bytes(expected.tobytes())
    assert [g.tolist() for g in SequenceSource(path).images()] == expected.tolist()
