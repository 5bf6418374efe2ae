"""An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale.

Alexey Dosovitskiy, Lucas Beyer, Alexander Kolesnikov, Dirk Weissenborn, Xiaohua Zhai, Thomas
Unterthiner, Mostafa Dehghani, Matthias Minderer, Georg Heigold, Sylvain Gelly, Jakob
Uszkoreit and Neil Houlsby, ICLR 2021, arXiv:2010.11929.

What this module implements, in the paper's terms (Sec. 3.1, Fig. 1, Eqs. 1-4):

* :func:`patchify`: cut images into ``N = HW / P^2`` flattened patches ``x_p`` of ``P^2 C``
  numbers each, in raster order.
* :class:`PatchEmbedding`: the linear projection ``E`` of Eq. 1, written as a convolution whose
  kernel and stride are both ``P`` (as the official code, torchvision and timm do); it equals
  ``patchify(x) @ E + b`` with ``E`` from :meth:`PatchEmbedding.projection_matrix`.
* :class:`EncoderBlock`: Eqs. 2 and 3: pre-LN multi-head self-attention and a GELU MLP, each
  with a residual connection. The attention and the MLP are the Transformer's
  (:class:`initdocs.transformer.MultiHeadAttention` and
  :class:`initdocs.transformer.PositionwiseFeedForward`).
* :class:`VisionTransformer`: the learnable ``[class]`` token and 1-D position embeddings of
  Eq. 1, ``L`` encoder blocks, the final LayerNorm of Eq. 4 and a linear head (the fine-tuning
  head of Sec. 3.1). LayerNorm uses ``eps = 1e-6``, as the official code, torchvision and timm.
* :func:`resize_position_embedding`: Sec. 3.2: to fine-tune at a higher resolution, the
  position embeddings of the patch grid are interpolated in 2-D to the new grid (the ``[class]``
  embedding is kept as it is), linearly with the corners aligned, as the official code does.
* :func:`vit_b_16`, :func:`vit_l_16`, :func:`vit_h_14`: the models of Table 1 for 224 x 224
  images and 1000 classes (86,567,656, 304,326,632 and 632,045,800 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from initdocs.transformer import MultiHeadAttention, PositionwiseFeedForward

__all__ = [
    "EncoderBlock",
    "PatchEmbedding",
    "ViTConfig",
    "VisionTransformer",
    "patchify",
    "resize_position_embedding",
    "vit_b_16",
    "vit_h_14",
    "vit_l_16",
]


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut ``(B, C, H, W)`` images into ``(B, N, C * P * P)`` flattened patches (Sec. 3.1).

    Patches are numbered row by row; each is flattened in ``(C, P, P)`` order, the order of a
    convolution kernel's weights.
    """
    B, C, H, W = images.shape
    P = patch_size
    if P < 1 or H % P or W % P:
        raise ValueError(f"image size {H} x {W} is not a multiple of the patch size {P}")
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, H/P, P, W/P, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, H/P, W/P, C, P, P)
    return x.reshape(B, (H // P) * (W // P), C * P * P)  # (B, N, C P^2)


class PatchEmbedding(nn.Module):
    """Linear projection of flattened patches, ``x_p E + b`` (Eq. 1), as a strided convolution.

    Args:
        image_size: Side of the square input image ``H = W``.
        patch_size: Side ``P`` of a patch; must divide ``image_size``.
        in_channels: Channels ``C`` of the image.
        d_model: Width ``D`` of the tokens.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, d_model: int) -> None:
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(
                f"patch_size ({patch_size}) must divide image_size ({image_size}) exactly"
            )
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        # One output per patch: kernel = stride = P, so the windows tile the image exactly.
        self.proj = nn.Conv2d(in_channels, d_model, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected {self.image_size} x {self.image_size} images, got {x.shape}"
            )
        x = self.proj(x)  # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, N, D), patches in raster order

    def projection_matrix(self) -> torch.Tensor:
        """``E`` of Eq. 1, shape ``(C P^2, D)``, so that ``forward(x) == patchify(x) @ E + b``."""
        return self.proj.weight.flatten(1).T  # (D, C, P, P) -> (C P^2, D)


class EncoderBlock(nn.Module):
    """One layer of the ViT encoder: Eq. 2 then Eq. 3 (pre-LN, unlike the original post-LN).

    ``z' = MSA(LN(z)) + z`` and ``z_out = MLP(LN(z')) + z'``; the MLP has two layers with a GELU.

    Args:
        d_model: Token width ``D``.
        n_heads: Attention heads.
        mlp_dim: Hidden width of the MLP.
        dropout: Dropout after the attention and inside the MLP.
        attention_dropout: Dropout on the attention weights.
        eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        mlp_dim: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model, eps=eps)
        self.attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.ln_2 = nn.LayerNorm(d_model, eps=eps)
        self.mlp = PositionwiseFeedForward(d_model, mlp_dim, nn.GELU, dropout)
        self.dropout = nn.Dropout(dropout)
        self.attention: torch.Tensor | None = None  # last weights (B, h, N+1, N+1), for plots

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(z)
        a, weights = self.attn(h, h, h)
        self.attention = weights.detach()
        z = z + self.dropout(a)  # Eq. 2
        return z + self.mlp(self.ln_2(z))  # Eq. 3, (B, N+1, D)


