"""Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation.

Kyunghyun Cho, Bart van Merriënboer, Caglar Gulcehre, Dzmitry Bahdanau, Fethi Bougares, Holger
Schwenk and Yoshua Bengio, EMNLP 2014, arXiv:1406.1078.

What this module implements, in the paper's terms:

* :class:`GatedRecurrentUnit`: the "hidden unit that adaptively remembers and forgets" of
  Sec. 2.3, later called the GRU: reset gate (Eq. 5), update gate (Eq. 6), new state (Eq. 7) and
  candidate state (Eq. 8), with the reset gate applied to the previous state *before* the
  recurrent matrix. Its parameters have the layout of ``torch.nn.GRUCell`` (rows in the order
  r, z, n); with ``reset_after=True`` it applies the reset gate *after* the recurrent matrix and
  then equals ``torch.nn.GRUCell`` exactly.
* :class:`Encoder`: reads the source x_1..x_N with a GRU and squeezes the last state into the
  fixed-size summary ``c = tanh(V h_N)`` (Sec. 2.2, Appendix A).
* :class:`Decoder`: starts from ``h'_0 = tanh(V' c)``, updates ``h'_t = f(h'_{t-1}, y_{t-1}, c)``
  and predicts ``P(y_t | y_<t, c) = g(h'_t, y_{t-1}, c)`` with a maxout output layer (Appendix A).
  The decoder's GRU reads ``[e(y_{t-1}); c]`` as its input, so its candidate state is
  ``tanh(W' e + C c + U' (r' ⊙ h'))``. Appendix A writes ``tanh(W' e + r' ⊙ [U' h' + C c])``
  instead, which differs in two ways: the reset gate after ``U'``, and ``C c`` inside the
  gate. Ours is what the authors' code (GroundHog) computes. ``summary_size`` (not in the
  paper, where c is as wide as the state) narrows c, to study the fixed-size bottleneck; the
  hidden sizes stay, but every matrix that reads c shrinks with it.
* :class:`RNNEncoderDecoder`: both, trained jointly to maximize log p(y | x) (Eq. 4), with greedy
  decoding (generation) and :meth:`RNNEncoderDecoder.log_prob` (scoring a pair, the paper's use).
* A generated translation task, English number words to digits (:func:`number_to_words`,
  :func:`number_translation_split`), and a teacher-forced training loop
  (:func:`train_encoder_decoder`) that records greedy token and sequence accuracy.
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

from initdocs.train import History, cosine_schedule, evaluating, minibatches

__all__ = [
    "EOS",
    "PAD",
    "SOS",
    "SOURCE_VOCAB",
    "TARGET_VOCAB",
    "Decoder",
    "EncDecConfig",
    "Encoder",
    "GatedRecurrentUnit",
    "NumberTranslation",
    "RNNEncoderDecoder",
    "evaluate",
    "number_to_words",
    "number_translation_split",
    "paper_encoder_decoder",
    "target_tensor",
    "train_encoder_decoder",
]

PAD, SOS, EOS = 0, 1, 2
_SPECIALS = ("<pad>", "<sos>", "<eos>")
_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
#: Source words: 20 + 8 + 2 English number words after the three special tokens.
SOURCE_VOCAB = (*_SPECIALS, *_ONES, *_TENS, "hundred", "thousand")
#: Target tokens: the ten digits after the three special tokens.
TARGET_VOCAB = (*_SPECIALS, *"0123456789")


def _below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens - 2])
        if ones:
            words.append(_ONES[ones])
    elif rest:
        words.append(_ONES[rest])
    return words


def number_to_words(n: int) -> str:
    """American English words for ``0 <= n < 1,000,000``: 40512 -> 'forty thousand five hundred
    twelve' (no 'and', no hyphens)."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"n must be in [0, 1000000), got {n}")
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [*_below_thousand(thousands), "thousand"] if thousands else []
    return " ".join(words + _below_thousand(rest))


