"""Parameters in torch.nn.RNN/LSTM/GRU's own layout, shared by the Elman, LSTM and GRU cells.

Keeping ``weight_ih (G*H, I)``, ``weight_hh (G*H, P)``, ``bias_ih``, ``bias_hh`` (and ``weight_hr
(P, H)``) with torch's names and gate order means weights load from ``torch.nn`` modules unchanged
and the same tensors feed torch's fused kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells._init import init_blocks
from rnnkit.cells.base import RecurrentCell


class TorchLayoutCell(RecurrentCell):
    """Parameters, initialisation, recurrent dropout and layer norm of the torch-style cells."""

    gates: int  # G, set by each subclass

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        state_size: int | None = None,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        recurrent_init: str = "orthogonal",
        input_init: str = "xavier_uniform",
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}"
            )
        if not 0.0 <= recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout must be in [0, 1), got {recurrent_dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.layer_norm = layer_norm
        self.recurrent_dropout = recurrent_dropout
        self.recurrent_dropout_shared = recurrent_dropout_shared
        self.recurrent_init = recurrent_init
        self.input_init = input_init
        rec = hidden_size if state_size is None else state_size  # columns of W_hh
        g = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, rec))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(g))
            self.bias_hh = nn.Parameter(torch.empty(g))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        # Ba et al. 2016: input and recurrent contributions normalised separately, so the input one
        # stays time-parallel; the gate biases stay the cell's own biases.
        self.ln_ih = nn.LayerNorm(g, bias=False) if layer_norm else None
        self.ln_hh = nn.LayerNorm(g, bias=False) if layer_norm else None

    def reset_parameters(self) -> None:
        """Input weights ``input_init`` and recurrent weights ``recurrent_init`` per gate block;
        biases zero; layer-norm gains one."""
        init_blocks(self.weight_ih, self.gates, self.input_init, field="input_init")
        init_blocks(self.weight_hh, self.gates, self.recurrent_init, field="recurrent_init")
        if self.bias_ih is not None and self.bias_hh is not None:
            nn.init.zeros_(self.bias_ih)
            nn.init.zeros_(self.bias_hh)
        for ln in (self.ln_ih, self.ln_hh):
            if ln is not None:
                ln.reset_parameters()

    @property
    def _state_width(self) -> int:
        return int(self.weight_hh.shape[1])

    def project_input(self, x: Tensor) -> Tensor:
        if self.ln_ih is None:
            return F.linear(x, self.weight_ih, self.bias_ih)
        return self.ln_ih(F.linear(x, self.weight_ih)) + self._bias_ih()

    def _bias_ih(self) -> Tensor | float:
        return 0.0 if self.bias_ih is None else self.bias_ih

    def project_hidden(self, h: Tensor, noise: Tensor | None) -> Tensor:
        """The recurrent half of the gate pre-activations, ``W_hh (h * mask) + b_hh``."""
        if noise is not None:
            h = h * noise
        if self.ln_hh is None:
            return F.linear(h, self.weight_hh, self.bias_hh)
        hh = self.ln_hh(F.linear(h, self.weight_hh))
        return hh if self.bias_hh is None else hh + self.bias_hh

    def sample_noise(
        self, batch_size: int, *, device: torch.device, dtype: torch.dtype
    ) -> Tensor | None:
        """Gal & Ghahramani (2016): one Bernoulli mask on ``h_{t-1}`` per sequence, scaled by
        ``1/(1-p)``; with ``recurrent_dropout_shared`` the mask is shared by the whole batch."""
        p = self.recurrent_dropout
        if p == 0.0:
            return None
        rows = 1 if self.recurrent_dropout_shared else batch_size
        keep = torch.full((rows, self._state_width), 1.0 - p, device=device, dtype=dtype)
        return torch.bernoulli(keep) / (1.0 - p)

    def native_blocker(self) -> str | None:
        if self.layer_norm:
            return "layer_norm=True is not part of torch's fused kernel"
        if self.recurrent_dropout > 0 and self.training and not self.recurrent_dropout_shared:
            return (
                "recurrent_dropout with a per-sequence mask (set recurrent_dropout_shared=True to "
                "keep the fused kernel: one mask per batch, applied to W_hh's columns)"
            )
        return None

    def native_params(self, noise: Tensor | None = None) -> list[Tensor]:
        """``[weight_ih, weight_hh, bias_ih, bias_hh]`` as torch's fused kernel takes them; a
        batch-shared recurrent-dropout mask is folded into ``weight_hh``'s columns."""
        w_hh = self.weight_hh if noise is None else self.weight_hh * noise
        params = [self.weight_ih, w_hh]
        if self.bias_ih is not None and self.bias_hh is not None:
            params += [self.bias_ih, self.bias_hh]
        return params

    def extra_repr(self) -> str:
        opts = [f"{self.input_size}, {self.hidden_size}"]
        if not self.bias:
            opts.append("bias=False")
        if self.layer_norm:
            opts.append("layer_norm=True")
        if self.recurrent_dropout:
            opts.append(f"recurrent_dropout={self.recurrent_dropout}")
        return ", ".join(opts)
