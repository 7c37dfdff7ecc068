"""The scripted time loop of one cell, for TorchScript export at any ``T``.

Each cell's masked step is traced once (``_MaskedStep``, shapes free) and a ``torch.jit.script``
loop runs it over however many steps arrive (``_Loop``); ``_LoopCall`` adapts it to the graphs'
state tuples.
"""

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells import RecurrentCell
from rnnkit.types import LSTMState


class _MaskedStep(nn.Module):
    """One step of one cell where ``m`` ``(B, 1)`` holds; elsewhere the state is kept, y = 0.
    Non-LSTM cells carry a dummy ``c`` (a copy of ``h``) so every loop has one signature."""

    def __init__(self, cell: RecurrentCell, lstm: bool) -> None:
        super().__init__()
        self.cell, self.lstm = cell, lstm

    def forward(self, xp: Tensor, m: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, new = self.cell.recur(xp, LSTMState(h, c) if self.lstm else h)
        nh, nc = (new.h, new.c) if isinstance(new, LSTMState) else (new, c)
        return torch.where(m, y, 0.0), torch.where(m, nh, h), torch.where(m, nc, c)


class _Loop(nn.Module):
    """The scripted time loop over a traced ``_MaskedStep``: ``xp`` ``(T, B, G*H)``."""

    def __init__(self, step: Any) -> None:
        super().__init__()
        self.step = step

    def forward(
        self, xp: Tensor, mask: Tensor, h: Tensor, c: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        ys: list[Tensor] = []
        for t in range(xp.size(0)):
            y, h, c = self.step(xp[t], mask[t], h, c)
            ys.append(y)
        return torch.stack(ys), h, c


class _LoopCall(nn.Module):
    """Adapts the scripted loop to the graph's state tuples ``(h,)`` or ``(h, c)``."""

    def __init__(self, loop: Any, n_state: int) -> None:
        super().__init__()
        self.loop, self.n_state = loop, n_state

    def forward(self, xp: Tensor, mask: Tensor, state: tuple[Tensor, ...]) -> Any:
        c = state[1] if self.n_state == 2 else state[0]
        ys, h, c = self.loop(xp, mask, state[0], c)
        return ys, ((h, c) if self.n_state == 2 else (h,))


def cell_loop(cell: RecurrentCell, n_state: int) -> nn.Module:
    """The scripted time loop of ``cell`` (see the module docstring)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = next(cell.parameters())
        xp = cell.project_input(torch.zeros(2, cell.input_size, dtype=p.dtype))
        s = cell.init_state(2, dtype=p.dtype)
        h, c = (s.h, s.c) if isinstance(s, LSTMState) else (s, s)
        m = torch.ones(2, 1, dtype=torch.bool)
        step = torch.jit.trace(_MaskedStep(cell, n_state == 2), (xp, m, h, c), check_trace=False)
        return _LoopCall(torch.jit.script(_Loop(step)), n_state)
