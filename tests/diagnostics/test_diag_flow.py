"""gradient_flow against independent autograd; saturation and Jacobians on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit import Recurrent
from rnnkit.cells import ElmanCell, LSTMCell, MinGRUCell
from rnnkit.diagnostics import gradient_flow, record_steps, saturation, step_jacobians
from rnnkit.types import LSTMState


class Tiny(nn.Module):
    def __init__(self, cell: str, layers: int = 1, **opts: object) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 3, 4, num_layers=layers, **opts)  # type: ignore[arg-type]
        self.head = nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[0][-1])


def _hand_loop_norms(model: Tiny, x: Tensor, y: Tensor) -> list[np.ndarray]:
    """‖∂L/∂h_t‖ per layer from an independent hand loop over each cell's one-step forward."""
    hs: list[list[Tensor]] = []
    inp = x
    for cell in model.rnn.cells:
        state = cell.init_state(x.shape[1], dtype=x.dtype)
        outs = []
        for t in range(x.shape[0]):
            out, state = cell(inp[t], state)
            outs.append(out)
        hs.append(outs)
        inp = torch.stack(outs)
    loss = F.mse_loss(model.head(hs[-1][-1]), y)
    flat = [h for layer in hs for h in layer]
    grads = torch.autograd.grad(loss, flat, allow_unused=True)
    T = x.shape[0]
    return [
        np.array([0.0 if g is None else float(g.norm()) for g in grads[i * T : (i + 1) * T]])
        for i in range(len(hs))
    ]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru", "minlstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_hidden_grad_norms_match_independent_autograd(cell: str, layers: int) -> None:
    model = Tiny(cell, layers).double()
    x, y = torch.randn(7, 2, 3, dtype=torch.float64), torch.randn(2, 1, dtype=torch.float64)
    report = gradient_flow(model, lambda: F.mse_loss(model(x), y), jacobian=False)
    expected = _hand_loop_norms(model, x, y)
    for i, want in enumerate(expected):
        np.testing.assert_allclose(report.hidden_grad_norms[f"rnn.layer{i}"], want, rtol=1e-9)
    # and the parameter norms equal a plain backward pass
    model.zero_grad()
    F.mse_loss(model(x), y).backward()
    for name, p in model.named_parameters():
        assert report.param_grad_norms[name] == pytest.approx(float(p.grad.norm()), rel=1e-9)
    total = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm()
    assert report.total_grad_norm == pytest.approx(float(total), rel=1e-9)


def test_recording_leaves_the_model_as_it_was() -> None:
    model = Tiny("lstm")
    x = torch.randn(5, 2, 3)
    model(x)
    assert model.rnn.last_path.startswith("native")
    model.zero_grad()
    report = gradient_flow(model, lambda: model(x).sum())
    assert all(p.grad is None for p in model.parameters())  # autograd.grad, not backward
    assert report.group_grad_norms.keys() >= {"recurrent_weights", "input_weights", "other:head"}
    model(x)
    assert model.rnn.last_path.startswith("native") and not model.rnn.force_loop
    assert "recur" not in model.rnn.cells[0].__dict__


def test_bidirectional_and_lengths_are_traced() -> None:
    rnn = Recurrent("gru", 3, 4, bidirectional=True)
    x = torch.randn(6, 2, 3)
    lengths = torch.tensor([6, 3])
    report = gradient_flow(rnn, lambda: rnn(x, lengths=lengths)[0].sum(), jacobian=False)
    assert set(report.hidden_grad_norms) == {"rnn.layer0", "rnn.layer0.reverse"}
    assert all(len(v) == 6 for v in report.hidden_grad_norms.values())


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mingru"])
def test_streaming_steps_are_recorded(cell: str) -> None:
    """Every ``Recurrent.step`` call is recorded, also for the plain cells whose step goes to
    torch's fused cell kernel outside the context; the recorded states are the step's own."""
    torch.manual_seed(0)
    rnn = Recurrent(cell, 3, 4, num_layers=2)
    xs = torch.randn(7, 2, 3)
    with record_steps(rnn) as traces:
        state = None
        outs = []
        for t in range(7):
            y, state = rnn.step(xs[t], state)
            outs.append(y)
    assert [tr.steps for tr in traces] == [7, 7]
    torch.testing.assert_close(traces[-1].h[-1], outs[-1])
    expected, _ = rnn(xs)  # outside the context the native paths are back, and agree
    torch.testing.assert_close(torch.stack(outs), expected)
    assert "native_step" not in rnn.cells[0].__dict__


