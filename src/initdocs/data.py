"""Data sets that need no download: real ones that ship inside a package, and generated ones.

* :func:`load_digits_split`: scikit-learn's handwritten digits as a :class:`Split`.
* :func:`make_shapes`: generated images of rectangles, ellipses and triangles with everything
  both the segmentation and the detection chapter need (:class:`Shapes`): per-pixel class
  masks, and for every drawn object its tight box, its label and its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SHAPE_CLASSES", "Shapes", "Split", "load_digits_split", "make_shapes", "shape_mask"]


@dataclass(frozen=True)
class Split:
    """A labelled train/test split as tensors."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Split(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
            f"classes={self.num_classes})"
        )


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's handwritten digits as images: 1,797 grey 8x8 pictures of 0 to 9.

    The data ship inside scikit-learn (no network). Pixels (0 to 16) are scaled to [0, 1];
    images have shape ``(N, 1, 8, 8)``. The split is stratified by class and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return Split(
        x_train=torch.from_numpy(x_tr),
        y_train=torch.from_numpy(y_tr).long(),
        x_test=torch.from_numpy(x_te),
        y_test=torch.from_numpy(y_te).long(),
        class_names=tuple(str(c) for c in digits.target_names),
    )


# -- Generated shapes ---------------------------------------------------------------------------

#: Class 0 is the background; with ``max_aspect=1`` rectangles are squares and ellipses discs.
SHAPE_CLASSES = ("background", "rectangle", "ellipse", "triangle")


@dataclass(frozen=True)
class Shapes:
    """Generated images and what is drawn in them: what :func:`make_shapes` returns.

    Object ``k`` of image ``i`` is ``boxes[i][k]``, ``labels[i][k]``, ``sizes[i][k]`` and the
    pixels where ``instances[i] == k + 1``.
    """

    images: torch.Tensor  # (N, C, S, S) float
    masks: torch.Tensor  # (N, S, S) class index, see SHAPE_CLASSES; 0 = background
    instances: torch.Tensor  # (N, S, S) 1 + index of the object a pixel is on, 0 = background
    boxes: list[torch.Tensor]  # per image (K, 4): tight (x1, y1, x2, y2) in [0, 1]
    labels: list[torch.Tensor]  # per image (K,): classes 1 to 3
    sizes: list[torch.Tensor]  # per image (K,): drawn size in pixels, sqrt(width * height)

    @property
    def object_size(self) -> torch.Tensor:
        """``(N, S, S)``: the drawn size in pixels of the object a pixel is on, 0 elsewhere."""
        table = torch.zeros(len(self.sizes), 1 + max(map(len, self.sizes), default=0))
        for i, sizes in enumerate(self.sizes):
            table[i, 1 : 1 + len(sizes)] = sizes  # column 0: the background
        return table.gather(1, self.instances.flatten(1)).view(self.instances.shape)


