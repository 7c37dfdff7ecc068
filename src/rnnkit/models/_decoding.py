"""Token-by-token decoding for the language model and seq2seq: sampling, greedy, beam search.

A model supplies ``step_fn(tokens (N,), state) -> (logits (N, V), state, aux)`` that advances its
recurrent state by one token in O(1) (no prefix is ever re-run), and ``reorder_fn(state, index)``
that selects rows of its state. ``aux`` is an optional per-step tensor ``(N, ...)`` carried along
with each hypothesis (seq2seq's attention weights), or None.

Once a row emits ``eos_id`` it keeps emitting ``eos_id``; decoding stops early when every row has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

import torch
from torch import Tensor

S = TypeVar("S")
StepFn = Callable[[Tensor, S], tuple[Tensor, S, Tensor | None]]
ReorderFn = Callable[[S, Tensor], S]


class Decoded(NamedTuple):
    """Decoded tokens ``(B, N)``, their total log-probability ``(B,)`` (beam only, else None), and
    the stacked per-step ``aux`` ``(B, N, ...)`` or None."""

    tokens: Tensor
    scores: Tensor | None
    aux: Tensor | None


def check_sampling(*, temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` for sampling options that cannot work."""
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use strategy='greedy'")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def filter_logits(
    logits: Tensor, *, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """Set logits outside the top ``k`` and outside the nucleus of mass ``top_p`` to ``-inf``.

    The nucleus is the smallest set of most likely tokens whose probability reaches ``top_p``
    (Holtzman et al. 2020); the most likely token is always kept. ``logits``: ``(N, V)``.
    """
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # mass of strictly more likely tokens
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample one token per row from ``logits`` ``(N, V)`` -> ``(N,)`` int64."""
    logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def decode_loop(
    first_logits: Tensor,
    state: S,
    step_fn: StepFn[S],
    *,
    pick: Callable[[Tensor], Tensor],
    max_steps: int,
    eos_id: int | None,
    first_aux: Tensor | None = None,
) -> Decoded:
    """Greedy or sampled decoding: ``pick(logits (B, V)) -> (B,)`` chooses each next token."""
    tokens, auxes = [], [] if first_aux is None else [first_aux]
    logits = first_logits
    finished = torch.zeros(first_logits.shape[0], dtype=torch.bool, device=first_logits.device)
    for t in range(max_steps):
        token = pick(logits)
        if eos_id is not None:
            token = token.masked_fill(finished, eos_id)
            finished = finished | (token == eos_id)
        tokens.append(token)
        if t == max_steps - 1 or bool(finished.all()):
            break
        logits, state, aux = step_fn(token, state)
        if aux is not None:
            auxes.append(aux)
    stacked_aux = torch.stack(auxes[: len(tokens)], dim=1) if auxes else None
    return Decoded(torch.stack(tokens, dim=1), None, stacked_aux)


def beam_search(
    first_logits: Tensor,
    state: S,
    step_fn: StepFn[S],
    reorder_fn: ReorderFn[S],
    *,
    beam_width: int,
    max_steps: int,
    eos_id: int | None,
    first_aux: Tensor | None = None,
    length_penalty: float = 0.0,
) -> Decoded:
    """Keep the ``beam_width`` most likely continuations per row; return the best of each.

    Hypotheses are ranked at the end by ``log p / length ** length_penalty`` (0 = raw log-prob).
    With ``beam_width=1`` this is exactly greedy decoding.
    """
    batch, vocab = first_logits.shape
    k = beam_width
    if not 1 <= k <= vocab:
        raise ValueError(f"beam_width must be in [1, vocab size {vocab}], got {k}")
    device = first_logits.device
    scores, first = first_logits.log_softmax(-1).topk(k, dim=-1)  # (B, K)
    rows = torch.arange(batch, device=device)
    state = reorder_fn(state, rows.repeat_interleave(k))
    history = first.reshape(-1, 1)  # (B*K, n)
    aux_hist = None if first_aux is None else first_aux.repeat_interleave(k, 0).unsqueeze(1)
    lengths = torch.ones(batch, k, device=device)
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    if eos_id is not None:
        finished = first == eos_id
    for _ in range(max_steps - 1):
        if bool(finished.all()):
            break
        logits, state, aux = step_fn(history[:, -1], state)
        logp = logits.log_softmax(-1).view(batch, k, vocab)
        if eos_id is not None:  # a finished hypothesis may only repeat eos, at no cost
            only_eos = torch.full((vocab,), float("-inf"), device=device, dtype=logp.dtype)
            only_eos[eos_id] = 0.0
            logp = torch.where(finished[..., None], only_eos, logp)
        scores, flat = (scores[..., None] + logp).view(batch, k * vocab).topk(k, dim=-1)
        beam, token = flat // vocab, flat % vocab  # (B, K) each
        index = (beam + rows[:, None] * k).view(-1)  # rows of the flattened (B*K) state
        state = reorder_fn(state, index)
        history = torch.cat([history.index_select(0, index), token.view(-1, 1)], dim=1)
        if aux_hist is not None and aux is not None:
            aux_hist = torch.cat([aux_hist.index_select(0, index), aux.unsqueeze(1)], dim=1)
        was_finished = finished.view(-1).index_select(0, index).view(batch, k)
        lengths = lengths.view(-1).index_select(0, index).view(batch, k) + (~was_finished).float()
        finished = was_finished | (token == eos_id) if eos_id is not None else was_finished
    best = (scores / lengths**length_penalty).argmax(dim=-1)  # (B,)
    pick = rows * k + best
    best_aux = None if aux_hist is None else aux_hist.index_select(0, pick)
    return Decoded(history.index_select(0, pick), scores.gather(1, best[:, None])[:, 0], best_aux)
