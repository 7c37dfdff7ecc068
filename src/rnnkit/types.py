"""Shapes, named states and the batch type shared by every part of rnnkit.

Shape glossary, used in every docstring and shape comment:

    B  batch size            T  time steps (sequence length)
    I  input features        H  hidden size
    P  projected size (LSTM proj_size; P = H when there is no projection)
    G  gates per cell (Elman 1, GRU 3, LSTM 4)
    D  directions (1, or 2 when bidirectional)
    L  stacked layers

Tensors are time-major ``(T, B, ·)`` inside the library; ``batch_first=True`` layers take and return
``(B, T, ·)`` and transpose once at the boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeAlias

from torch import Tensor


class LSTMState(NamedTuple):
    """The state of an LSTM: hidden ``h`` and cell ``c``.

    For one cell ``(B, P)`` and ``(B, H)``; for a layer ``(L*D, B, P)`` and ``(L*D, B, H)``,
    the layout of ``torch.nn.LSTM``'s ``(h_n, c_n)``.
    """

    h: Tensor
    c: Tensor


State: TypeAlias = Tensor | LSTMState
"""A cell's or layer's recurrent state: one tensor (Elman, GRU, minGRU, minLSTM) or an LSTMState."""


# The state helpers live here, once, so every layer (recurrent, models, diagnostics, train) shares
# them without importing upwards.
def map_state(state: State, fn: Callable[[Tensor], Tensor]) -> State:
    """Apply ``fn`` to every tensor of ``state``."""
    if isinstance(state, LSTMState):
        return LSTMState(fn(state.h), fn(state.c))
    return fn(state)


def detach_state(state: State) -> State:
    """A copy of ``state`` cut from the autograd graph (truncated BPTT, generation, recording)."""
    return map_state(state, lambda t: t.detach())


def state_tensors(state: State | None) -> list[Tensor]:
    """``state`` as a plain list (``[]``, ``[h]`` or ``[h, c]``), for checkpoints and reductions."""
    if state is None:
        return []
    return [state.h, state.c] if isinstance(state, LSTMState) else [state]


def state_from_tensors(tensors: list[Tensor]) -> State | None:
    """The inverse of `state_tensors`."""
    if not tensors:
        return None
    return LSTMState(tensors[0], tensors[1]) if len(tensors) == 2 else tensors[0]


@dataclass
class Batch:
    """A padded batch of variable-length sequences.

    **Fields:**
    - ``x``: ``(B, T, I)`` float features or ``(B, T)`` integer token ids, padded after each length.
    - ``lengths``: ``(B,)`` int64, the number of real steps of each sequence.
    - ``y``: targets shaped by the task (``(B,)`` classification, ``(B, T, ·)`` tagging), or None.
    - ``mask``: ``(B, T)`` bool, True at real steps; derived from ``lengths`` when not given.
    - ``covariates``: ``(B, T + horizon, C)`` known features of a forecasting window, or None.
    """

    x: Tensor
    lengths: Tensor
    y: Tensor | None = None
    mask: Tensor | None = field(default=None)
    covariates: Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask is None:
            import torch

            steps = torch.arange(self.x.shape[1], device=self.lengths.device)
            self.mask = steps[None, :] < self.lengths[:, None]

    def to(self, device: str | object) -> Batch:
        """Return a copy with every tensor moved to ``device``."""
        return Batch(
            x=self.x.to(device),  # type: ignore[arg-type]
            lengths=self.lengths.to(device),  # type: ignore[arg-type]
            y=None if self.y is None else self.y.to(device),  # type: ignore[arg-type]
            mask=None if self.mask is None else self.mask.to(device),  # type: ignore[arg-type]
            covariates=None if self.covariates is None else self.covariates.to(device),  # type: ignore[arg-type]
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])
