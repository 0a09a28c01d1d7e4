"""A video's display matrix (MP4 ``tkhd``, FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``) turns and mirrors
the picture the way every player shows it: a phone or encoder that writes a horizontal flip (a mirrored
matrix, negative determinant), alone or with a rotation, was replayed mirrored or upside down.

The clips are real MP4s written by PyAV's ``set_display_rotation(degrees, hflip, vflip)`` (FFmpeg's
``av_display_rotation_set`` then ``av_display_matrix_flip``: turn counter-clockwise, then mirror); each
test first reads the matrix back from the file's own ``tkhd`` bytes, so the fixture really carries it.
The expected picture is made independently with numpy (``rot90`` then ``fliplr``/``flipud``)."""

from __future__ import annotations

import gc
import struct

import av
import numpy as np
import pytest

from edge_runtime.sources.opener import open_source

BLOCK = 16  # px: a 2x4 grid of flat blocks, each its own grey, survives lossy H.264
ROWS, COLS = 2, 4
GREY_STEP = 32
GREY_TOLERANCE = 12  # a flat block's mean after H.264, far below the step between two blocks
FIXED_ONE = 1 << 16  # the matrix's a, b, c, d are 16.16 fixed point
TKHD_MATRIX_AFTER_TYPE_V0 = 4 + 20 + 8 + 8  # version/flags, times/track/duration, reserved, layer..volume
TKHD_MATRIX_AFTER_TYPE_V1 = 4 + 32 + 8 + 8


def grid() -> np.ndarray:
    """A BGR picture whose every block has its own grey: any turn or mirror changes it."""
    levels = np.arange(ROWS * COLS, dtype=np.uint8).reshape(ROWS, COLS) * GREY_STEP + GREY_STEP // 2
    grey = np.kron(levels, np.ones((BLOCK, BLOCK), np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


def write(path, image, degrees=0, hflip=False, vflip=False, matrix=None, frames=2):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        if matrix is not None:
            stream.set_display_matrix(matrix)
        else:
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def tkhd_matrix(path) -> tuple[int, ...]:
    """The nine matrix values of the file's track header, read from its bytes (not through FFmpeg)."""
    data = path.read_bytes()
    at = data.index(b"tkhd") + 4
    skip = TKHD_MATRIX_AFTER_TYPE_V1 if data[at] == 1 else TKHD_MATRIX_AFTER_TYPE_V0
    return struct.unpack(">9i", data[at + skip : at + skip + 36])


def block_means(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    grey = image[:, :, 1].astype(float)
    return grey[: h * BLOCK, : w * BLOCK].reshape(h, BLOCK, w, BLOCK).mean(axis=(1, 3))


def as_players_show(image, degrees, hflip, vflip) -> np.ndarray:
    shown = np.rot90(image, degrees // 90)  # counter-clockwise, as the matrix was written
    if hflip:
        shown = np.fliplr(shown)
    if vflip:
        shown = np.flipud(shown)
    return shown


ORIENTATIONS = [
    (0, True, False),  # a mirrored front camera
    (0, False, True),
    (90, True, False),
    (180, True, False),
    (270, True, False),
    (90, False, True),
    (0, True, True),  # both mirrors: a half turn
    (90, False, False),
    (180, False, False),
    (270, False, False),
    (0, False, False),
]


@pytest.mark.parametrize("degrees,hflip,vflip", ORIENTATIONS)
def test_a_mirrored_or_turned_recording_replays_as_players_show_it(tmp_path, degrees, hflip, vflip):
    image = grid()
    path = write(tmp_path / "clip.mp4", image, degrees, hflip, vflip)
    a, b, _, c, d, *_ = tkhd_matrix(path)
    assert (a * d - b * c < 0) == (hflip != vflip), "the fixture must carry the (mirrored) matrix"
    frames = list(open_source(str(path)))
    assert len(frames) == 2
    expected = as_players_show(image, degrees, hflip, vflip)
    got = frames[0].image
    assert got.shape == expected.shape
    assert np.abs(block_means(got) - block_means(expected)).max() < GREY_TOLERANCE, (
        block_means(got),
        block_means(expected),
    )


@pytest.mark.parametrize(
    "matrix",
    [
        [0] * 8 + [1 << 30],  # nothing: no direction at all
        [FIXED_ONE, 0, 0, 0, 0, 0, 0, 0, 1 << 30],  # the y axis collapsed to a line
    ],
)
def test_a_degenerate_display_matrix_is_ignored_as_players_ignore_it(tmp_path, matrix):
    """FFmpeg's av_display_rotation_get gives NaN for such a matrix and players show the frame as
    stored; PyAV's ``rotation`` turned NaN into a large integer, and the frame was replayed on its side."""
    image = grid()
    path = write(tmp_path / "clip.mp4", image, matrix=matrix)
    assert tkhd_matrix(path)[:5] == tuple(matrix[:5])
    got = list(open_source(str(path)))[0].image
    assert got.shape == image.shape
    assert np.abs(block_means(got) - block_means(image)).max() < GREY_TOLERANCE


def test_a_matrix_not_at_a_right_angle_leaves_the_frame_as_stored(tmp_path):
    """A scanner frame is never turned by part of a right angle (its corners would be cut off)."""
    image = grid()
    path = write(tmp_path / "clip.mp4", image, degrees=45)
    got = list(open_source(str(path)))[0].image
    assert got.shape == image.shape
    assert np.abs(block_means(got) - block_means(image)).max() < GREY_TOLERANCE


def test_a_looping_replay_holds_no_decoded_frames_behind_it(tmp_path):
    """Reading a frame's display matrix through PyAV ties that frame in a reference cycle; read on every
    frame, or left to the cycle collector, decoded pictures piled up (an 18 % RSS rise in a soak)."""
    path = write(tmp_path / "clip.mp4", grid(), degrees=90, hflip=True, frames=5)
    source = open_source(str(path), loop=True)
    gc.collect()
    gc.disable()  # only what the source itself frees may be freed while it plays
    try:
        for n, _ in enumerate(source):
            if n == 5 * 8:  # eight passes over the clip
                break
        alive = sum(isinstance(o, av.VideoFrame) for o in gc.get_objects())
    finally:
        gc.enable()
        source.close()
    assert alive <= 2, f"{alive} decoded frames still held after eight passes"
