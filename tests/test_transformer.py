"""The Transformer against torch's own attention and layers, closed forms and the paper."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initdocs import count_parameters
from initdocs.transformer import (
    DecoderLayer,
    EncoderLayer,
    MultiHeadAttention,
    Transformer,
    TransformerConfig,
    causal_mask,
    label_smoothed_cross_entropy,
    noam_lr,
    positional_encoding,
    scaled_dot_product_attention,
    transformer_base,
    transformer_big,
)


def _copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    """Load our four projections into torch's packed ``in_proj`` and ``out_proj``."""
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        theirs.out_proj.weight.copy_(ours.w_o.weight)
        theirs.out_proj.bias.copy_(ours.w_o.bias)


def _copy_ffn_and_norms(ours: nn.Module, theirs: nn.Module, norms: list[str]) -> None:
    with torch.no_grad():
        theirs.linear1.weight.copy_(ours.ffn.w_1.weight)
        theirs.linear1.bias.copy_(ours.ffn.w_1.bias)
        theirs.linear2.weight.copy_(ours.ffn.w_2.weight)
        theirs.linear2.bias.copy_(ours.ffn.w_2.bias)
        for name in norms:
            getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())


# --- Eq. 1: scaled dot-product attention ------------------------------------------------------


@pytest.mark.parametrize("with_mask", [False, True])
def test_attention_matches_torch_and_a_loop(with_mask):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    mask = torch.rand(2, 3, 5, 7) > 0.3 if with_mask else None
    if mask is not None:
        mask[..., 0] = True  # every query may attend to at least one key
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    # The weights of one query, written out with Python loops over keys.
    for b, h, i in [(0, 0, 0), (1, 2, 4)]:
        scores = [float(q[b, h, i] @ k[b, h, j]) / math.sqrt(8) for j in range(7)]
        allowed = [True] * 7 if mask is None else mask[b, h, i].tolist()
        exps = [math.exp(s) if a else 0.0 for s, a in zip(scores, allowed, strict=True)]
        assert weights[b, h, i].tolist() == pytest.approx([e / sum(exps) for e in exps], abs=1e-6)


def test_fully_masked_query_gets_zero_weights_and_finite_gradients():
    q, k, v = (torch.randn(1, 3, 4, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, False]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(weights[0, 1], torch.zeros(3))
    assert torch.equal(out[0, 1], torch.zeros(4))
    assert weights[0, 0, 2].item() == 0.0
    assert weights[0, 2].sum().item() == pytest.approx(1.0)
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_attention_gradients_match_torch_and_large_scores_do_not_overflow():
    # The softmax is written out (exp of the scores minus their row maximum); its gradients
    # must be those of torch's own attention, and scores far beyond exp's float range (1e3
    # times larger) must still give finite weights equal to torch's.
    torch.manual_seed(1)
    mask = torch.ones(12, 12, dtype=torch.bool).tril()
    q, k, v = (torch.randn(2, 4, 12, 8, requires_grad=True) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ours = torch.autograd.grad(out.square().sum(), (q, k, v))
    theirs = torch.autograd.grad(expected.square().sum(), (q, k, v))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    big_q = 1e3 * q.detach()
    out, weights = scaled_dot_product_attention(big_q, k.detach(), v.detach(), mask)
    assert torch.isfinite(weights).all()
    expected = F.scaled_dot_product_attention(big_q, k.detach(), v.detach(), attn_mask=mask)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_attention_refuses_bad_inputs():
    q = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="boolean"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 4))
    with pytest.raises(ValueError, match="d_k"):
        scaled_dot_product_attention(q, torch.randn(2, 4, 6), q)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(q, q, torch.randn(2, 5, 8))


def test_causal_mask_is_lower_triangular():
    m = causal_mask(4)
    assert m.dtype == torch.bool
    assert m.tolist() == [[j <= i for j in range(4)] for i in range(4)]


# --- Sec. 3.2.2: multi-head attention against torch.nn.MultiheadAttention ----------------------