def test_no_recurrent_layer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"holds no rnnkit\.Recurrent layer"):
        with record_steps(nn.Linear(2, 2)):
            pass


def test_gate_saturation_on_constructed_gates() -> None:
    rnn = Recurrent("lstm", 2, 4)
    cell = rnn.cells[0]
    assert isinstance(cell, LSTMCell)
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.zero_()
        cell.bias_hh.zero_()
        H = 4
        cell.bias_ih[:H] = 10.0  # i: sigmoid(10) > 0.95, saturated
        cell.bias_ih[H : 2 * H] = 0.0  # f: 0.5, not saturated
        cell.bias_ih[3 * H :] = torch.tensor([-10.0, -10.0, 0.0, 0.0])  # o: half saturated
    x = torch.randn(5, 3, 2)
    report = gradient_flow(rnn, lambda: rnn(x)[0].sum(), jacobian=False)
    sat = report.saturation["rnn.layer0"]
    assert sat == {"i": 1.0, "f": 0.0, "o": 0.5}
    assert report.gate_histograms["rnn.layer0"]["i"][-1] == 5 * 3 * 4
    values = torch.tensor([0.01, 0.04, 0.05, 0.5, 0.95, 0.96])
    assert saturation(values) == pytest.approx(3 / 6)


def test_elman_jacobian_is_diag_times_w_hh() -> None:
    torch.manual_seed(1)
    cell = ElmanCell(3, 5).double()
    h0 = torch.randn(2, 5, dtype=torch.float64)
    xp = cell.project_input(torch.randn(2, 3, dtype=torch.float64))
    jac = step_jacobians(cell, xp, h0)
    h1 = torch.tanh(xp + h0 @ cell.weight_hh.T + cell.bias_hh)
    for b in range(2):
        by_hand = torch.diag(1 - h1[b] ** 2) @ cell.weight_hh
        torch.testing.assert_close(jac[b], by_hand.detach())


def test_relu_jacobian_in_its_linear_region_is_w_hh() -> None:
    cell = ElmanCell(2, 3, nonlinearity="relu", recurrent_init="identity").double()
    with torch.no_grad():
        cell.weight_hh.mul_(0.7)
        cell.bias_hh.fill_(5.0)  # every pre-activation positive: relu is the identity
    h0 = torch.rand(1, 3, dtype=torch.float64)
    jac = step_jacobians(cell, cell.project_input(torch.rand(1, 2, dtype=torch.float64)), h0)
    torch.testing.assert_close(jac[0], cell.weight_hh.detach())


def test_mingru_jacobian_is_diag_one_minus_z() -> None:
    cell = MinGRUCell(2, 3).double()
    xp = cell.project_input(torch.randn(1, 2, dtype=torch.float64))
    jac = step_jacobians(cell, xp, torch.rand(1, 3, dtype=torch.float64))
    z = torch.sigmoid(xp.chunk(2, dim=-1)[0][0])
    torch.testing.assert_close(jac[0], torch.diag(1 - z).detach())


def test_lstm_jacobian_covers_h_and_c() -> None:
    cell = LSTMCell(2, 3).double()
    xp = cell.project_input(torch.randn(1, 2, dtype=torch.float64)).detach()
    s = torch.randn(6, dtype=torch.float64)
    jac = step_jacobians(cell, xp, LSTMState(s[None, :3], s[None, 3:]))

    def f(v: Tensor) -> Tensor:
        _, new = cell.recur(xp[0], LSTMState(v[:3], v[3:]))
        assert isinstance(new, LSTMState)
        return torch.cat([new.h, new.c])

    torch.testing.assert_close(jac[0], torch.autograd.functional.jacobian(f, s))


def test_vanilla_tanh_rnn_vanishes_at_long_t() -> None:
    torch.manual_seed(0)
    model = nn.ModuleDict({"rnn": Recurrent("rnn", 2, 32), "head": nn.Linear(32, 1)})
    x = torch.rand(400, 16, 2)
    report = gradient_flow(
        model, lambda: model["head"](model["rnn"](x)[0][-1]).pow(2).mean(), jacobian_steps=8
    )
    warnings = report.vanishing(within=200)
    assert len(warnings) == 1 and "vanishing gradient in rnn.layer0" in warnings[0]
    norms = report.hidden_grad_norms["rnn.layer0"]
    assert norms[0] < 1e-10 * norms[-1]
    spec = report.jacobian["rnn.layer0"].summary()
    assert spec["spectral_radius_mean"] < 1.0
