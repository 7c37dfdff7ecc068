"""Attention over a padded source: additive (Bahdanau) and multiplicative (Luong dot and general).

One query per batch row attends over ``S`` source positions (the *memory*, usually encoder outputs);
positions where ``mask`` is False (padding) get weight exactly 0. Shapes use the glossary in
:mod:`rnnkit.types`, plus ``S`` source steps, ``Q`` query size and ``K`` key (memory) size.

Scores, for query ``q`` (the decoder state) and each memory row ``k_s``:

- additive (Bahdanau et al. 2015): ``e_s = v^T tanh(W_q q + W_k k_s)``
- dot (Luong et al. 2015):         ``e_s = q^T k_s``           (needs ``Q == K``)
- general (Luong et al. 2015):     ``e_s = q^T W k_s``

then ``a = softmax(e)`` over unmasked positions and ``context = sum_s a_s k_s``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

AttentionKind = Literal["bahdanau", "dot", "general"]
ATTENTION_KINDS: tuple[str, ...] = ("bahdanau", "dot", "general")


class AttentionOutput(NamedTuple):
    """What an attention module returns: ``context`` ``(B, K)`` and ``weights`` ``(B, S)``."""

    context: Tensor
    weights: Tensor


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax of ``scores`` ``(B, S)`` over the last axis; exact zeros where ``mask`` is False.

    Raises ``ValueError`` if a row has no unmasked position (its weights would be undefined).
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.shape != scores.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match scores {tuple(scores.shape)}"
        )
    if not bool(mask.any(dim=-1).all()):
        raise ValueError("every row of the source mask needs at least one True (unpadded) position")
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class _Attention(nn.Module):
    """Shared checks and the weighted sum; subclasses define ``keys`` and ``score``.

    ``keys(memory)`` is the query-independent half of the score (e.g. Bahdanau's ``W_k m_s + b``).
    A decoder computes it once per source sequence and passes it to every step's call as
    ``keys=``, instead of projecting the whole memory again at each of the M output steps.
    """

    def keys(self, memory: Tensor) -> Tensor:
        """The memory's projection the score needs: ``(B, S, K) -> (B, S, A)``."""
        return memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        memory: Tensor,
        *,
        mask: Tensor | None = None,
        keys: Tensor | None = None,
    ) -> AttentionOutput:
        """Attend from ``query`` over ``memory``.

        **Arguments:**
        - ``query``: ``(B, Q)``.
        - ``memory``: ``(B, S, K)``, batch first.
        - ``mask``: ``(B, S)`` bool, True at real source positions; None means all are real.
        - ``keys``: ``self.keys(memory)`` computed once per sequence; None computes it here.

        **Returns:** ``AttentionOutput(context (B, K), weights (B, S))``; weights sum to 1 over the
        unmasked positions of each row and are 0 elsewhere.
        """
        if query.dim() != 2 or memory.dim() != 3:
            raise ValueError(
                f"attention expects query (B, Q) and memory (B, S, K), got {tuple(query.shape)} "
                f"and {tuple(memory.shape)}"
            )
        if query.shape[0] != memory.shape[0]:
            raise ValueError(
                f"query batch {query.shape[0]} does not match memory batch {memory.shape[0]}"
            )
        if mask is not None and mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool, got {mask.dtype}")
        if keys is None:
            keys = self.keys(memory)
        elif keys.shape[:2] != memory.shape[:2]:
            raise ValueError(
                f"keys {tuple(keys.shape)} do not match memory {tuple(memory.shape)} in (B, S)"
            )
        weights = masked_softmax(self.score(query, keys), mask)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, K)
        return AttentionOutput(context, weights)


class AdditiveAttention(_Attention):
    """Bahdanau attention: ``e_s = v^T tanh(W_q q + W_k k_s)``, ``attention_size`` wide."""

    def __init__(
        self, query_size: int, key_size: int, *, attention_size: int | None = None
    ) -> None:
        super().__init__()
        size = attention_size or key_size
        _check_sizes(query_size=query_size, key_size=key_size, attention_size=size)
        self.query_proj = nn.Linear(query_size, size, bias=False)
        self.key_proj = nn.Linear(key_size, size, bias=True)
        self.v = nn.Linear(size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)  # (B, S, A)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.query_proj(query).unsqueeze(1) + keys)  # (B, S, A)
        return self.v(hidden).squeeze(-1)  # (B, S)


class MultiplicativeAttention(_Attention):
    """Luong attention: ``dot`` scores ``q^T k_s``; ``general`` scores ``q^T W k_s``."""

    def __init__(
        self, query_size: int, key_size: int, *, kind: Literal["dot", "general"] = "general"
    ) -> None:
        super().__init__()
        _check_sizes(query_size=query_size, key_size=key_size)
        if kind not in ("dot", "general"):
            raise ValueError(f"Luong attention kind must be 'dot' or 'general', got {kind!r}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(
                f"dot attention needs query_size == key_size, got {query_size} and {key_size}; "
                "use kind='general'"
            )
        self.kind = kind
        self.weight = nn.Linear(key_size, query_size, bias=False) if kind == "general" else None

    def keys(self, memory: Tensor) -> Tensor:
        return memory if self.weight is None else self.weight(memory)  # (B, S, Q)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S)


def make_attention(kind: str, query_size: int, key_size: int) -> _Attention:
    """Build attention by name: ``"bahdanau"``, ``"dot"`` or ``"general"``."""
    if kind == "bahdanau":
        return AdditiveAttention(query_size, key_size)
    if kind in ("dot", "general"):
        return MultiplicativeAttention(query_size, key_size, kind=kind)  # type: ignore[arg-type]
    raise ValueError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTION_KINDS)}")


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
