"""SSD: Single Shot MultiBox Detector.

Wei Liu, Dragomir Anguelov, Dumitru Erhan, Christian Szegedy, Scott Reed, Cheng-Yang Fu and
Alexander C. Berg, ECCV 2016, arXiv:1512.02325.

The pieces of a single-shot detector, in the order a detector uses them:

* Default boxes (Sec. 2.2, Eq. 4): :class:`DefaultBoxConfig`, the paper's :data:`SSD300`
  (8732 boxes) and :data:`SSD512` (24564), :func:`ssd_scales` and :func:`default_boxes`,
  which returns normalized ``(cx, cy, w, h)`` boxes centred at ``((i+0.5)/|f_k|, (j+0.5)/|f_k|)``.
* Geometry: :func:`box_iou` (Jaccard overlap), :func:`encode` and :func:`decode`, the offsets of
  Eq. 2 divided by the reference code's variances 0.1 and 0.2.
* Matching (Sec. 2.2): :func:`match` gives each ground truth its best default box, then every
  default box with IoU >= 0.5; :func:`assign_targets` turns the match into training targets.
* The loss (Eq. 1 to 3): :func:`hard_negative_mining` (negatives:positives at most 3:1),
  :class:`MultiBoxLoss`.
* Inference: :func:`nms`, :func:`batched_nms` and :func:`detect` (Sec. 3.7).
* Evaluation: :func:`average_precision` and :func:`mean_average_precision` (PASCAL VOC style).
* The network (Sec. 3, Fig. 2): :class:`L2Norm`, :class:`VGG16Base`, :class:`MultiBoxHead`,
  :class:`SSD` and :func:`ssd300_vgg16` (26,285,486 parameters with 21 classes).
* The chapter's experiment: :func:`make_shapes`, the shared generated shapes
  (:mod:`initdocs.data`) in colour, :func:`tiny_ssd` and :func:`train_detector`, whose loop is
  built from :func:`initdocs.train.train_epoch` around the multibox loss.

Conventions: boxes in an image (ground truths, detections) are ``(x1, y1, x2, y2)`` in [0, 1];
default boxes are ``(cx, cy, w, h)``, as the paper defines them. Class 0 is the background, so
object labels run from 1 to ``num_classes - 1``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initdocs.data import SHAPE_CLASSES, Shapes
from initdocs.data import make_shapes as _make_shapes
from initdocs.train import History, adamw, cosine_schedule, minibatches, train_epoch

# fmt: off
__all__ = [
    "SHAPE_CLASSES", "SSD", "SSD300", "SSD512", "DefaultBoxConfig", "Detections", "L2Norm",
    "MultiBoxHead", "MultiBoxLoss", "Shapes", "VGG16Base", "assign_targets", "average_precision",
    "batched_nms", "box_iou", "cxcywh_to_xyxy", "decode", "default_boxes", "detect", "encode",
    "hard_negative_mining", "make_shapes", "match", "mean_average_precision", "nms",
    "ssd300_vgg16", "ssd_scales", "tiny_ssd", "train_detector", "xyxy_to_cxcywh",
]
# fmt: on

Variances = tuple[float, float]

# --- Default boxes (Sec. 2.2) -------------------------------------------------------------------


def ssd_scales(m: int, s_min: float = 0.2, s_max: float = 0.9) -> tuple[float, ...]:
    """Eq. 4, ``s_k = s_min + (s_max - s_min)(k - 1)/(m - 1)``, for ``k = 1, ..., m + 1``.

    The paper does not say what ``s_{m+1}`` is (the extra box of the last map needs it); we
    continue the same line, which gives 1.04 for ``m = 6``.

    Args:
        m: Number of feature maps that predict.
        s_min: Scale of the lowest map.
        s_max: Scale of the highest map.
    """
    if m < 2 or not 0 < s_min < s_max:
        raise ValueError(f"need m >= 2 and 0 < s_min < s_max, got {m}, {s_min}, {s_max}")
    return tuple(s_min + (s_max - s_min) * (k - 1) / (m - 1) for k in range(1, m + 2))


@dataclass(frozen=True)
class DefaultBoxConfig:
    """Where the default boxes sit: one square grid per map, with its scale and aspect ratios.

    Args:
        feature_maps: Side ``|f_k|`` of each feature map, finest first.
        scales: ``s_1, ..., s_{m+1}``, one more than there are maps (for the extra box).
        aspect_ratios: Per map, the ratios besides 1; each ``a`` adds boxes of ratio ``a``
            and ``1/a``. Boxes per location: ``2 + 2 * len(aspect_ratios[k])``.
        clip: Clip boxes to the image (torchvision does; the paper does not say).
    """

    feature_maps: tuple[int, ...]
    scales: tuple[float, ...]
    aspect_ratios: tuple[tuple[float, ...], ...]
    clip: bool = False

    def __post_init__(self) -> None:
        m = len(self.feature_maps)
        if m == 0 or len(self.scales) != m + 1 or len(self.aspect_ratios) != m:
            raise ValueError(
                f"need m maps, m + 1 scales and m lists of ratios, got {m}, "
                f"{len(self.scales)} and {len(self.aspect_ratios)}"
            )
        if min(self.feature_maps) < 1 or min(self.scales) <= 0:
            raise ValueError("feature-map sizes and scales must be positive")
        if any(a <= 0 or a == 1 for ratios in self.aspect_ratios for a in ratios):
            raise ValueError("aspect ratios must be positive and not 1 (ratio 1 is always there)")

    @property
    def boxes_per_location(self) -> tuple[int, ...]:
        return tuple(2 + 2 * len(ratios) for ratios in self.aspect_ratios)

    @property
    def num_boxes(self) -> int:
        return sum(
            f * f * a for f, a in zip(self.feature_maps, self.boxes_per_location, strict=True)
        )


#: SSD300: conv4_3, fc7, conv8_2, conv9_2, conv10_2, conv11_2 (Fig. 2); Eq. 4 scales 0.2 to 0.9.
SSD300 = DefaultBoxConfig(
    feature_maps=(38, 19, 10, 5, 3, 1),
    scales=ssd_scales(6),
    aspect_ratios=((2.0,), (2.0, 3.0), (2.0, 3.0), (2.0, 3.0), (2.0,), (2.0,)),
)
#: SSD512: one more map (conv12_2), as in the authors' code.
SSD512 = DefaultBoxConfig(
    feature_maps=(64, 32, 16, 8, 4, 2, 1),
    scales=ssd_scales(7),
    aspect_ratios=((2.0,), (2.0, 3.0), (2.0, 3.0), (2.0, 3.0), (2.0, 3.0), (2.0,), (2.0,)),
)


def _box_sizes(s_k: float, s_next: float, ratios: Sequence[float]) -> list[tuple[float, float]]:
    """``(w, h)`` of the boxes at one location: ``w = s_k sqrt(a)``, ``h = s_k / sqrt(a)``."""
    extra = math.sqrt(s_k * s_next)  # the extra ratio-1 box, s'_k = sqrt(s_k s_{k+1})
    sizes = [(s_k, s_k), (extra, extra)]
    for a in ratios:
        sizes += [
            (s_k * math.sqrt(a), s_k / math.sqrt(a)),
            (s_k / math.sqrt(a), s_k * math.sqrt(a)),
        ]
    return sizes


def default_boxes(config: DefaultBoxConfig) -> torch.Tensor:
    """All default boxes, shape ``(N, 4)``, as normalized ``(cx, cy, w, h)``.

    Order: map by map (finest first), then row ``i``, column ``j``, then the boxes of the
    location in the order ``1, 1', a_1, 1/a_1, ...``. :class:`MultiBoxHead` uses the same order.
    """
    per_map = []
    for k, f in enumerate(config.feature_maps):
        sizes = _box_sizes(config.scales[k], config.scales[k + 1], config.aspect_ratios[k])
        wh = torch.tensor(sizes)  # (A, 2)
        centres = (torch.arange(f, dtype=torch.float32) + 0.5) / f  # (i + 0.5) / |f_k|
        cy, cx = torch.meshgrid(centres, centres, indexing="ij")  # (f, f) each
        xy = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2)  # (f*f, 1, 2)
        boxes = torch.cat([xy.expand(-1, len(sizes), 2), wh.expand(f * f, -1, 2)], dim=-1)
        per_map.append(boxes.reshape(-1, 4))  # (f*f*A, 4)
    boxes = torch.cat(per_map)
    if config.clip:
        boxes = xyxy_to_cxcywh(cxcywh_to_xyxy(boxes).clamp(0.0, 1.0))
    return boxes


# --- Geometry -------------------------------------------------------------------------------


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jaccard overlap ``|a ∩ b| / |a ∪ b|`` of every pair: ``(A, 4), (B, 4) -> (A, B)``.

    The denominator is the *union*, not the enclosing box. Pairs whose union is empty get 0.
    """
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (A, B, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])  # (A, B, 2)
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)  # (A, B)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def encode(
    boxes: torch.Tensor, defaults: torch.Tensor, variances: Variances = (0.1, 0.2)
) -> torch.Tensor:
    """Offsets ``g_hat`` of Eq. 2 of ``(x1, y1, x2, y2)`` boxes from ``(cx, cy, w, h)`` defaults.

    ``((g_cx - d_cx) / d_w, (g_cy - d_cy) / d_h, log(g_w / d_w), log(g_h / d_h))``, the first
    two divided by ``variances[0]`` and the last two by ``variances[1]`` (the authors' code).
    """
    v_centre, v_size = variances
    if v_centre <= 0 or v_size <= 0:
        raise ValueError(f"variances must be positive, got {variances}")
    g = xyxy_to_cxcywh(boxes)
    centre = (g[..., :2] - defaults[..., :2]) / defaults[..., 2:] / v_centre
    size = torch.log(g[..., 2:] / defaults[..., 2:]) / v_size
    return torch.cat([centre, size], dim=-1)


