"""Many-to-many of different lengths: reversal with attention, decoding, weights, errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.models import Seq2Seq, Seq2SeqConfig

PAD, BOS, EOS, SYMBOLS = 0, 1, 2, 8  # symbols are ids 3..10


def reversal(n: int, low: int = 3, high: int = 6) -> tuple[Tensor, Tensor, Tensor]:
    """Source ``(n, high)`` padded ids, lengths, and target = reversed source + EOS, PAD-padded."""
    lengths = torch.randint(low, high + 1, (n,))
    src = torch.randint(3, 3 + SYMBOLS, (n, high)) * (torch.arange(high)[None] < lengths[:, None])
    tgt = torch.full((n, high + 1), PAD)
    for i, length in enumerate(lengths.tolist()):
        tgt[i, :length] = src[i, :length].flip(0)
        tgt[i, length] = EOS
    return src, lengths, tgt


def small_model(**overrides: object) -> Seq2Seq:
    options: dict = {
        "src_vocab_size": 3 + SYMBOLS,
        "tgt_vocab_size": 3 + SYMBOLS,
        "embedding_dim": 16,
        "hidden_size": 32,
        **overrides,
    }
    return Seq2Seq(Seq2SeqConfig(**options)).eval()


def exact_match(tokens: Tensor, target: Tensor) -> float:
    width = target.shape[1]
    tokens = torch.nn.functional.pad(tokens, (0, max(0, width - tokens.shape[1])), value=EOS)
    return float(
        (tokens[:, :width] == target.masked_fill(target == PAD, EOS)).all(1).float().mean()
    )


@pytest.mark.parametrize("attention", ["bahdanau", "general"])
def test_learns_to_reverse_with_attention(fit, attention: str) -> None:
    model = small_model(attention=attention)

    def loss(step: int) -> Tensor:
        x, lengths, y = reversal(64)
        return model.loss(x, y, lengths=lengths)

    fit(model, loss, steps=250)
    x, lengths, y = reversal(300)
    decoded = model.decode(x, lengths=lengths, max_len=y.shape[1])
    assert exact_match(decoded.tokens, y) > 0.8  # chance is 8^-length
    beam = model.decode(x, lengths=lengths, max_len=y.shape[1], strategy="beam", beam_width=3)
    assert exact_match(beam.tokens, y) > 0.8
    # Reversal attends anti-diagonally: output t looks at source position length-1-t.
    assert decoded.aux is not None
    peak = decoded.aux[0, : int(lengths[0])].argmax(-1)
    assert (peak == torch.arange(int(lengths[0])).flip(0)).float().mean() >= 0.6


@pytest.mark.parametrize("attention", ["none", "bahdanau", "dot", "general"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_shapes_masks_and_attention_rows(attention: str, cell: str) -> None:
    model = small_model(
        attention=attention, cell=cell, num_layers=2, bidirectional_encoder=attention != "dot"
    )
    x, lengths, y = reversal(4)
    out = model(x, y, lengths=lengths)
    assert out.logits.shape == (4, y.shape[1], 3 + SYMBOLS)
    noisy = x.clone()
    noisy[torch.arange(x.shape[1])[None] >= lengths[:, None]] = 7  # garbage in the padding
    torch.testing.assert_close(model(noisy, y, lengths=lengths).logits, out.logits)
    if attention == "none":
        assert out.attention is None
        return
    assert out.attention is not None and out.attention.shape == (4, y.shape[1], x.shape[1])
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(4, y.shape[1]))
    padded = torch.arange(x.shape[1])[None, None] >= lengths[:, None, None]
    assert (out.attention.masked_select(padded.expand_as(out.attention)) == 0).all()
    decoded = model.decode(x, lengths=lengths, max_len=5)
    assert decoded.aux is not None and decoded.aux.shape == (*decoded.tokens.shape, x.shape[1])


def test_beam_width_1_equals_greedy_and_greedy_matches_teacher_forcing() -> None:
    model = small_model(cell="lstm")
    x, lengths, _ = reversal(5)
    greedy = model.decode(x, lengths=lengths, max_len=7)
    beam = model.decode(x, lengths=lengths, max_len=7, strategy="beam", beam_width=1)
    torch.testing.assert_close(beam.tokens, greedy.tokens)
    assert greedy.aux is not None and beam.aux is not None
    torch.testing.assert_close(beam.aux, greedy.aux)
    # Feeding the greedy output back as teacher-forced targets reproduces its own argmaxes.
    forced = model(x, greedy.tokens, lengths=lengths).logits.argmax(-1)
    torch.testing.assert_close(forced, greedy.tokens)


def test_teacher_forcing_ratio_zero_feeds_back_predictions() -> None:
    model = small_model()
    x, lengths, y = reversal(3)
    free = model(x, y, lengths=lengths, teacher_forcing=0.0).logits.argmax(-1)
    greedy = model.decode(x, lengths=lengths, max_len=y.shape[1]).tokens
    n = greedy.shape[1]  # greedy pads with EOS after EOS; free-running keeps going
    stops = (greedy == EOS).int().argmax(1)
    for b in range(3):
        upto = int(stops[b]) + 1 if (greedy[b] == EOS).any() else n
        torch.testing.assert_close(free[b, :upto], greedy[b, :upto])


def test_bad_config_and_input_fail_with_the_reason() -> None:
    with pytest.raises(
        ValueError, match="dot attention needs memory and decoder state of one size"
    ):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, attention="dot")
    with pytest.raises(ValueError, match=r"eos_id must be in \[0, 5\), got 9"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, eos_id=9)
    with pytest.raises(ValueError, match="attention must be one of none, bahdanau, dot, general"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, attention="luong")  # type: ignore[arg-type]
    model = small_model()
    x, lengths, y = reversal(2)
    with pytest.raises(ValueError, match=r"teacher_forcing must be in \[0, 1\], got 1.5"):
        model(x, y, lengths=lengths, teacher_forcing=1.5)
    with pytest.raises(ValueError, match=r"targets y must be \(B, M\) = \(2, M\)"):
        model(x, y[0], lengths=lengths)
    with pytest.raises(ValueError, match="max_len must be >= 1, got 0"):
        model.decode(x, lengths=lengths, max_len=0)


@pytest.mark.parametrize(
    ("cell", "attention"), [("gru", "bahdanau"), ("lstm", "general"), ("gru", "none")]
)
@pytest.mark.parametrize("eos_bias", [0.0, 2.0, 50.0])  # none, some and every row stop early
def test_forced_and_greedy_equals_forward_and_decode(
    cell: str, attention: str, eos_bias: float
) -> None:
    torch.manual_seed(0)
    model = small_model(cell=cell, attention=attention)
    with torch.no_grad():
        model.out.bias[EOS] += eos_bias
    x, lengths, y = reversal(40)
    logits, tokens = model.forced_and_greedy(x, y, lengths=lengths)
    torch.testing.assert_close(logits, model(x, y, lengths=lengths).logits)
    expected = model.decode(x, lengths=lengths, max_len=y.shape[1]).tokens
    assert tokens.shape == expected.shape
    assert torch.equal(tokens, expected)
    if eos_bias == 50.0:
        assert tokens.shape[1] == 1  # every row ended at once, as decode stops
