"""The RNN Encoder-Decoder against the paper's Eqs. 5-8, torch.nn.GRUCell, and hand-made pairs."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from initdocs import count_parameters
from initdocs.rnn_encdec import (
    EOS,
    PAD,
    SOS,
    SOURCE_VOCAB,
    TARGET_VOCAB,
    Decoder,
    EncDecConfig,
    GatedRecurrentUnit,
    RNNEncoderDecoder,
    evaluate,
    number_to_words,
    number_translation_split,
    paper_encoder_decoder,
    target_tensor,
    train_encoder_decoder,
)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _gru_by_the_equations(cell: GatedRecurrentUnit, x: torch.Tensor, h: torch.Tensor):
    """Eqs. 5-8 written out in float64 NumPy, one matrix per gate, biases added as torch does."""
    H = cell.hidden_size
    W = cell.weight_ih.detach().double().numpy()
    U = cell.weight_hh.detach().double().numpy()
    b_i = cell.bias_ih.detach().double().numpy()
    b_h = cell.bias_hh.detach().double().numpy()
    W_r, W_z, W_n = W[:H], W[H : 2 * H], W[2 * H :]
    U_r, U_z, U_n = U[:H], U[H : 2 * H], U[2 * H :]
    x, h = x.double().numpy(), h.double().numpy()
    r = _sigmoid(x @ W_r.T + b_i[:H] + h @ U_r.T + b_h[:H])  # Eq. 5
    z = _sigmoid(x @ W_z.T + b_i[H : 2 * H] + h @ U_z.T + b_h[H : 2 * H])  # Eq. 6
    candidate = np.tanh(x @ W_n.T + b_i[2 * H :] + (r * h) @ U_n.T + b_h[2 * H :])  # Eq. 8
    return torch.from_numpy(z * h + (1 - z) * candidate)  # Eq. 7


@pytest.mark.parametrize(("n_in", "H", "B"), [(1, 1, 1), (3, 5, 4), (16, 8, 7)])
def test_gru_cell_computes_equations_5_to_8(n_in, H, B):
    torch.manual_seed(0)
    cell = GatedRecurrentUnit(n_in, H)
    x, h = torch.randn(B, n_in), torch.randn(B, H)
    expected = _gru_by_the_equations(cell, x, h)
    torch.testing.assert_close(cell(x, h).double(), expected, rtol=0, atol=1e-6)


def test_gru_cell_one_unit_by_hand():
    """One unit, no biases: h = 0.5, W x = 0 (x = 0), U = 1, U_r = U_z = 0 so r = z = 0.5."""
    cell = GatedRecurrentUnit(1, 1)
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.copy_(torch.tensor([[0.0], [0.0], [1.0]]))
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
    out = cell(torch.zeros(1, 1), torch.tensor([[0.5]]))
    candidate = np.tanh(0.5 * 0.5)  # Eq. 8: U (r * h)
    assert out.item() == pytest.approx(0.5 * 0.5 + 0.5 * candidate, abs=1e-7)


@pytest.mark.parametrize(("n_in", "H"), [(1, 1), (3, 5), (10, 20)])
def test_reset_after_equals_torch_gru_cell_with_copied_weights(n_in, H):
    torch.manual_seed(1)
    reference = nn.GRUCell(n_in, H)
    cell = GatedRecurrentUnit(n_in, H, reset_after=True)
    cell.load_state_dict(reference.state_dict())
    h_ours = h_ref = torch.randn(6, H)
    for _ in range(5):  # several steps, so errors would compound
        x = torch.randn(6, n_in)
        h_ours, h_ref = cell(x, h_ours), reference(x, h_ref)
        torch.testing.assert_close(h_ours, h_ref, rtol=0, atol=1e-6)
    x = torch.randn(6, n_in)
    torch.testing.assert_close(cell(x), reference(x), rtol=0, atol=1e-6)  # h defaults to 0


def test_reset_after_gradients_equal_torch_gru_cell():
    torch.manual_seed(2)
    reference = nn.GRUCell(4, 6)
    cell = GatedRecurrentUnit(4, 6, reset_after=True)
    cell.load_state_dict(reference.state_dict())
    x, h = torch.randn(3, 4), torch.randn(3, 6)
    cell(x, h).pow(2).sum().backward()
    reference(x, h).pow(2).sum().backward()
    for name, p in cell.named_parameters():
        torch.testing.assert_close(p.grad, dict(reference.named_parameters())[name].grad)


def test_the_two_reset_placements_differ_except_when_they_must_agree():
    torch.manual_seed(3)
    before, after = GatedRecurrentUnit(4, 6), GatedRecurrentUnit(4, 6, reset_after=True)
    after.load_state_dict(before.state_dict())
    x, h = torch.randn(5, 4), torch.randn(5, 6)
    assert (before(x, h) - after(x, h)).abs().max() > 1e-3
    # With h = 0 and no recurrent bias of the candidate, r multiplies zero in both forms.
    with torch.no_grad():
        before.bias_hh[12:] = 0.0
        after.bias_hh[12:] = 0.0
    zero = torch.zeros(5, 6)
    torch.testing.assert_close(before(x, zero), after(x, zero))


@pytest.mark.parametrize(("n_in", "H"), [(3, 5), (100, 1000)])
def test_parameter_layout_and_count_equal_torch_gru_cell(n_in, H):
    ours, reference = GatedRecurrentUnit(n_in, H), nn.GRUCell(n_in, H)
    shapes = {n: tuple(p.shape) for n, p in ours.named_parameters()}
    assert shapes == {n: tuple(p.shape) for n, p in reference.named_parameters()}
    assert count_parameters(ours) == count_parameters(reference) == 3 * (n_in * H + H * H + 2 * H)


def test_paper_sized_cell_has_3306000_parameters():
    """100-d embeddings into 1000 units (Sec. 4.1): 3 * (100*1000 + 1000*1000 + 2*1000)."""
    assert count_parameters(GatedRecurrentUnit(100, 1000)) == 3_306_000


def test_gru_cell_refuses_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match="positive"):
        GatedRecurrentUnit(0, 4)
    with pytest.raises(ValueError, match="x must be"):
        GatedRecurrentUnit(3, 4)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="h must be"):
        GatedRecurrentUnit(3, 4)(torch.randn(2, 3), torch.randn(3, 4))


def test_config_refuses_bad_sizes_and_defaults_are_the_paper():
    with pytest.raises(ValueError, match="positive"):
        EncDecConfig(maxout_units=0)
    with pytest.raises(ValueError, match="positive"):
        EncDecConfig(summary_size=0)
    with pytest.raises(ValueError, match="special tokens"):
        EncDecConfig(src_vocab=2)
    cfg = EncDecConfig()  # Sec. 4: 15,000 words, 100-d embeddings, 1000 units, 500 maxout
    assert (cfg.src_vocab, cfg.embed_dim, cfg.hidden_size, cfg.maxout_units) == (
        15_000,
        100,
        1000,
        500,
    )


def _tiny(reset_after: bool = False, seed: int = 0) -> RNNEncoderDecoder:
    torch.manual_seed(seed)
    cfg = EncDecConfig(len(SOURCE_VOCAB), len(TARGET_VOCAB), 8, 12, 6, reset_after)
    return RNNEncoderDecoder(cfg)


@pytest.mark.parametrize("reset_after", [False, True])
def test_encoder_and_decoder_shapes(reset_after):
    model = _tiny(reset_after)
    src = torch.randint(3, len(SOURCE_VOCAB), (4, 9))
    c, states = model.encoder(src)
    assert c.shape == (4, 12) and states.shape == (4, 9, 12)
    logits = model.decoder(torch.randint(0, len(TARGET_VOCAB), (4, 5)), c)
    assert logits.shape == (4, 5, len(TARGET_VOCAB))
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(model.decoder.initial_state(c), torch.tanh(model.decoder.init(c)))


def test_a_narrower_summary_changes_only_the_size_of_c():
    torch.manual_seed(0)
    cfg = EncDecConfig(len(SOURCE_VOCAB), len(TARGET_VOCAB), 8, 12, 6, summary_size=3)
    model = RNNEncoderDecoder(cfg)
    src = torch.randint(3, len(SOURCE_VOCAB), (2, 4))
    c, states = model.encoder(src)
    assert c.shape == (2, 3) and states.shape == (2, 4, 12)
    assert model(src, torch.full((2, 3), SOS)).shape == (2, 3, len(TARGET_VOCAB))
    assert model.decoder.initial_state(c).shape == (2, 12)


def test_encoder_summary_ignores_right_padding():
    encoder = _tiny().encoder
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, PAD, PAD], [8, 9, 10, 11, 12]])
    torch.testing.assert_close(encoder(padded)[0][:1], encoder(short)[0])
    # c = tanh(V h_N) with h_N the last state of the sequence itself.
    c, states = encoder(short)
    torch.testing.assert_close(c, torch.tanh(encoder.V(states[:, -1])))


def test_empty_source_gives_the_summary_of_the_zero_state():
    encoder = _tiny().encoder
    c, states = encoder(torch.zeros(2, 0, dtype=torch.long))
    assert states.shape == (2, 0, 12)
    torch.testing.assert_close(c, torch.tanh(encoder.V.bias).expand(2, -1))


def test_decoder_sees_the_summary_at_every_step():
    decoder = _tiny().decoder
    c = torch.randn(1, 12)
    h = decoder.initial_state(c)
    y = torch.tensor([5])
    logits_a, _ = decoder.step(y, h, c)
    logits_b, _ = decoder.step(y, h, c + 1.0)  # same state, different summary
    assert (logits_a - logits_b).abs().max() > 1e-4


def test_decoder_candidate_is_groundhogs_not_the_appendix_form():
    """Candidate tanh(W'e + C c + U'(r' * h')), not Appendix A's tanh(W'e + r' * [U'h' + C c])."""
    torch.manual_seed(6)
    decoder = _tiny().decoder
    cell, E, H = decoder.cell, 8, 12
    e, c, h = torch.randn(3, E), torch.randn(3, 12), torch.randn(3, H)
    with torch.no_grad():
        W, U, b_i, b_h = cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
        x = torch.cat([e, c], dim=1)
        r = torch.sigmoid(x @ W[:H].T + b_i[:H] + h @ U[:H].T + b_h[:H])
        z = torch.sigmoid(x @ W[H : 2 * H].T + b_i[H : 2 * H] + h @ U[H : 2 * H].T + b_h[H : 2 * H])
        W_e, C, U_n = W[2 * H :, :E], W[2 * H :, E:], U[2 * H :]  # the candidate's W', C, U'
        b_in, b_hn = b_i[2 * H :], b_h[2 * H :]
        ours = torch.tanh(e @ W_e.T + c @ C.T + b_in + (r * h) @ U_n.T + b_hn)
        appendix = torch.tanh(e @ W_e.T + b_in + r * (h @ U_n.T + b_hn + c @ C.T))
        new_h = cell(x, h)
    torch.testing.assert_close(new_h, z * h + (1 - z) * ours)
    assert (new_h - (z * h + (1 - z) * appendix)).abs().max() > 1e-3