@pytest.mark.parametrize("masking", ["none", "key_padding", "causal"])
def test_multi_head_attention_matches_torch(masking):
    torch.manual_seed(0)
    d, h, B, T = 32, 4, 3, 6
    ours, theirs = MultiHeadAttention(d, h), nn.MultiheadAttention(d, h, batch_first=True)
    _copy_attention(ours, theirs)
    x = torch.randn(B, T, d)
    mask, torch_masks = None, {}
    if masking == "key_padding":
        keep = torch.arange(T)[None] < torch.tensor([6, 4, 1])[:, None]  # (B, T): real tokens
        mask, torch_masks = keep[:, None, :], {"key_padding_mask": ~keep}
    elif masking == "causal":
        mask, torch_masks = causal_mask(T), {"attn_mask": ~causal_mask(T)}  # torch: True = block
    out, w = ours(x, x, x, mask=mask)
    ref, ref_w = theirs(x, x, x, average_attn_weights=False, **torch_masks)
    _, averaged = theirs(x, x, x, **torch_masks)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w, ref_w, rtol=1e-5, atol=1e-6)  # every head
    torch.testing.assert_close(w.mean(dim=1), averaged, rtol=1e-5, atol=1e-6)  # head average


def test_cross_attention_with_different_lengths_matches_torch():
    torch.manual_seed(1)
    ours, theirs = MultiHeadAttention(16, 2), nn.MultiheadAttention(16, 2, batch_first=True)
    _copy_attention(ours, theirs)
    query, memory = torch.randn(2, 3, 16), torch.randn(2, 9, 16)
    out, w = ours(query, memory, memory)
    ref, ref_w = theirs(query, memory, memory)
    assert out.shape == (2, 3, 16) and w.shape == (2, 2, 3, 9)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.mean(dim=1), ref_w, rtol=1e-5, atol=1e-6)


def test_multi_head_attention_refuses_indivisible_width():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        MultiHeadAttention(30, 4)


# --- Sec. 3.1: the post-LN layers against torch's --------------------------------------------


def test_encoder_layer_matches_torch_post_ln():
    torch.manual_seed(0)
    d, h, d_ff = 32, 4, 64
    ours = EncoderLayer(d, h, d_ff, dropout=0.0)
    theirs = nn.TransformerEncoderLayer(
        d, h, d_ff, dropout=0.0, activation="relu", batch_first=True, norm_first=False
    )
    _copy_attention(ours.self_attn, theirs.self_attn)
    _copy_ffn_and_norms(ours, theirs, ["norm1", "norm2"])
    x = torch.randn(3, 7, d)
    keep = torch.arange(7)[None] < torch.tensor([7, 5, 2])[:, None]
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        ours(x, keep[:, None, :]), theirs(x, src_key_padding_mask=~keep), rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        ours(x, causal_mask(7)), theirs(x, src_mask=~causal_mask(7)), rtol=1e-5, atol=1e-5
    )


def test_decoder_layer_matches_torch_post_ln():
    torch.manual_seed(0)
    d, h, d_ff = 32, 4, 64
    ours = DecoderLayer(d, h, d_ff, dropout=0.0)
    theirs = nn.TransformerDecoderLayer(
        d, h, d_ff, dropout=0.0, activation="relu", batch_first=True, norm_first=False
    )
    _copy_attention(ours.self_attn, theirs.self_attn)
    _copy_attention(ours.cross_attn, theirs.multihead_attn)
    _copy_ffn_and_norms(ours, theirs, ["norm1", "norm2", "norm3"])
    y, memory = torch.randn(2, 5, d), torch.randn(2, 8, d)
    keep = torch.arange(8)[None] < torch.tensor([8, 3])[:, None]
    out = ours(y, memory, causal_mask(5), keep[:, None, :])
    ref = theirs(y, memory, tgt_mask=~causal_mask(5), memory_key_padding_mask=~keep)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# --- Sec. 3.5: positional encodings ----------------------------------------------------------


