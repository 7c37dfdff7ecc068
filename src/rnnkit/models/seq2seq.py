"""Many-to-many of different lengths: an encoder–decoder with optional attention.

Encoder: ``src ids (B, S) -> Embedding -> Recurrent (D directions)`` gives the memory ``m``
``(B, S, D*H)`` and a final state, mapped to the decoder's initial state (``tanh(W [h_fwd; h_bwd])``
per layer when bidirectional; an LSTM's ``c`` goes through its own linear map without tanh).

Decoder, one target token ``y_{t-1}`` (BOS first) per step, with ``e = Embedding(y_{t-1})``:

- ``bahdanau`` (Bahdanau et al. 2015): ``c_t = attn(s_{t-1}, m)``;
  ``s_t = cell([e; c_t], s_{t-1})``; ``logits = W_v tanh(W_o [s_t; c_t])``.
- ``dot`` / ``general`` (Luong et al. 2015, with input feeding):
  ``s_t = cell([e; h~_{t-1}], s_{t-1})``; ``c_t = attn(s_t, m)``;
  ``h~_t = tanh(W_c [c_t; s_t])``; ``logits = W_v h~_t``.
- ``none``: ``s_t = cell(e, s_{t-1})``; ``logits = W_v s_t``.

Attention weights ``(B, M, S)`` come back with every output for plotting; padded source positions
get weight 0. Targets are ``(B, M)`` ids ending in EOS and padded with ``pad_id``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.attention import make_attention
from rnnkit.cells import CellName
from rnnkit.models._common import (
    CELLS,
    Inputs,
    check_choice,
    check_dropout,
    check_lengths,
    check_positive,
    lengths_mask,
    select_batch,
    state_hidden,
)
from rnnkit.models._decoding import Decoded, beam_search, decode_loop
from rnnkit.recurrent import Recurrent
from rnnkit.types import LSTMState, State


@dataclass
class Seq2SeqConfig:
    """Configuration of :class:`Seq2Seq`."""

    src_vocab_size: int  # source vocabulary size
    tgt_vocab_size: int  # target vocabulary size (including pad, bos and eos)
    pad_id: int = 0  # target padding id, ignored by the loss
    bos_id: int = 1  # target start token fed to the decoder's first step
    eos_id: int = 2  # target end token; decoding stops there
    embedding_dim: int = 64  # source and target embedding width
    cell: CellName = "gru"  # encoder and decoder cell
    hidden_size: int = 128  # H, encoder and decoder state size
    num_layers: int = 1  # stacked layers, the same in encoder and decoder
    bidirectional_encoder: bool = True  # read the source both ways (memory is 2H wide)
    attention: Literal["none", "bahdanau", "dot", "general"] = "bahdanau"  # decoder attention
    dropout: float = 0.0  # on embeddings, between layers, and before the output layer

    def __post_init__(self) -> None:
        check_positive(
            src_vocab_size=self.src_vocab_size,
            tgt_vocab_size=self.tgt_vocab_size,
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
        )
        check_choice("cell", self.cell, CELLS)
        check_choice("attention", self.attention, ("none", "bahdanau", "dot", "general"))
        check_dropout(self.dropout)
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if not 0 <= value < self.tgt_vocab_size:
                raise ValueError(f"{name} must be in [0, {self.tgt_vocab_size}), got {value}")
        if self.attention == "dot" and self.bidirectional_encoder:
            raise ValueError(
                "dot attention needs memory and decoder state of one size; with a bidirectional "
                "encoder use attention='general' or 'bahdanau'"
            )


class DecoderState(NamedTuple):
    """What the decoder carries between steps; every tensor has the batch on its first axis except
    ``rnn`` (the layer's state, batch on axis 1)."""

    rnn: State  # decoder layer state
    feed: Tensor  # (B, F): Luong's h~_{t-1}, Bahdanau's last context, or (B, 0) without attention
    memory: Tensor  # (B, S, D*H) encoder outputs
    mask: Tensor  # (B, S) True at real source steps
    keys: Tensor | None = None  # (B, S, A) the attention's memory projection, made once per source


class Seq2SeqOutput(NamedTuple):
    """Teacher-forced ``logits`` ``(B, M, V)`` and ``attention`` weights ``(B, M, S)`` (or None)."""

    logits: Tensor
    attention: Tensor | None


class Seq2Seq(nn.Module):
    """Encoder–decoder for sequence transduction (translation, transliteration, reversal)."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        directions = 2 if c.bidirectional_encoder else 1
        self.src = Inputs(
            vocab_size=c.src_vocab_size, input_size=None, embedding_dim=c.embedding_dim
        )
        self.tgt = Inputs(
            vocab_size=c.tgt_vocab_size, input_size=None, embedding_dim=c.embedding_dim
        )
        layer_dropout = c.dropout if c.num_layers > 1 else 0.0
        self.encoder = Recurrent(
            c.cell,
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            bidirectional=c.bidirectional_encoder,
            dropout=layer_dropout,
            batch_first=True,
        )
        memory_size = self.encoder.output_size  # D*H
        self.feed_size = {"none": 0, "bahdanau": memory_size}.get(c.attention, c.hidden_size)
        self.decoder = Recurrent(
            c.cell,
            c.embedding_dim + self.feed_size,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=layer_dropout,
            batch_first=True,
        )
        self.bridge_h = (
            nn.Linear(directions * c.hidden_size, c.hidden_size) if directions > 1 else None
        )
        self.bridge_c = copy.deepcopy(self.bridge_h) if c.cell == "lstm" else None
        self.attention = (
            None
            if c.attention == "none"
            else make_attention(c.attention, c.hidden_size, memory_size)
        )
        combine_in = 0 if c.attention == "none" else memory_size  # the context c_t
        self.combine = nn.Linear(c.hidden_size + combine_in, c.hidden_size) if combine_in else None
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden_size, c.tgt_vocab_size)

    def encode(self, x: Tensor, *, lengths: Tensor | None = None) -> DecoderState:
        """Encode source ids ``x`` ``(B, S)`` into the decoder's starting state."""
        embedded = self.dropout(self.src(x))  # (B, S, E)
        batch, steps = x.shape
        check_lengths(lengths, batch=batch, steps=steps)
        memory, state = self.encoder(embedded, lengths=lengths)  # (B, S, D*H)
        mask = lengths_mask(lengths, batch=batch, steps=steps, device=memory.device)
        feed = memory.new_zeros(batch, self.feed_size)
        keys = None if self.attention is None else self.attention.keys(memory)
        return DecoderState(self._bridge(state), feed, memory, mask, keys)

    def _bridge(self, state: State) -> State:
        if self.bridge_h is None:
            return state
        layers = self.config.num_layers

        def merge(t: Tensor, linear: nn.Linear, squash: bool) -> Tensor:
            t = t.view(layers, 2, *t.shape[1:]).permute(0, 2, 1, 3).flatten(2)  # (L, B, 2H)
            return torch.tanh(linear(t)) if squash else linear(t)  # (L, B, H)

        if isinstance(state, LSTMState):
            assert self.bridge_c is not None
            return LSTMState(
                merge(state.h, self.bridge_h, True), merge(state.c, self.bridge_c, False)
            )
        return merge(state, self.bridge_h, True)

    def step(
        self, token: Tensor, state: DecoderState
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: ``token`` ``(B,)`` -> logits ``(B, V)``, state, weights ``(B, S)``."""
        embedded = self.dropout(self.tgt(token[:, None])[:, 0])  # (B, E)
        kind = self.config.attention
        weights = None
        if kind == "bahdanau":
            assert self.attention is not None and self.combine is not None
            query = state_hidden(state.rnn)[-1]  # (B, H), top layer s_{t-1}
            context, weights = self.attention(query, state.memory, mask=state.mask, keys=state.keys)
            y, rnn = self.decoder.step(torch.cat([embedded, context], dim=-1), state.rnn)
            hidden = torch.tanh(self.combine(torch.cat([y, context], dim=-1)))
            feed = context
        elif self.attention is not None:
            assert self.combine is not None
            y, rnn = self.decoder.step(torch.cat([embedded, state.feed], dim=-1), state.rnn)
            context, weights = self.attention(y, state.memory, mask=state.mask, keys=state.keys)
            hidden = feed = torch.tanh(self.combine(torch.cat([context, y], dim=-1)))
        else:
            hidden, rnn = self.decoder.step(embedded, state.rnn)
            feed = state.feed
        logits = self.out(self.dropout(hidden))
        return logits, DecoderState(rnn, feed, state.memory, state.mask, state.keys), weights

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        *,
        lengths: Tensor | None = None,
        teacher_forcing: float = 1.0,
    ) -> Seq2SeqOutput:
        """Decode against targets ``y`` ``(B, M)``: step ``t`` reads ``y_{t-1}`` (BOS at 0) with
        probability ``teacher_forcing`` per row, else the model's own previous argmax.

        **Arguments:**
        - ``x``: ``(B, S)`` source ids; ``lengths``: ``(B,)`` real source steps (None = all S).
        - ``y``: ``(B, M)`` target ids, EOS-terminated, padded with ``pad_id``.
        """
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if y.dim() != 2 or y.shape[0] != x.shape[0]:
            raise ValueError(f"targets y must be (B, M) = ({x.shape[0]}, M), got {tuple(y.shape)}")
        state = self.encode(x, lengths=lengths)
        token = y.new_full((y.shape[0],), self.config.bos_id)
        logits, weights = [], []
        for t in range(y.shape[1]):
            step_logits, state, w = self.step(token, state)
            logits.append(step_logits)
            if w is not None:
                weights.append(w)
            token = y[:, t]
            if teacher_forcing < 1.0:
                own = step_logits.argmax(dim=-1)
                forced = torch.rand(y.shape[0], device=y.device) < teacher_forcing
                token = torch.where(forced, token, own)
        attention = torch.stack(weights, dim=1) if weights else None
        return Seq2SeqOutput(torch.stack(logits, dim=1), attention)

    def loss(
        self, x: Tensor, y: Tensor, *, lengths: Tensor | None = None, teacher_forcing: float = 1.0
    ) -> Tensor:
        """Mean token cross-entropy over non-pad target positions."""
        logits = self(x, y, lengths=lengths, teacher_forcing=teacher_forcing).logits
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=self.config.pad_id)

    @torch.no_grad()
    def forced_and_greedy(
        self, x: Tensor, y: Tensor, *, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits ``(B, M, V)`` and greedy tokens ``(B, N)``, ``N <= M``, from one
        decoder loop: what ``forward(x, y).logits`` and ``decode(x, max_len=M).tokens`` return.

        Validation needs both (the loss reads the logits given the true previous tokens, exact
        match the model's own output). Run as the two halves of one batch, rows ``0..B-1`` fed
        ``y`` and rows ``B..2B-1`` their own argmax, they share the encoder and one Python loop
        of ``M`` decoder steps instead of two, which is most of the cost for small models on a
        CPU. Greedy rows stay EOS after their first EOS, and ``N`` stops where every row has
        finished, as `decode` does. Runs in the module's current mode (eval for validation).
        """
        batch, steps = y.shape
        state = self.encode(x, lengths=lengths)
        rows = torch.arange(batch, device=y.device)
        state = _select(state, torch.cat([rows, rows]))  # (2B, ...): forced, then greedy
        token = y.new_full((2 * batch,), self.config.bos_id)
        finished = torch.zeros(batch, dtype=torch.bool, device=y.device)
        logits, tokens = [], []
        for t in range(steps):
            step_logits, state, _ = self.step(token, state)  # (2B, V)
            logits.append(step_logits[:batch])
            own = step_logits[batch:].argmax(dim=-1).masked_fill(finished, self.config.eos_id)
            if not bool(finished.all()):  # decode stops once every row has finished
                tokens.append(own)
            finished = finished | (own == self.config.eos_id)
            token = torch.cat([y[:, t], own])
        return torch.stack(logits, dim=1), torch.stack(tokens, dim=1)

    @torch.no_grad()
    def decode(
        self,
        x: Tensor,
        *,
        lengths: Tensor | None = None,
        max_len: int,
        strategy: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 4,
        length_penalty: float = 0.0,
    ) -> Decoded:
        """Translate ``x`` ``(B, S)``: tokens ``(B, N)`` (EOS, then EOS padding), beam scores, and
        attention weights ``(B, N, S)`` (None without attention). Runs in eval mode."""
        check_positive(max_len=max_len)
        check_choice("strategy", strategy, ("greedy", "beam"))
        was_training = self.training
        self.eval()
        try:
            state = self.encode(x, lengths=lengths)
            bos = torch.full((x.shape[0],), self.config.bos_id, dtype=torch.long, device=x.device)
            first, state, first_w = self.step(bos, state)
            if strategy == "beam":
                return beam_search(
                    first,
                    state,
                    self.step,
                    _select,
                    beam_width=beam_width,
                    max_steps=max_len,
                    eos_id=self.config.eos_id,
                    first_aux=first_w,
                    length_penalty=length_penalty,
                )
            return decode_loop(
                first,
                state,
                self.step,
                pick=_argmax,
                max_steps=max_len,
                eos_id=self.config.eos_id,
                first_aux=first_w,
            )
        finally:
            self.train(was_training)


def _argmax(logits: Tensor) -> Tensor:
    return logits.argmax(dim=-1)


def _select(state: DecoderState, index: Tensor) -> DecoderState:
    return DecoderState(
        select_batch(state.rnn, index),
        state.feed.index_select(0, index),
        state.memory.index_select(0, index),
        state.mask.index_select(0, index),
        None if state.keys is None else state.keys.index_select(0, index),
    )
