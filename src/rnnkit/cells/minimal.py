"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Their gates read ``x_t`` only, so a sequence is one linear recurrence ``h_t = a_t h_{t-1} + b_t``
run by ``rnnkit.scan`` in training, and by the one-step update when streaming. ``g`` keeps the
candidate positive so the scan can work in log space:
``g(x) = x + 0.5 if x >= 0 else sigmoid(x)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells._init import init_blocks
from rnnkit.cells.base import ScanCell
from rnnkit.scan import parallel_scan_log
from rnnkit.types import State


def g(x: Tensor) -> Tensor:
    """The positive activation of Feng et al.: ``x + 0.5`` for ``x >= 0``, else ``sigmoid(x)``."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """``log(g(x))`` without forming ``g`` (stable for very negative ``x``)."""
    # logsigmoid, not -softplus(-x): softplus returns its input past threshold=20, dropping
    # log1p(exp(-20)) ~ 2e-9, an error float64 can see.
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), F.logsigmoid(x))


class _MinimalCell(ScanCell):
    gates: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        input_init: str = "xavier_uniform",
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_init = input_init
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_blocks(self.weight_ih, self.gates, self.input_init, field="input_init")
        if self.bias_ih is not None:
            nn.init.zeros_(self.bias_ih)

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def _log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def scan(self, xp: Tensor, h0: Tensor) -> Tensor:
        log_a, log_b = self._log_coefficients(xp)  # (T, B, H) each
        return parallel_scan_log(log_a, log_b, h0)

    def recur(self, xp: Tensor, state: State, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        log_a, log_b = self._log_coefficients(xp)
        h = torch.exp(log_a) * state + torch.exp(log_b)
        return h, h

    def native_blocker(self) -> str | None:
        return f"{type(self).__name__} runs as a parallel scan, not a torch.nn kernel"

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class MinGRUCell(_MinimalCell):
    r"""minGRU: the GRU with both gates reading ``x_t`` only and no reset gate::

        k, u = W x_t + b                       (packed order: update pre-activation, candidate)
        z_t = sigmoid(k)                       h~_t = g(u)
        h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

    In log space ``log a_t = -softplus(k)``, ``log b_t = -softplus(-k) + log g(u)``.
    State: ``h`` ``(B, H)``.
    """

    kind = "mingru"
    gates = 2

    def _log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k, u = xp.chunk(2, dim=-1)
        return F.logsigmoid(-k), F.logsigmoid(k) + log_g(u)


class MinLSTMCell(_MinimalCell):
    r"""minLSTM: forget and input gates read ``x_t`` only and are normalised to sum to one::

        p_f, p_i, u = W x_t + b                (packed order: forget, input, candidate)
        f_t = sigmoid(p_f)    i_t = sigmoid(p_i)    h~_t = g(u)
        f'_t = f_t / (f_t + i_t)                i'_t = i_t / (f_t + i_t)
        h_t = f'_t * h_{t-1} + i'_t * h~_t

    In log space, with ``d = softplus(-p_f) - softplus(-p_i)``: ``log f' = -softplus(d)``,
    ``log i' = -softplus(-d)``. State: ``h`` ``(B, H)``.
    """

    kind = "minlstm"
    gates = 3

    def _log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        p_f, p_i, u = xp.chunk(3, dim=-1)
        d = F.logsigmoid(p_i) - F.logsigmoid(p_f)  # softplus(-p_f) - softplus(-p_i)
        return F.logsigmoid(-d), F.logsigmoid(d) + log_g(u)