@dataclass(frozen=True)
class ViTConfig:
    """A Vision Transformer's shape; the defaults are ViT-B/16 at 224 x 224 (Table 1)."""

    image_size: int = 224
    patch_size: int = 16
    num_classes: int = 1000
    d_model: int = 768  # "Hidden size D"
    depth: int = 12  # "Layers"
    n_heads: int = 12
    mlp_dim: int = 3072  # "MLP size"
    in_channels: int = 3
    dropout: float = 0.0
    attention_dropout: float = 0.0


class VisionTransformer(nn.Module):
    """Patch embedding, ``[class]`` token, position embeddings, encoder, LN, head (Fig. 1).

    Args:
        image_size: Side of the square input images.
        patch_size: Side ``P`` of the patches.
        num_classes: Outputs of the linear head.
        d_model: Token width ``D``.
        depth: Number of encoder blocks ``L``.
        n_heads: Attention heads per block.
        mlp_dim: Hidden width of each block's MLP.
        in_channels: Image channels ``C``.
        dropout: Dropout on the embeddings, after attention and in the MLPs.
        attention_dropout: Dropout on the attention weights.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_classes: int,
        d_model: int,
        depth: int,
        n_heads: int,
        mlp_dim: int,
        in_channels: int = 3,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(num_classes, depth, mlp_dim) < 1:
            raise ValueError("num_classes, depth and mlp_dim must be positive")
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, d_model)
        n_tokens = self.patch_embed.num_patches + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, d_model))  # x_class
        self.pos_embedding = nn.Parameter(torch.empty(1, n_tokens, d_model))  # E_pos
        nn.init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(d_model, n_heads, mlp_dim, dropout, attention_dropout)
            for _ in range(depth)
        )
        self.ln = nn.LayerNorm(d_model, eps=1e-6)
        self.head = nn.Linear(d_model, num_classes)

    @classmethod
    def from_config(cls, config: ViTConfig) -> VisionTransformer:
        """Build the model a :class:`ViTConfig` describes."""
        return cls(**vars(config))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 1: ``z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos``, shape ``(B, N + 1, D)``."""
        patches = self.patch_embed(x)  # (B, N, D)
        cls = self.class_token.expand(x.size(0), -1, -1)  # (B, 1, D)
        return self.dropout(torch.cat([cls, patches], dim=1) + self.pos_embedding)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 4: ``y = LN(z_L^0)``, the final state of the ``[class]`` token, ``(B, D)``."""
        z = self.tokens(x)
        for block in self.blocks:
            z = block(z)  # Eqs. 2 and 3
        return self.ln(z[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))  # (B, num_classes)


def resize_position_embedding(pos_embedding: torch.Tensor, grid: int) -> torch.Tensor:
    """Interpolate ``(1, 1 + g * g, D)`` position embeddings to a ``grid x grid`` patch grid.

    Sec. 3.2: fine-tuning at a higher resolution keeps the patch size, so there are more patches
    than pre-trained position embeddings; the embeddings of the old ``g x g`` grid are
    interpolated in 2-D, according to where each patch lies in the image. The first (``[class]``)
    embedding is kept unchanged. Interpolation is bilinear with the corner patches aligned, as
    the official code's ``scipy.ndimage.zoom(..., order=1)``.

    Returns:
        ``(1, 1 + grid * grid, D)``.
    """
    if pos_embedding.dim() != 3 or pos_embedding.size(0) != 1:
        raise ValueError(f"expected (1, 1 + g * g, D) embeddings, got {tuple(pos_embedding.shape)}")
    n, D = pos_embedding.shape[1] - 1, pos_embedding.size(2)
    g = round(n**0.5)
    if g * g != n or grid < 1:
        raise ValueError(f"need a square grid of patches and grid >= 1, got {n} patches, {grid}")
    cls, patches = pos_embedding[:, :1], pos_embedding[:, 1:]
    patches = patches.reshape(1, g, g, D).permute(0, 3, 1, 2)  # (1, D, g, g)
    patches = nn.functional.interpolate(
        patches, size=(grid, grid), mode="bilinear", align_corners=True
    )
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, D)  # raster order again
    return torch.cat([cls, patches], dim=1)


def vit_b_16(num_classes: int = 1000, image_size: int = 224) -> VisionTransformer:
    """ViT-Base/16 (Table 1: 12 layers, D=768, MLP 3072, 12 heads): 86,567,656 parameters."""
    return VisionTransformer(image_size, 16, num_classes, 768, 12, 12, 3072)


def vit_l_16(num_classes: int = 1000, image_size: int = 224) -> VisionTransformer:
    """ViT-Large/16 (24 layers, D=1024, MLP 4096, 16 heads): 304,326,632 parameters."""
    return VisionTransformer(image_size, 16, num_classes, 1024, 24, 16, 4096)


def vit_h_14(num_classes: int = 1000, image_size: int = 224) -> VisionTransformer:
    """ViT-Huge/14 (32 layers, D=1280, MLP 5120, 16 heads): 632,045,800 parameters."""
    return VisionTransformer(image_size, 14, num_classes, 1280, 32, 16, 5120)
