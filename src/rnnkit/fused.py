"""The fused CPU path: whole time loops of one layer direction in C++ (``rnnkit/csrc``).

- ``FusedLSTM`` / ``FusedGRU``: LSTM and GRU with any mix of layer norm, per-sequence recurrent
  dropout and zoneout. Per step one GEMM and one pass over the batch; the backward one pass per step
  plus ``dh = dA W_hh``, and ``dW_hh`` as one GEMM after the loop. They take the input projection
  ``W_ih x`` bare: its layer norm and bias (``project_input``'s other two steps) happen row by row
  inside the per-step pass, and their backward inside the backward's, because as torch ops over
  the whole ``(T, B, G*H)`` projection they cost a fifth of an LN-LSTM's fwd+bwd (three more passes
  over it and three more buffers of its size, each a fresh allocation).
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
import torch.nn.functional as F
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
    """One LSTM layer direction from ``xw = W_ih x`` ``(T, B, 4H)``. Inputs after the first four
    are optional (None): ``b_ih``, ``g_ih`` (the input layer norm's gain; its presence turns the
    norm on), ``b_hh``, ``g_hh``, ``g_c``, ``b_c``."""

    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        g_ih: Tensor | None,
        b_hh: Tensor | None,
        g_hh: Tensor | None,
        g_c: Tensor | None,
        b_c: Tensor | None,
        noise: Tensor | None,
        zmask: Tensor | None,
        zoneout: float,
        lengths: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        args = (xw, h0, c0, w_hh, b_ih, g_ih, b_hh, g_hh, g_c, b_c)
        r = _ops().lstm_forward(*args, noise, zmask, zoneout, lengths, True)
        out, hT, cT = r[:3]
        ctx.save_for_backward(xw, w_hh, g_ih, g_hh, g_c, noise, zmask, lengths, *r[3:])
        ctx.zoneout = zoneout
        ctx.biases = (b_ih is not None, b_hh is not None)
        return out, hT, cT

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dhT: Tensor | None, dcT: Tensor | None) -> Any:
        xw, w_hh, g_ih, g_hh, g_c, noise, zmask, lengths, *saved = ctx.saved_tensors
        out_shape = (saved[0].shape[0], saved[0].shape[1], saved[0].shape[2])
        dy = torch.zeros(out_shape, dtype=w_hh.dtype) if dy is None else dy.contiguous()
        dhT = torch.zeros(out_shape[1:], dtype=w_hh.dtype) if dhT is None else dhT.contiguous()
        dcT = torch.zeros(out_shape[1:], dtype=w_hh.dtype) if dcT is None else dcT.contiguous()
        g = _ops().lstm_backward(
            dy, dhT, dcT, xw, w_hh, g_ih, g_hh, g_c, noise, zmask, ctx.zoneout, lengths, *saved
        )
        dxw, dh0, dc0, dw, db, dg, dgc, dbc, dgi = g
        # Both biases add to the gates as they are: one gradient, and a copy so that the two
        # parameters' .grad never share storage.
        has_bih, has_bhh = ctx.biases
        db_ih = None if not has_bih else db.clone() if has_bhh else db
        db_hh = db if has_bhh else None
        return dxw, dh0, dc0, dw, db_ih, dgi, db_hh, dg, dgc, dbc, None, None, None, None


class FusedGRU(torch.autograd.Function):
    """One GRU layer direction from ``xw = W_ih x`` ``(T, B, 3H)``; ``b_ih``, ``g_ih``, ``b_hh``,
    ``g_hh`` optional as in ``FusedLSTM``."""

    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        g_ih: Tensor | None,
        b_hh: Tensor | None,
        g_hh: Tensor | None,
        noise: Tensor | None,
        zmask: Tensor | None,
        zoneout: float,
        lengths: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        args = (xw, h0, w_hh, b_ih, g_ih, b_hh, g_hh)
        r = _ops().gru_forward(*args, noise, zmask, zoneout, lengths, True)
        out, hT = r[:2]
        ctx.save_for_backward(xw, w_hh, g_ih, g_hh, noise, zmask, lengths, *r[2:])
        ctx.zoneout = zoneout
        ctx.biases = (b_ih is not None, b_hh is not None)
        return out, hT

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dhT: Tensor | None) -> Any:
        xw, w_hh, g_ih, g_hh, noise, zmask, lengths, *saved = ctx.saved_tensors
        ht = saved[0]
        dy = torch.zeros_like(ht) if dy is None else dy.contiguous()
        dhT = torch.zeros_like(ht[0]) if dhT is None else dhT.contiguous()
        dxw, dh0, dw, db, dg, dbi, dgi = _ops().gru_backward(
            dy, dhT, xw, w_hh, g_ih, g_hh, noise, zmask, ctx.zoneout, lengths, *saved
        )
        has_bih, has_bhh = ctx.biases
        db_ih = dbi if has_bih else None
        db_hh = db if has_bhh else None
        return dxw, dh0, dw, db_ih, dgi, db_hh, dg, None, None, None, None


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
    assert isinstance(cell, LSTMCell | GRUCell)
    T, B = x.shape[0], x.shape[1]
    # (T, B, G*H): the bare product; LN_ih and b_ih are applied in the per-step pass.
    xw = F.linear(x, cell.weight_ih).contiguous()
    noise = cell.sample_noise(B, device=x.device, dtype=x.dtype) if training else None
    lens = None if lengths is None else lengths.to(device="cpu", dtype=torch.long).contiguous()
    inputs = (_opt(cell.bias_ih), _opt(None if cell.ln_ih is None else cell.ln_ih.weight))
    recurrent = (_opt(cell.bias_hh), _opt(None if cell.ln_hh is None else cell.ln_hh.weight))
    ops = _ops()
    if isinstance(cell, LSTMCell):
        assert isinstance(state, LSTMState)
        zmask = _zoneout_draws(cell, T, B, x, 2)
        g_c = None if cell.ln_c is None else cell.ln_c.weight
        b_c = None if cell.ln_c is None else cell.ln_c.bias
        args = (
            xw,
            state.h.contiguous(),
            state.c.contiguous(),
            cell.weight_hh.contiguous(),
            *inputs,
            *recurrent,
            _opt(g_c),
            _opt(b_c),
            _opt(noise),
            zmask,
            float(cell.zoneout),
            lens,
        )
        if _needs_grad(*args[:10]):
            out, h, c = FusedLSTM.apply(*args)
        else:
            out, h, c = ops.lstm_forward(*args, False)
        return out, LSTMState(h, c)
    assert isinstance(state, Tensor)
    zmask = _zoneout_draws(cell, T, B, x, 1)
    args_g = (
        xw,
        state.contiguous(),
        cell.weight_hh.contiguous(),
        *inputs,
        *recurrent,
        _opt(noise),
        zmask,
        float(cell.zoneout),
        lens,
    )
    if _needs_grad(*args_g[:7]):
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