class GatedRecurrentUnit(nn.Module):
    """One step of the gated hidden unit of Sec. 2.3 (Eqs. 5-8), for a batch.

    ``r = σ(W_r x + U_r h)`` (5), ``z = σ(W_z x + U_z h)`` (6), ``h~ = tanh(W x + U (r ⊙ h))`` (8)
    and ``h_new = z ⊙ h + (1 - z) ⊙ h~`` (7). The paper omits biases; like ``torch.nn.GRUCell``
    we keep two bias vectors. ``weight_ih`` stacks ``[W_r; W_z; W]`` and ``weight_hh`` stacks
    ``[U_r; U_z; U]``, so a state dict moves between this class and ``nn.GRUCell`` unchanged.

    Args:
        input_size: Size ``I`` of the input ``x``.
        hidden_size: Size ``H`` of the state ``h``.
        reset_after: Apply the reset gate after the recurrent matrix,
            ``h~ = tanh(W x + b_in + r ⊙ (U h + b_hn))``: the cuDNN form that
            ``torch.nn.GRUCell`` computes. False (the default) is the paper's Eq. 8.
    """

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = False) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"sizes must be positive, got {input_size=} and {hidden_size=}")
        self.input_size, self.hidden_size, self.reset_after = input_size, hidden_size, reset_after
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)  # torch.nn.GRUCell's initialization
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x must be (B, {self.input_size}), got {tuple(x.shape)}")
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        elif h.shape != (x.shape[0], self.hidden_size):
            raise ValueError(f"h must be ({x.shape[0]}, {self.hidden_size}), got {tuple(h.shape)}")
        H = self.hidden_size
        gi_r, gi_z, gi_n = F.linear(x, self.weight_ih, self.bias_ih).split(H, dim=1)  # 3 x (B, H)
        if self.reset_after:
            gh_r, gh_z, gh_n = F.linear(h, self.weight_hh, self.bias_hh).split(H, dim=1)
            r = torch.sigmoid(gi_r + gh_r)  # Eq. 5
            z = torch.sigmoid(gi_z + gh_z)  # Eq. 6
            candidate = torch.tanh(gi_n + r * gh_n)  # reset after U: torch's form
        else:
            gh_rz = F.linear(h, self.weight_hh[: 2 * H], self.bias_hh[: 2 * H])  # (B, 2H)
            r = torch.sigmoid(gi_r + gh_rz[:, :H])  # Eq. 5
            z = torch.sigmoid(gi_z + gh_rz[:, H:])  # Eq. 6
            # Eq. 8: the reset gate scales h before it meets U.
            candidate = torch.tanh(
                gi_n + F.linear(r * h, self.weight_hh[2 * H :], self.bias_hh[2 * H :])
            )
        return z * h + (1.0 - z) * candidate  # Eq. 7

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"


class Encoder(nn.Module):
    """Embed x_1..x_N, run a GRU over them, summarize: ``c = tanh(V h_N)`` (Sec. 2.2).

    Padding (token ``PAD`` on the right) leaves the state unchanged, so ``h_N`` is the state
    after each sequence's own last word.

    Args:
        vocab_size: Source vocabulary size.
        embed_dim: Size of the word embeddings e(x).
        hidden_size: GRU state size.
        reset_after: Passed to :class:`GatedRecurrentUnit`.
        summary_size: Size of ``c``; the paper's equals ``hidden_size`` (the default). A
            smaller one narrows the bottleneck without shrinking the encoder.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        reset_after: bool = False,
        summary_size: int | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.cell = GatedRecurrentUnit(embed_dim, hidden_size, reset_after)
        self.V = nn.Linear(hidden_size, hidden_size if summary_size is None else summary_size)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the summary ``c`` (B, H_c) and all encoder states (B, N, H)."""
        B, N = src.shape
        e = self.embed(src)  # (B, N, E)
        h = e.new_zeros(B, self.cell.hidden_size)
        states = []
        for t in range(N):
            step = (src[:, t] != PAD).unsqueeze(1)  # (B, 1): still inside the sequence?
            h = torch.where(step, self.cell(e[:, t], h), h)  # Eqs. 5-8
            states.append(h)
        states_t = torch.stack(states, dim=1) if states else e.new_zeros(B, 0, h.shape[1])
        return torch.tanh(self.V(h)), states_t  # c = tanh(V h_N): (B, H_c), (B, N, H)