def decode(
    offsets: torch.Tensor, defaults: torch.Tensor, variances: Variances = (0.1, 0.2)
) -> torch.Tensor:
    """The inverse of :func:`encode`: predicted offsets to ``(x1, y1, x2, y2)`` boxes."""
    v_centre, v_size = variances
    centre = defaults[..., :2] + offsets[..., :2] * v_centre * defaults[..., 2:]
    size = defaults[..., 2:] * torch.exp(offsets[..., 2:] * v_size)
    return cxcywh_to_xyxy(torch.cat([centre, size], dim=-1))


# --- Matching (Sec. 2.2, "Matching strategy") -----------------------------------------------------


def match(gt_boxes: torch.Tensor, defaults: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Index of the ground truth each default box is matched to, ``-1`` for background.

    First every default box whose best IoU with a ground truth is ``>= threshold`` takes that
    ground truth. Then each ground truth claims the default box it overlaps most, greedily by
    decreasing IoU so that two ground truths never claim the same box (the authors' bipartite
    step); these forced matches override the first step.

    Args:
        gt_boxes: ``(G, 4)`` ground truths, ``(x1, y1, x2, y2)``.
        defaults: ``(N, 4)`` default boxes, ``(cx, cy, w, h)``.
        threshold: IoU from which on a default box is a positive: 0.5 in the paper, which says
            "higher than"; like torchvision we count IoU equal to it as a match.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = defaults.shape[0]
    matches = torch.full((n,), -1, dtype=torch.long)
    if gt_boxes.shape[0] == 0:
        return matches
    iou = box_iou(gt_boxes, cxcywh_to_xyxy(defaults))  # (G, N)
    best_iou, best_gt = iou.amax(dim=0), iou.argmax(dim=0)  # (N,) each
    matches = torch.where(best_iou >= threshold, best_gt, matches)
    free = iou.clone()
    for _ in range(min(gt_boxes.shape[0], n)):
        j, i = divmod(int(free.argmax()), n)  # the best remaining (ground truth, default) pair
        matches[i] = j
        free[j, :], free[:, i] = -1.0, -1.0
    return matches


def assign_targets(
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    defaults: torch.Tensor,
    threshold: float = 0.5,
    variances: Variances = (0.1, 0.2),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training targets of one image: offsets ``(N, 4)`` and classes ``(N,)``, 0 = background."""
    if gt_labels.numel() and int(gt_labels.min()) < 1:
        raise ValueError("object labels start at 1: class 0 is the background")
    matches = match(gt_boxes, defaults, threshold)
    positive = matches >= 0
    classes = torch.zeros(defaults.shape[0], dtype=torch.long)
    classes[positive] = gt_labels[matches[positive]]
    offsets = torch.zeros_like(defaults)
    offsets[positive] = encode(gt_boxes[matches[positive]], defaults[positive], variances)
    return offsets, classes


# --- The loss (Eq. 1 to 3) and hard negative mining ---------------------------------------


def hard_negative_mining(
    background_loss: torch.Tensor, positive: torch.Tensor, neg_pos_ratio: float = 3.0
) -> torch.Tensor:
    """The negatives to train on: per image, the ``ratio * N_pos`` with the highest loss.

    Args:
        background_loss: ``(B, N)`` confidence loss ``-log c_0`` of every default box.
        positive: ``(B, N)`` mask of the matched boxes.
        neg_pos_ratio: At most this many negatives per positive (3 in the paper).
    """
    loss = background_loss.masked_fill(positive, -math.inf)
    rank = loss.argsort(dim=1, descending=True, stable=True).argsort(dim=1)  # 0 = hardest
    num_pos = positive.sum(dim=1, keepdim=True)
    num_neg = torch.minimum((neg_pos_ratio * num_pos).long(), (~positive).sum(1, keepdim=True))
    return (rank < num_neg) & ~positive


class MultiBoxLoss(nn.Module):
    """Eq. 1 in two parts, ``(L_conf / N, alpha * L_loc / N)``, with hard negative mining.

    Their sum is the loss. With no matched box (``N = 0``) both parts are 0, as the paper sets.

    Args:
        neg_pos_ratio: At most this many negatives per positive (3 in the paper).
        alpha: Weight of the localization loss (1 in the paper).
    """

    def __init__(self, neg_pos_ratio: float = 3.0, alpha: float = 1.0) -> None:
        super().__init__()
        self.neg_pos_ratio, self.alpha = neg_pos_ratio, alpha

    def forward(
        self,
        loc_pred: torch.Tensor,
        conf_logits: torch.Tensor,
        loc_target: torch.Tensor,
        cls_target: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions ``(B, N, 4)`` and ``(B, N, C)``; targets ``(B, N, 4)`` and ``(B, N)``."""
        positive = cls_target > 0  # (B, N)
        # Eq. 3: softmax cross-entropy; for a negative box it is -log c_0.
        ce = F.cross_entropy(conf_logits.flatten(0, 1), cls_target.flatten(), reduction="none")
        ce = ce.view_as(cls_target)  # (B, N)
        negative = hard_negative_mining(ce.detach(), positive, self.neg_pos_ratio)
        l_conf = ce[positive | negative].sum()
        # Eq. 2: smooth L1 between predicted and encoded offsets, positives only.
        l_loc = F.smooth_l1_loss(loc_pred[positive], loc_target[positive], reduction="sum")
        n = positive.sum().clamp(min=1)  # Eq. 1; with N = 0 both sums are empty, hence 0
        return l_conf / n, self.alpha * l_loc / n


# --- Non-maximum suppression ----------------------------------------------------------------


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept, by decreasing score (the contract of torchvision's ``nms``).

    A box is dropped if its IoU with a kept box of higher score exceeds ``iou_threshold``;
    equal scores keep their input order. The IoU matrix of all boxes is computed at once, so
    pass at most a few thousand (the paper keeps the top 200 per image anyway).
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    order = torch.argsort(scores, descending=True, stable=True)
    if iou_threshold == 1.0:  # no IoU exceeds 1: every box is kept
        return order
    overlaps = (box_iou(boxes[order], boxes[order]) > iou_threshold).numpy()  # (K, K)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """:func:`nms` within each class: shifting classes apart makes their boxes disjoint."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    shift = (boxes.max() - boxes.min() + 1) * classes.to(boxes.dtype)  # (K,)
    return nms(boxes + shift[:, None], scores, iou_threshold)


@dataclass
class Detections:
    """The detections of one image: ``(K, 4)`` boxes ``(x1, y1, x2, y2)``, scores, labels."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor


@torch.no_grad()
def detect(
    loc_pred: torch.Tensor,
    conf_logits: torch.Tensor,
    defaults: torch.Tensor,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.45,
    top_k: int = 200,
    variances: Variances = (0.1, 0.2),
) -> list[Detections]:
    """Decode, drop low scores, run NMS per class and keep the ``top_k`` best per image.

    The defaults are the paper's (Sec. 3.7). ``iou_threshold=1.0`` keeps every box (no NMS).
    """
    probs = conf_logits.softmax(dim=-1)  # (B, N, C)
    boxes = decode(loc_pred, defaults, variances)  # (B, N, 4)
    results = []
    for b in range(probs.shape[0]):
        cls_probs = probs[b, :, 1:]  # (N, C - 1): no detections of the background
        box_idx, cls_idx = torch.nonzero(cls_probs > score_threshold, as_tuple=True)
        scores = cls_probs[box_idx, cls_idx]
        labels = cls_idx + 1
        keep = batched_nms(boxes[b, box_idx], scores, labels, iou_threshold)[:top_k]
        results.append(Detections(boxes[b, box_idx[keep]], scores[keep], labels[keep]))
    return results


# --- Average precision (PASCAL VOC) -----------------------------------------------------------


def average_precision(
    scores: Sequence[float] | np.ndarray | torch.Tensor,
    true_positive: Sequence[bool] | np.ndarray | torch.Tensor,
    num_ground_truth: int,
    eleven_point: bool = False,
) -> float:
    """Area under the interpolated precision-recall curve of one class.

    Interpolated precision at recall ``r`` is the best precision at any recall ``>= r``; the
    area is exact (VOC 2010 and later) or averaged at recalls 0, 0.1, ..., 1 (VOC 2007).
    Returns NaN for a class without ground truths.
    """
    if num_ground_truth < 0:
        raise ValueError(f"num_ground_truth must be non-negative, got {num_ground_truth}")
    if num_ground_truth == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    tp = np.asarray(true_positive, dtype=float)[order]
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = tp_cum / num_ground_truth
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1e-12)
    if eleven_point:
        points = [precision[recall >= t].max(initial=0.0) for t in np.linspace(0, 1, 11)]
        return float(np.mean(points))
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # the interpolated precision envelope
    step = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[step + 1] - r[step]) * p[step + 1]))


def mean_average_precision(
    detections: Sequence[Detections],
    gt_boxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    iou_threshold: float = 0.5,
    eleven_point: bool = False,
) -> tuple[float, dict[int, float]]:
    """mAP over the classes present in the ground truth, and the AP of each class.

    Within an image, detections of a class are taken by decreasing score; each is a true
    positive if its best-overlapping ground truth has IoU >= ``iou_threshold`` and is not yet
    taken, otherwise a false positive (a duplicate detection counts as false, as in VOC).
    """
    classes = sorted({int(c) for labels in gt_labels for c in labels})
    per_class = {}
    for c in classes:
        scores, hits, n_gt = [], [], 0
        for det, boxes, labels in zip(detections, gt_boxes, gt_labels, strict=True):
            g = boxes[labels == c]
            mine = det.labels == c
            s, order = det.scores[mine].sort(descending=True, stable=True)
            iou = box_iou(det.boxes[mine][order], g)  # (K, G)
            taken = torch.zeros(len(g), dtype=torch.bool)
            for k in range(len(s)):
                hit = False
                if len(g):
                    j = int(iou[k].argmax())
                    hit = bool(iou[k, j] >= iou_threshold) and not bool(taken[j])
                    taken[j] |= hit
                hits.append(hit)
            scores += s.tolist()
            n_gt += len(g)
        per_class[c] = average_precision(scores, hits, n_gt, eleven_point)
    return (float(np.mean(list(per_class.values()))) if per_class else math.nan), per_class


# --- The network (Sec. 3, Fig. 2) ---------------------------------------------------------------


class L2Norm(nn.Module):
    """Scale each location's feature vector to unit L2 norm, then by a learned per-channel
    factor initialized to 20 (Sec. 3.1; the idea of ParseNet). Used on conv4_3."""

    def __init__(self, channels: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight[None, :, None, None] * F.normalize(x, dim=1, eps=1e-10)


def _conv_relu(c_in: int, c_out: int, k: int = 3, **kwargs: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=kwargs.pop("padding", k // 2), **kwargs), nn.ReLU()]


def _vgg_stage(c_in: int, c_out: int, n: int) -> list[nn.Module]:
    return [m for i in range(n) for m in _conv_relu(c_in if i == 0 else c_out, c_out)]


class VGG16Base(nn.Module):
    """VGG-16 without its classifier, converted as in Sec. 3, plus the extra layers (Fig. 2).

    pool3 rounds up (75 -> 38), pool5 becomes 3 x 3 with stride 1, fc6 and fc7 become a 3 x 3
    convolution with dilation 6 and a 1 x 1 convolution (1024 channels each), and conv8 to
    conv11 (a 1 x 1 then a 3 x 3 convolution each) shrink the map to 10, 5, 3 and 1.
    Returns the six maps conv4_3 (L2-normalized), fc7, conv8_2, conv9_2, conv10_2, conv11_2.
    """

    channels = (512, 1024, 512, 256, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.conv4_3 = nn.Sequential(
            *_vgg_stage(3, 64, 2), nn.MaxPool2d(2, 2), *_vgg_stage(64, 128, 2), nn.MaxPool2d(2, 2),
            *_vgg_stage(128, 256, 3), nn.MaxPool2d(2, 2, ceil_mode=True), *_vgg_stage(256, 512, 3),
        )  # fmt: skip
        self.l2norm = L2Norm(512)
        self.conv5_3 = nn.Sequential(nn.MaxPool2d(2, 2), *_vgg_stage(512, 512, 3))
        self.fc7 = nn.Sequential(
            nn.MaxPool2d(3, 1, padding=1),  # pool5: 3 x 3, stride 1
            *_conv_relu(512, 1024, 3, padding=6, dilation=6),  # fc6, atrous
            *_conv_relu(1024, 1024, 1),  # fc7
        )
        self.extras = nn.ModuleList(
            nn.Sequential(*_conv_relu(c_in, c_mid, 1), *_conv_relu(c_mid, c_out, 3, **kw))
            for c_in, c_mid, c_out, kw in [
                (1024, 256, 512, {"stride": 2}),  # conv8_2: 19 -> 10
                (512, 128, 256, {"stride": 2}),  # conv9_2: 10 -> 5
                (256, 128, 256, {"padding": 0}),  # conv10_2: 5 -> 3
                (256, 128, 256, {"padding": 0}),  # conv11_2: 3 -> 1
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.conv4_3(x)  # (B, 512, 38, 38)
        maps = [self.l2norm(x)]
        x = self.fc7(self.conv5_3(x))  # (B, 1024, 19, 19)
        maps.append(x)
        for extra in self.extras:
            x = extra(x)
            maps.append(x)
        return maps


class MultiBoxHead(nn.Module):
    """One 3 x 3 convolution per map for offsets (4 per box) and one for class scores.

    Args:
        channels: Channels of each feature map.
        boxes_per_location: Default boxes per location of each map.
        num_classes: Classes including the background.
    """

    def __init__(
        self, channels: Sequence[int], boxes_per_location: Sequence[int], num_classes: int
    ) -> None:
        super().__init__()
        if len(channels) != len(boxes_per_location) or num_classes < 2:
            raise ValueError("need one box count per map and at least 2 classes")
        self.num_classes = num_classes
        self.loc = nn.ModuleList(
            nn.Conv2d(c, a * 4, 3, padding=1)
            for c, a in zip(channels, boxes_per_location, strict=True)
        )
        self.conf = nn.ModuleList(
            nn.Conv2d(c, a * num_classes, 3, padding=1)
            for c, a in zip(channels, boxes_per_location, strict=True)
        )

    def forward(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        locs, confs = [], []
        for x, loc, conf in zip(maps, self.loc, self.conf, strict=True):
            b = x.shape[0]
            # (B, A*4, H, W) -> (B, H, W, A*4) -> (B, H*W*A, 4): default_boxes' order
            locs.append(loc(x).permute(0, 2, 3, 1).reshape(b, -1, 4))
            confs.append(conf(x).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes))
        return torch.cat(locs, dim=1), torch.cat(confs, dim=1)  # (B, N, 4), (B, N, C)


class SSD(nn.Module):
    """A backbone that returns several feature maps, and a :class:`MultiBoxHead` on them."""

    def __init__(self, backbone: nn.Module, head: MultiBoxHead, boxes: DefaultBoxConfig) -> None:
        super().__init__()
        self.backbone, self.head, self.box_config = backbone, head, boxes
        self.register_buffer("defaults", default_boxes(boxes), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))  # (B, N, 4) offsets, (B, N, C) class scores


def ssd300_vgg16(num_classes: int = 21, boxes: DefaultBoxConfig = SSD300) -> SSD:
    """SSD300 of Fig. 2: 26,285,486 parameters with the 21 classes of PASCAL VOC.

    Args:
        num_classes: Classes including the background (21 for VOC, 81 or 91 for COCO).
        boxes: Default boxes on the six maps; change their scales, not their grid sizes.
    """
    if boxes.feature_maps != SSD300.feature_maps:
        raise ValueError(f"SSD300's maps are {SSD300.feature_maps}, got {boxes.feature_maps}")
    head = MultiBoxHead(VGG16Base.channels, boxes.boxes_per_location, num_classes)
    return SSD(VGG16Base(), head, boxes)


# --- The chapter's experiment: shapes and a tiny SSD ----------------------------------------


def make_shapes(
    n_images: int,
    image_size: int = 64,
    max_objects: int = 3,
    size_range: tuple[float, float] = (0.12, 0.8),
    seed: int = 0,
) -> Shapes:
    """The chapter's detection data: :func:`initdocs.data.make_shapes` in colour.

    Noisy images of filled rectangles, ellipses and triangles (labels 1, 2, 3; see
    :data:`SHAPE_CLASSES`): up to ``max_objects`` objects of random bright colour on a dark
    background of random colour, with sides log-uniform in ``size_range`` (fractions of the
    image) and aspect ratios between 1/2 and 2, pixel values clipped to [0, 1]. Boxes
    (``data.boxes``, ``(x1, y1, x2, y2)`` in [0, 1]) are tight around the drawn pixels and do
    not overlap. Fully determined by ``seed``.
    """
    if n_images < 1 or not 0 < size_range[0] <= size_range[1] < 1:
        raise ValueError(f"need n_images >= 1 and 0 < min <= max < 1 sizes, got {size_range}")
    return _make_shapes(
        n_images,
        image_size,
        object_sizes=(size_range[0] * image_size, size_range[1] * image_size),
        max_aspect=2.0,
        max_objects=max_objects,
        attempts=1,  # an object that overlaps is left out, not moved
        channels=3,
        background=(0.0, 0.4),
        brightness=(0.5, 1.0),
        noise=0.05,
        clip=True,
        seed=seed,
    )


class _TinyBackbone(nn.Module):
    """Stride-2 3 x 3 convolutions with batch norm; returns the last ``n_maps`` maps."""

    def __init__(self, widths: Sequence[int], n_maps: int) -> None:
        super().__init__()
        c_in = (3, *widths[:-1])
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(i, o, 3, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
            for i, o in zip(c_in, widths, strict=True)
        )
        self.n_maps = n_maps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for stage in self.stages:
            x = stage(x)  # (B, C, H/2, W/2)
            maps.append(x)
        return maps[-self.n_maps :]


def tiny_ssd(num_classes: int = 4, width: int = 16, image_size: int = 64) -> SSD:
    """A small SSD: five stride-2 stages, predictions on the last four maps.

    For 64 x 64 images the maps are 16, 8, 4 and 2 wide; the default boxes follow Eq. 4 with
    ``s_min = 0.1`` and ``s_max = 0.8`` and have ratios 1, 1', 2 and 1/2 (1360 boxes).

    Args:
        num_classes: Classes including the background.
        width: Channels of the first stage; the others have 2 and 4 times as many.
        image_size: Side of the square input, a multiple of 32.
    """
    if width < 1 or image_size < 32 or image_size % 32:
        raise ValueError(f"need width >= 1 and a multiple of 32, got {width}, {image_size}")
    maps = tuple(image_size // 2**k for k in (2, 3, 4, 5))
    boxes = DefaultBoxConfig(maps, ssd_scales(4, 0.1, 0.8), ((2.0,),) * 4)
    widths = (width, 2 * width, 4 * width, 4 * width, 4 * width)
    head = MultiBoxHead(widths[1:], boxes.boxes_per_location, num_classes)
    return SSD(_TinyBackbone(widths, n_maps=4), head, boxes)


def train_detector(
    model: SSD,
    data: Shapes,
    epochs: int = 10,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> History:
    """Train with :class:`MultiBoxLoss`, AdamW and a cosine schedule; the loss of every epoch
    is in ``history.train_loss``.

    The targets of every image are assigned once, before training (no augmentation).
    """
    targets = [
        assign_targets(b, c, model.defaults) for b, c in zip(data.boxes, data.labels, strict=True)
    ]
    loc_target = torch.stack([t[0] for t in targets])  # (N_img, N, 4)
    cls_target = torch.stack([t[1] for t in targets])  # (N_img, N)
    criterion = MultiBoxLoss()

    def multibox_loss(
        outputs: tuple[torch.Tensor, torch.Tensor], idx: torch.Tensor
    ) -> torch.Tensor:
        l_conf, l_loc = criterion(*outputs, loc_target[idx], cls_target[idx])
        return l_conf + l_loc  # Eq. 1: (L_conf + alpha L_loc) / N

    generator = torch.Generator().manual_seed(seed)
    optimizer = adamw(model.parameters(), lr)
    schedule = cosine_schedule(optimizer, epochs, len(data.images), batch_size)
    history = History()
    start = time.perf_counter()
    for _ in range(epochs):
        # the targets of a batch are looked up by the indices of its images
        batches = (
            (data.images[idx], idx) for idx in minibatches(len(data.images), batch_size, generator)
        )
        history.record(
            train_loss=train_epoch(model, optimizer, batches, multibox_loss, schedule=schedule)
        )
    history.seconds = time.perf_counter() - start
    return history
