"""The Vision Transformer against the paper (Eqs. 1-4, Table 1), torch's layers and closed forms."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initdocs import count_parameters
from initdocs.transformer import MultiHeadAttention
from initdocs.vit import (
    EncoderBlock,
    PatchEmbedding,
    VisionTransformer,
    ViTConfig,
    patchify,
    resize_position_embedding,
    vit_b_16,
    vit_h_14,
    vit_l_16,
)


def _vit_parameters(image: int, patch: int, classes: int, D: int, L: int, mlp: int) -> int:
    """Closed form: patch projection, class token, position embeddings, L blocks, LN, head."""
    n_tokens = (image // patch) ** 2 + 1
    block = 2 * 2 * D + 4 * (D * D + D) + 2 * D * mlp + mlp + D  # 2 LNs, MSA, MLP
    return (
        (3 * patch * patch * D + D) + D + n_tokens * D + L * block + 2 * D + D * classes + classes
    )


# --- Table 1: parameter counts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "expected", "shape"),
    [
        (vit_b_16, 86_567_656, (16, 768, 12, 3072)),
        (vit_l_16, 304_326_632, (16, 1024, 24, 4096)),
        (vit_h_14, 632_045_800, (14, 1280, 32, 5120)),
    ],
)
def test_parameter_counts_of_table_1_models(builder, expected, shape):
    """Equal to torchvision's and timm's models with a 1000-class head (Table 1: 86M, 307M,
    632M; the 307M of ViT-L does not reproduce)."""
    with torch.device("meta"):  # shapes only: ViT-H would allocate 2.5 GB
        model = builder()
    patch, D, L, mlp = shape
    assert count_parameters(model) == expected == _vit_parameters(224, patch, 1000, D, L, mlp)
    assert len(model.blocks) == L
    assert model.blocks[0].attn.n_heads == (12 if D == 768 else 16)


def test_meta_count_equals_a_real_model():
    with torch.device("meta"):
        meta = vit_b_16()
    assert count_parameters(meta) == count_parameters(vit_b_16())


def test_vit_l_32_would_round_to_the_papers_307m():
    with torch.device("meta"):
        model = VisionTransformer(224, 32, 1000, 1024, 24, 16, 4096)
    assert count_parameters(model) == 306_535_400 == _vit_parameters(224, 32, 1000, 1024, 24, 4096)


def test_config_defaults_are_vit_b_16():
    with torch.device("meta"):
        model = VisionTransformer.from_config(ViTConfig())
    assert count_parameters(model) == 86_567_656


# --- Eq. 1: patches, the class token and position embeddings -----------------------------------


def test_vit_b_16_has_197_tokens_of_width_768():
    model = vit_b_16().eval()
    x = torch.randn(1, 3, 224, 224)
    assert model.patch_embed.num_patches == 196
    assert model.pos_embedding.shape == (1, 197, 768)
    with torch.no_grad():
        assert model.tokens(x).shape == (1, 197, 768)
        logits = model(x)
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


def test_patchify_matches_a_loop_over_patches():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    patches = patchify(x, 4)  # (2, 6, 48)
    assert patches.shape == (2, 6, 48)
    index = 0
    for row in range(2):
        for col in range(3):
            window = x[:, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4]
            assert torch.equal(patches[:, index], window.reshape(2, -1))
            index += 1


@pytest.mark.parametrize(("C", "P", "size", "D"), [(3, 16, 64, 32), (1, 2, 8, 16), (2, 4, 12, 8)])
def test_strided_convolution_equals_linear_map_on_flattened_patches(C, P, size, D):
    torch.manual_seed(0)
    embed = PatchEmbedding(size, P, C, D)
    x = torch.randn(2, C, size, size)
    E = embed.projection_matrix()  # (C P^2, D)
    assert E.shape == (C * P * P, D)
    expected = patchify(x, P) @ E + embed.proj.bias
    torch.testing.assert_close(embed(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(embed(x), F.linear(patchify(x, P), E.T, embed.proj.bias))


def test_patch_sizes_that_do_not_tile_are_refused():
    with pytest.raises(ValueError, match="divide"):
        PatchEmbedding(224, 15, 3, 8)
    with pytest.raises(ValueError, match="multiple"):
        patchify(torch.zeros(1, 1, 10, 10), 4)
    with pytest.raises(ValueError, match="8 x 8"):
        PatchEmbedding(8, 2, 1, 4)(torch.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match="positive"):
        VisionTransformer(8, 2, 10, 16, 0, 2, 32, in_channels=1)


def test_without_position_embeddings_the_model_ignores_patch_order():
    """Sec. 3.1: only the position embeddings tell the encoder where a patch was."""
    torch.manual_seed(0)
    model = VisionTransformer(8, 2, 10, 16, 2, 2, 32, in_channels=1).eval()
    x = torch.randn(3, 1, 8, 8)
    # Swap two patches: rows 0-1 of columns 0-1 with rows 6-7 of columns 4-5.
    shuffled = x.clone()
    shuffled[..., 0:2, 0:2], shuffled[..., 6:8, 4:6] = x[..., 6:8, 4:6], x[..., 0:2, 0:2]
    with torch.no_grad():
        changed = model(x) - model(shuffled)
        model.pos_embedding.zero_()
        torch.testing.assert_close(model(x), model(shuffled), rtol=1e-5, atol=1e-5)
    assert changed.abs().max() > 1e-4


# --- Eqs. 2 and 3: the encoder block against torch's pre-LN layer -------------------------------


def test_encoder_block_matches_torch_pre_ln_gelu_layer():
    torch.manual_seed(0)
    d, h, mlp = 32, 4, 64
    ours = EncoderBlock(d, h, mlp)
    theirs = nn.TransformerEncoderLayer(
        d,
        h,
        mlp,
        dropout=0.0,
        activation="gelu",
        layer_norm_eps=1e-6,
        batch_first=True,
        norm_first=True,
    )
    with torch.no_grad():
        a = ours.attn
        theirs.self_attn.in_proj_weight.copy_(torch.cat([a.w_q.weight, a.w_k.weight, a.w_v.weight]))
        theirs.self_attn.in_proj_bias.copy_(torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]))
        theirs.self_attn.out_proj.load_state_dict(a.w_o.state_dict())
        theirs.linear1.load_state_dict(ours.mlp.w_1.state_dict())
        theirs.linear2.load_state_dict(ours.mlp.w_2.state_dict())
        theirs.norm1.load_state_dict(ours.ln_1.state_dict())
        theirs.norm2.load_state_dict(ours.ln_2.state_dict())
    z = torch.randn(2, 17, d)
    torch.testing.assert_close(ours(z), theirs(z), rtol=1e-5, atol=1e-5)
    assert ours.attention.shape == (2, h, 17, 17)


def test_vit_reuses_the_transformer_attention_and_norms_with_eps_1e6():
    model = VisionTransformer(8, 4, 10, 16, 2, 4, 32, in_channels=1)
    assert all(isinstance(b.attn, MultiHeadAttention) for b in model.blocks)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * 2 + 1 and all(n.eps == 1e-6 for n in norms)
    assert all(isinstance(b.mlp.activation, nn.GELU) for b in model.blocks)


@pytest.mark.parametrize(
    ("size", "P", "C", "D", "L", "h"),
    [(8, 2, 1, 16, 1, 2), (8, 4, 1, 32, 2, 4), (32, 8, 3, 24, 3, 3)],
)
def test_small_models_give_finite_logits(size, P, C, D, L, h):
    torch.manual_seed(0)
    model = VisionTransformer(size, P, 10, D, L, h, 2 * D, in_channels=C, dropout=0.1)
    logits = model(torch.randn(4, C, size, size))
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert model.pos_embedding.grad is not None and model.class_token.grad is not None


# --- Sec. 3.2: fine-tuning at a higher resolution ------------------------------------------------


def test_resize_position_embedding_keeps_the_class_token_and_the_corners():
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 14 * 14, 8)
    new = resize_position_embedding(pos, 24)
    assert new.shape == (1, 1 + 24 * 24, 8)
    torch.testing.assert_close(new[:, 0], pos[:, 0])  # [class] unchanged
    old_grid, new_grid = pos[0, 1:].reshape(14, 14, 8), new[0, 1:].reshape(24, 24, 8)
    for (r, c), (r2, c2) in (((0, 0), (0, 0)), ((0, 13), (0, 23)), ((13, 13), (23, 23))):
        torch.testing.assert_close(new_grid[r2, c2], old_grid[r, c])


def test_resize_position_embedding_reproduces_a_linear_layout_exactly():
    # An embedding that is a linear function of (row, column) stays one on the new grid.
    g, grid = 4, 7
    f64 = torch.float64
    rows, cols = torch.meshgrid(
        torch.arange(g, dtype=f64), torch.arange(g, dtype=f64), indexing="ij"
    )
    pos = torch.stack([rows, cols, 2 * rows - cols], -1).reshape(1, g * g, 3)
    pos = torch.cat([torch.zeros(1, 1, 3, dtype=f64), pos], dim=1)
    new = resize_position_embedding(pos, grid)[0, 1:].reshape(grid, grid, 3)
    step = (g - 1) / (grid - 1)  # the new grid spans the old one, corner to corner
    r2, c2 = torch.meshgrid(
        torch.arange(grid, dtype=f64) * step, torch.arange(grid, dtype=f64) * step, indexing="ij"
    )
    torch.testing.assert_close(new, torch.stack([r2, c2, 2 * r2 - c2], -1))


def test_a_vit_at_384_pixels_loads_resized_embeddings():
    with torch.device("meta"):
        at_384 = vit_b_16(image_size=384)
    assert at_384.pos_embedding.shape == (1, 1 + 24 * 24, 768)
    assert count_parameters(at_384) == 86_859_496  # timm's vit_base_patch16_384
    small = VisionTransformer(8, 2, 10, d_model=16, depth=1, n_heads=2, mlp_dim=32, in_channels=1)
    large = VisionTransformer(16, 2, 10, d_model=16, depth=1, n_heads=2, mlp_dim=32, in_channels=1)
    state = small.state_dict()
    state["pos_embedding"] = resize_position_embedding(state["pos_embedding"], 8)
    large.load_state_dict(state)
    assert large(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_resize_position_embedding_refuses_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        resize_position_embedding(torch.zeros(1, 1 + 15, 4), 4)
    with pytest.raises(ValueError, match="expected"):
        resize_position_embedding(torch.zeros(1 + 16, 4), 4)
