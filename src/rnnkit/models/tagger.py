"""Many-to-many, aligned: one label per input step (part-of-speech tags, per-step anomaly flags).

``x (B, T, I) | (B, T) ids -> [embedding] -> Recurrent (often bidirectional) -> dropout -> Linear``
gives tag logits ``(B, T, C)``; steps past each row's length are padding and their logits are 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import CellName
from rnnkit.models._common import (
    CELLS,
    check_choice,
    check_dropout,
    check_lengths,
    check_positive,
    lengths_mask,
    sequence_encoder,
)


@dataclass
class SequenceTaggerConfig:
    """Configuration of :class:`SequenceTagger`."""

    num_tags: int  # C, labels per step
    input_size: int | None = None  # features per step for float input (None when vocab_size is set)
    vocab_size: int | None = None  # token vocabulary for integer input; adds an embedding
    embedding_dim: int = 32  # embedding width (token input only)
    padding_idx: int | None = None  # token id whose embedding is fixed at zero (token input only)
    cell: CellName = "lstm"  # recurrent cell
    hidden_size: int = 64  # H, the recurrent state size
    num_layers: int = 1  # L, stacked recurrent layers
    bidirectional: bool = True  # tag each step from both its past and its future (D = 2)
    dropout: float = 0.0  # between stacked layers and before the output head

    def __post_init__(self) -> None:
        check_positive(
            num_tags=self.num_tags, hidden_size=self.hidden_size, num_layers=self.num_layers
        )
        check_choice("cell", self.cell, CELLS)
        check_dropout(self.dropout)


class SequenceTagger(nn.Module):
    """Sequence -> per-step tag logits ``(B, T, num_tags)``."""

    def __init__(self, config: SequenceTaggerConfig) -> None:
        super().__init__()
        self.config = config
        self.inputs, self.rnn = sequence_encoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.rnn.output_size, config.num_tags)

    def forward(self, x: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Tag logits ``(B, T, C)``, zero at padded steps.

        **Arguments:**
        - ``x``: ``(B, T, I)`` float features, or ``(B, T)`` token ids when ``vocab_size`` is set.
        - ``lengths``: ``(B,)`` int64 real steps per row; None = all T.
        """
        features = self.inputs(x)  # (B, T, I)
        batch, steps = features.shape[:2]
        check_lengths(lengths, batch=batch, steps=steps)
        out, _ = self.rnn(features, lengths=lengths)  # (B, T, D*P)
        logits = self.head(self.dropout(out))  # (B, T, C)
        mask = lengths_mask(lengths, batch=batch, steps=steps, device=logits.device)
        return logits.masked_fill(~mask[..., None], 0.0)

    def loss(self, x: Tensor, y: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Mean cross-entropy over real steps against tag ids ``y`` ``(B, T)``; padding ignored."""
        logits = self(x, lengths=lengths)
        if y.shape != logits.shape[:2] or y.dtype.is_floating_point:
            raise ValueError(
                f"tag targets must be {tuple(logits.shape[:2])} integer ids, got {tuple(y.shape)}"
            )
        batch, steps = y.shape
        mask = lengths_mask(lengths, batch=batch, steps=steps, device=logits.device)
        return F.cross_entropy(logits[mask], y[mask])
