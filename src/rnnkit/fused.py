"""The fused CPU path: whole time loops of one layer direction in C++ (``rnnkit/csrc``).

- ``FusedLSTM`` / ``FusedGRU``: LSTM and GRU with any mix of layer norm, per-sequence recurrent
  dropout and zoneout. Per step one GEMM and one pass over the batch; the backward one pass per step
  plus ``dh = dA W_hh``, and ``dW_hh`` as one GEMM after the loop.
- ``MinScan``: minGRU/minLSTM's ``h_t = a_t h_{t-1} + b_t`` with the coefficients computed from the
  projected input inside the pass: one forward pass, one reverse pass for the backward.

The reference loop stays the definition: masks are drawn here in exactly the order and shape the
loop draws them (recurrent-dropout mask first, then per step the zoneout uniforms of ``c`` then
of ``h``; one draw of ``(T, K, B, H)`` consumes the generator as ``T*K`` draws of ``(B, H)`` do),
so a seed gives the same masks on either path. Each runner returns ``None`` when its cell is not one
this path computes, and ``fusable`` says why.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit import _ext
from rnnkit.cells import GRUCell, LSTMCell, MinGRUCell, MinLSTMCell, RecurrentCell
from rnnkit.types import LSTMState, State


def fusable(cell: RecurrentCell, x_like: Tensor) -> str | None:
    """None when the fused C++ path computes ``cell`` on tensors like ``x_like``; else why not."""
    if type(cell) not in (LSTMCell, GRUCell, MinGRUCell, MinLSTMCell):
        return f"{type(cell).__name__} has no fused C++ loop"
    if isinstance(cell, LSTMCell) and cell.proj_size:
        return "proj_size > 0 has no fused C++ loop"
    if x_like.device.type != "cpu":
        return "the fused C++ loop is CPU-only"
    if x_like.dtype not in (torch.float32, torch.float64):
        return f"the fused C++ loop takes float32/float64, not {x_like.dtype}"
    if _ext.ops() is None:
        return _ext.reason()
    return None


def _ops() -> Any:
    """``torch.ops.rnnkit``; only called on a path that ``fusable`` admitted."""
    ops = _ext.ops()
    if ops is None:
        raise RuntimeError(f"rnnkit's fused path ran without its extension: {_ext.reason()}")
    return ops


def _opt(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.contiguous()


def _zoneout_draws(cell: LSTMCell | GRUCell, T: int, B: int, like: Tensor, k: int) -> Tensor | None:
    """Training-mode zoneout uniforms ``(T, k, B, H)`` (kept where ``< p``), drawn as the loop
    draws them."""
    if not (cell.training and cell.zoneout > 0):
        return None
    return torch.rand((T, k, B, cell.hidden_size), dtype=like.dtype)


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class FusedLSTM(torch.autograd.Function):
    """One LSTM layer direction. Inputs after the first five are optional (None)."""

    @staticmethod
    def forward(
        ctx: Any,
        xp: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        b_hh: Tensor | None,
        g_hh: Tensor | None,
        g_c: Tensor | None,
        b_c: Tensor | None,
        noise: Tensor | None,
        zmask: Tensor | None,
        zoneout: float,
        lengths: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        ops = _ops()
        r = ops.lstm_forward(
            xp, h0, c0, w_hh, b_hh, g_hh, g_c, b_c, noise, zmask, zoneout, lengths, True
        )
        out, hT, cT = r[:3]
        ctx.save_for_backward(w_hh, g_hh, g_c, noise, zmask, lengths, *r[3:])
        ctx.zoneout = zoneout
        return out, hT, cT

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dhT: Tensor | None, dcT: Tensor | None) -> Any:
        w_hh, g_hh, g_c, noise, zmask, lengths, *saved = ctx.saved_tensors
        out_shape = (saved[0].shape[0], saved[0].shape[1], saved[0].shape[2])
        dy = torch.zeros(out_shape, dtype=w_hh.dtype) if dy is None else dy.contiguous()
        dhT = torch.zeros(out_shape[1:], dtype=w_hh.dtype) if dhT is None else dhT.contiguous()
        dcT = torch.zeros(out_shape[1:], dtype=w_hh.dtype) if dcT is None else dcT.contiguous()
        g = _ops().lstm_backward(
            dy, dhT, dcT, w_hh, g_hh, g_c, noise, zmask, ctx.zoneout, lengths, *saved
        )
        dxp, dh0, dc0, dw, db, dg, dgc, dbc = g
        return dxp, dh0, dc0, dw, db, dg, dgc, dbc, None, None, None, None


class FusedGRU(torch.autograd.Function):
    """One GRU layer direction."""

    @staticmethod
    def forward(
        ctx: Any,
        xp: Tensor,
        h0: Tensor,
        w_hh: Tensor,
        b_hh: Tensor | None,
        g_hh: Tensor | None,
        noise: Tensor | None,
        zmask: Tensor | None,
        zoneout: float,
        lengths: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        r = _ops().gru_forward(xp, h0, w_hh, b_hh, g_hh, noise, zmask, zoneout, lengths, True)
        out, hT = r[:2]
        ctx.save_for_backward(w_hh, g_hh, noise, zmask, lengths, *r[2:])
        ctx.zoneout = zoneout
        return out, hT

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dhT: Tensor | None) -> Any:
        w_hh, g_hh, noise, zmask, lengths, *saved = ctx.saved_tensors
        ht = saved[0]
        dy = torch.zeros_like(ht) if dy is None else dy.contiguous()
        dhT = torch.zeros_like(ht[0]) if dhT is None else dhT.contiguous()
        dxp, dh0, dw, db, dg = _ops().gru_backward(
            dy, dhT, w_hh, g_hh, noise, zmask, ctx.zoneout, lengths, *saved
        )
        return dxp, dh0, dw, db, dg, None, None, None, None


class MinScan(torch.autograd.Function):
    """minGRU (``gates`` 2) or minLSTM (3): all states from the projected input ``(T, B, G*H)``."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, h0: Tensor, gates: int) -> Tensor:
        out = _ops().min_scan_forward(xp, h0, gates)
        ctx.save_for_backward(xp, h0, out)
        ctx.gates = gates
        return out

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> Any:
        xp, h0, out = ctx.saved_tensors
        dxp, dh0 = _ops().min_scan_backward(dy.contiguous(), xp, h0, out, ctx.gates)
        return dxp, dh0, None