class Decoder(nn.Module):
    """The decoder of Sec. 2.2 and Appendix A, conditioned on the summary ``c`` at every step.

    ``h'_0 = tanh(V' c)``; each step feeds ``[e(y_{t-1}); c]`` to a GRU; the output layer is the
    paper's deep output: ``s = O_h h' + O_y e(y_{t-1}) + O_c c`` followed by maxout units that
    each pool 2 values, then a linear map to the vocabulary and a softmax.

    Feeding c as part of the input gives each gate and the candidate a term ``C c``, added
    outside the reset gate, and the reset gate acts before ``U'`` as in Eq. 8: the candidate is
    ``tanh(W' e + C c + U' (r' ⊙ h'))``, as in the authors' GroundHog code. Appendix A writes
    ``tanh(W' e + r' ⊙ [U' h' + C c])``: reset after ``U'``, and ``C c`` inside the gate.

    Args:
        vocab_size: Target vocabulary size.
        embed_dim: Size of the target embeddings e(y).
        hidden_size: GRU state size.
        summary_size: Size of ``c``.
        maxout_units: Number of maxout units of the output layer.
        reset_after: Passed to :class:`GatedRecurrentUnit`.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        summary_size: int,
        maxout_units: int,
        reset_after: bool = False,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.init = nn.Linear(summary_size, hidden_size)  # V'
        self.cell = GatedRecurrentUnit(embed_dim + summary_size, hidden_size, reset_after)
        self.deep_output = nn.Linear(hidden_size + embed_dim + summary_size, 2 * maxout_units)
        self.out = nn.Linear(maxout_units, vocab_size)

    def initial_state(self, c: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.init(c))  # h'_0 = tanh(V' c): (B, H)

    def step(
        self, y_prev: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: previous tokens (B,), state (B, H), summary (B, H_c) -> logits, new state."""
        e = self.embed(y_prev)  # (B, E)
        h = self.cell(torch.cat([e, c], dim=1), h)  # h'_t = f(h'_{t-1}, y_{t-1}, c)
        s = self.deep_output(torch.cat([h, e, c], dim=1))  # (B, 2M)
        s = s.view(s.shape[0], -1, 2).amax(dim=2)  # maxout, pools of 2: (B, M)
        return self.out(s), h  # g(h'_t, y_{t-1}, c): (B, V), (B, H)

    def forward(self, y_in: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) for inputs ``y_in`` (B, T) that start with SOS."""
        h = self.initial_state(c)
        logits = []
        for t in range(y_in.shape[1]):
            step_logits, h = self.step(y_in[:, t], h, c)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)  # (B, T, V)


@dataclass(frozen=True)
class EncDecConfig:
    """Sizes of an RNN Encoder-Decoder; the defaults are the paper's (Sec. 4, Appendix A)."""

    src_vocab: int = 15_000
    tgt_vocab: int = 15_000
    embed_dim: int = 100
    hidden_size: int = 1000
    maxout_units: int = 500
    reset_after: bool = False
    summary_size: int | None = None  # size of c; None: hidden_size, as in the paper

    def __post_init__(self) -> None:
        sizes = (self.src_vocab, self.tgt_vocab, self.embed_dim, self.hidden_size)
        summary = self.hidden_size if self.summary_size is None else self.summary_size
        if min(*sizes, self.maxout_units, summary) < 1:
            raise ValueError(f"every size must be positive, got {self}")
        if min(self.src_vocab, self.tgt_vocab) <= EOS:
            raise ValueError("vocabularies must include the special tokens PAD, SOS and EOS")


