"""One-to-many: a language model that predicts the next token, and generates text from a prompt.

``ids (B, T) -> Embedding (V, E) -> Recurrent -> [Linear P -> E] -> Linear E -> V`` gives next-token
logits ``(B, T, V)``. With ``tie_weights`` the output matrix *is* the embedding matrix (Press & Wolf
2017); a projection from the state size to ``E`` is added when they differ.

Generation primes the state with the prompt in one layer call, then advances one token at a time
with the layer's ``step`` (O(1) per token; the prefix is never re-run). Strategies: ``greedy``,
``sample`` (temperature, top-k, top-p), and ``beam`` search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import CellName
from rnnkit.models._common import (
    CELLS,
    Inputs,
    check_choice,
    check_dropout,
    check_lengths,
    check_positive,
    gather_steps,
    lengths_mask,
    select_batch,
)
from rnnkit.models._decoding import beam_search, check_sampling, decode_loop, sample_next
from rnnkit.recurrent import Recurrent
from rnnkit.types import State


@dataclass
class LanguageModelConfig:
    """Configuration of :class:`LanguageModel`."""

    vocab_size: int  # V, tokens in the vocabulary
    embedding_dim: int = 64  # E, embedding width
    cell: CellName = "lstm"  # recurrent cell
    hidden_size: int = 128  # H, the recurrent state size
    num_layers: int = 1  # L, stacked recurrent layers
    dropout: float = 0.0  # on embeddings, between layers, and before the output layer
    tie_weights: bool = False  # share the embedding matrix with the output layer

    def __post_init__(self) -> None:
        check_positive(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
        )
        check_choice("cell", self.cell, CELLS)
        check_dropout(self.dropout)


class LMOutput(NamedTuple):
    """Next-token ``logits`` ``(B, T, V)`` and the layer ``state`` after each row's last step."""

    logits: Tensor
    state: State


