"""The generated shapes: masks, boxes, labels and sizes describe the same drawn objects."""

import math

import numpy as np
import pytest
import torch

from initdocs import deeplab, ssd
from initdocs.data import SHAPE_CLASSES, make_shapes, shape_mask


def _tight_box(pixels: torch.Tensor) -> list[float]:
    """``(x1, y1, x2, y2)`` in pixels of the smallest box holding every True pixel."""
    rows, cols = pixels.nonzero(as_tuple=True)
    return [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]


@pytest.mark.parametrize("kwargs", [{}, {"max_aspect": 2.0, "channels": 3, "max_objects": 5}])
def test_every_box_is_the_tight_box_of_its_mask(kwargs):
    size = 40
    data = make_shapes(30, size, object_sizes=(3.0, 20.0), seed=2, **kwargs)
    assert torch.equal(data.masks > 0, data.instances > 0)
    for i in range(30):
        boxes, labels, sizes = data.boxes[i], data.labels[i], data.sizes[i]
        assert len(boxes) == len(labels) == len(sizes) == int(data.instances[i].max()) >= 1
        for k in range(len(boxes)):
            pixels = data.instances[i] == k + 1
            assert (boxes[k] * size).tolist() == _tight_box(pixels)
            assert set(data.masks[i][pixels].tolist()) == {labels[k].item()}
        assert (data.object_size[i][data.instances[i] == 0] == 0).all()
        for k, s in enumerate(sizes.tolist()):
            assert (data.object_size[i][data.instances[i] == k + 1] == s).all()
            assert 3.0 <= s <= 20.0


def test_objects_keep_apart():
    data = make_shapes(50, 32, object_sizes=(4.0, 14.0), max_aspect=2.0, max_objects=4, seed=0)
    for boxes in data.boxes:
        for a in range(len(boxes)):
            for b in range(a):
                x1, y1 = torch.maximum(boxes[a, :2], boxes[b, :2])
                x2, y2 = torch.minimum(boxes[a, 2:], boxes[b, 2:])
                assert x2 <= x1 or y2 <= y1  # tight boxes never overlap
    assert max(len(b) for b in data.boxes) >= 3  # the placement does fit several objects
    once = make_shapes(50, 32, object_sizes=(4.0, 14.0), max_aspect=2.0, max_objects=4, attempts=1)
    assert sum(map(len, once.boxes)) < sum(map(len, data.boxes))  # overlapping ones left out


def test_generator_is_deterministic_and_consistent():
    a, b = make_shapes(20, 32, seed=3), make_shapes(20, 32, seed=3)
    c = make_shapes(20, 32, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert all(torch.equal(p, q) for p, q in zip(a.boxes, b.boxes, strict=True))
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (20, 1, 32, 32) and a.masks.shape == (20, 32, 32)
    assert set(a.masks.unique().tolist()) <= set(range(len(SHAPE_CLASSES)))
    assert torch.equal(a.masks > 0, a.object_size > 0)
    sizes = a.object_size[a.object_size > 0]
    assert sizes.min() >= 5.0 and sizes.max() <= 30.0
    assert make_shapes(0).images.shape == (0, 1, 48, 48) and make_shapes(0).object_size.numel() == 0
    with pytest.raises(ValueError, match="bad arguments"):
        make_shapes(2, 16, object_sizes=(4.0, 20.0))
    with pytest.raises(ValueError, match="max_aspect"):
        make_shapes(2, 16, object_sizes=(4.0, 8.0), max_aspect=0.5)


def test_noise_free_shapes_are_the_masks():
    data = make_shapes(5, 32, noise=0.0, seed=0)
    assert torch.equal(data.images[:, 0] > 0, data.masks > 0)
    levels = [
        data.images[i, 0][data.instances[i] == k + 1].unique()
        for i in range(5)
        for k in range(len(data.labels[i]))
    ]
    assert all(len(v) == 1 and 0.6 <= v.item() <= 1.2 for v in levels)  # one grey per object


def test_colour_images_and_clipping():
    data = make_shapes(
        10,
        32,
        object_sizes=(6.0, 16.0),
        channels=3,
        background=(0.0, 0.4),
        brightness=(0.5, 1.0),
        noise=0.0,
        seed=1,
    )
    assert data.images.shape == (10, 3, 32, 32)
    background = data.images.permute(0, 2, 3, 1)[data.masks == 0]  # (pixels, 3)
    assert background.min() >= 0.0 and background.max() <= 0.4
    assert background.std(0).max() > 0  # drawn per image: not one level everywhere
    objects = data.images.permute(0, 2, 3, 1)[data.masks > 0]
    assert objects.min() >= 0.5 and objects.max() <= 1.0
    noisy = make_shapes(10, 32, object_sizes=(6.0, 16.0), noise=0.5, clip=True, seed=1)
    assert noisy.images.min() == 0.0 and noisy.images.max() == 1.0


def test_aspect_ratios_spread_between_the_bounds():
    data = make_shapes(200, 64, object_sizes=(16.0, 24.0), max_aspect=2.0, seed=0)
    boxes = torch.cat(data.boxes) * 64
    ratio = (boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])  # w / h, tight, +-1 px
    assert ratio.min() < 0.6 and ratio.max() > 1.7
    assert ratio.min() > 0.5 * 15 / 17 and ratio.max() < 2 * 17 / 15  # at most 2 up to a pixel
    squares = make_shapes(50, 64, object_sizes=(16.0, 24.0), seed=0)
    boxes = (
        torch.cat([b[lab == 1] for b, lab in zip(squares.boxes, squares.labels, strict=True)]) * 64
    )
    assert torch.allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], atol=1.0)


@pytest.mark.parametrize(("kind", "area"), [(1, 1.0), (2, math.pi / 4), (3, 0.5)])
@pytest.mark.parametrize(("h", "w"), [(300.0, 300.0), (200.0, 400.0)])
def test_shape_areas(kind, area, h, w):
    """Pixel counts of large shapes against the areas of a box, an ellipse and a triangle."""
    yy, xx = np.mgrid[0:500, 0:500] + 0.5
    mask = shape_mask(kind, 250.0, 250.0, h, w, yy, xx)
    assert mask.sum() == pytest.approx(area * h * w, rel=0.01)
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == pytest.approx((h, w), abs=1)
    if kind == 3:  # the apex at the top: the first row is narrow, the last is the base
        assert mask[rows[0]].sum() <= 3 and mask[rows[-1]].sum() == pytest.approx(w, abs=1)
    with pytest.raises(ValueError, match="kind"):
        shape_mask(4, 250.0, 250.0, h, w, yy, xx)


def test_the_chapters_name_the_same_classes():
    assert len(deeplab.SHAPE_CLASSES) == len(SHAPE_CLASSES) == len(ssd.SHAPE_CLASSES)
    assert ssd.SHAPE_CLASSES == SHAPE_CLASSES
    colour = ssd.make_shapes(4, image_size=64, seed=0)
    assert colour.images.shape == (4, 3, 64, 64) and colour.masks.shape == (4, 64, 64)
