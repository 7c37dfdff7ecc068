"""Parity with torch.nn.RNN/LSTM/GRU: weights copied in; outputs, final states and the gradients of
every parameter and of the input agree, on the fused-kernel path and on the reference loop."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import LSTMState, Recurrent

I, H, P, T, B = 3, 5, 2, 5, 3  # noqa: E741 (the shape glossary's I)
LENGTHS = [5, 2, 4]  # one full-length sequence, the rest padded, unsorted
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}

# name -> (torch module factory, rnnkit cell name, rnnkit cell options)
KINDS: dict[str, tuple[type[nn.RNNBase], str, dict[str, Any]]] = {
    "rnn_tanh": (nn.RNN, "rnn", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, "rnn", {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, "lstm", {}),
    "lstm_proj": (nn.LSTM, "lstm", {"proj_size": P}),
    "gru": (nn.GRU, "gru", {}),
}


def make_pair(
    kind: str,
    *,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    force_loop: bool,
    bias: bool = True,
    dtype: torch.dtype = torch.float64,
) -> tuple[nn.RNNBase, Recurrent]:
    """A torch.nn module and an rnnkit layer holding the same weights."""
    torch_cls, cell, options = KINDS[kind]
    ref = torch_cls(
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        **options,
    ).to(dtype)
    ours = Recurrent(
        cell,
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        force_loop=force_loop,
        bias=bias,
        **options,
    ).to(dtype)
    for name, param in ref.named_parameters():
        cell_index, field = cell_param(name, 2 if bidirectional else 1)
        with torch.no_grad():
            getattr(ours.cells[cell_index], field).copy_(param)
    return ref, ours


def cell_param(torch_name: str, directions: int) -> tuple[int, str]:
    """``weight_hh_l1_reverse`` -> (cell index ``layer * D + direction``, ``weight_hh``)."""
    field, _, rest = torch_name.rpartition("_l")
    layer, _, reverse = rest.partition("_")
    return int(layer) * directions + (1 if reverse == "reverse" else 0), field


def run_torch(
    ref: nn.RNNBase, x: Tensor, state: Any, lengths: Tensor | None
) -> tuple[Tensor, list[Tensor]]:
    hx = tuple(state) if isinstance(state, LSTMState) else state
    if lengths is None:
        out, final = ref(x, hx)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=ref.batch_first, enforce_sorted=False)
        out, final = ref(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=ref.batch_first, total_length=T)
    return out, list(final) if isinstance(final, tuple) else [final]


def run_ours(
    layer: Recurrent, x: Tensor, state: Any, lengths: Tensor | None
) -> tuple[Tensor, list[Tensor]]:
    out, final = layer(x, state, lengths=lengths)
    return out, list(final) if isinstance(final, LSTMState) else [final]


def inputs(kind: str, layer: Recurrent, dtype: torch.dtype) -> tuple[Tensor, Any]:
    D = layer.num_directions
    shape = (B, T, I) if layer.batch_first else (T, B, I)
    x = torch.randn(shape, dtype=dtype)
    h = torch.randn(layer.num_layers * D, B, P if kind == "lstm_proj" else H, dtype=dtype)
    if kind.startswith("lstm"):
        return x, LSTMState(h, torch.randn(layer.num_layers * D, B, H, dtype=dtype))
    return x, h


def check_parity(ref: nn.RNNBase, ours: Recurrent, kind: str, with_lengths: bool, dtype) -> None:
    x, state = inputs(kind, ours, dtype)
    lengths = torch.tensor(LENGTHS) if with_lengths else None
    results = []
    for module, run in ((ref, run_torch), (ours, run_ours)):
        xr = x.clone().requires_grad_()
        module.zero_grad()
        out, final = run(module, xr, state, lengths)
        g = torch.Generator().manual_seed(1)
        loss = (out * torch.randn(out.shape, generator=g, dtype=dtype)).sum()
        for s in final:
            loss = loss + (s * torch.randn(s.shape, generator=g, dtype=dtype)).sum()
        loss.backward()
        results.append((out, final, xr.grad))
    tol = TOL[dtype]
    (out_t, final_t, gx_t), (out_o, final_o, gx_o) = results
    torch.testing.assert_close(out_o, out_t, atol=tol, rtol=tol)
    assert len(final_o) == len(final_t)
    for a, b in zip(final_o, final_t, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    torch.testing.assert_close(gx_o, gx_t, atol=tol, rtol=tol)
    D = 2 if ref.bidirectional else 1
    for name, param in ref.named_parameters():
        cell_index, field = cell_param(name, D)
        grad = getattr(ours.cells[cell_index], field).grad
        assert grad is not None, name
        torch.testing.assert_close(
            grad, param.grad, atol=tol, rtol=tol, msg=lambda m, n=name: f"{n}: {m}"
        )


@pytest.mark.parametrize("force_loop", [False, True], ids=["native", "loop"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parity_fp64(kind, num_layers, bidirectional, with_lengths, batch_first, force_loop):
    ref, ours = make_pair(
        kind,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        force_loop=force_loop,
    )
    check_parity(ref, ours, kind, with_lengths, torch.float64)
    assert ours.last_path.startswith("loop" if force_loop else "native:")


@pytest.mark.parametrize("force_loop", [False, True], ids=["native", "loop"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parity_fp32(kind, num_layers, bidirectional, with_lengths, force_loop):
    ref, ours = make_pair(
        kind,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=True,
        force_loop=force_loop,
        dtype=torch.float32,
    )
    check_parity(ref, ours, kind, with_lengths, torch.float32)


@pytest.mark.parametrize("force_loop", [False, True], ids=["native", "loop"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parity_without_bias(kind, force_loop):
    ref, ours = make_pair(
        kind, num_layers=2, bidirectional=True, batch_first=False, force_loop=force_loop, bias=False
    )
    assert not any("bias" in name for name, _ in ours.named_parameters())
    check_parity(ref, ours, kind, True, torch.float64)


@pytest.mark.parametrize("kind", list(KINDS))
def test_parameter_names_and_shapes_match_torch(kind):
    ref, ours = make_pair(
        kind, num_layers=2, bidirectional=True, batch_first=False, force_loop=False
    )
    for name, param in ref.named_parameters():
        cell_index, field = cell_param(name, 2)
        assert getattr(ours.cells[cell_index], field).shape == param.shape, name
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("force_loop", [False, True], ids=["native", "loop"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_parity_default_state_and_unbatched(kind, force_loop):
    ref, ours = make_pair(
        kind, num_layers=2, bidirectional=True, batch_first=False, force_loop=force_loop
    )
    x = torch.randn(T, I, dtype=torch.float64)  # unbatched (T, I)
    out_t, final_t = ref(x)
    out_o, final_o = ours(x)
    torch.testing.assert_close(out_o, out_t, atol=1e-10, rtol=1e-10)
    final_t = list(final_t) if isinstance(final_t, tuple) else [final_t]
    final_o = list(final_o) if isinstance(final_o, LSTMState) else [final_o]
    for a, b in zip(final_o, final_t, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_from_torch_and_torch_named_state_dicts(kind, num_layers, bidirectional):
    """``Recurrent.from_torch`` and ``load_state_dict`` of a torch module's own state dict give a
    layer equal to it; ``torch_state_dict`` loads back into the torch module."""
    torch_cls, _, options = KINDS[kind]
    torch.manual_seed(3)
    ref = torch_cls(
        I, H, num_layers=num_layers, bidirectional=bidirectional, dtype=torch.float64, **options
    )
    x = torch.randn(T, B, I, dtype=torch.float64)
    expected, expected_state = ref(x)
    layer = Recurrent.from_torch(ref)
    out, state = layer(x)
    torch.testing.assert_close(out, expected)
    got = [state.h, state.c] if isinstance(state, LSTMState) else [state]
    want = list(expected_state) if isinstance(expected_state, tuple) else [expected_state]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)

    class Wrapped(nn.Module):  # the renaming works under a prefix too
        def __init__(self, rnn: nn.Module) -> None:
            super().__init__()
            self.rnn = rnn

    _, cell, _ = KINDS[kind]
    fresh = Recurrent(
        cell, I, H, num_layers=num_layers, bidirectional=bidirectional, **options
    ).double()
    Wrapped(fresh).load_state_dict(Wrapped(ref).state_dict())
    torch.testing.assert_close(fresh(x)[0], expected)
    back = torch_cls(
        I, H, num_layers=num_layers, bidirectional=bidirectional, dtype=torch.float64, **options
    )
    back.load_state_dict(layer.torch_state_dict())
    torch.testing.assert_close(back(x)[0], expected)


def test_torch_state_dict_direction_mismatch_is_a_clear_error():
    ref = nn.LSTM(I, H, bidirectional=True)
    with pytest.raises(ValueError, match="is for a bidirectional layer"):
        Recurrent("lstm", I, H).load_state_dict(ref.state_dict())
    with pytest.raises(ValueError, match=r"expects torch\.nn\.RNN, LSTM or GRU"):
        Recurrent.from_torch(nn.Linear(2, 2))  # type: ignore[arg-type]
