"""The GRU cell, in PyTorch's formulation so weights load from torch.nn.GRU."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells._torch_layout import TorchLayoutCell
from rnnkit.cells.lstm import zoneout as _zoneout
from rnnkit.types import State


class GRUCell(TorchLayoutCell):
    r"""GRU, one step, as in torch.nn.GRU (Cho et al. 2014 with the reset gate applied to
    ``W_hn h + b_hn``, not to ``h`` before the product); packed gate order ``r, z, n``::

        x_r, x_z, x_n = W_ih x_t + b_ih          h_r, h_z, h_n = W_hh h_{t-1} + b_hh
        r = sigmoid(x_r + h_r)                   z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * h_n)
        h_t = (1 - z) * n + z * h_{t-1}          y_t = h_t

    Options (keyword-only): ``layer_norm`` (``LN(W_ih x)`` and ``LN(W_hh h)`` before the biases),
    ``recurrent_dropout`` (a mask on ``h_{t-1}`` inside ``W_hh h``, fixed over the sequence),
    ``zoneout``, ``recurrent_init`` (default "orthogonal"), ``input_init`` (default
    "xavier_uniform"). State: ``h`` ``(B, H)``.
    """

    kind = "gru"
    gates = 3
    native_op = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        zoneout: float = 0.0,
        recurrent_init: str = "orthogonal",
        input_init: str = "xavier_uniform",
    ) -> None:
        if not 0.0 <= zoneout < 1.0:
            raise ValueError(f"zoneout must be in [0, 1), got {zoneout}")
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
        self.zoneout = zoneout
        self.reset_parameters()

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
        h = torch.gru_cell(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h, h

    def recur(self, xp: Tensor, state: State, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        x_r, x_z, x_n = xp.chunk(3, dim=-1)
        h_r, h_z, h_n = self.project_hidden(state, noise).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = torch.lerp(n, state, z)  # (1 - z) * n + z * h_{t-1}
        h = _zoneout(state, h, self.zoneout, self.training)
        return h, h

    def native_blocker(self) -> str | None:
        if self.zoneout > 0:
            return "zoneout is not part of torch's fused kernel"
        return super().native_blocker()
