"""Helpers every model shares: input checks, masks, token/feature inputs, and state plumbing.

Models are batch first at their boundary: ``x`` is ``(B, T, I)`` features or ``(B, T)`` token ids,
``lengths`` ``(B,)`` int64 (the fields of :class:`rnnkit.types.Batch`).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from rnnkit.cells import CELL_NAMES
from rnnkit.recurrent import Recurrent
from rnnkit.types import LSTMState, State, detach_state, map_state  # noqa: F401 (re-exported)

CELLS = CELL_NAMES  # the cell names a model config accepts


def check_positive(**values: int) -> None:
    """Raise ``ValueError`` naming the first value below 1."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_dropout(value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value}")


def check_lengths(lengths: Tensor | None, *, batch: int, steps: int) -> None:
    """Check ``lengths`` is ``(B,)`` integers in ``[1, T]``; None passes (all rows full length)."""
    if lengths is None:
        return
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor, got {lengths.dtype}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(
            f"lengths must lie in [1, {steps}] (the padded length), got min {int(lengths.min())} "
            f"and max {int(lengths.max())}"
        )


def lengths_mask(lengths: Tensor | None, *, batch: int, steps: int, device: torch.device) -> Tensor:
    """``(B, T)`` bool mask, True at real steps; all True when ``lengths`` is None."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    positions = torch.arange(steps, device=device)
    return positions[None, :] < lengths.to(device)[:, None]


def gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """Pick ``x[b, index[b]]`` from batch-first ``x`` ``(B, T, F)`` -> ``(B, F)``."""
    index = index.to(x.device).long().view(-1, 1, 1).expand(-1, 1, x.shape[-1])
    return x.gather(1, index).squeeze(1)


class Inputs(nn.Module):
    """Token ids through an embedding, or float features as they are.

    ``vocab_size`` set: ``x`` ``(B, T)`` integer ids -> ``(B, T, embedding_dim)``.
    ``vocab_size`` None: ``x`` ``(B, T, input_size)`` float -> unchanged.
    """

    def __init__(
        self,
        *,
        vocab_size: int | None,
        input_size: int | None,
        embedding_dim: int,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("set exactly one of vocab_size (token input) or input_size (features)")
        self.vocab_size = vocab_size
        self.input_size = input_size
        if vocab_size is not None:
            check_positive(vocab_size=vocab_size, embedding_dim=embedding_dim)
            self.embedding: nn.Embedding | None = nn.Embedding(
                vocab_size, embedding_dim, padding_idx=padding_idx
            )
            self.output_size = embedding_dim
        else:
            assert input_size is not None
            check_positive(input_size=input_size)
            self.embedding = None
            self.output_size = input_size

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is not None:
            if x.dim() != 2 or x.dtype.is_floating_point:
                raise ValueError(
                    f"token input must be (B, T) integer ids, got shape {tuple(x.shape)} "
                    f"dtype {x.dtype}"
                )
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.embedding.num_embeddings):
                raise ValueError(
                    f"token ids must lie in [0, {self.embedding.num_embeddings}), got min "
                    f"{int(x.min())} and max {int(x.max())}"
                )
            return self.embedding(x)  # (B, T, E)
        if x.dim() != 3 or not x.dtype.is_floating_point:
            raise ValueError(
                f"feature input must be (B, T, {self.input_size}) float, got shape "
                f"{tuple(x.shape)} dtype {x.dtype}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected {self.input_size} input features, got {x.shape[-1]}")
        return x


class EncoderConfig(Protocol):
    """The fields a config needs for ``sequence_encoder`` (classifier and tagger configs)."""

    # read-only properties, so a config whose field is a Literal of str still matches
    @property
    def vocab_size(self) -> int | None: ...
    @property
    def input_size(self) -> int | None: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def padding_idx(self) -> int | None: ...
    @property
    def cell(self) -> str: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def bidirectional(self) -> bool: ...
    @property
    def dropout(self) -> float: ...


def sequence_encoder(config: EncoderConfig) -> tuple[Inputs, Recurrent]:
    """Token or feature inputs and a batch-first ``Recurrent`` over them, as ``config`` says;
    dropout goes between stacked layers only (a single layer has none to apply)."""
    inputs = Inputs(
        vocab_size=config.vocab_size,
        input_size=config.input_size,
        embedding_dim=config.embedding_dim,
        padding_idx=config.padding_idx,
    )
    rnn = Recurrent(
        config.cell,
        inputs.output_size,
        config.hidden_size,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout if config.num_layers > 1 else 0.0,
        batch_first=True,
    )
    return inputs, rnn


def state_hidden(state: State) -> Tensor:
    """The hidden tensor ``(L*D, B, P)`` of a layer state (``h`` for an LSTM)."""
    return state.h if isinstance(state, LSTMState) else state


def final_hidden(state: State, *, directions: int) -> Tensor:
    """The top layer's final hidden state, directions concatenated: ``(B, D*P)``."""
    h = state_hidden(state)[-directions:]  # (D, B, P)
    return h.transpose(0, 1).reshape(h.shape[1], -1)


def select_batch(state: State, index: Tensor) -> State:
    """Reorder or repeat the batch axis (dim 1) of a layer state by ``index`` ``(B',)``."""
    return map_state(state, lambda t: t.index_select(1, index))
