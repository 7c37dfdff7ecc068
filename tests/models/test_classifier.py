"""Many-to-one (and one-to-one): learning, pooling over real steps only, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.models import SequenceClassifier, SequenceClassifierConfig


def parity(n: int, steps: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    """Bits ``(n, T, 1)`` of random lengths in [2, T], padded with zeros; label = sum mod 2."""
    lengths = torch.randint(2, steps + 1, (n,))
    mask = torch.arange(steps)[None] < lengths[:, None]
    bits = torch.randint(0, 2, (n, steps)).float() * mask
    return bits[..., None], lengths, (bits.sum(1) % 2).long()


def test_learns_parity_of_variable_length_bit_strings(fit) -> None:
    model = SequenceClassifier(
        SequenceClassifierConfig(num_outputs=2, input_size=1, hidden_size=32, cell="lstm")
    )

    def loss(step: int) -> Tensor:
        x, lengths, y = parity(64)
        return model.loss(x, y, lengths=lengths)

    fit(model, loss, steps=300)
    x, lengths, y = parity(1000)
    accuracy = (model(x, lengths=lengths).argmax(-1) == y).float().mean()
    assert accuracy > 0.95  # chance is 0.5


def test_one_to_one_is_the_length_1_case(fit) -> None:
    """XOR of two features, each example a length-1 sequence: no separate class is needed."""
    model = SequenceClassifier(
        SequenceClassifierConfig(num_outputs=2, input_size=2, hidden_size=16)
    )

    def data(n: int) -> tuple[Tensor, Tensor]:
        bits = torch.randint(0, 2, (n, 2))
        return bits.float()[:, None, :] * 2 - 1, (bits[:, 0] ^ bits[:, 1])  # (n, 1, 2), (n,)

    def loss(step: int) -> Tensor:
        x, y = data(64)
        return model.loss(x, y)

    fit(model, loss, steps=150)
    x, y = data(500)
    assert (model(x).argmax(-1) == y).float().mean() == 1.0


def test_regression_learns_the_mean_of_the_real_steps(fit) -> None:
    model = SequenceClassifier(
        SequenceClassifierConfig(
            num_outputs=1, input_size=1, hidden_size=16, pooling="mean", task="regression"
        )
    )

    def data(n: int) -> tuple[Tensor, Tensor, Tensor]:
        lengths = torch.randint(1, 7, (n,))
        x = torch.randn(n, 6, 1) * (torch.arange(6)[None] < lengths[:, None])[..., None]
        return x, lengths, x.sum((1, 2)) / lengths

    def loss(step: int) -> Tensor:
        x, lengths, y = data(64)
        return model.loss(x, y, lengths=lengths)

    fit(model, loss, steps=200)
    x, lengths, y = data(500)
    mse = ((model(x, lengths=lengths)[:, 0] - y) ** 2).mean()
    assert mse < 0.1 * y.var()


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_outputs(pooling: str, bidirectional: bool) -> None:
    config = SequenceClassifierConfig(
        num_outputs=3,
        vocab_size=9,
        hidden_size=8,
        pooling=pooling,
        bidirectional=bidirectional,
        cell="gru",
    )
    model = SequenceClassifier(config).eval()
    ids = torch.randint(0, 9, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    padded = model(ids, lengths=lengths)
    noisy = ids.clone()
    noisy[1, 4:], noisy[2, 1:] = 5, 8  # different garbage after the lengths
    torch.testing.assert_close(model(noisy, lengths=lengths), padded)
    for b in range(3):  # each row alone, unpadded, gives the same answer
        alone = model(ids[b : b + 1, : lengths[b]])
        torch.testing.assert_close(alone, padded[b : b + 1], atol=1e-5, rtol=1e-5)


def test_attention_pooling_weights_cover_only_real_steps() -> None:
    model = SequenceClassifier(
        SequenceClassifierConfig(num_outputs=2, input_size=3, hidden_size=8, pooling="attention")
    )
    lengths = torch.tensor([5, 2])
    weights = model.pool(torch.randn(2, 5, 3), lengths=lengths).weights
    assert weights is not None
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    assert (weights[1, 2:] == 0).all()


def test_bad_config_and_input_fail_with_the_reason() -> None:
    with pytest.raises(
        ValueError, match="pooling must be one of last, mean, max, attention; got 'sum'"
    ):
        SequenceClassifierConfig(num_outputs=2, input_size=1, pooling="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="classification needs num_outputs >= 2"):
        SequenceClassifierConfig(num_outputs=1, input_size=1)
    with pytest.raises(ValueError, match="set exactly one of vocab_size"):
        SequenceClassifier(SequenceClassifierConfig(num_outputs=2))
    model = SequenceClassifier(SequenceClassifierConfig(num_outputs=2, input_size=3, hidden_size=4))
    with pytest.raises(ValueError, match=r"feature input must be \(B, T, 3\) float"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match="expected 3 input features, got 4"):
        model(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        model(torch.randn(2, 5, 3), lengths=torch.tensor([6, 2]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        model(torch.randn(2, 5, 3), lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match=r"classification targets must be \(B,\) class ids"):
        model.loss(torch.randn(2, 5, 3), torch.zeros(2, 2))
    tokens = SequenceClassifier(
        SequenceClassifierConfig(num_outputs=2, vocab_size=5, hidden_size=4)
    )
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\), got min 0 and max 7"):
        tokens(torch.tensor([[0, 7]]))
