import pytest

from unet_segmentation.unet_plugin.core.windows import axis_origins, grid


@pytest.mark.parametrize(
    "length,size,stride,expected",
    [
        (256, 256, 256, [0]),            # exactly one window
        (100, 256, 256, [0]),            # smaller than a window: one, padded by the caller
        (512, 256, 256, [0, 256]),
        (600, 256, 256, [0, 256, 344]),  # last window shifted back to end at the edge
        (300, 256, 128, [0, 44]),
        (1000, 256, 192, [0, 192, 384, 576, 744]),
    ],
)
def test_axis_origins(length, size, stride, expected):
    assert axis_origins(length, size, stride) == expected


@pytest.mark.parametrize("length", [257, 300, 511, 512, 513, 1999])
@pytest.mark.parametrize("stride", [64, 128, 256])
def test_every_pixel_covered_and_nothing_outside(length, stride):
    origins = axis_origins(length, 256, stride)
    covered = set()
    for o in origins:
        assert 0 <= o and o + 256 <= length
        covered.update(range(o, o + 256))
    assert covered == set(range(length))


def test_grid_is_offset_and_clipped():
    windows = grid(10, 20, 300, 100, 256, 256)
    assert [(w.col, w.row, w.width, w.height) for w in windows] == [(10, 20, 256, 100), (54, 20, 256, 100)]


def test_bad_arguments():
    with pytest.raises(ValueError):
        axis_origins(10, 0, 1)
