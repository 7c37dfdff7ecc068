"""A seed ensemble of many-to-one models: the mean of the members' class probabilities.

Small training sets make a single network's accuracy depend on its seed (GunPoint: ± 0.13 over
three seeds); averaging the probabilities of K independently trained members removes most of
that variance at K times the cost (``model.ensemble: K``; see docs/tuning.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class EnsembleClassifier(nn.Module):
    """K `SequenceClassifier` members of one config, answering as one.

    Classification: ``forward`` returns ``log(mean_k softmax(logits_k))`` ``(B, C)``, a valid
    logit vector whose softmax is the averaged probabilities (so ``argmax``, cross-entropy and
    ``softmax`` downstream mean the ensemble's). Regression: the mean of the members' outputs.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.config: Any = members[0].config

    def forward(self, x: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        return self.combine(torch.stack([m(x, lengths=lengths) for m in self.members]))

    def combine(self, outs: Tensor) -> Tensor:
        """The members' outputs ``(K, B, C)`` as the ensemble's ``(B, C)`` (also what the export
        graph runs, so eager, ONNX and TorchScript combine alike)."""
        if self.config.task == "regression":
            return outs.mean(0)
        return torch.logsumexp(torch.log_softmax(outs, dim=-1), dim=0) - math.log(len(outs))