def test_positional_encoding_values():
    pe = positional_encoding(100, 512)
    assert pe.shape == (100, 512)
    assert pe[1, :4].tolist() == pytest.approx([0.841471, 0.540302, 0.821856, 0.569695], abs=1e-6)
    assert pe[50, 510:512].tolist() == pytest.approx([0.005183, 0.999987], abs=1e-6)
    assert pe[99, 100].item() == pytest.approx(-0.624683, abs=1e-6)
    # The formula of Sec. 3.5, evaluated with Python's math module entry by entry.
    for pos, j in [(1, 0), (1, 3), (50, 510), (50, 511), (99, 100), (7, 255)]:
        angle = pos / 10000 ** ((j - j % 2) / 512)
        assert pe[pos, j].item() == pytest.approx(
            math.sin(angle) if j % 2 == 0 else math.cos(angle), abs=1e-6
        )


def test_positional_encoding_dot_product_depends_only_on_the_offset():
    pe = positional_encoding(60, 64).double()
    for offset in (1, 5, 17):
        dots = (pe[:-offset] * pe[offset:]).sum(dim=1)
        torch.testing.assert_close(dots, torch.full_like(dots, dots[0].item()), atol=1e-5, rtol=0)


def test_positional_encoding_edge_cases():
    assert positional_encoding(0, 8).shape == (0, 8)
    with pytest.raises(ValueError, match="even"):
        positional_encoding(4, 7)


# --- Eq. 3: the learning-rate schedule ---------------------------------------------------------


def test_noam_schedule_values():
    assert noam_lr(1) == pytest.approx(1.746928e-07, rel=1e-6)
    assert noam_lr(4000) == pytest.approx(6.987712e-04, rel=1e-6)
    assert noam_lr(100_000) == pytest.approx(1.397542e-04, rel=1e-6)
    rates = [noam_lr(s, 256, 100) for s in range(1, 1000)]
    assert max(rates) == rates[99]  # the peak is at step = warmup
    assert noam_lr(50, 256, 100) == pytest.approx(noam_lr(100, 256, 100) / 2)  # linear warm-up


def test_noam_schedule_refuses_step_zero():
    with pytest.raises(ValueError, match="positive"):
        noam_lr(0)


# --- Sec. 5.4: label smoothing -----------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.4])
def test_label_smoothing_matches_torch(smoothing):
    torch.manual_seed(0)
    logits, target = torch.randn(4, 6, 11), torch.randint(0, 11, (4, 6))
    target[0, 3:] = 0  # padding id
    ours = label_smoothed_cross_entropy(logits, target, smoothing, ignore_index=0)
    ref = F.cross_entropy(logits.transpose(1, 2), target, label_smoothing=smoothing, ignore_index=0)
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.4])
def test_label_smoothing_over_the_wrong_classes_matches_the_explicit_target(smoothing):
    # tensor2tensor's convention: 1 - eps on the true class, eps / (K - 1) on each other one.
    torch.manual_seed(0)
    K = 11
    logits, target = torch.randn(4, 6, K), torch.randint(1, K, (4, 6))
    target[0, 3:] = 0  # padding id
    q = torch.full((4, 6, K), smoothing / (K - 1))
    q.scatter_(-1, target[..., None], 1 - smoothing)
    per_token = -(q * logits.log_softmax(-1)).sum(-1)
    keep = target != 0
    ref = per_token[keep].mean()
    ours = label_smoothed_cross_entropy(logits, target, smoothing, ignore_index=0, spread="others")
    torch.testing.assert_close(ours, ref)


def test_the_two_label_smoothing_conventions_differ_only_by_the_true_class_share():
    torch.manual_seed(1)
    logits, target = torch.randn(8, 5), torch.randint(0, 5, (8,))
    assert not torch.allclose(
        label_smoothed_cross_entropy(logits, target, 0.1),
        label_smoothed_cross_entropy(logits, target, 0.1, spread="others"),
    )
    # spread="others" with eps equals spread="all" with eps * K / (K - 1).
    torch.testing.assert_close(
        label_smoothed_cross_entropy(logits, target, 0.1, spread="others"),
        label_smoothed_cross_entropy(logits, target, 0.1 * 5 / 4),
    )


