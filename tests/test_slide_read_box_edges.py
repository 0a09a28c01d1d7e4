"""`Slide.read_box` keeps to the slide, with one rule for both readers: a box past the slide's edge is
one line naming the slide, the box and the slide's size (tifffile used to pad it white, OpenSlide to
blame the file's storage), and a box up to the edge reads from a coarser level, whose size is level 0's
rounded down, exactly what the whole-level read gives."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.wsi import open_slide

FIXTURES = __import__("pathlib").Path(__file__).parent / "data" / "wsi-fixtures"
READERS = ("tifffile", "openslide")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("box", [(0, 0, 100, 100), (-1, 0, 4, 4), (0, 0, 16, 16.5)])
def test_a_box_past_the_edge_is_refused_naming_slide_box_and_size(reader, box):
    path = FIXTURES / "small.svs"  # 16x16 px, one level
    with open_slide(path, reader=reader) as slide:
        with pytest.raises(InputError) as err:
            slide.read_box(box, 0.5)
    assert str(err.value) == f"{path}: slide box {list(box)} reaches past the slide (16x16 px at level 0)"


def test_a_box_inside_reads_the_same_through_both_readers():
    boxes = []
    for reader in READERS:
        with open_slide(FIXTURES / "small.svs", reader=reader) as slide:
            lv = slide.read_box((2, 3, 16, 16), 0.5)
        assert lv.rgb.shape == (13, 14, 3) and lv.origin == (2.0, 3.0)
        boxes.append(lv.rgb.astype(int))
    assert np.abs(boxes[0] - boxes[1]).max() <= 2  # the JPEG decoders may differ by a grey level


@pytest.mark.parametrize("reader", READERS)
def test_a_box_to_the_edge_of_a_rounded_down_level_stays_inside_it(reader):
    # boxes.tiff: 300x250 at level 0, 75x62 at level 2 (250 / 4 = 62.5 rounded down)
    with open_slide(FIXTURES / "boxes.tiff", 1.0, reader=reader) as slide:
        whole = slide.read(4.0)
        box = slide.read_box((0, 0, 300, 250), 4.0)
        corner = slide.read_box((296, 248, 300, 250), 4.0)
    assert box.level == whole.level == 2 and box.rgb.shape == whole.rgb.shape == (62, 75, 3)
    assert np.array_equal(box.rgb, whole.rgb)
    assert np.array_equal(corner.rgb, whole.rgb[61:62, 74:75])