def _scripted(model: Decoder, script: list[list[int]], calls: list[int]):
    """Replace decoder.step: at step t, row i puts all its mass on script[i][t]."""

    def step(y_prev, h, c):
        t = calls[0]
        calls[0] += 1
        logits = torch.full((len(script), len(TARGET_VOCAB)), -10.0)
        for i, row in enumerate(script):
            logits[i, row[min(t, len(row) - 1)]] = 10.0
        return logits, h

    model.decoder.step = step


def test_greedy_decoding_stops_at_eos_per_sequence():
    model, calls = _tiny(), [0]
    _scripted(model, [[5, EOS, 7, 7], [6, 8, 9, EOS, 4]], calls)
    out = model.greedy_decode(torch.tensor([[5, 6], [7, 8]]), max_len=10)
    assert out == [[5], [6, 8, 9]]
    assert calls[0] == 4  # stops as soon as every sequence has ended


def test_greedy_decoding_respects_max_len():
    model, calls = _tiny(), [0]
    _scripted(model, [[5], [6, EOS]], calls)  # the first row never ends
    assert model.greedy_decode(torch.tensor([[5], [6]]), max_len=3) == [[5, 5, 5], [6]]
    assert calls[0] == 3
    assert model.greedy_decode(torch.tensor([[5], [6]]), max_len=0) == [[], []]
    with pytest.raises(ValueError, match="max_len"):
        model.greedy_decode(torch.tensor([[5]]), max_len=-1)