def test_label_smoothing_floor_is_the_entropy_of_the_smoothed_target():
    K, eps = 12, 0.1
    q = torch.full((K,), eps / K)
    q[3] += 1 - eps
    best = label_smoothed_cross_entropy(q.log()[None], torch.tensor([3]), eps)
    entropy = -sum(p * math.log(p) for p in q.tolist())
    assert best.item() == pytest.approx(entropy, rel=1e-6)
    confident = torch.full((1, K), -20.0)
    confident[0, 3] = 20.0  # a one-hot prediction costs more than the smoothed one
    assert label_smoothed_cross_entropy(confident, torch.tensor([3]), eps) > best


def test_label_smoothing_edge_cases():
    logits = torch.randn(3, 5)
    assert label_smoothed_cross_entropy(logits, torch.full((3,), -100)).item() == 0.0
    with pytest.raises(ValueError, match="smoothing"):
        label_smoothed_cross_entropy(logits, torch.zeros(3, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="match"):
        label_smoothed_cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="spread"):
        label_smoothed_cross_entropy(logits, torch.zeros(3, dtype=torch.long), spread="wrong")
    with pytest.raises(ValueError, match="two classes"):
        label_smoothed_cross_entropy(
            torch.randn(3, 1), torch.zeros(3, dtype=torch.long), 0.1, spread="others"
        )


# --- Sec. 3.4 and Table 3: the model and its size ----------------------------------------------


def _layer_params(d: int, d_ff: int, attentions: int) -> int:
    """Closed form: attentions x 4 (d^2 + d), the FFN, and one LayerNorm per sub-layer."""
    return attentions * 4 * (d * d + d) + 2 * d * d_ff + d_ff + d + (attentions + 1) * 2 * d


@pytest.mark.parametrize(("d", "h", "d_ff"), [(512, 8, 2048), (1024, 16, 4096)])
def test_core_stack_matches_torch_without_its_final_norms(d, h, d_ff):
    expected = {512: 44_138_496, 1024: 176_357_376}[d]
    assert 6 * (_layer_params(d, d_ff, 1) + _layer_params(d, d_ff, 2)) == expected
    with torch.device("meta"):
        reference = nn.Transformer(d, h, 6, 6, d_ff, batch_first=True)
    final_norms = 2 * 2 * d  # torch adds a LayerNorm after each stack; the paper has none
    assert count_parameters(reference) - final_norms == expected


def test_base_and_big_parameter_counts():
    base = transformer_base(37000)
    assert count_parameters(base) == 44_138_496 + 37000 * 512 == 63_082_496
    with torch.device("meta"):
        big = transformer_big(37000)
        untied = Transformer(
            TransformerConfig(src_vocab=37000, tgt_vocab=37000, share_embeddings=False)
        )
    assert count_parameters(big) == 176_357_376 + 37000 * 1024 == 214_245_376
    assert count_parameters(untied) == 82_026_496  # one more 37000 x 512 matrix


@pytest.mark.parametrize(
    ("config", "table_3"),
    [
        (TransformerConfig.base(), (6, 512, 2048, 8, 64, 0.1)),
        (TransformerConfig.big(), (6, 1024, 4096, 16, 64, 0.3)),
    ],
)
def test_config_rows_are_table_3(config, table_3):
    """N, d_model, d_ff, h, d_k and P_drop of the base and big rows of Table 3."""
    row = (config.n_layers, config.d_model, config.d_ff, config.n_heads, config.d_k)
    assert (*row, config.dropout) == table_3
    assert config.share_embeddings and config.use_positions
    assert config.src_vocab == config.tgt_vocab == 37000


def test_config_builds_the_model_it_describes():
    config = TransformerConfig.base(37000)
    with torch.device("meta"):
        model = Transformer(config)
    assert model.config is config
    d, d_ff = config.d_model, config.d_ff
    layers = config.n_layers * (_layer_params(d, d_ff, 1) + _layer_params(d, d_ff, 2))
    assert count_parameters(model) == layers + config.src_vocab * d == 63_082_496
    assert len(model.encoder) == len(model.decoder) == config.n_layers
    assert model.encoder[0].self_attn.n_heads == config.n_heads
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 256
    with pytest.raises(TypeError):
        TransformerConfig(37000, 37000)  # keywords only: the call says what each number is
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(src_vocab=10, tgt_vocab=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="positive"):
        TransformerConfig(src_vocab=10, tgt_vocab=10, n_layers=0)