class LanguageModel(nn.Module):
    """Recurrent next-token model with stateful, O(1)-per-token generation."""

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.inputs = Inputs(
            vocab_size=c.vocab_size, input_size=None, embedding_dim=c.embedding_dim
        )
        self.rnn = Recurrent(
            c.cell,
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(c.dropout)
        size = self.rnn.output_size
        needs_proj = c.tie_weights and size != c.embedding_dim
        self.proj = nn.Linear(size, c.embedding_dim) if needs_proj else None
        self.out = nn.Linear(c.embedding_dim if c.tie_weights else size, c.vocab_size)
        if c.tie_weights:
            assert self.inputs.embedding is not None
            self.out.weight = self.inputs.embedding.weight

    def _logits(self, hidden: Tensor) -> Tensor:
        hidden = self.dropout(hidden)
        if self.proj is not None:
            hidden = self.proj(hidden)  # (..., E)
        return self.out(hidden)  # (..., V)

    def forward(
        self, x: Tensor, *, lengths: Tensor | None = None, state: State | None = None
    ) -> LMOutput:
        """Next-token logits for every position.

        **Arguments:**
        - ``x``: ``(B, T)`` token ids, padded after each length.
        - ``lengths``: ``(B,)`` int64 real steps per row; None = all T.
        - ``state``: the state to continue from (a previous call's), or None for zeros.
        """
        embedded = self.dropout(self.inputs(x))  # (B, T, E)
        check_lengths(lengths, batch=x.shape[0], steps=x.shape[1])
        out, new_state = self.rnn(embedded, state, lengths=lengths)  # (B, T, P)
        return LMOutput(self._logits(out), new_state)

    def last_logits(self, x: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Next-token logits ``(B, V)`` after each row's last real step (the token that would
        follow the whole row), as ``forward(x, lengths=lengths).logits[b, lengths[b] - 1]``.

        Only those B steps go through the output layer, not all B x T: ranking every item after
        each history costs one recurrent pass, not a ``(B, T, V)`` projection.
        """
        check_lengths(lengths, batch=x.shape[0], steps=x.shape[1])
        hidden, _ = self.rnn(self.dropout(self.inputs(x)), lengths=lengths)  # (B, T, P)
        last = hidden[:, -1] if lengths is None else gather_steps(hidden, lengths - 1)  # (B, P)
        return self._logits(last)  # (B, V)

    def step(self, token: Tensor, state: State | None = None) -> LMOutput:
        """Advance by one token: ``token`` ``(B,)`` ids -> logits ``(B, V)`` and the new state."""
        if token.dim() != 1:
            raise ValueError(f"step takes one token per row, shape (B,), got {tuple(token.shape)}")
        embedded = self.inputs(token[:, None])[:, 0]  # (B, E)
        y, new_state = self.rnn.step(embedded, state)  # (B, P)
        return LMOutput(self._logits(y), new_state)

    def loss(self, x: Tensor, y: Tensor | None = None, *, lengths: Tensor | None = None) -> Tensor:
        """Mean next-token cross-entropy (nats) over real steps.

        With ``y`` None the targets are ``x`` shifted by one (``x[:, 1:]`` from ``x[:, :-1]``);
        otherwise ``y`` ``(B, T)`` holds the token after each position of ``x``.
        """
        if y is None:
            if x.shape[1] < 2:
                raise ValueError("language-model loss needs sequences of at least 2 tokens")
            x, y = x[:, :-1], x[:, 1:]
            lengths = None if lengths is None else lengths - 1
        if y.shape != x.shape:
            raise ValueError(
                f"targets y must match x's shape {tuple(x.shape)}, got {tuple(y.shape)}"
            )
        logits = self(x, lengths=lengths).logits
        mask = lengths_mask(lengths, batch=x.shape[0], steps=x.shape[1], device=logits.device)
        return F.cross_entropy(logits[mask], y[mask])

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        *,
        max_new_tokens: int,
        strategy: Literal["sample", "greedy", "beam"] = "sample",
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        beam_width: int = 4,
        length_penalty: float = 0.0,
        eos_id: int | None = None,
        prompt_lengths: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue each prompt by up to ``max_new_tokens`` tokens; return the new ones ``(B, N)``.

        **Arguments:**
        - ``prompt``: ``(B, T0)`` ids (``T0 >= 1``; start with a BOS id for unconditioned text).
        - ``strategy``: ``"greedy"`` (argmax), ``"sample"`` (``temperature``, then ``top_k`` and/or
          ``top_p`` filtering), or ``"beam"`` (``beam_width`` hypotheses, ``length_penalty``).
        - ``eos_id``: a row stops at this token and pads with it; decoding ends when all rows stop.
        - ``prompt_lengths``: ``(B,)`` real prompt lengths for right-padded prompts.
        - ``generator``: a ``torch.Generator`` for reproducible sampling.

        The model runs in eval mode (no dropout) and is put back in its previous mode afterwards.
        """
        if prompt.dim() != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must be (B, T0) ids with T0 >= 1, got {tuple(prompt.shape)}")
        check_positive(max_new_tokens=max_new_tokens)
        check_choice("strategy", strategy, ("sample", "greedy", "beam"))
        check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
        was_training = self.training
        self.eval()
        try:
            logits, state = self(prompt, lengths=prompt_lengths)  # prime: one call over the prompt
            last = (
                logits[:, -1]
                if prompt_lengths is None
                else gather_steps(logits, prompt_lengths.to(logits.device) - 1)
            )  # (B, V)

            def step_fn(token: Tensor, s: State) -> tuple[Tensor, State, None]:
                out = self.step(token, s)
                return out.logits, out.state, None

            if strategy == "beam":
                return beam_search(
                    last,
                    state,
                    step_fn,
                    select_batch,
                    beam_width=beam_width,
                    max_steps=max_new_tokens,
                    eos_id=eos_id,
                    length_penalty=length_penalty,
                ).tokens
            pick: Callable[[Tensor], Tensor] = (
                _argmax
                if strategy == "greedy"
                else partial(
                    sample_next,
                    temperature=temperature,
                    top_k=top_k,
                    top_p=top_p,
                    generator=generator,
                )
            )
            return decode_loop(
                last, state, step_fn, pick=pick, max_steps=max_new_tokens, eos_id=eos_id
            ).tokens
        finally:
            self.train(was_training)


def _argmax(logits: Tensor) -> Tensor:
    return logits.argmax(dim=-1)
