"""SSD against the paper's numbers (Fig. 2, Table 7), brute-force loops and hand-made cases."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from initdocs import count_parameters
from initdocs.ssd import (
    SSD300,
    SSD512,
    DefaultBoxConfig,
    Detections,
    L2Norm,
    MultiBoxHead,
    MultiBoxLoss,
    assign_targets,
    average_precision,
    batched_nms,
    box_iou,
    cxcywh_to_xyxy,
    decode,
    default_boxes,
    detect,
    encode,
    hard_negative_mining,
    make_shapes,
    match,
    mean_average_precision,
    nms,
    ssd300_vgg16,
    ssd_scales,
    tiny_ssd,
    train_detector,
    xyxy_to_cxcywh,
)


def random_boxes(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 0.8
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.02
    return torch.cat([xy, xy + wh], dim=1)


def iou_loop(a: list[float], b: list[float]) -> float:
    """One pair, written out: intersection over union."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --- Default boxes ---------------------------------------------------------------------------


def test_ssd300_has_8732_boxes_fig_2_and_table_7():
    boxes = default_boxes(SSD300)
    assert boxes.shape == (8732, 4)
    per_map = [
        f * f * a for f, a in zip(SSD300.feature_maps, SSD300.boxes_per_location, strict=True)
    ]
    assert per_map == [5776, 2166, 600, 150, 36, 4]
    assert SSD300.boxes_per_location == (4, 6, 6, 6, 4, 4)


def test_ssd512_has_24564_boxes_table_7():
    assert default_boxes(SSD512).shape == (24564, 4)
    assert SSD512.num_boxes == 24564


def test_scales_follow_eq_4():
    expected = [0.2 + 0.7 * (k - 1) / 5 for k in range(1, 8)]
    assert ssd_scales(6) == pytest.approx(expected)
    assert ssd_scales(6)[:6] == pytest.approx([0.2, 0.34, 0.48, 0.62, 0.76, 0.9])


@pytest.mark.parametrize(
    "scales",
    [
        (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05),  # the authors' VOC prototxt
        (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05),  # torchvision / the COCO prototxt
        (0.1, *ssd_scales(5)),  # Sec. 3.1: 0.1 on conv4_3, Eq. 4 on the other five maps
    ],
)
def test_box_count_does_not_depend_on_the_scales(scales):
    assert default_boxes(dataclasses.replace(SSD300, scales=scales)).shape == (8732, 4)


@pytest.mark.parametrize(
    "config", [SSD300, DefaultBoxConfig((3, 2), (0.3, 0.6, 0.9), ((2.0, 3.0), ()))]
)
def test_default_boxes_equal_a_loop_over_the_papers_rules(config):
    rows = []
    for k, f in enumerate(config.feature_maps):
        s, s_next = config.scales[k], config.scales[k + 1]
        for i, j in itertools.product(range(f), range(f)):
            cx, cy = (j + 0.5) / f, (i + 0.5) / f
            rows.append([cx, cy, s, s])
            rows.append([cx, cy, math.sqrt(s * s_next), math.sqrt(s * s_next)])
            for a in config.aspect_ratios[k]:
                rows.append([cx, cy, s * math.sqrt(a), s / math.sqrt(a)])
                rows.append([cx, cy, s * math.sqrt(1 / a), s / math.sqrt(1 / a)])
    torch.testing.assert_close(default_boxes(config), torch.tensor(rows), rtol=0, atol=1e-6)


def test_clipped_boxes_stay_inside_the_image():
    boxes = cxcywh_to_xyxy(default_boxes(dataclasses.replace(SSD300, clip=True)))
    assert boxes.min() >= 0 and boxes.max() <= 1


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="m \\+ 1 scales"):
        DefaultBoxConfig((2, 1), (0.2, 0.5), ((2.0,), (2.0,)))
    with pytest.raises(ValueError, match="not 1"):
        DefaultBoxConfig((2,), (0.2, 0.5), ((1.0,),))
    with pytest.raises(ValueError, match="s_min"):
        ssd_scales(6, 0.9, 0.2)


