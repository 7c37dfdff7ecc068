"""The cell contract: one time step ``(x_t, state) -> (y_t, state)``.

A cell owns its parameters and its equations and knows nothing about sequences. To let the layer
run the input half of every equation for all time steps in one matrix product, a step is split in
two:

    xp = cell.project_input(x)          # (..., I) -> (..., G*H): W_ih x (+ biases); time-parallel
    y_t, s_t = cell.recur(xp_t, s_{t-1}) # the recurrent half, one step

``cell(x_t, state)`` is the two together. The layer (``rnnkit.Recurrent``) owns time, direction,
lengths and stacking, and picks the fast path; a cell only declares what it can be run by:

- ``native_blocker()`` is None when torch's fused kernel (``torch.lstm``/``gru``/``rnn_*``) computes
  exactly this cell from its own parameter tensors, else the reason it cannot;
- cells with input-only gates (minGRU, minLSTM) subclass ``ScanCell`` and add ``scan``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from rnnkit.types import State


class RecurrentCell(nn.Module, ABC):
    """Base class of every rnnkit cell.

    **Attributes:**
    - ``input_size`` (I), ``hidden_size`` (H).
    - ``output_size``: the size of ``y_t`` and of the state's ``h`` (P for LSTM with projection,
      else H).
    - ``kind``: the family name used by ``Recurrent("kind", ...)``.
    """

    kind: ClassVar[str]
    input_size: int
    hidden_size: int

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @abstractmethod
    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """Zeros shaped like this cell's state for ``batch_size`` sequences."""

    @abstractmethod
    def project_input(self, x: Tensor) -> Tensor:
        """The input half of the update for any leading shape: ``(..., I) -> (..., G*H)``."""

    @abstractmethod
    def recur(self, xp: Tensor, state: State, noise: Tensor | None = None) -> tuple[Tensor, State]:
        """One step from a projected input ``xp`` ``(B, G*H)``: returns ``(y_t (B, O), new state)``.

        ``noise`` is the recurrent-dropout mask from ``sample_noise``, fixed over one sequence.
        """

    def sample_noise(
        self, batch_size: int, *, device: torch.device, dtype: torch.dtype
    ) -> Tensor | None:
        """A recurrent-dropout mask for one sequence (training only), or None."""
        return None

    def native_blocker(self) -> str | None:
        """None when torch's fused kernel computes this cell exactly; else the reason it cannot."""
        return f"{type(self).__name__} has no fused torch kernel"

    def native_params(self, noise: Tensor | None = None) -> list[Tensor]:
        """The parameter tensors in the order torch's fused kernel takes them."""
        raise NotImplementedError(f"{type(self).__name__} has no fused torch kernel")

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step. ``x`` is ``(B, I)``; ``state`` defaults to zeros. Returns ``(y_t, state)``.

        Called alone in training mode, a cell with recurrent dropout draws a fresh mask for this
        step; the ``Recurrent`` layer draws one per sequence.
        """
        if state is None:
            state = self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        noise = (
            self.sample_noise(x.shape[0], device=x.device, dtype=x.dtype) if self.training else None
        )
        if noise is None and self.native_blocker() is None:
            return self.native_step(x, state)
        return self.recur(self.project_input(x), state, noise)

    def native_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step through torch's fused cell kernel (``torch.lstm_cell`` & co.); exactly
        ``recur(project_input(x), state)`` for a cell whose ``native_blocker()`` is None."""
        raise NotImplementedError(f"{type(self).__name__} has no fused torch cell kernel")


class ScanCell(RecurrentCell):
    """A cell whose update is linear in the state, ``h_t = a_t * h_{t-1} + b_t``, with ``a_t, b_t``
    functions of ``x_t`` alone, so a whole sequence is one parallel scan."""

    @abstractmethod
    def scan(self, xp: Tensor, h0: Tensor) -> Tensor:
        """All hidden states at once: ``xp`` ``(T, B, G*H)``, ``h0`` ``(B, H)`` -> ``(T, B, H)``."""
