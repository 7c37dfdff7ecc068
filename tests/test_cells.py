"""Cells on their own: one step against torch.nn's cells, gradcheck in float64 for every cell and
option, and the default initialisation (and overriding it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

from rnnkit import ElmanCell, GRUCell, LSTMCell, LSTMState, MinGRUCell, MinLSTMCell, Recurrent
from rnnkit.cells import RecurrentCell
from rnnkit.cells.minimal import g, log_g

I, H, P, B = 2, 3, 2, 2  # noqa: E741 (the shape glossary's I)

CELL_CASES: dict[str, Callable[[], RecurrentCell]] = {
    "elman_tanh": lambda: ElmanCell(I, H),
    "elman_relu": lambda: ElmanCell(I, H, nonlinearity="relu"),
    "elman_layer_norm": lambda: ElmanCell(I, H, layer_norm=True),
    "elman_recurrent_dropout": lambda: ElmanCell(I, H, recurrent_dropout=0.3),
    "lstm": lambda: LSTMCell(I, H),
    "lstm_no_bias": lambda: LSTMCell(I, H, bias=False),
    "lstm_proj": lambda: LSTMCell(I, H, proj_size=P),
    "lstm_layer_norm": lambda: LSTMCell(I, H, layer_norm=True),
    "lstm_layer_norm_proj": lambda: LSTMCell(I, H, layer_norm=True, proj_size=P),
    "lstm_recurrent_dropout": lambda: LSTMCell(I, H, recurrent_dropout=0.3),
    "lstm_zoneout": lambda: LSTMCell(I, H, zoneout=0.3),
    "gru": lambda: GRUCell(I, H),
    "gru_layer_norm": lambda: GRUCell(I, H, layer_norm=True),
    "gru_recurrent_dropout": lambda: GRUCell(I, H, recurrent_dropout=0.3),
    "gru_zoneout": lambda: GRUCell(I, H, zoneout=0.3),
    "mingru": lambda: MinGRUCell(I, H),
    "minlstm": lambda: MinLSTMCell(I, H),
}


def _perturb(cell: nn.Module) -> None:
    """Move every parameter off its initial value (layer-norm gains off 1, biases off 0)."""
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))


def _state_tensors(cell: RecurrentCell) -> list[Tensor]:
    s = cell.init_state(B, dtype=torch.float64)
    return [torch.randn_like(t) for t in (s if isinstance(s, LSTMState) else [s])]


def _as_state(tensors: tuple[Tensor, ...]) -> Any:
    return LSTMState(tensors[0], tensors[1]) if len(tensors) == 2 else tensors[0]


def _flat(y: Tensor, state: Any) -> tuple[Tensor, ...]:
    return (y, *state) if isinstance(state, LSTMState) else (y, state)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("case", list(CELL_CASES))
def test_gradcheck_cell(case, mode):
    """Two steps of the cell; gradients wrt x, the state and every parameter. Randomness (dropout
    mask, zoneout) is fixed: the mask is passed in, and training-mode zoneout reseeds per call."""
    cell = CELL_CASES[case]().double()
    _perturb(cell)
    cell.train(mode == "train")
    names = [n for n, _ in cell.named_parameters()]
    state0 = _state_tensors(cell)
    n_state = len(state0)
    x = torch.randn(2, B, I, dtype=torch.float64)
    noise = None
    if "recurrent_dropout" in case:  # fixed mask, as the layer passes it: one per sequence
        noise = (torch.rand(B, cell.weight_hh.shape[1], dtype=torch.float64) > 0.3).double() / 0.7

    def fn(x: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        torch.manual_seed(0)  # zoneout in training draws its masks: the same ones every call
        state = _as_state(rest[:n_state])
        params = dict(zip(names, rest[n_state:], strict=True))
        ys = []
        for x_t in x.unbind(0):
            xp = _call(cell, params, "project_input", x_t)
            y, state = _call(cell, params, "recur", xp, state, noise)
            ys.append(y)
        return (torch.stack(ys), *_flat(ys[-1], state)[1:])

    args = (x, *state0, *[p.detach().clone() for p in cell.parameters()])
    args = tuple(a.requires_grad_() for a in args)
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7)


def _call(cell: nn.Module, params: dict[str, Tensor], method: str, *args: Any) -> Any:
    """``cell.<method>(*args)`` with its parameters replaced by ``params``."""

    class _Bound(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = cell

        def forward(self, *a: Any) -> Any:
            return getattr(self.cell, method)(*a)

    return functional_call(_Bound(), {f"cell.{k}": v for k, v in params.items()}, args)


# --- one step against torch.nn's cells -------------------------------------------------------


@pytest.mark.parametrize(
    ("ours_cls", "ref_cls", "options"),
    [
        (ElmanCell, nn.RNNCell, {"nonlinearity": "tanh"}),
        (ElmanCell, nn.RNNCell, {"nonlinearity": "relu"}),
        (LSTMCell, nn.LSTMCell, {}),
        (LSTMCell, nn.LSTMCell, {"bias": False}),
        (GRUCell, nn.GRUCell, {}),
        (GRUCell, nn.GRUCell, {"bias": False}),
    ],
)
def test_cell_step_matches_torch_cell(ours_cls, ref_cls, options):
    ref = ref_cls(I, H, **options).double()
    ours = ours_cls(I, H, **options).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, I, dtype=torch.float64)
    if ours_cls is LSTMCell:
        h, c = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
        y, state = ours(x, LSTMState(h, c))
        h_ref, c_ref = ref(x, (h, c))
        torch.testing.assert_close(state.c, c_ref, atol=1e-12, rtol=1e-12)
    else:
        h = torch.randn(B, H, dtype=torch.float64)
        y, state = ours(x, h)
        h_ref = ref(x, h)
    torch.testing.assert_close(y, h_ref, atol=1e-12, rtol=1e-12)


def test_lstm_equations_with_projection_layer_norm_and_zoneout():
    """The LSTM docstring, written out by hand."""
    cell = LSTMCell(I, H, proj_size=P, layer_norm=True, zoneout=0.25).double().eval()
    _perturb(cell)
    x = torch.randn(B, I, dtype=torch.float64)
    h0, c0 = torch.randn(B, P, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    gates = (
        cell.ln_ih(x @ cell.weight_ih.T)
        + cell.bias_ih
        + cell.ln_hh(h0 @ cell.weight_hh.T)
        + cell.bias_hh
    )
    i, f, gg, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(gg)
    h = (torch.sigmoid(o) * torch.tanh(cell.ln_c(c))) @ cell.weight_hr.T
    y, state = cell(x, LSTMState(h0, c0))
    torch.testing.assert_close(state.c, 0.25 * c0 + 0.75 * c)
    torch.testing.assert_close(state.h, 0.25 * h0 + 0.75 * h)
    torch.testing.assert_close(y, state.h)


def test_zoneout_in_training_keeps_each_unit_or_updates_it():
    cell = GRUCell(I, H, zoneout=0.5).double().train()
    x, h0 = torch.randn(64, I, dtype=torch.float64), torch.randn(64, H, dtype=torch.float64)
    y, _ = cell(x, h0)
    new = cell.eval()(x, h0)[0] * 2 - h0  # eval gives the mean 0.5 * h0 + 0.5 * new
    kept = torch.isclose(y, h0)
    updated = torch.isclose(y, new)
    assert bool((kept | updated).all())
    assert 0.3 < kept.double().mean().item() < 0.7


def test_recurrent_dropout_mask_is_scaled_bernoulli():
    cell = LSTMCell(I, H, recurrent_dropout=0.25)
    noise = cell.sample_noise(1000, device=torch.device("cpu"), dtype=torch.float32)
    assert noise is not None and noise.shape == (1000, H)
    assert set(noise.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    assert abs(noise.mean().item() - 1.0) < 0.05
    shared = LSTMCell(I, H, recurrent_dropout=0.25, recurrent_dropout_shared=True)
    mask = shared.sample_noise(8, device=torch.device("cpu"), dtype=torch.float32)
    assert mask is not None and mask.shape == (1, H)
    assert LSTMCell(I, H).sample_noise(8, device=torch.device("cpu"), dtype=torch.float32) is None


@pytest.mark.parametrize("cls", [MinGRUCell, MinLSTMCell])
def test_min_cells_match_their_equations(cls):
    cell = cls(I, H).double()
    _perturb(cell)
    x, h0 = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    pre = x @ cell.weight_ih.T + cell.bias_ih
    if cls is MinGRUCell:
        k, u = pre.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        expected = (1 - z) * h0 + z * g(u)
    else:
        p_f, p_i, u = pre.chunk(3, dim=-1)
        f, i = torch.sigmoid(p_f), torch.sigmoid(p_i)
        expected = f / (f + i) * h0 + i / (f + i) * g(u)
    y, h = cell(x, h0)
    torch.testing.assert_close(h, expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(y, h)


def test_log_g_is_log_of_g_and_stable():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    # log(sigmoid(x)) = x - log1p(exp(x)) for x < 0, exact where log(g(x)) rounds
    expected = torch.where(x >= 0, torch.log(x.clamp(min=0) + 0.5), x - torch.log1p(torch.exp(x)))
    torch.testing.assert_close(log_g(x), expected, atol=1e-14, rtol=1e-14)
    torch.testing.assert_close(torch.exp(log_g(x)), g(x), atol=1e-14, rtol=1e-12)
    assert torch.isfinite(log_g(torch.tensor([-1e4, 1e4], dtype=torch.float64))).all()


# --- initialisation --------------------------------------------------------------------------


def _blocks(weight: Tensor, gates: int) -> list[Tensor]:
    return list(weight.detach().split(weight.shape[0] // gates, dim=0))


@pytest.mark.parametrize(("cls", "gates"), [(ElmanCell, 1), (LSTMCell, 4), (GRUCell, 3)])
def test_default_init(cls, gates):
    cell = cls(7, 6)
    eye = torch.eye(6)
    for block in _blocks(cell.weight_hh, gates):
        torch.testing.assert_close(block @ block.T, eye, atol=1e-5, rtol=0)
    bound = math.sqrt(6 / (6 + 7))  # Xavier-uniform of one (H, I) gate block
    for block in _blocks(cell.weight_ih, gates):
        assert block.abs().max() <= bound
        assert block.abs().max() > 0.5 * bound
    bias = cell.bias_ih.detach() + cell.bias_hh.detach()
    expected = torch.zeros(gates * 6)
    if cls is LSTMCell:
        expected[6:12] = 1.0  # forget gate, order i, f, g, o
    torch.testing.assert_close(bias, expected)
    assert torch.all(cell.bias_hh == 0)


@pytest.mark.parametrize("cls", [MinGRUCell, MinLSTMCell])
def test_default_init_min_cells(cls):
    cell = cls(7, 6)
    assert cell.weight_ih.abs().max() <= math.sqrt(6 / 13)
    assert torch.all(cell.bias_ih == 0)


def test_init_is_overridable():
    cell = LSTMCell(7, 6, recurrent_init="uniform", forget_bias=0.0)
    assert torch.all(cell.bias_ih == 0) and torch.all(cell.bias_hh == 0)
    bound = 1 / math.sqrt(6)
    assert cell.weight_hh.abs().max() <= bound
    block = _blocks(cell.weight_hh, 4)[0]
    assert not torch.allclose(block @ block.T, torch.eye(6), atol=1e-2)
    irnn = ElmanCell(7, 6, nonlinearity="relu", recurrent_init="identity")
    torch.testing.assert_close(irnn.weight_hh.detach(), torch.eye(6))
    normal = GRUCell(7, 6, input_init="xavier_normal", recurrent_init="xavier_uniform")
    for block in _blocks(normal.weight_hh, 3):
        assert block.abs().max() <= math.sqrt(6 / 12)
    layer = Recurrent("lstm", 7, 6, num_layers=2, forget_bias=2.0)
    for cell in layer.cells:
        assert torch.all(cell.bias_ih[6:12] == 2.0)


@pytest.mark.parametrize("field", ["recurrent_init", "input_init"])
def test_invalid_init_scheme(field):
    with pytest.raises(ValueError, match=rf"{field}='bogus' is not an init scheme"):
        LSTMCell(3, 4, **{field: "bogus"})
    with pytest.raises(ValueError, match=rf"{field}='bogus' is not an init scheme"):
        Recurrent("gru", 3, 4, **{field: "bogus"})
    with pytest.raises(ValueError, match="needs square blocks"):
        LSTMCell(3, 4, input_init="identity")