def test_three_way_weight_tying():
    small = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}
    model = Transformer(TransformerConfig(src_vocab=20, tgt_vocab=20, **small))
    assert model.src_embed.weight is model.tgt_embed.weight is model.generator.weight
    untied = Transformer(
        TransformerConfig(src_vocab=20, tgt_vocab=30, share_embeddings=False, **small)
    )
    assert untied.src_embed.weight is not untied.tgt_embed.weight
    assert untied.generator.weight is untied.tgt_embed.weight
    with pytest.raises(ValueError, match="one vocabulary"):
        TransformerConfig(src_vocab=20, tgt_vocab=30)


def test_embeddings_are_scaled_by_sqrt_d_model():
    config = TransformerConfig(
        src_vocab=10, tgt_vocab=10, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0
    )
    model = Transformer(config)
    tokens = torch.tensor([[3, 1, 4]])
    expected = model.src_embed.weight[tokens] * 4.0 + positional_encoding(3, 16)
    torch.testing.assert_close(model._embed(tokens, model.src_embed), expected)


def test_decoder_is_causal_and_padding_is_ignored():
    torch.manual_seed(0)
    config = TransformerConfig(
        src_vocab=15, tgt_vocab=15, d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0
    )
    model = Transformer(config).eval()
    src, tgt = torch.randint(3, 15, (2, 7)), torch.randint(3, 15, (2, 5))
    logits = model(src, tgt)
    changed = tgt.clone()
    changed[:, 3:] = 0  # changing later target tokens leaves earlier logits unchanged
    torch.testing.assert_close(model(src, changed)[:, :3], logits[:, :3])
    keep = torch.ones(2, 1, 7, dtype=torch.bool)
    keep[1, 0, 5:] = False
    padded = src.clone()
    padded[1, 5:] = 0
    other = padded.clone()
    other[1, 5:] = 9  # what stands at masked positions does not matter
    torch.testing.assert_close(model(padded, tgt, keep), model(other, tgt, keep))


@pytest.mark.parametrize(("d", "h", "n"), [(16, 1, 1), (32, 4, 2), (48, 6, 3)])
def test_shapes_and_greedy_decoding(d, h, n):
    torch.manual_seed(0)
    config = TransformerConfig(
        src_vocab=11, tgt_vocab=11, d_model=d, n_heads=h, n_layers=n, d_ff=2 * d
    )
    model = Transformer(config).eval()
    src = torch.randint(0, 11, (3, 6))
    logits = model(src, torch.randint(0, 11, (3, 4)))
    assert logits.shape == (3, 4, 11) and torch.isfinite(logits).all()
    out = model.greedy_decode(src, length=5, bos=1)
    assert out.shape == (3, 5)
    assert model.decoder[-1].attention.shape == (3, h, 5, 6)  # the last step's cross-attention
    first = model(src, torch.ones(3, 1, dtype=torch.long))[:, 0].argmax(-1)
    assert torch.equal(out[:, 0], first)


def test_attention_dropout_acts_only_in_training():
    torch.manual_seed(0)
    mha, plain = MultiHeadAttention(16, 2, dropout=0.5), MultiHeadAttention(16, 2)
    plain.load_state_dict(mha.state_dict())
    x = torch.randn(2, 5, 16)
    mha.eval()
    torch.testing.assert_close(mha(x, x, x)[0], plain(x, x, x)[0])
    mha.train()
    dropped, weights = mha(x, x, x)
    assert torch.isfinite(dropped).all()
    assert not torch.allclose(dropped, plain(x, x, x)[0])
    torch.testing.assert_close(weights, plain(x, x, x)[1])  # the returned weights are undropped