def test_greedy_output_is_the_argmax_of_teacher_forcing_on_itself():
    model = _tiny(seed=4)
    src = torch.randint(3, len(SOURCE_VOCAB), (3, 6))
    for row, tokens in zip(src, model.greedy_decode(src, max_len=5), strict=True):
        y_in = torch.tensor([[SOS, *tokens]])
        chosen = model(row[None], y_in).argmax(dim=-1)[0].tolist()
        assert chosen[: len(tokens)] == tokens
        assert len(tokens) == 5 or chosen[len(tokens)] == EOS


def test_log_prob_is_the_sum_of_step_log_probabilities():
    model = _tiny(seed=5)
    src = torch.tensor([[5, 6, 7], [8, 9, PAD]])
    tgt = torch.tensor([[SOS, 4, 5, EOS], [SOS, 6, EOS, PAD]])
    c, _ = model.encoder(src)
    expected = []
    for i in range(2):
        h, total = model.decoder.initial_state(c[i : i + 1]), 0.0
        gold = [t for t in tgt[i].tolist() if t != PAD]
        for prev, nxt in itertools.pairwise(gold):
            logits, h = model.decoder.step(torch.tensor([prev]), h, c[i : i + 1])
            total += logits.log_softmax(dim=1)[0, nxt].item()
        expected.append(total)
    torch.testing.assert_close(model.log_prob(src, tgt), torch.tensor(expected))


