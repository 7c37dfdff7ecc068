"""The Elman RNN cell."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells._torch_layout import TorchLayoutCell
from rnnkit.types import State


class ElmanCell(TorchLayoutCell):
    r"""Elman RNN, one step, in torch.nn.RNN's layout::

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        act = tanh | relu
        y_t = h_t

    (``W_hy`` of ``y_t = W_hy h_t + b_y`` is the model's output head, not part of the cell.)

    **Arguments:** ``input_size`` I, ``hidden_size`` H; keyword-only ``nonlinearity`` ("tanh" or
    "relu"), ``bias``, ``layer_norm``, ``recurrent_dropout``, ``recurrent_init`` (default
    "orthogonal"; "identity" with relu gives the IRNN of Le et al. 2015), ``input_init``.
    State: ``h`` ``(B, H)``.
    """

    kind = "rnn"
    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        recurrent_init: str = "orthogonal",
        input_init: str = "xavier_uniform",
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size,
            hidden_size,
            bias=bias,
            layer_norm=layer_norm,
            recurrent_dropout=recurrent_dropout,
            recurrent_dropout_shared=recurrent_dropout_shared,
            recurrent_init=recurrent_init,
            input_init=input_init,
        )
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    @property
    def native_op(self) -> str:
        return f"rnn_{self.nonlinearity}"

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def native_step(self, x: Tensor, state: State) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        op = torch.rnn_tanh_cell if self.nonlinearity == "tanh" else torch.rnn_relu_cell
        h = op(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h, h

    def recur(self, xp: Tensor, state: State, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        pre = xp + self.project_hidden(state, noise)
        h = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
        return h, h
