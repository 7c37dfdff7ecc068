"""Streaming with ``layer.step`` equals the full forward; a plain LSTM layer traces to TorchScript
and exports to ONNX with its state as inputs and outputs, and both match eager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from rnnkit import LSTMState, Recurrent

F64 = torch.float64
I, H, T = 3, 4, 7  # noqa: E741 (the shape glossary's I)

STEP_CASES: dict[str, dict[str, Any]] = {
    "rnn_tanh": {"cell": "rnn"},
    "rnn_relu": {"cell": "rnn", "nonlinearity": "relu"},
    "lstm": {"cell": "lstm"},
    "lstm_proj": {"cell": "lstm", "proj_size": 2},
    "lstm_layer_norm": {"cell": "lstm", "layer_norm": True},
    "lstm_zoneout": {"cell": "lstm", "zoneout": 0.3},
    "lstm_recurrent_dropout": {"cell": "lstm", "recurrent_dropout": 0.3},
    "gru": {"cell": "gru"},
    "gru_layer_norm": {"cell": "gru", "layer_norm": True},
    "mingru": {"cell": "mingru"},
    "minlstm": {"cell": "minlstm"},
}


def _flat(state: Any) -> list[Tensor]:
    return list(state) if isinstance(state, LSTMState) else [state]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("case", list(STEP_CASES))
def test_step_equals_forward(case, num_layers, batch):
    options = dict(STEP_CASES[case])
    layer = Recurrent(options.pop("cell"), I, H, num_layers=num_layers, **options).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(T, batch, I, dtype=F64)
    out, final = layer(x)
    state = None  # the first step starts from zeros, as forward does
    ys = []
    for x_t in x.unbind(0):
        y, state = layer.step(x_t, state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys), out, atol=1e-12, rtol=1e-10)
    assert type(state) is type(final)
    for s, f in zip(_flat(state), _flat(final), strict=True):
        torch.testing.assert_close(s, f, atol=1e-12, rtol=1e-10)


def test_step_continues_from_a_given_state():
    layer = Recurrent("lstm", I, H, num_layers=2).double().eval()
    x = torch.randn(T, 2, I, dtype=F64)
    h0 = LSTMState(torch.randn(2, 2, H, dtype=F64), torch.randn(2, 2, H, dtype=F64))
    out, final = layer(x, h0)
    _, mid = layer(x[:3], h0)
    state = mid
    for x_t in x[3:].unbind(0):
        y, state = layer.step(x_t, state)
    torch.testing.assert_close(y, out[-1])
    torch.testing.assert_close(state.c, final.c)


def test_step_of_bidirectional_layer_raises():
    layer = Recurrent("gru", I, H, bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional"):
        layer.step(torch.randn(2, I))


class _Exportable(nn.Module):
    """A plain LSTM layer with its state as explicit inputs and outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = Recurrent("lstm", I, H, num_layers=2)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out, state = self.rnn(x, LSTMState(h, c))
        assert isinstance(state, LSTMState)
        return out, state.h, state.c


def _example() -> tuple[_Exportable, tuple[Tensor, Tensor, Tensor]]:
    model = _Exportable().eval()
    x = torch.randn(5, 2, I)
    return model, (x, torch.randn(2, 2, H), torch.randn(2, 2, H))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_torchscript_trace_matches_eager():
    model, args = _example()
    traced = torch.jit.trace(model, args)
    for got, want in zip(traced(*args), model(*args), strict=True):
        torch.testing.assert_close(got, want)
    # The trace takes new inputs (other values, same shapes) and state round-trips through it.
    x2 = torch.randn(5, 2, I)
    _, h, c = traced(x2, *args[1:])
    for got, want in zip(traced(x2, h, c), model(x2, h, c), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.filterwarnings("ignore")
def test_onnx_export_runs_in_onnxruntime(tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, args = _example()
    path = tmp_path / "lstm.onnx"
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=["x", "h", "c"],
        output_names=["out", "h_n", "c_n"],
        dynamo=True,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: a.numpy() for n, a in zip(["x", "h", "c"], args, strict=True)})
    with torch.no_grad():
        want = model(*args)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(torch.from_numpy(g), w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_step_fast_path_reuses_its_state_and_still_checks(cell):
    """The one-layer fast path: a state it returned is reused without checks and gives what
    forward gives; a wrong x or batch after it still raises the clear ValueError."""
    layer = Recurrent(cell, 3, 4).eval()
    assert layer._plan_step() is not None
    x = torch.randn(5, 2, 3)
    with torch.inference_mode():
        want, _ = layer(x)
        state = None
        for t in range(5):
            y, state = layer.step(x[t], state)
            torch.testing.assert_close(y, want[t])
            assert layer._step_cache is not None and layer._step_cache[0] is state
        with pytest.raises(ValueError, match=r"x is torch.float64 but the layer's parameters"):
            layer.step(x[0].double(), state)
        with pytest.raises(ValueError, match=r"must have shape \(L\*D, B, size\) = \(1, 3, 4\)"):
            layer.step(torch.randn(3, 3), state)
        with pytest.raises(ValueError, match=r"step\(\) expects x of shape \(B, I\)"):
            layer.step(x[0, 0], state)


def test_step_with_recurrent_dropout_in_training_takes_the_general_path():
    layer = Recurrent("lstm", 3, 4, recurrent_dropout=0.5).train()
    assert layer._plan_step() is None
    assert layer.eval()._plan_step() is not None