# --- Geometry --------------------------------------------------------------------------------


def test_iou_of_the_session_4_example_is_one_seventh():
    a, b = torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    assert box_iou(a, b).item() == pytest.approx(1 / 7)  # not 1/9, the enclosing-box ratio


def test_iou_equals_a_brute_force_loop():
    a, b = random_boxes(40, seed=1), random_boxes(30, seed=2)
    b[0] = a[0]  # identical pair
    b[1] = torch.tensor([0.5, 0.5, 0.5, 0.9])  # zero area
    expected = torch.tensor([[iou_loop(p, q) for q in b.tolist()] for p in a.tolist()])
    torch.testing.assert_close(box_iou(a, b), expected, rtol=0, atol=1e-6)
    assert box_iou(a, b)[0, 0] == pytest.approx(1.0)


def test_iou_of_empty_sets_has_the_right_shape():
    assert box_iou(torch.zeros(0, 4), random_boxes(3)).shape == (0, 3)


def test_encode_decode_round_trip_and_known_offsets():
    defaults = default_boxes(SSD300)
    boxes = random_boxes(len(defaults), seed=3)
    torch.testing.assert_close(decode(encode(boxes, defaults), defaults), boxes, atol=1e-5, rtol=0)
    d = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    g = torch.tensor([[0.4, 0.3, 0.8, 0.7]])  # centre moved by half a width, width doubled
    offsets = encode(g, d, variances=(0.1, 0.2))
    expected = torch.tensor([[0.5 / 0.1, 0.0, math.log(2) / 0.2, 0.0]])
    torch.testing.assert_close(offsets, expected)
    torch.testing.assert_close(encode(g, d, (1.0, 1.0)), torch.tensor([[0.5, 0, math.log(2), 0]]))
    with pytest.raises(ValueError, match="variances"):
        encode(g, d, (0.0, 0.2))


def test_box_format_conversions_are_inverse():
    boxes = random_boxes(10)
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


# --- Matching --------------------------------------------------------------------------------


def cxcywh(*rows: list[float]) -> torch.Tensor:
    return xyxy_to_cxcywh(torch.tensor(rows))


def test_match_uses_the_threshold():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5]])  # powers of two: the IoUs below are exact
    defaults = cxcywh(
        [0.0, 0.0, 0.5, 0.5],  # IoU 1
        [0.0, 0.0, 0.5, 0.25],  # IoU 0.5: positive (>= threshold)
        [0.0, 0.0, 0.5, 0.1875],  # IoU 0.375
        [0.5, 0.5, 1.0, 1.0],  # disjoint
    )
    assert match(gt, defaults).tolist() == [0, 0, -1, -1]
    assert match(gt, defaults, threshold=0.375).tolist() == [0, 0, 0, -1]


def test_each_ground_truth_claims_its_best_box_even_below_the_threshold():
    gt = torch.tensor([[0.0, 0.0, 0.1, 0.1], [0.6, 0.6, 1.0, 1.0]])
    defaults = cxcywh(
        [0.0, 0.0, 0.3, 0.3],  # IoU 1/9 with gt 0: its best, forced
        [0.0, 0.0, 0.5, 0.5],  # IoU 0.04 with gt 0
        [0.6, 0.6, 1.0, 1.0],  # IoU 1 with gt 1
    )
    assert match(gt, defaults).tolist() == [0, -1, 1]


def test_two_ground_truths_with_the_same_best_box_both_get_one():
    gt = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.05, 0.0, 0.45, 0.4]])
    defaults = cxcywh([0.02, 0.0, 0.42, 0.4], [0.5, 0.5, 0.9, 0.9], [0.2, 0.0, 0.6, 0.4])
    iou = box_iou(gt, cxcywh_to_xyxy(defaults))  # box 0: 0.905 and 0.860; box 2: 0.45 for gt 1
    assert iou.argmax(dim=1).tolist() == [0, 0]  # both ground truths prefer box 0
    # With a threshold nobody reaches, only the forced matches remain: gt 0 (higher IoU)
    # keeps box 0 and gt 1 falls back to its next best, box 2, instead of being lost.
    assert match(gt, defaults, threshold=0.99).tolist() == [0, -1, 1]