def shape_mask(
    kind: int, cy: float, cx: float, h: float, w: float, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """Boolean mask of one shape of height ``h`` and width ``w`` centred at ``(cy, cx)``.

    ``kind`` 1 is the rectangle filling that box, 2 the ellipse inscribed in it, 3 the
    triangle with its base at the bottom and its apex at the top centre. ``yy`` and ``xx`` are
    the coordinates of the pixel centres, in the same unit as the sizes.
    """
    dy, dx = yy - cy, xx - cx
    if kind == 1:
        return (np.abs(dy) <= h / 2) & (np.abs(dx) <= w / 2)
    if kind == 2:  # (dx / (w/2))^2 + (dy / (h/2))^2 <= 1, written to be exact for discs
        return (dx * (h / w)) ** 2 + dy**2 <= (h / 2) ** 2
    if kind == 3:
        depth = dy + h / 2  # 0 at the apex, h at the base
        return (depth >= 0) & (depth <= h) & (np.abs(dx) <= depth / 2 * (w / h))
    raise ValueError(f"kind must be 1, 2 or 3 (see SHAPE_CLASSES), got {kind}")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _place_object(
    rng: np.random.Generator,
    placed: list[tuple[float, float, float, float]],
    size: int,
    object_sizes: tuple[float, float],
    max_aspect: float,
    attempts: int,
) -> tuple[int, float, float, float, float, float] | None:
    """Draw ``(kind, s, cy, cx, h, w)`` of one object until its box keeps 2 pixels from every
    ``(cy, cx, h, w)`` in ``placed``; ``None`` after ``attempts`` failed attempts."""
    for _attempt in range(attempts):
        kind = int(rng.integers(1, len(SHAPE_CLASSES)))
        s = _log_uniform(rng, *object_sizes)
        aspect = _log_uniform(rng, 1 / max_aspect, max_aspect) if max_aspect > 1 else 1.0
        h, w = min(s / math.sqrt(aspect), size - 2.0), min(s * math.sqrt(aspect), size - 2.0)
        low, high = (h / 2 + 1, w / 2 + 1), (size - h / 2 - 1, size - w / 2 - 1)
        cy, cx = rng.uniform(low, high)  # at least one pixel inside the image
        if all(
            abs(cy - y) > (h + t) / 2 + 2 or abs(cx - x) > (w + u) / 2 + 2 for y, x, t, u in placed
        ):
            return kind, s, float(cy), float(cx), h, w
    return None


def make_shapes(
    n: int,
    size: int = 48,
    *,
    object_sizes: tuple[float, float] = (5.0, 30.0),
    max_aspect: float = 1.0,
    max_objects: int = 3,
    attempts: int = 20,
    channels: int = 1,
    background: float | tuple[float, float] = 0.0,
    brightness: tuple[float, float] = (0.6, 1.2),
    noise: float = 0.3,
    clip: bool = False,
    seed: int = 0,
) -> Shapes:
    """Images of filled rectangles, ellipses and triangles, with masks, boxes and labels.

    Each image holds 1 to ``max_objects`` objects. An object draws its class, its size ``s``
    (log-uniform in ``object_sizes``, pixels), its aspect ratio ``w / h`` (log-uniform between
    ``1 / max_aspect`` and ``max_aspect``; no draw when it is 1, so all shapes are squares,
    discs and isosceles triangles as wide as high) and its centre, at least one pixel inside
    the image. Its box is ``w = s sqrt(a)`` by ``h = s / sqrt(a)``. An object whose box comes
    within 2 pixels of an earlier one's is drawn again, up to ``attempts`` times, then left out
    (with few attempts, images hold fewer objects, and fewer small ones).

    The background is ``background`` in every channel, or drawn per image and channel from
    that range; each object gets one value per channel, drawn from ``brightness``. Gaussian
    noise of standard deviation ``noise`` covers everything; ``clip`` clips the result to
    [0, 1]. Boxes are tight around the drawn pixels. Fully determined by ``seed``.
    """
    lo, hi = object_sizes
    if n < 0 or max_objects < 1 or not 1 <= lo <= hi < size:
        raise ValueError(f"bad arguments: n={n}, max_objects={max_objects}, sizes={object_sizes}")
    if max_aspect < 1 or channels < 1 or attempts < 1:
        raise ValueError(
            f"need max_aspect, channels and attempts >= 1, got {max_aspect}, {channels}, {attempts}"
        )
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    images = np.zeros((n, channels, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    instances = np.zeros((n, size, size), np.int64)
    boxes, labels, sizes = [], [], []
    for i in range(n):
        if isinstance(background, tuple):
            images[i] = rng.uniform(*background, size=(channels, 1, 1))
        else:
            images[i] = background
        placed: list[tuple[float, float, float, float]] = []  # (cy, cx, h, w) of each object
        kinds, drawn, tight = [], [], []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            drawn_object = _place_object(rng, placed, size, object_sizes, max_aspect, attempts)
            if drawn_object is None:
                continue  # no free place for this object
            kind, s, cy, cx, h, w = drawn_object
            shape = shape_mask(kind, cy, cx, h, w, yy, xx)
            if not shape.any():
                continue  # too small to cover a pixel centre
            placed.append((cy, cx, h, w))
            masks[i][shape], instances[i][shape] = kind, len(kinds) + 1
            images[i][:, shape] = rng.uniform(*brightness, size=(channels, 1))
            rows, cols = np.nonzero(shape.any(1))[0], np.nonzero(shape.any(0))[0]
            tight.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
            kinds.append(kind)
            drawn.append(s)
        images[i] += noise * rng.standard_normal((channels, size, size)).astype(np.float32)
        boxes.append(torch.tensor(tight, dtype=torch.float32).reshape(-1, 4) / size)
        labels.append(torch.tensor(kinds, dtype=torch.long))
        sizes.append(torch.tensor(drawn, dtype=torch.float32))
    if clip:
        np.clip(images, 0.0, 1.0, out=images)
    return Shapes(
        torch.from_numpy(images),
        torch.from_numpy(masks),
        torch.from_numpy(instances),
        boxes,
        labels,
        sizes,
    )
