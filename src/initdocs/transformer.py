"""Attention Is All You Need.

Ashish Vaswani, Noam Shazeer, Niki Parmar, Jakob Uszkoreit, Llion Jones, Aidan N. Gomez,
Łukasz Kaiser and Illia Polosukhin, NeurIPS 2017, arXiv:1706.03762.

What this module implements, in the paper's terms:

* :func:`scaled_dot_product_attention`: Eq. 1 (Sec. 3.2.1, Fig. 2 left), with a boolean mask
  that says which keys each query may attend to (``True`` = attend, as in
  ``torch.nn.functional.scaled_dot_product_attention``; ``torch.nn.MultiheadAttention`` uses the
  opposite convention).
* :class:`MultiHeadAttention`: Sec. 3.2.2 (Fig. 2 right): ``h`` heads of size ``d_k = d_model / h``
  with projections ``w_q``, ``w_k``, ``w_v`` and the output projection ``w_o``.
* :class:`PositionwiseFeedForward`: Eq. 2 (Sec. 3.3), with a choice of activation so that the
  Vision Transformer (``initdocs.vit``) reuses it with GELU.
* :func:`positional_encoding`: the sinusoids of Sec. 3.5.
* :class:`EncoderLayer` and :class:`DecoderLayer`: Sec. 3.1 and Fig. 1, with the paper's
  post-layer-norm residual connections ``LayerNorm(x + Dropout(Sublayer(x)))``.
* :class:`TransformerConfig`: the sizes of a model, named as in Table 3, with the table's base
  and big rows.
* :class:`Transformer`: the encoder-decoder of Fig. 1 with the three-way weight tying and the
  ``sqrt(d_model)`` embedding scale of Sec. 3.4, built from a :class:`TransformerConfig`;
  :func:`transformer_base` and :func:`transformer_big` are the two models of Table 3.
* :func:`noam_lr`: the learning-rate schedule, Eq. 3 (Sec. 5.3).
* :func:`label_smoothed_cross_entropy`: label smoothing (Sec. 5.4), spreading ``eps`` over all
  ``K`` classes (PyTorch's convention, the default) or over the ``K - 1`` wrong ones (the
  authors' tensor2tensor code).

Unlike ``torch.nn.Transformer``, the stacks end with the last layer's own layer norm: there is
no extra final layer norm after each stack, which the paper's post-LN design does not have.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "DecoderLayer",
    "EncoderLayer",
    "MultiHeadAttention",
    "PositionwiseFeedForward",
    "Transformer",
    "TransformerConfig",
    "causal_mask",
    "label_smoothed_cross_entropy",
    "noam_lr",
    "positional_encoding",
    "scaled_dot_product_attention",
    "transformer_base",
    "transformer_big",
]


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(Q K^T / sqrt(d_k)) V`` (Eq. 1), returning the output and the weights.

    Args:
        q: Queries, shape ``(..., T_q, d_k)``.
        k: Keys, shape ``(..., T_k, d_k)``.
        v: Values, shape ``(..., T_k, d_v)``.
        mask: Optional boolean tensor broadcastable to ``(..., T_q, T_k)``; ``True`` where a
            query may attend to a key. A query that may attend to no key gets zero weights
            (and a zero output) instead of the NaNs a plain softmax would give.

    Returns:
        The outputs ``(..., T_q, d_v)`` and the attention weights ``(..., T_q, T_k)``.
    """
    if q.size(-1) != k.size(-1):
        raise ValueError(f"queries and keys need the same d_k, got {q.size(-1)} and {k.size(-1)}")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"keys and values need the same length, got {k.size(-2)}, {v.size(-2)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T_q, T_k)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be boolean (True = attend), got {mask.dtype}")
        scores = scores.masked_fill(~mask, float("-inf"))
    # softmax over the keys, written out: torch's own CPU kernel is several times slower
    # when rows are shorter than its vector width (16 floats), as the book's toy sequences are
    shifted = scores - scores.amax(dim=-1, keepdim=True).detach()  # minus the row max: no overflow
    exp = shifted.exp()
    weights = exp / exp.sum(dim=-1, keepdim=True)
    if mask is not None:
        # Rows with every key masked are all -inf: softmax gives NaN there; make them zero.
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """``(T, T)`` boolean mask letting position ``i`` attend to positions ``<= i`` (Sec. 3.2.3)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def positional_encoding(length: int, d_model: int) -> torch.Tensor:
    """The sinusoidal position encodings of Sec. 3.5, shape ``(length, d_model)``.

    ``PE[pos, 2i] = sin(pos / 10000^(2i / d_model))`` and
    ``PE[pos, 2i + 1] = cos(pos / 10000^(2i / d_model))``.
    """
    if length < 0 or d_model < 2 or d_model % 2:
        raise ValueError(f"need length >= 0 and an even d_model >= 2, got {length}, {d_model}")
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)
    angle = pos / 10000.0 ** (two_i / d_model)  # (T, d_model / 2)
    pe = torch.empty(length, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


def noam_lr(step: int, d_model: int = 512, warmup: int = 4000) -> float:
    """Eq. 3: ``d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)``, for steps from 1.

    Linear warm-up for ``warmup`` steps, then decay with the inverse square root of the step.
    With ``torch.optim.lr_scheduler.LambdaLR`` (which counts from 0) and a base learning rate
    of 1, use ``lambda s: noam_lr(s + 1, d_model, warmup)``.
    """
    if step < 1 or warmup < 1 or d_model < 1:
        raise ValueError(
            f"step, warmup and d_model must be positive, got {step}, {warmup}, {d_model}"
        )
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    smoothing: float = 0.1,
    ignore_index: int = -100,
    spread: str = "all",
) -> torch.Tensor:
    """Cross-entropy against a label-smoothed target (Sec. 5.4), averaged over counted tokens.

    The paper gives ``eps`` but not how it is spread, and two conventions are in use:

    * ``spread="all"`` (the default): the target is ``(1 - eps) * one_hot + eps / K``, so all
      ``K`` classes get ``eps / K`` and the true one ``1 - eps + eps / K``. This is the form of
      Szegedy et al. (2016) and of ``F.cross_entropy(..., label_smoothing=eps)``, which the
      tests compare it with.
    * ``spread="others"``: the true class gets exactly ``1 - eps`` and each of the ``K - 1``
      wrong classes ``eps / (K - 1)``, as in the authors' tensor2tensor code.

    For a vocabulary of tens of thousands of tokens the two targets differ by a few parts in a
    million. Targets equal to ``ignore_index`` (padding) do not count; with none counted the
    loss is zero.

    Args:
        logits: Unnormalized scores, shape ``(..., K)``.
        target: Class indices, shape ``(...)``.
        smoothing: ``eps``, in ``[0, 1)``; the paper uses 0.1.
        ignore_index: Target value to ignore.
        spread: ``"all"`` or ``"others"``, the convention above.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
    if spread not in ("all", "others"):
        raise ValueError(f"spread must be 'all' or 'others', got {spread!r}")
    if logits.shape[:-1] != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match target {tuple(target.shape)}")
    K = logits.size(-1)
    if spread == "others" and K < 2:
        raise ValueError("spread='others' needs at least two classes")
    log_p = logits.log_softmax(dim=-1)  # (..., K)
    keep = target != ignore_index
    safe_target = target.masked_fill(~keep, 0)
    nll = -log_p.gather(-1, safe_target[..., None])[..., 0]  # -log p(true class)
    uniform = -log_p.mean(dim=-1)  # cross-entropy against the uniform distribution
    if spread == "all":
        loss = (1.0 - smoothing) * nll + smoothing * uniform
    else:  # sum over the K - 1 wrong classes of -log p_j is K * uniform - nll
        loss = (1.0 - smoothing) * nll + smoothing * (K * uniform - nll) / (K - 1)
    return (loss * keep).sum() / keep.sum().clamp(min=1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention, Sec. 3.2.2: ``Concat(head_1, ..., head_h) W^O``.

    ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)``; the ``h`` projections of each kind are
    stored side by side in one ``nn.Linear`` (``w_q``, ``w_k``, ``w_v``), and ``w_o`` is ``W^O``.

    Args:
        d_model: Width of the inputs and outputs.
        n_heads: Number of heads ``h``; ``d_k = d_v = d_model / h``.
        dropout: Dropout on the attention weights (as ``torch.nn.MultiheadAttention`` does; the
            paper's Sec. 5.4 only describes dropout on the sub-layer outputs).
        bias: Whether the four projections have biases.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` ``(B, T_q, d_model)`` to ``key``/``value`` ``(B, T_k, d_model)``.

        Args:
            query: Queries.
            key: Keys.
            value: Values.
            mask: Boolean, ``True`` = attend: ``(T_q, T_k)`` for all samples (a causal mask),
                ``(B, T_q or 1, T_k)`` per sample (``(B, 1, T_k)`` masks padded keys), or
                ``(B, h, T_q, T_k)``.

        Returns:
            The output ``(B, T_q, d_model)`` and the weights of every head ``(B, h, T_q, T_k)``.
        """
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None]  # (B, 1, T_q or 1, T_k): the same mask for every head
        q = self._split_heads(self.w_q(query))  # (B, h, T_q, d_k)
        k = self._split_heads(self.w_k(key))  # (B, h, T_k, d_k)
        v = self._split_heads(self.w_v(value))  # (B, h, T_k, d_k)
        # Eq. 1 in every head at once.
        heads, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, T_q, d_k)
        if self.dropout.p > 0 and self.training:
            heads = self.dropout(weights) @ v  # dropout on the weights, as torch does
        B, _, T_q, _ = heads.shape
        concat = heads.transpose(1, 2).reshape(B, T_q, self.d_model)  # (B, T_q, h * d_k)
        return self.w_o(concat), weights


class PositionwiseFeedForward(nn.Module):
    """``FFN(x) = max(0, x W_1 + b_1) W_2 + b_2`` (Eq. 2), applied at every position alike.

    Args:
        d_model: Width of the inputs and outputs.
        d_ff: Width of the hidden layer (2048 in the base model).
        activation: Nonlinearity between the two layers (ReLU in the paper, GELU in ViT).
        dropout: Dropout after the activation and after the second layer (ViT's MLP has both;
            the paper's FFN has none, which is the default).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: Callable[[], nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.activation = activation()
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model)
        return self.dropout(self.w_2(self.dropout(self.activation(self.w_1(x)))))


class EncoderLayer(nn.Module):
    """One encoder layer (Sec. 3.1): self-attention, then the feed-forward network.

    Each sub-layer is wrapped as ``LayerNorm(x + Dropout(Sublayer(x)))`` (post-LN).

    Args:
        d_model: Width of the layer.
        n_heads: Attention heads.
        d_ff: Hidden width of the feed-forward network.
        dropout: ``P_drop``, applied to each sub-layer's output before the addition (Sec. 5.4).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = PositionwiseFeedForward(d_model, d_ff)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.attention: torch.Tensor | None = None  # last weights (B, h, T, T), for plots

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        a, self.attention = self.self_attn(x, x, x, mask)
        self.attention = self.attention.detach()
        x = self.norm1(x + self.dropout(a))  # (B, T, d_model)
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """One decoder layer (Sec. 3.1): masked self-attention, attention over the encoder's output
    ("encoder-decoder attention", Sec. 3.2.3), then the feed-forward network; each post-LN.

    Args:
        d_model: Width of the layer.
        n_heads: Attention heads.
        d_ff: Hidden width of the feed-forward network.
        dropout: ``P_drop`` on each sub-layer's output.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = PositionwiseFeedForward(d_model, d_ff)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.attention: torch.Tensor | None = None  # last cross-attention (B, h, T_tgt, T_src)

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        tgt_mask: torch.Tensor | None = None,
        src_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        a, _ = self.self_attn(y, y, y, tgt_mask)  # queries see earlier outputs only
        y = self.norm1(y + self.dropout(a))
        a, weights = self.cross_attn(y, memory, memory, src_mask)  # queries from the decoder
        self.attention = weights.detach()
        y = self.norm2(y + self.dropout(a))
        return self.norm3(y + self.dropout(self.ffn(y)))  # (B, T_tgt, d_model)


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """The sizes of one :class:`Transformer`, named as in Table 3 of the paper.

    Table 3 gives, per model, ``N`` (here ``n_layers``), ``d_model``, ``d_ff``, ``h``
    (``n_heads``), ``d_k = d_v = d_model / h`` and ``P_drop`` (``dropout``); the base and big
    rows are :meth:`base` and :meth:`big`. Label smoothing and the number of training steps,
    the table's other columns, belong to training, not to the model.

    Args:
        src_vocab: Source vocabulary size.
        tgt_vocab: Target vocabulary size.
        d_model: Width of the model (512 base, 1024 big).
        n_heads: Attention heads ``h`` (8 base, 16 big).
        n_layers: Layers ``N`` in each stack (6).
        d_ff: Hidden width of the feed-forward networks (2048 base, 4096 big).
        dropout: ``P_drop`` (0.1 base, 0.3 big).
        share_embeddings: Tie all three matrices (the paper) or only the target two.
        use_positions: Add the position encodings (the paper); ``False`` leaves the model
            blind to word order, an ablation for experiments.
    """

    src_vocab: int
    tgt_vocab: int
    d_model: int = 512
    n_heads: int = 8
    n_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    share_embeddings: bool = True
    use_positions: bool = True

    def __post_init__(self) -> None:
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError(
                f"shared embeddings need one vocabulary, got {self.src_vocab} and {self.tgt_vocab}"
            )
        if min(self.src_vocab, self.tgt_vocab, self.n_layers, self.d_ff) < 1:
            raise ValueError("vocabularies, n_layers and d_ff must be positive")
        if self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def d_k(self) -> int:
        """Width of one head's queries, keys and values: ``d_model / h`` (64 in Table 3)."""
        return self.d_model // self.n_heads

    @classmethod
    def base(cls, vocab_size: int = 37000) -> TransformerConfig:
        """Table 3, base: N=6, d_model=512, d_ff=2048, h=8, P_drop=0.1, one shared vocabulary."""
        return cls(src_vocab=vocab_size, tgt_vocab=vocab_size)

    @classmethod
    def big(cls, vocab_size: int = 37000) -> TransformerConfig:
        """Table 3, big: N=6, d_model=1024, d_ff=4096, h=16, P_drop=0.3."""
        return cls(
            src_vocab=vocab_size,
            tgt_vocab=vocab_size,
            d_model=1024,
            n_heads=16,
            d_ff=4096,
            dropout=0.3,
        )


class Transformer(nn.Module):
    """The encoder-decoder of Fig. 1, with embeddings tied as in Sec. 3.4.

    The source embedding, the target embedding and the pre-softmax linear layer share one
    weight matrix (``config.share_embeddings``, which needs one vocabulary); the embeddings
    are multiplied by ``sqrt(d_model)`` and added to the sinusoidal position encodings, then
    dropped out. Without shared embeddings the source gets its own embedding and only the
    target embedding and the output layer stay tied. The output layer has no bias.

    Args:
        config: The sizes, see :class:`TransformerConfig`.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        d_model, n_heads, d_ff, dropout = (
            config.d_model,
            config.n_heads,
            config.d_ff,
            config.dropout,
        )
        self.d_model, self.use_positions = d_model, config.use_positions
        self.tgt_embed = nn.Embedding(config.tgt_vocab, d_model)
        self.src_embed = (
            self.tgt_embed if config.share_embeddings else nn.Embedding(config.src_vocab, d_model)
        )
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(config.n_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(config.n_layers)
        )
        self.generator = nn.Linear(d_model, config.tgt_vocab, bias=False)
        self.generator.weight = self.tgt_embed.weight  # the pre-softmax matrix is the embedding
        self.dropout = nn.Dropout(dropout)
        for name, p in self.named_parameters():
            if "embed" in name:  # N(0, 1/d_model): scaled by sqrt(d_model), unit variance
                nn.init.normal_(p, std=d_model**-0.5)
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _embed(self, tokens: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
        # Sec. 3.4 and 3.5: scaled embedding plus position encoding, (B, T) -> (B, T, d_model)
        x = table(tokens) * math.sqrt(self.d_model)
        if self.use_positions:
            x = x + positional_encoding(tokens.size(1), self.d_model).to(tokens.device)
        return self.dropout(x)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Source tokens ``(B, T_src)`` to the encoder's output ``(B, T_src, d_model)``.

        Args:
            src: Source token ids.
            src_mask: Optional ``(B, 1, T_src)`` boolean mask, ``False`` at padded positions.
        """
        x = self._embed(src, self.src_embed)
        for layer in self.encoder:
            x = layer(x, src_mask)
        return x

    def decode(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, T_tgt, tgt_vocab)`` for shifted-right target tokens ``(B, T_tgt)``."""
        mask = causal_mask(tgt.size(1), tgt.device)  # (T_tgt, T_tgt)
        y = self._embed(tgt, self.tgt_embed)
        for layer in self.decoder:
            y = layer(y, memory, mask, src_mask)
        return self.generator(y)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: the logits of every target position in one pass."""
        return self.decode(tgt, self.encode(src, src_mask), src_mask)

    @torch.no_grad()
    def greedy_decode(
        self,
        src: torch.Tensor,
        length: int,
        bos: int,
        src_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate ``length`` tokens after ``bos``, taking the most likely token each step.

        Returns ``(B, length)`` token ids (without ``bos``). The paper decodes with a beam of 4.
        """
        memory = self.encode(src, src_mask)
        out = torch.full((src.size(0), 1), bos, dtype=torch.long, device=src.device)
        for _ in range(length):
            logits = self.decode(out, memory, src_mask)[:, -1]  # (B, tgt_vocab)
            out = torch.cat([out, logits.argmax(dim=-1, keepdim=True)], dim=1)
        return out[:, 1:]


def transformer_base(vocab_size: int = 37000) -> Transformer:
    """The base model of Table 3 (:meth:`TransformerConfig.base`).

    With a shared vocabulary of ``V`` tokens it has ``44,138,496 + 512 V`` parameters
    (63,082,496 for the ~37,000 BPE tokens of Sec. 5.1); Table 3 says 65M.
    """
    return Transformer(TransformerConfig.base(vocab_size))


def transformer_big(vocab_size: int = 37000) -> Transformer:
    """The big model of Table 3 (:meth:`TransformerConfig.big`).

    ``176,357,376 + 1024 V`` parameters (214,245,376 for V = 37,000); Table 3 says 213M.
    """
    return Transformer(TransformerConfig.big(vocab_size))