def test_a_box_between_two_ground_truths_takes_the_better_one():
    gt = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4]])
    defaults = cxcywh([0.08, 0.0, 0.48, 0.4], [0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4])
    assert match(gt, defaults).tolist() == [1, 0, 1]


def test_match_without_ground_truth_is_all_background():
    assert (match(torch.zeros(0, 4), default_boxes(SSD300)) == -1).all()
    with pytest.raises(ValueError, match="threshold"):
        match(torch.zeros(0, 4), default_boxes(SSD300), threshold=0.0)


def test_assign_targets_gives_labels_and_encoded_offsets():
    defaults = default_boxes(SSD300)
    gt = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.6, 0.2, 0.9, 0.4]])
    offsets, classes = assign_targets(gt, torch.tensor([3, 7]), defaults)
    m = match(gt, defaults)
    assert set(classes[m == 0].tolist()) == {3} and set(classes[m == 1].tolist()) == {7}
    assert (classes[m < 0] == 0).all() and (offsets[m < 0] == 0).all()
    decoded = decode(offsets[m == 1], defaults[m == 1])
    torch.testing.assert_close(decoded, gt[1].expand_as(decoded))
    with pytest.raises(ValueError, match="background"):
        assign_targets(gt, torch.tensor([0, 1]), defaults)


# --- Loss ------------------------------------------------------------------------------------


def test_hard_negative_mining_keeps_the_three_hardest_negatives_per_positive():
    loss = torch.tensor([[0.1, 5.0, 0.3, 0.9, 0.2, 0.8, 0.4, 0.05], [1.0] * 8])
    positive = torch.zeros(2, 8, dtype=torch.bool)
    positive[0, 1] = True  # one positive in image 0, none in image 1
    neg = hard_negative_mining(loss, positive, 3)
    assert neg[0].nonzero().flatten().tolist() == [3, 5, 6]
    assert not neg[1].any()
    all_pos = torch.ones(1, 4, dtype=torch.bool)
    all_pos[0, 0] = False  # three positives, only one negative to take
    assert hard_negative_mining(torch.rand(1, 4), all_pos).tolist() == [[True, False, False, False]]


def test_loss_equals_a_hand_computation():
    torch.manual_seed(0)
    b, n, c = 2, 12, 4
    loc, conf, loc_t = torch.randn(b, n, 4), torch.randn(b, n, c), torch.randn(b, n, 4)
    cls_t = torch.zeros(b, n, dtype=torch.long)
    cls_t[0, [2, 5]] = torch.tensor([1, 3])
    cls_t[1, 7] = 2
    l_conf, l_loc = MultiBoxLoss()(loc, conf, loc_t, cls_t)
    conf_sum, loc_sum = 0.0, 0.0
    for i in range(b):
        logp = conf[i].log_softmax(-1)
        pos = [k for k in range(n) if cls_t[i, k] > 0]
        negs = sorted((k for k in range(n) if cls_t[i, k] == 0), key=lambda k: logp[k, 0].item())
        for k in pos:
            conf_sum -= logp[k, cls_t[i, k]].item()
            d = (loc[i, k] - loc_t[i, k]).abs()
            loc_sum += torch.where(d < 1, 0.5 * d**2, d - 0.5).sum().item()
        conf_sum -= sum(logp[k, 0].item() for k in negs[: 3 * len(pos)])
    assert l_conf.item() == pytest.approx(conf_sum / 3, rel=1e-5)
    assert l_loc.item() == pytest.approx(loc_sum / 3, rel=1e-5)


