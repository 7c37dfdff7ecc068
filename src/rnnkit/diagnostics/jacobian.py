"""The recurrent Jacobian ``J_t = ∂s_t/∂s_{t-1}`` of a cell along a sequence, and its spectrum.

``s`` is the whole recurrent state: ``h`` for Elman/GRU/minGRU/minLSTM, ``[h; c]`` for an LSTM
(so the ``c`` path, the one that carries long memories, counts). A gradient reaching back ``k``
steps is multiplied by ``J_t^T`` ``k`` times: singular values and spectral radius below one on
average mean it shrinks geometrically (vanishing), above one that it can grow (exploding).

For a plain tanh Elman cell ``J_t = diag(1 - h_t^2) W_hh``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnkit.cells import RecurrentCell
from rnnkit.types import LSTMState, State


@dataclass
class JacobianSpectrum:
    """Singular values and spectral radius of ``J_t`` at a set of steps.

    **Fields** (S = state size, N = steps analysed):
    - ``steps``: ``(N,)`` the time steps ``t`` analysed.
    - ``singular_values``: ``(N, S)`` descending, averaged over the sequences analysed.
    - ``spectral_radius``: ``(N,)`` ``max |eig(J_t)|``, averaged over the sequences.
    """

    steps: np.ndarray
    singular_values: np.ndarray
    spectral_radius: np.ndarray

    def summary(self) -> dict[str, float]:
        """Plain numbers: mean largest/smallest singular value and mean spectral radius."""
        sv = self.singular_values
        return {
            "sigma_max_mean": float(np.mean(sv[:, 0])) if sv.size else float("nan"),
            "sigma_min_mean": float(np.mean(sv[:, -1])) if sv.size else float("nan"),
            "spectral_radius_mean": float(np.mean(self.spectral_radius))
            if self.spectral_radius.size
            else float("nan"),
            # log-mean of sigma_max bounds how fast ||prod J_t|| can grow per step
            "log_sigma_max_mean": float(np.mean(np.log(np.maximum(sv[:, 0], 1e-30))))
            if sv.size
            else float("nan"),
        }


def _flat_state(state: State) -> Tensor:
    if isinstance(state, LSTMState):
        return torch.cat([state.h, state.c], dim=-1)
    return state


def _step_fn(
    cell: RecurrentCell, template: State, noise: Tensor | None
) -> Callable[[Tensor, Tensor], Tensor]:
    """``(xp (G*H,), s (S,)) -> s' (S,)`` for one unbatched sequence."""
    lstm = isinstance(template, LSTMState)
    split = template.h.shape[-1] if isinstance(template, LSTMState) else 0

    def f(xp: Tensor, s: Tensor) -> Tensor:
        state: State = LSTMState(s[:split], s[split:]) if lstm else s
        _, new = cell.recur(xp, state, noise)
        return _flat_state(new)

    return f


def step_jacobians(
    cell: RecurrentCell, xp: Tensor, state: State, noise: Tensor | None = None
) -> Tensor:
    """``∂s_t/∂s_{t-1}`` of one step for each sequence: ``xp (B, G*H)``, state ``(B, ·)`` ->
    ``(B, S, S)``. The cell runs in evaluation mode (no zoneout draw); ``noise`` is the recurrent
    dropout mask the step used, if any."""
    was_training = cell.training
    cell.eval()
    try:
        f = _step_fn(cell, state, None)
        s = _flat_state(state).detach()
        if noise is None:
            jac = torch.func.vmap(torch.func.jacrev(f, argnums=1))(xp.detach(), s)
        else:
            rows = []
            for b in range(s.shape[0]):
                fb = _step_fn(cell, state, noise[b % noise.shape[0]])
                rows.append(torch.func.jacrev(fb, argnums=1)(xp[b].detach(), s[b]))
            jac = torch.stack(rows)
    finally:
        cell.train(was_training)
    return jac.detach()  # (B, S, S)


def spectrum(
    cell: RecurrentCell,
    xps: list[Tensor],
    states: list[State],
    noise: list[Tensor | None] | None = None,
    *,
    max_steps: int = 32,
    samples: int = 2,
) -> JacobianSpectrum:
    """The spectrum of ``J_t`` at up to ``max_steps`` evenly spaced steps of a recorded sequence,
    for its first ``samples`` sequences (``xps[t]`` ``(B, G*H)``, ``states[t]`` = ``s_{t-1}``)."""
    T = len(xps)
    if T == 0:
        empty = np.zeros((0,))
        return JacobianSpectrum(empty.astype(int), np.zeros((0, 0)), empty)
    steps = np.unique(np.linspace(0, T - 1, num=min(T, max_steps)).round().astype(int))
    svs, radii = [], []
    for t in steps:
        state = states[t]
        xp = xps[t][:samples]
        st: State = (
            LSTMState(state.h[:samples], state.c[:samples])
            if isinstance(state, LSTMState)
            else state[:samples]
        )
        nz = None if noise is None or noise[t] is None else noise[t]
        if nz is not None:
            nz = nz[:samples]
        jac = step_jacobians(cell, xp, st, nz).double()  # (b, S, S)
        svs.append(torch.linalg.svdvals(jac).mean(0).cpu().numpy())
        radii.append(float(torch.linalg.eigvals(jac).abs().amax(-1).mean()))
    return JacobianSpectrum(steps, np.stack(svs), np.asarray(radii))
