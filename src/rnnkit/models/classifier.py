"""Many-to-one: a sequence in, one label (classification) or one vector (regression) out.

``x (B, T, I) | (B, T) ids -> [embedding] -> Recurrent -> pool real steps -> dropout -> Linear``

Pooling of the layer outputs ``o_t`` ``(B, T, D*P)`` over each row's real steps ``t < length``:

- ``last``: the top layer's final state, both directions concatenated (forward at ``length-1``,
  backward at ``0``), i.e. ``h_n`` as ``torch.nn`` returns it.
- ``mean``: ``sum_t o_t / length``.   ``max``: ``max_t o_t`` per feature.
- ``attention``: ``sum_t a_t o_t`` with ``a = softmax_t(v^T tanh(W q + U o_t))`` over real steps and
  a learned query ``q`` (additive attention, :mod:`rnnkit.attention`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.attention import AdditiveAttention
from rnnkit.cells import CellName
from rnnkit.models._common import (
    CELLS,
    check_choice,
    check_dropout,
    check_lengths,
    check_positive,
    final_hidden,
    lengths_mask,
    sequence_encoder,
)

POOLINGS: tuple[str, ...] = ("last", "mean", "max", "attention")


@dataclass
class SequenceClassifierConfig:
    """Configuration of :class:`SequenceClassifier` (fill from YAML; every field is plain data)."""

    num_outputs: int  # classes for classification; target values per sequence for regression
    input_size: int | None = None  # features per step for float input (None when vocab_size is set)
    vocab_size: int | None = None  # token vocabulary for integer input; adds an embedding
    embedding_dim: int = 32  # embedding width (token input only)
    padding_idx: int | None = None  # token id whose embedding is fixed at zero (token input only)
    cell: CellName = "lstm"  # recurrent cell
    hidden_size: int = 64  # H, the recurrent state size
    num_layers: int = 1  # L, stacked recurrent layers
    bidirectional: bool = False  # read each sequence in both directions (D = 2)
    dropout: float = 0.0  # between stacked layers and before the output head
    pooling: Literal["last", "mean", "max", "attention"] = "last"  # how steps become one vector
    task: Literal["classification", "regression"] = "classification"  # picks the loss

    def __post_init__(self) -> None:
        check_positive(
            num_outputs=self.num_outputs, hidden_size=self.hidden_size, num_layers=self.num_layers
        )
        check_choice("cell", self.cell, CELLS)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("task", self.task, ("classification", "regression"))
        check_dropout(self.dropout)
        if self.task == "classification" and self.num_outputs < 2:
            raise ValueError(
                f"classification needs num_outputs >= 2 classes, got {self.num_outputs}"
            )


class Pooled(NamedTuple):
    """One vector per sequence ``(B, D*P)`` and, for attention pooling, its weights ``(B, T)``."""

    features: Tensor
    weights: Tensor | None


class SequenceClassifier(nn.Module):
    """Sequence -> class logits ``(B, C)`` or regression values ``(B, C)`` (``C = num_outputs``).

    A length-1 sequence makes this a one-to-one model (an MLP with a recurrent cell as its layer).
    """

    def __init__(self, config: SequenceClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.inputs, self.rnn = sequence_encoder(config)
        size = self.rnn.output_size  # D*P
        self.attention = AdditiveAttention(size, size) if config.pooling == "attention" else None
        self.query = nn.Parameter(torch.randn(size) * size**-0.5) if self.attention else None
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(size, config.num_outputs)

    def pool(self, x: Tensor, *, lengths: Tensor | None = None) -> Pooled:
        """Run the recurrent layer and pool its outputs over each row's real steps."""
        features = self.inputs(x)  # (B, T, I)
        batch, steps = features.shape[:2]
        check_lengths(lengths, batch=batch, steps=steps)
        out, state = self.rnn(features, lengths=lengths)  # (B, T, D*P)
        pooling = self.config.pooling
        if pooling == "last":
            directions = 2 if self.config.bidirectional else 1
            return Pooled(final_hidden(state, directions=directions), None)
        mask = lengths_mask(lengths, batch=batch, steps=steps, device=out.device)  # (B, T)
        if pooling == "mean":
            total = out.masked_fill(~mask[..., None], 0.0).sum(dim=1)
            return Pooled(total / mask.sum(dim=1, keepdim=True).to(out.dtype), None)
        if pooling == "max":
            return Pooled(out.masked_fill(~mask[..., None], float("-inf")).amax(dim=1), None)
        assert self.attention is not None and self.query is not None
        query = self.query.expand(batch, -1)  # (B, D*P)
        context, weights = self.attention(query, out, mask=mask)
        return Pooled(context, weights)

    def forward(self, x: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Logits (classification) or predictions (regression), ``(B, num_outputs)``.

        **Arguments:**
        - ``x``: ``(B, T, I)`` float features, or ``(B, T)`` token ids when ``vocab_size`` is set.
        - ``lengths``: ``(B,)`` int64 real steps per row (padding is ignored); None = all T.
        """
        return self.head(self.dropout(self.pool(x, lengths=lengths).features))

    def loss(self, x: Tensor, y: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Mean cross-entropy against class ids ``y (B,)``, or mean squared error against
        ``y (B, num_outputs)`` (``(B,)`` allowed when ``num_outputs == 1``)."""
        output = self(x, lengths=lengths)
        if self.config.task == "classification":
            if y.shape != output.shape[:1] or y.dtype.is_floating_point:
                raise ValueError(
                    f"classification targets must be (B,) class ids, got {tuple(y.shape)}"
                )
            return F.cross_entropy(output, y)
        if y.dim() == 1 and output.shape[1] == 1:
            y = y[:, None]
        if y.shape != output.shape:
            raise ValueError(
                f"regression targets must be {tuple(output.shape)}, got {tuple(y.shape)}"
            )
        return F.mse_loss(output, y.to(output.dtype))
