"""Padding never leaks: with random lengths and garbage (NaN, inf, huge) past each length, outputs,
final states and gradients of real steps equal running each sequence alone, unpadded; outputs past
the lengths are exactly zero. For every cell and path, time-major and batch-first."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnkit import LSTMState, Recurrent

F64 = torch.float64
I, H = 2, 3  # noqa: E741 (the shape glossary's I)

CASES: dict[str, dict[str, Any]] = {
    "rnn": {"cell": "rnn", "nonlinearity": "relu"},
    "lstm": {"cell": "lstm"},
    "lstm_proj": {"cell": "lstm", "proj_size": 2},
    "gru": {"cell": "gru"},
    "mingru": {"cell": "mingru"},
    "minlstm": {"cell": "minlstm"},
    "lstm_layer_norm": {"cell": "lstm", "layer_norm": True},
    "gru_layer_norm": {"cell": "gru", "layer_norm": True},
}


def _flat(state: Any) -> list[torch.Tensor]:
    return list(state) if isinstance(state, LSTMState) else [state]


def _slice_state(state: Any, b: int) -> Any:
    if isinstance(state, LSTMState):
        return LSTMState(state.h[:, b : b + 1], state.c[:, b : b + 1])
    return state[:, b : b + 1]


@pytest.mark.parametrize("force_loop", [False, True], ids=["fast", "loop"])
@pytest.mark.parametrize("case", list(CASES))
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    extra=st.integers(0, 2),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    garbage=st.sampled_from([float("nan"), float("inf"), -1e30, 7.0]),
    seed=st.integers(0, 2**16),
)
def test_padding_never_leaks(
    case, force_loop, lengths, extra, num_layers, bidirectional, batch_first, garbage, seed
):
    torch.manual_seed(seed)
    options = dict(CASES[case])
    layer = Recurrent(
        options.pop("cell"),
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        force_loop=force_loop,
        **options,
    ).double()
    B, T = len(lengths), max(lengths) + extra
    lens = torch.tensor(lengths)
    x = torch.randn(T, B, I, dtype=F64)  # (T, B, I)
    real = torch.arange(T)[:, None] < lens[None, :]  # (T, B)
    x = torch.where(real[..., None], x, garbage)
    zeros = layer.init_state(B, dtype=F64)
    state = _flat(zeros)
    state = [torch.randn_like(s) for s in state]
    state = LSTMState(*state) if isinstance(zeros, LSTMState) else state[0]
    w_out = torch.randn(T, B, layer.output_size, dtype=F64)
    w_final = [torch.randn_like(s) for s in _flat(zeros)]

    # The padded batch.
    xb = (x.transpose(0, 1) if batch_first else x).clone().requires_grad_()
    out, final = layer(xb, state, lengths=lens)
    out_tm = out.transpose(0, 1) if batch_first else out  # (T, B, O)
    loss = (out_tm * w_out).sum() + sum(
        (s * w).sum() for s, w in zip(_flat(final), w_final, strict=True)
    )
    loss.backward()
    assert xb.grad is not None
    grad_x = xb.grad.transpose(0, 1) if batch_first else xb.grad  # (T, B, I)
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}

    assert torch.all(out_tm[~real] == 0), "outputs past the lengths must be exactly zero"
    assert torch.all(grad_x[~real] == 0), "padding must get no gradient"
    assert torch.isfinite(out).all() and torch.isfinite(grad_x).all()
    for s in _flat(final):
        assert torch.isfinite(s).all()

    # Each sequence alone, unpadded; parameter gradients add up over sequences.
    layer.zero_grad()
    for b, n in enumerate(lengths):
        xs = x[:n, b : b + 1].clone().requires_grad_()  # (n, 1, I)
        out_b, final_b = layer(xs.transpose(0, 1) if batch_first else xs, _slice_state(state, b))
        out_b = out_b.transpose(0, 1) if batch_first else out_b
        torch.testing.assert_close(out_tm[:n, b : b + 1], out_b, atol=1e-10, rtol=1e-10)
        for s, s_b in zip(_flat(final), _flat(final_b), strict=True):
            torch.testing.assert_close(s[:, b : b + 1], s_b, atol=1e-10, rtol=1e-10)
        loss_b = (out_b * w_out[:n, b : b + 1]).sum() + sum(
            (s * w[:, b : b + 1]).sum() for s, w in zip(_flat(final_b), w_final, strict=True)
        )
        loss_b.backward()
        assert xs.grad is not None
        torch.testing.assert_close(grad_x[:n, b : b + 1], xs.grad, atol=1e-10, rtol=1e-10)
    for name, p in layer.named_parameters():
        torch.testing.assert_close(
            grads[name], p.grad, atol=1e-10, rtol=1e-10, msg=lambda m, n=name: f"{n}: {m}"
        )
