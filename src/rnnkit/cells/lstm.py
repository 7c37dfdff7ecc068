"""The LSTM cell, with projection, layer norm, recurrent dropout and zoneout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells._torch_layout import TorchLayoutCell
from rnnkit.types import LSTMState, State


def zoneout(prev: Tensor, new: Tensor, p: float, training: bool) -> Tensor:
    """Krueger et al. 2017: each unit keeps its previous value with probability ``p``; at
    evaluation the expectation ``p * prev + (1 - p) * new``.

    The keep mask is ``rand < p``: a plain uniform draw (about twice as fast as
    ``torch.bernoulli`` on the CPU) that the fused C++ path takes as its input, so both paths
    draw the same mask from the same seed."""
    if p == 0.0:
        return new
    if training:
        keep = (torch.rand_like(new) < p).to(new.dtype)
        return torch.lerp(new, prev, keep)
    return torch.lerp(new, prev, p)


class LSTMCell(TorchLayoutCell):
    r"""LSTM, one step, in torch.nn.LSTM's layout and packed gate order ``i, f, g, o``::

        i, f, g, o = (W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).chunk(4)
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = W_hr (sigmoid(o) * tanh(c_t))          W_hr only when proj_size > 0
        y_t = h_t

    Options (keyword-only):
    - ``proj_size`` P: LSTMP (Sak et al. 2014), ``h`` is ``(B, P)``; same weights as torch's.
    - ``layer_norm``: Ba et al. 2016 — ``LN(W_ih x) + LN(W_hh h) + b`` and
      ``h_t = o * tanh(LN(c_t))``.
    - ``recurrent_dropout`` p: Gal & Ghahramani 2016, a mask on ``h_{t-1}`` fixed over the
      sequence.
    - ``zoneout`` p: Krueger et al. 2017, on both ``c`` and ``h``.
    - ``forget_bias`` (default 1.0, Jozefowicz et al. 2015), ``recurrent_init`` (default
      "orthogonal"), ``input_init`` (default "xavier_uniform").

    State: ``LSTMState(h (B, P), c (B, H))``.
    """

    kind = "lstm"
    gates = 4
    native_op = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        proj_size: int = 0,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        zoneout: float = 0.0,
        forget_bias: float = 1.0,
        recurrent_init: str = "orthogonal",
        input_init: str = "xavier_uniform",
    ) -> None:
        if proj_size < 0 or proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be in [0, hidden_size={hidden_size}), got {proj_size}"
            )
        if not 0.0 <= zoneout < 1.0:
            raise ValueError(f"zoneout must be in [0, 1), got {zoneout}")
        super().__init__(
            input_size,
            hidden_size,
            bias=bias,
            state_size=proj_size or hidden_size,
            layer_norm=layer_norm,
            recurrent_dropout=recurrent_dropout,
            recurrent_dropout_shared=recurrent_dropout_shared,
            recurrent_init=recurrent_init,
            input_init=input_init,
        )
        self.proj_size = proj_size
        self.zoneout = zoneout
        self.forget_bias = forget_bias
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size))
        else:
            self.register_parameter("weight_hr", None)
        self.ln_c = nn.LayerNorm(hidden_size) if layer_norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias_ih is not None:
            with torch.no_grad():
                self.bias_ih[self.hidden_size : 2 * self.hidden_size].fill_(self.forget_bias)
        if self.weight_hr is not None:
            nn.init.xavier_uniform_(self.weight_hr)
        if self.ln_c is not None:
            self.ln_c.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> LSTMState:
        h = torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return LSTMState(h, c)

    def native_step(self, x: Tensor, state: State) -> tuple[Tensor, LSTMState]:
        assert isinstance(state, LSTMState)
        if self.weight_hr is not None:  # torch.lstm_cell has no projection
            return self.recur(self.project_input(x), state)
        h, c = torch.lstm_cell(
            x, [state.h, state.c], self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        )
        return h, LSTMState(h, c)

    def recur(
        self, xp: Tensor, state: State, noise: Tensor | None = None
    ) -> tuple[Tensor, LSTMState]:
        assert isinstance(state, LSTMState)
        gates = xp + self.project_hidden(state.h, noise)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * state.c + torch.sigmoid(i) * torch.tanh(g)
        c_out = c if self.ln_c is None else self.ln_c(c)
        h = torch.sigmoid(o) * torch.tanh(c_out)
        if self.weight_hr is not None:
            h = F.linear(h, self.weight_hr)
        c = zoneout(state.c, c, self.zoneout, self.training)
        h = zoneout(state.h, h, self.zoneout, self.training)
        return h, LSTMState(h, c)

    def native_blocker(self) -> str | None:
        if self.zoneout > 0:
            return "zoneout is not part of torch's fused kernel"
        return super().native_blocker()

    def native_params(self, noise: Tensor | None = None) -> list[Tensor]:
        params = super().native_params(noise)
        if self.weight_hr is not None:
            params.append(self.weight_hr)
        return params

    def extra_repr(self) -> str:
        extra = [super().extra_repr()]
        if self.proj_size:
            extra.append(f"proj_size={self.proj_size}")
        if self.zoneout:
            extra.append(f"zoneout={self.zoneout}")
        return ", ".join(extra)
