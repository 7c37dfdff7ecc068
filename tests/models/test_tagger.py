"""Many-to-many aligned tagging: learning from both directions, padding, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.models import SequenceTagger, SequenceTaggerConfig


def neighbours(n: int, steps: int = 10) -> tuple[Tensor, Tensor, Tensor]:
    """Tokens in {0,1,2}; tag_t = 3 x_{t-1} + x_{t+1} (0 past the ends): needs both sides."""
    lengths = torch.randint(3, steps + 1, (n,))
    mask = torch.arange(steps)[None] < lengths[:, None]
    x = torch.randint(0, 3, (n, steps)) * mask
    before = torch.nn.functional.pad(x, (1, 0))[:, :-1]
    after = torch.nn.functional.pad(x, (0, 1))[:, 1:] * (
        torch.arange(steps)[None] < lengths[:, None] - 1
    )
    return x, lengths, 3 * before + after


def test_bidirectional_tagger_learns_a_two_sided_rule(fit) -> None:
    model = SequenceTagger(
        SequenceTaggerConfig(num_tags=9, vocab_size=3, embedding_dim=8, hidden_size=24)
    )

    def loss(step: int) -> Tensor:
        x, lengths, y = neighbours(64)
        return model.loss(x, y, lengths=lengths)

    fit(model, loss, steps=200)
    x, lengths, y = neighbours(500)
    mask = torch.arange(x.shape[1])[None] < lengths[:, None]
    accuracy = (model(x, lengths=lengths).argmax(-1) == y)[mask].float().mean()
    assert accuracy > 0.95  # chance is 1/9


def test_padding_does_not_change_real_steps() -> None:
    model = SequenceTagger(
        SequenceTaggerConfig(num_tags=4, input_size=2, hidden_size=8, num_layers=2)
    ).eval()
    x, lengths = torch.randn(2, 6, 2), torch.tensor([6, 3])
    logits = model(x, lengths=lengths)
    assert logits.shape == (2, 6, 4) and (logits[1, 3:] == 0).all()
    torch.testing.assert_close(model(x[1:, :3]), logits[1:, :3], atol=1e-5, rtol=1e-5)


def test_bad_targets_fail_with_the_reason() -> None:
    model = SequenceTagger(SequenceTaggerConfig(num_tags=4, input_size=2, hidden_size=8))
    with pytest.raises(ValueError, match=r"tag targets must be \(2, 6\) integer ids, got \(2, 5\)"):
        model.loss(torch.randn(2, 6, 2), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="num_tags must be >= 1, got 0"):
        SequenceTaggerConfig(num_tags=0, input_size=2)
    with pytest.raises(
        ValueError, match="cell must be one of rnn, lstm, gru, mingru, minlstm; got 'tcn'"
    ):
        SequenceTaggerConfig(num_tags=2, input_size=2, cell="tcn")  # type: ignore[arg-type]
