"""Gate activations of one step, per gate type, for saturation statistics.

A sigmoid gate near 0 or 1 passes almost no gradient to its pre-activation (``σ' = σ(1 - σ)``),
so a large saturated fraction means gates that have stopped learning. The gates, in each cell's
packed order (``rnnkit.cells``):

- LSTM ``i, f, o`` (``g`` is the tanh candidate, not a gate);  GRU ``r, z``;
- minGRU ``z``;  minLSTM ``f, i`` (the raw sigmoids, before they are normalised to sum to one);
- Elman with tanh: ``tanh``, the state itself rescaled to ``(h + 1) / 2`` so that the same
  thresholds mean ``|h| > 0.9`` — tanh units that have stopped passing gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell, MinGRUCell, MinLSTMCell, RecurrentCell
from rnnkit.types import LSTMState, State

LOW, HIGH = 0.05, 0.95  # a gate outside [LOW, HIGH] counts as saturated


def gate_values(
    cell: RecurrentCell, xp: Tensor, state: State, noise: Tensor | None, h: Tensor
) -> dict[str, Tensor]:
    """Detached gate activations ``(B, H)`` of one step, by gate name; ``{}`` for unknown cells.

    ``xp`` is the step's projected input, ``state`` the previous state and ``h`` the new hidden
    state, as the cell's ``recur`` saw and returned them.
    """
    with torch.no_grad():
        if isinstance(cell, LSTMCell):
            assert isinstance(state, LSTMState)
            i, f, _, o = (xp + cell.project_hidden(state.h, noise)).chunk(4, dim=-1)
            return {"i": i.sigmoid(), "f": f.sigmoid(), "o": o.sigmoid()}
        if isinstance(cell, GRUCell):
            assert isinstance(state, Tensor)
            x_r, x_z, _ = xp.chunk(3, dim=-1)
            h_r, h_z, _ = cell.project_hidden(state, noise).chunk(3, dim=-1)
            return {"r": (x_r + h_r).sigmoid(), "z": (x_z + h_z).sigmoid()}
        if isinstance(cell, MinGRUCell):
            k, _ = xp.chunk(2, dim=-1)
            return {"z": k.sigmoid()}
        if isinstance(cell, MinLSTMCell):
            p_f, p_i, _ = xp.chunk(3, dim=-1)
            return {"f": p_f.sigmoid(), "i": p_i.sigmoid()}
        if isinstance(cell, ElmanCell) and cell.nonlinearity == "tanh":
            return {"tanh": (h.detach() + 1.0) / 2.0}
    return {}


def saturation(values: Tensor, *, low: float = LOW, high: float = HIGH) -> float:
    """The fraction of entries of ``values`` below ``low`` or above ``high``."""
    if values.numel() == 0:
        return float("nan")
    return float(((values < low) | (values > high)).float().mean())


def histogram(values: Tensor, *, bins: int = 20) -> Tensor:
    """Counts of ``values`` in ``bins`` equal bins over ``[0, 1]``."""
    return torch.histc(values.detach().float().clamp(0.0, 1.0), bins=bins, min=0.0, max=1.0)