def test_paper_model_parameter_count_matches_a_closed_form():
    V, E, H, M = 15_000, 100, 1000, 500  # Sec. 4.1 and Appendix A
    gru = lambda i: 3 * (i * H + H * H + 2 * H)  # noqa: E731
    encoder = V * E + gru(E) + H * H + H
    decoder = V * E + (H * H + H) + gru(E + H) + (2 * H + E + 1) * 2 * M + M * V + V
    assert count_parameters(paper_encoder_decoder()) == encoder + decoder


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (40, "forty"),
        (342, "three hundred forty two"),
        (1000, "one thousand"),
        (2019, "two thousand nineteen"),
        (40512, "forty thousand five hundred twelve"),
        (100001, "one hundred thousand one"),
        (999999, "nine hundred ninety nine thousand nine hundred ninety nine"),
    ],
)
def test_number_to_words_spot_checks(n, words):
    assert number_to_words(n) == words


def test_number_to_words_refuses_out_of_range():
    with pytest.raises(ValueError, match="n must be"):
        number_to_words(1_000_000)
    with pytest.raises(ValueError, match="n must be"):
        number_to_words(-1)


def test_split_is_deterministic_disjoint_and_correct():
    train, test = number_translation_split(200, 50, 99_999, seed=7)
    again, _ = number_translation_split(200, 50, 99_999, seed=7)
    other, _ = number_translation_split(200, 50, 99_999, seed=8)
    assert torch.equal(train.source, again.source) and torch.equal(train.target, again.target)
    assert not torch.equal(train.numbers, other.numbers)
    assert not set(train.numbers.tolist()) & set(test.numbers.tolist())
    assert len(set(train.numbers.tolist())) == 200
    for data in (train, test):
        for n, src, tgt in zip(data.numbers.tolist(), data.source, data.target, strict=True):
            words = " ".join(SOURCE_VOCAB[i] for i in src.tolist() if i != PAD)
            digits = [TARGET_VOCAB[i] for i in tgt.tolist() if i != PAD]
            assert words == number_to_words(n)
            assert digits == ["<sos>", *str(n), "<eos>"]


def test_split_contains_hand_written_pairs():
    train, test = number_translation_split(999, 0, 999, seed=0)  # every number of 1..999
    pairs = {
        n: (src.tolist(), tgt.tolist())
        for n, src, tgt in zip(train.numbers.tolist(), train.source, train.target, strict=True)
    }
    words, digits = pairs[342]
    assert [SOURCE_VOCAB[i] for i in words if i != PAD] == ["three", "hundred", "forty", "two"]
    assert [TARGET_VOCAB[i] for i in digits if i != PAD] == ["<sos>", "3", "4", "2", "<eos>"]
    assert len(test) == 0


def test_target_tensor_pads_on_the_right():
    digits = {str(d): TARGET_VOCAB.index(str(d)) for d in range(10)}
    expected = [[SOS, digits["4"], digits["2"], EOS], [SOS, digits["7"], EOS, PAD]]
    assert target_tensor(["42", "7"]).tolist() == expected
    assert target_tensor([]).shape == (0, 0)


def test_split_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="n_train"):
        number_translation_split(90, 20, 100)
    with pytest.raises(ValueError, match="n_train"):
        number_translation_split(0, 10, 100)
    with pytest.raises(ValueError, match="max_value"):
        number_translation_split(10, 10, 1_000_000)


def test_evaluate_counts_tokens_and_exact_matches():
    model = _tiny()
    _, data = number_translation_split(1, 3, 999, seed=1)
    gold = [[t for t in row.tolist() if t not in (PAD, SOS, EOS)] for row in data.target]
    wrong = [list(g) for g in gold]
    wrong[0][0] = 3 if wrong[0][0] != 3 else 4  # one digit wrong in the first number
    model.greedy_decode = lambda src, max_len: wrong
    token_acc, seq_acc = evaluate(model, data)
    n_tokens = sum(len(g) + 1 for g in gold)  # digits plus EOS
    assert token_acc == pytest.approx((n_tokens - 1) / n_tokens)
    assert seq_acc == pytest.approx(2 / 3)


def test_training_lowers_the_loss_and_is_deterministic():
    train, test = number_translation_split(128, 32, 999, seed=0)
    histories = []
    for _ in range(2):
        model = _tiny(seed=0)
        histories.append(train_encoder_decoder(model, train, test, epochs=3, lr=1e-2, seed=0))
    assert histories[0].train_loss == histories[1].train_loss
    assert histories[0].train_loss[-1] < histories[0].train_loss[0]
    assert all(0.0 <= a <= 1.0 for a in histories[0].token_accuracy)
    # the last epoch's accuracies are those of the trained model, which is left in train mode
    assert model.training
    token_acc, seq_acc = evaluate(model, test)
    assert histories[1].token_accuracy[-1] == token_acc
    assert histories[1].sequence_accuracy == [*histories[1].sequence_accuracy[:2], seq_acc]
    with pytest.raises(ValueError, match="epochs"):
        train_encoder_decoder(_tiny(), train, test, epochs=0)