class RNNEncoderDecoder(nn.Module):
    """Encoder and decoder trained jointly to maximize log p(y | x) (Eq. 4, Fig. 1)."""

    def __init__(self, config: EncDecConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EncDecConfig()
        summary_size = cfg.hidden_size if cfg.summary_size is None else cfg.summary_size
        self.encoder = Encoder(
            cfg.src_vocab, cfg.embed_dim, cfg.hidden_size, cfg.reset_after, summary_size
        )
        self.decoder = Decoder(
            cfg.tgt_vocab,
            cfg.embed_dim,
            cfg.hidden_size,
            summary_size,
            cfg.maxout_units,
            cfg.reset_after,
        )

    def forward(self, src: torch.Tensor, y_in: torch.Tensor) -> torch.Tensor:
        c, _ = self.encoder(src)
        return self.decoder(y_in, c)  # (B, T, V)

    def log_prob(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """log p(y | x) of each pair, (B,); ``tgt`` is SOS, y_1..y_T, EOS, then PAD."""
        logp = self(src, tgt[:, :-1]).log_softmax(dim=-1)  # (B, T, V)
        gold = tgt[:, 1:]
        per_token = logp.gather(2, gold.unsqueeze(2)).squeeze(2)  # (B, T)
        return (per_token * (gold != PAD)).sum(dim=1)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int) -> list[list[int]]:
        """Pick the most likely token at each step; stop at EOS or after ``max_len`` tokens.

        Returns one list of token ids per source, without SOS and EOS.
        """
        if max_len < 0:
            raise ValueError(f"max_len must be non-negative, got {max_len}")
        c, _ = self.encoder(src)
        h = self.decoder.initial_state(c)
        y = torch.full((src.shape[0],), SOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        outputs: list[list[int]] = [[] for _ in range(src.shape[0])]
        for _ in range(max_len):
            logits, h = self.decoder.step(y, h, c)
            y = logits.argmax(dim=1)  # (B,)
            done |= y == EOS
            for i in (~done).nonzero().flatten().tolist():
                outputs[i].append(y[i].item())
            if done.all():
                break
        return outputs


def paper_encoder_decoder(vocab_size: int = 15_000) -> RNNEncoderDecoder:
    """The paper's size: 1000 hidden units, 100-d embeddings, 500 maxout units (Sec. 4.1)."""
    return RNNEncoderDecoder(EncDecConfig(src_vocab=vocab_size, tgt_vocab=vocab_size))


@dataclass(frozen=True)
class NumberTranslation:
    """Pairs of (number words, digits) as padded tensors.

    Attributes:
        numbers: The numbers, (N,).
        source: Word ids of :data:`SOURCE_VOCAB`, right-padded with PAD, (N, S).
        target: SOS, digit ids of :data:`TARGET_VOCAB`, EOS, then PAD, (N, T).
    """

    numbers: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return len(self.numbers)


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    padded = [r + [PAD] * (width - len(r)) for r in rows]
    return torch.tensor(padded, dtype=torch.long).view(len(rows), width)  # (N, T)


def target_tensor(digit_strings: Sequence[str]) -> torch.Tensor:
    """Digit strings as decoder targets: SOS, digit ids, EOS, right-padded with PAD, (N, T)."""
    return _pad([[SOS, *(TARGET_VOCAB.index(d) for d in s), EOS] for s in digit_strings])


def _pairs(numbers: np.ndarray) -> NumberTranslation:
    src = [[SOURCE_VOCAB.index(w) for w in number_to_words(int(n)).split()] for n in numbers]
    tgt = target_tensor([str(n) for n in numbers])
    return NumberTranslation(torch.as_tensor(numbers, dtype=torch.long), _pad(src), tgt)


def number_translation_split(
    n_train: int = 3000, n_test: int = 1000, max_value: int = 999_999, seed: int = 0
) -> tuple[NumberTranslation, NumberTranslation]:
    """Distinct numbers from 1..max_value, split in two; no number is in both splits.

    Numbers are drawn without replacement with probability proportional to ``1/n``, so that
    short and long numbers are both common (a uniform draw would make nearly all of them have
    as many digits as ``max_value``), then shuffled and split.
    """
    if n_train < 1 or n_test < 0 or n_train + n_test > max_value:
        raise ValueError(f"need 1 <= n_train and n_train + n_test <= max_value={max_value}")
    if max_value >= 1_000_000:
        raise ValueError(f"max_value must be below 1000000, got {max_value}")
    rng = np.random.default_rng(seed)
    candidates = np.arange(1, max_value + 1)
    weights = 1.0 / candidates
    numbers = rng.choice(candidates, n_train + n_test, replace=False, p=weights / weights.sum())
    numbers = rng.permutation(numbers)
    return _pairs(numbers[:n_train]), _pairs(numbers[n_train:])


def evaluate(model: RNNEncoderDecoder, data: NumberTranslation) -> tuple[float, float]:
    """Greedy token accuracy (EOS included, per target position) and exact-match accuracy."""
    gold = [[t for t in row.tolist() if t not in (PAD, SOS)] for row in data.target]
    with evaluating(model):
        pred = model.greedy_decode(data.source, max_len=data.target.shape[1])
    tokens = sum(len(g) for g in gold)
    pairs = list(zip(gold, pred, strict=True))
    # A prediction longer than the target is cut; a shorter one fails at its EOS.
    correct = sum(g_i == p_i for g, p in pairs for g_i, p_i in zip(g, [*p, EOS], strict=False))
    exact = sum(g == [*p, EOS] for g, p in pairs)
    return correct / tokens, exact / len(gold)


def train_encoder_decoder(
    model: RNNEncoderDecoder,
    train: NumberTranslation,
    test: NumberTranslation,
    *,
    epochs: int = 20,
    lr: float = 3e-3,
    batch_size: int = 64,
    clip: float = 1.0,
    seed: int = 0,
) -> History:
    """Teacher forcing with Adam: minimize -log p(y | x) averaged over target tokens (Eq. 4).

    The learning rate decays to zero on a cosine schedule and the norm of the gradient is
    clipped to ``clip``. Every epoch records ``train_loss`` (per target token) and the greedy
    ``history.token_accuracy`` and ``history.sequence_accuracy`` on ``test`` (:func:`evaluate`).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    schedule = cosine_schedule(optimizer, epochs, len(train), batch_size)
    history, start = History(), time.perf_counter()
    for _ in range(epochs):
        model.train()
        total, tokens = 0.0, 0
        for idx in minibatches(len(train), batch_size, generator):
            tgt = train.target[idx]
            logits = model(train.source[idx], tgt[:, :-1])  # (B, T, V)
            loss = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            schedule.step()
            n = int((tgt[:, 1:] != PAD).sum())  # the loss is a mean over these target tokens
            total, tokens = total + loss.item() * n, tokens + n
        tok, seq = evaluate(model, test)
        history.record(train_loss=total / tokens, token_accuracy=tok, sequence_accuracy=seq)
    history.seconds = time.perf_counter() - start
    return history