def test_loss_is_zero_and_finite_without_positives():
    loc = torch.randn(2, 10, 4, requires_grad=True)
    conf = torch.randn(2, 10, 3, requires_grad=True)
    parts = MultiBoxLoss()(loc, conf, torch.zeros(2, 10, 4), torch.zeros(2, 10, dtype=torch.long))
    total = sum(parts)
    assert total.item() == 0.0
    total.backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(conf.grad).all()


# --- NMS -------------------------------------------------------------------------------------


def nms_loop(boxes: list[list[float]], scores: list[float], threshold: float) -> list[int]:
    """The textbook loop: take the best remaining box, drop all that overlap it too much."""
    remaining = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [i for i in remaining if iou_loop(boxes[best], boxes[i]) <= threshold]
    return keep


@pytest.mark.parametrize(("seed", "threshold"), [(0, 0.3), (1, 0.45), (2, 0.5), (3, 0.7)])
def test_nms_equals_a_reference_loop(seed, threshold):
    boxes = random_boxes(300, seed)
    scores = torch.rand(300, generator=torch.Generator().manual_seed(seed + 10))
    expected = nms_loop(boxes.tolist(), scores.tolist(), threshold)
    assert nms(boxes, scores, threshold).tolist() == expected


def test_nms_ties_empty_input_and_thresholds():
    box = [0.1, 0.1, 0.5, 0.5]
    boxes = torch.tensor([box, [0.6, 0.6, 0.9, 0.9], box, box])
    scores = torch.tensor([0.5, 0.5, 0.5, 0.9])
    assert nms(boxes, scores, 0.5).tolist() == [3, 1]  # equal scores: input order
    assert nms(boxes, scores, 1.0).tolist() == [3, 0, 1, 2]  # IoU never exceeds 1
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).dtype == torch.long
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(boxes, scores, 1.5)


def test_batched_nms_is_nms_per_class():
    boxes, scores = (
        random_boxes(200, 5),
        torch.rand(200, generator=torch.Generator().manual_seed(6)),
    )
    classes = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(7))
    kept = []
    for c in range(3):
        idx = (classes == c).nonzero().flatten()
        kept += idx[nms(boxes[idx], scores[idx], 0.45)].tolist()
    expected = sorted(kept, key=lambda i: -scores[i].item())
    assert batched_nms(boxes, scores, classes, 0.45).tolist() == expected


def test_detect_without_nms_returns_every_score_above_the_threshold():
    torch.manual_seed(0)
    defaults = default_boxes(DefaultBoxConfig((4, 2), (0.3, 0.6, 0.9), ((2.0,), ())))
    loc, conf = torch.randn(2, len(defaults), 4), torch.randn(2, len(defaults), 3)
    (raw, _) = detect(loc, conf, defaults, score_threshold=0.3, iou_threshold=1.0, top_k=10**6)
    probs = conf[0].softmax(-1)[:, 1:]
    assert len(raw.scores) == (probs > 0.3).sum()
    assert raw.labels.min() >= 1 and (raw.scores[:-1] >= raw.scores[1:]).all()
    (after, _) = detect(loc, conf, defaults, score_threshold=0.3, iou_threshold=0.45, top_k=5)
    assert len(after.scores) <= 5


def test_detect_returns_nothing_when_only_the_background_scores():
    defaults = default_boxes(DefaultBoxConfig((2,), (0.3, 0.6), ((),)))
    conf = torch.zeros(1, len(defaults), 3)
    conf[..., 0] = 20.0  # background everywhere
    (dets,) = detect(torch.zeros(1, len(defaults), 4), conf, defaults)
    assert dets.boxes.shape == (0, 4) and dets.scores.numel() == dets.labels.numel() == 0


# --- Average precision -----------------------------------------------------------------------