def run_cell(
    cell: RecurrentCell, x: Tensor, state: State, lengths: Tensor | None, training: bool
) -> tuple[Tensor, State]:
    """One layer direction of an LSTM or GRU cell over ``x`` ``(T, B, I)``, as ``_run_loop``
    computes it: outputs ``(T, B, H)`` (zero past each length) and the state at each length."""
    T, B = x.shape[0], x.shape[1]
    xp = cell.project_input(x).contiguous()  # (T, B, G*H), LN_ih and b_ih included
    assert isinstance(cell, LSTMCell | GRUCell)
    noise = cell.sample_noise(B, device=x.device, dtype=x.dtype) if training else None
    lens = None if lengths is None else lengths.to(device="cpu", dtype=torch.long).contiguous()
    b_hh = cell.bias_hh
    g_hh = None if cell.ln_hh is None else cell.ln_hh.weight
    ops = _ops()
    if isinstance(cell, LSTMCell):
        assert isinstance(state, LSTMState)
        zmask = _zoneout_draws(cell, T, B, x, 2)
        g_c = None if cell.ln_c is None else cell.ln_c.weight
        b_c = None if cell.ln_c is None else cell.ln_c.bias
        args = (
            xp,
            state.h.contiguous(),
            state.c.contiguous(),
            cell.weight_hh.contiguous(),
            _opt(b_hh),
            _opt(g_hh),
            _opt(g_c),
            _opt(b_c),
            _opt(noise),
            zmask,
            float(cell.zoneout),
            lens,
        )
        if _needs_grad(*args[:8]):
            out, h, c = FusedLSTM.apply(*args)
        else:
            out, h, c = ops.lstm_forward(*args, False)
        return out, LSTMState(h, c)
    assert isinstance(state, Tensor)
    zmask = _zoneout_draws(cell, T, B, x, 1)
    args_g = (
        xp,
        state.contiguous(),
        cell.weight_hh.contiguous(),
        _opt(b_hh),
        _opt(g_hh),
        _opt(noise),
        zmask,
        float(cell.zoneout),
        lens,
    )
    if _needs_grad(*args_g[:5]):
        out, h = FusedGRU.apply(*args_g)
    else:
        out, h = ops.gru_forward(*args_g, False)
    return out, h


def run_scan(cell: RecurrentCell, x: Tensor, h0: Tensor) -> Tensor:
    """All states ``(T, B, H)`` of a minGRU/minLSTM cell over ``x`` ``(T, B, I)``."""
    gates = 2 if isinstance(cell, MinGRUCell) else 3
    xp = cell.project_input(x).contiguous()
    h0 = h0.contiguous()
    if _needs_grad(xp, h0):
        out: Tensor = MinScan.apply(xp, h0, gates)
        return out
    result: Tensor = _ops().min_scan_forward(xp, h0, gates)
    return result