def ap_by_integration(scores, hits, num_gt, grid=50_000):
    """Interpolated precision p(r) = max precision at recall >= r, integrated on a grid."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(hits, dtype=float)[order])
    recall, precision = tp / num_gt, tp / np.arange(1, len(tp) + 1)
    r = (np.arange(grid) + 0.5) / grid  # midpoints
    return float(np.mean([precision[recall >= x].max(initial=0.0) for x in r]))


def test_average_precision_on_known_cases():
    assert average_precision([0.9, 0.8], [True, True], 2) == 1.0
    assert average_precision([0.9, 0.8], [False, False], 2) == 0.0
    assert average_precision([0.9, 0.8], [True, False], 2) == pytest.approx(0.5)
    assert average_precision([0.9, 0.8], [False, True], 1) == pytest.approx(0.5)
    # recall 1/3 at precision 1, then 2/3 at precision 2/3: 1/3 + 1/3 * 2/3
    assert average_precision([3, 2, 1], [True, False, True], 3) == pytest.approx(5 / 9)
    assert average_precision([0.9], [True], 2, eleven_point=True) == pytest.approx(6 / 11)
    assert average_precision([0.1, 0.9], [True, False], 1) == pytest.approx(0.5)  # sorted first
    assert average_precision([], [], 3) == 0.0
    assert math.isnan(average_precision([], [], 0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_equals_numerical_integration(seed):
    rng = np.random.default_rng(seed)
    scores, hits = rng.random(40), rng.random(40) < 0.6
    num_gt = int(hits.sum()) + 5
    expected = ap_by_integration(scores, hits, num_gt)
    assert average_precision(scores, hits, num_gt) == pytest.approx(expected, abs=2e-3)


def test_mean_average_precision_on_a_hand_made_image():
    gt_boxes = [torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.0, 0.6, 0.3, 0.9]])]
    gt_labels = [torch.tensor([1, 1, 2])]
    det = Detections(
        boxes=torch.tensor(
            [
                [0.0, 0.0, 0.4, 0.4],  # class 1, hits gt 0
                [0.01, 0.0, 0.4, 0.4],  # class 1, duplicate: false positive
                [0.5, 0.5, 0.7, 0.7],  # class 1, IoU 0.25 with gt 1: false positive
                [0.0, 0.6, 0.3, 0.9],  # class 2, hit
            ]
        ),
        scores=torch.tensor([0.9, 0.8, 0.7, 0.6]),
        labels=torch.tensor([1, 1, 1, 2]),
    )
    m, per_class = mean_average_precision([det], gt_boxes, gt_labels)
    assert per_class == {1: pytest.approx(0.5), 2: pytest.approx(1.0)}
    assert m == pytest.approx(0.75)
    empty = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert mean_average_precision([empty], gt_boxes, gt_labels)[0] == 0.0


# --- The network -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ssd300() -> torch.nn.Module:
    return ssd300_vgg16(num_classes=21)


def test_parameter_count_matches_a_layer_by_layer_count_and_torchvision(ssd300):
    def conv(c_in, c_out, k):
        return c_in * c_out * k * k + c_out

    vgg = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    n = sum(conv(a, b, 3) for a, b in itertools.pairwise(vgg))
    n += conv(512, 1024, 3) + conv(1024, 1024, 1) + 512  # fc6, fc7, L2Norm scales
    n += conv(1024, 256, 1) + conv(256, 512, 3) + conv(512, 128, 1) + conv(128, 256, 3)
    n += 2 * (conv(256, 128, 1) + conv(128, 256, 3))
    for c, a in zip((512, 1024, 512, 256, 256, 256), (4, 6, 6, 6, 4, 4), strict=True):
        n += conv(c, a * 4, 3) + conv(c, a * 21, 3)
    assert count_parameters(ssd300) == n == 26_285_486  # torchvision's ssd300_vgg16, 21 classes


def test_feature_maps_and_outputs_at_300(ssd300):
    ssd300.eval()
    with torch.no_grad():
        x = torch.randn(1, 3, 300, 300)
        maps = ssd300.backbone(x)
        loc, conf = ssd300.head(maps)
    assert [m.shape[-1] for m in maps] == [38, 19, 10, 5, 3, 1]
    assert [m.shape[1] for m in maps] == [512, 1024, 512, 256, 256, 256]
    assert loc.shape == (1, 8732, 4) and conf.shape == (1, 8732, 21)
    assert torch.isfinite(loc).all() and torch.isfinite(conf).all()


def test_ssd300_refuses_another_grid():
    with pytest.raises(ValueError, match="maps"):
        ssd300_vgg16(boxes=SSD512)


def test_l2norm_scales_every_location_to_the_learned_norm():
    x = torch.randn(2, 8, 5, 5) * 7
    y = L2Norm(8)(x)
    torch.testing.assert_close(y.norm(dim=1), torch.full((2, 5, 5), 20.0))


def test_head_output_order_is_default_box_order():
    config = DefaultBoxConfig((3, 2), (0.3, 0.6, 0.9), ((2.0,), ()))
    head = MultiBoxHead((1, 1), config.boxes_per_location, 2)
    maps = []
    for conv, f in zip(head.loc, config.feature_maps, strict=True):
        torch.nn.init.zeros_(conv.weight)
        conv.weight.data[:, 0, 1, 1] = 1.0  # every output copies the input's centre pixel
        torch.nn.init.zeros_(conv.bias)
        maps.append(torch.arange(f * f, dtype=torch.float32).view(1, 1, f, f))  # i * f + j
    loc, _ = head(maps)
    defaults = default_boxes(config)
    offset = 0
    for f, a in zip(config.feature_maps, config.boxes_per_location, strict=True):
        cx, cy = defaults[offset : offset + f * f * a, :2].unbind(-1)
        location = (cy * f - 0.5) * f + (cx * f - 0.5)  # i * f + j of each default box
        torch.testing.assert_close(loc[0, offset : offset + f * f * a, 0], location)
        offset += f * f * a


# --- The small experiment --------------------------------------------------------------------


def test_make_shapes_is_deterministic_and_boxes_are_tight():
    a, b = make_shapes(6, seed=3), make_shapes(6, seed=3)
    assert torch.equal(a.images, b.images)
    assert all(torch.equal(p, q) for p, q in zip(a.boxes, b.boxes, strict=True))
    assert a.images.shape == (6, 3, 64, 64) and a.images.min() >= 0 and a.images.max() <= 1
    for boxes, labels in zip(a.boxes, a.labels, strict=True):
        assert len(boxes) >= 1 and set(labels.tolist()) <= {1, 2, 3}
        assert (boxes[:, 2:] > boxes[:, :2]).all() and boxes.min() >= 0 and boxes.max() <= 1
        assert box_iou(boxes, boxes).fill_diagonal_(0).max() == 0  # objects never overlap
    with pytest.raises(ValueError):
        make_shapes(0)


@pytest.mark.parametrize("width", [4, 8])
def test_tiny_ssd_outputs_match_its_default_boxes(width):
    model = tiny_ssd(num_classes=4, width=width)
    loc, conf = model(torch.rand(2, 3, 64, 64))
    assert model.defaults.shape == (1360, 4)
    assert loc.shape == (2, 1360, 4) and conf.shape == (2, 1360, 4)
    assert torch.isfinite(loc).all() and torch.isfinite(conf).all()
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_ssd(image_size=48)


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    data = make_shapes(64, seed=0)
    threads = torch.get_num_threads()
    model = tiny_ssd(width=4)
    history = train_detector(model, data, epochs=4, lr=5e-3, batch_size=16)
    losses = history.train_loss
    assert len(losses) == 4 and all(math.isfinite(h) for h in losses)
    assert losses[-1] < 0.8 * losses[0] and history.seconds > 0
    assert torch.get_num_threads() == threads  # restored after training on one thread


def test_smooth_l1_is_torchs():
    d = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(
        F.smooth_l1_loss(d, torch.zeros_like(d), reduction="none"),
        torch.where(d.abs() < 1, 0.5 * d**2, d.abs() - 0.5),
    )
