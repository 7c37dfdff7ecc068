"""The Recurrent layer: every fast path against the reference loop, proof that the fast path ran,
the reported plan, the layer against a hand loop over its cell, and gradcheck through each path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.func import functional_call

import rnnkit._ext
import rnnkit.cells.minimal
import rnnkit.recurrent
from rnnkit import LSTMState, Recurrent

F64 = torch.float64
I, H, T, B = 3, 4, 6, 3  # noqa: E741 (the shape glossary's I)
LENGTHS = torch.tensor([6, 2, 4])


def _flat(state: Any) -> list[Tensor]:
    return list(state) if isinstance(state, LSTMState) else [state]


def _perturb(layer: Recurrent) -> None:
    """Move every parameter off its initial value (layer-norm gains off 1, biases off 0)."""
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.2 * torch.randn_like(p))


def _random_state(layer: Recurrent, batch: int) -> Any:
    zeros = layer.init_state(batch, dtype=F64)
    return (
        type(zeros)(*[torch.randn_like(s) for s in zeros])
        if isinstance(zeros, LSTMState)
        else torch.randn_like(zeros)
    )


def _run(layer: Recurrent, x: Tensor, state: Any, lengths: Tensor | None) -> tuple:
    """Outputs, final state and the gradients of the input and of every parameter."""
    layer.zero_grad()
    x = x.clone().requires_grad_()
    out, final = layer(x, state, lengths=lengths)
    g = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=g, dtype=F64)).sum()
    for s in _flat(final):
        loss = loss + (s * torch.randn(s.shape, generator=g, dtype=F64)).sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return out.detach(), [s.detach() for s in _flat(final)], x.grad, grads, layer.last_path


def _fast_and_loop(
    make: Callable[[], Recurrent], x: Tensor, lengths: Tensor | None, *, train: bool = False
) -> tuple[tuple, tuple]:
    torch.manual_seed(3)
    fast = make().double().train(train)
    _perturb(fast)
    loop = make().double().train(train)
    loop.load_state_dict(fast.state_dict())
    loop.force_loop = True
    state = _random_state(fast, x.shape[1 if not fast.batch_first else 0])
    return _run(fast, x, state, lengths), _run(loop, x, state, lengths)


def _assert_same(a: tuple, b: tuple, tol: float = 1e-10) -> None:
    out_a, final_a, gx_a, grads_a, _ = a
    out_b, final_b, gx_b, grads_b, _ = b
    torch.testing.assert_close(out_a, out_b, atol=tol, rtol=tol)
    for s, t in zip(final_a, final_b, strict=True):
        torch.testing.assert_close(s, t, atol=tol, rtol=tol)
    torch.testing.assert_close(gx_a, gx_b, atol=tol, rtol=tol)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(
            grads_a[name], grads_b[name], atol=tol, rtol=tol, msg=lambda m, n=name: f"{n}: {m}"
        )


def _fixed_noise(monkeypatch: pytest.MonkeyPatch, layer_cls_cells: list, batch: int) -> None:
    """Replace each cell's ``sample_noise`` by a fixed mask, so both paths see the same one."""
    for cell in layer_cls_cells:
        rows = 1 if cell.recurrent_dropout_shared else batch
        keep = 1 - cell.recurrent_dropout
        mask = (torch.rand(rows, cell.weight_hh.shape[1], dtype=F64) < keep).double() / keep
        monkeypatch.setattr(cell, "sample_noise", lambda *a, m=mask, **k: m)


# --- every fast path against the reference loop ------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True), (1, True)])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_scan_matches_loop(cell, num_layers, bidirectional, with_lengths, batch_first):
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=F64)
    fast, loop = _fast_and_loop(
        lambda: Recurrent(
            cell, I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
        ),
        x,
        LENGTHS if with_lengths else None,
    )
    assert fast[-1].startswith("scan") and loop[-1].startswith("loop")
    _assert_same(fast, loop)


VARIANTS: dict[str, dict[str, Any]] = {
    "rnn_dropout_eval": {"cell": "rnn", "recurrent_dropout": 0.3},
    "lstm_dropout_eval": {"cell": "lstm", "recurrent_dropout": 0.3},
    "gru_dropout_eval": {"cell": "gru", "recurrent_dropout": 0.3},
    "lstm_proj_dropout_eval": {"cell": "lstm", "proj_size": 2, "recurrent_dropout": 0.3},
    "lstm_layer_norm": {"cell": "lstm", "layer_norm": True},
    "gru_layer_norm": {"cell": "gru", "layer_norm": True},
    "lstm_zoneout_eval": {"cell": "lstm", "zoneout": 0.3},
}


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_default_path_matches_loop(variant, with_lengths):
    options = dict(VARIANTS[variant])
    cell = options.pop("cell")
    x = torch.randn(T, B, I, dtype=F64)
    fast, loop = _fast_and_loop(
        lambda: Recurrent(cell, I, H, num_layers=2, bidirectional=True, **options),
        x,
        LENGTHS if with_lengths else None,
    )
    if "dropout" in variant:
        assert fast[-1].startswith("native:")
    _assert_same(fast, loop)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize(
    ("cell", "options"),
    [
        ("lstm", {"recurrent_dropout_shared": True}),
        ("gru", {"recurrent_dropout_shared": True}),
        ("rnn", {"recurrent_dropout_shared": True, "nonlinearity": "relu"}),
        ("lstm", {"recurrent_dropout_shared": True, "proj_size": 2}),
        ("lstm", {}),  # per-sequence mask: off the fused kernel, on whatever path plan() picks
        ("lstm", {"layer_norm": True}),
    ],
)
def test_recurrent_dropout_in_training_matches_loop(monkeypatch, cell, options, with_lengths):
    """Training mode with the mask fixed: the shared mask folded into ``weight_hh`` by the native
    path equals the mask applied to ``h_{t-1}`` by the loop."""
    x = torch.randn(T, B, I, dtype=F64)
    torch.manual_seed(3)
    fast = Recurrent(cell, I, H, num_layers=2, bidirectional=True, recurrent_dropout=0.4, **options)
    fast = fast.double().train()
    _perturb(fast)
    loop = Recurrent(cell, I, H, num_layers=2, bidirectional=True, recurrent_dropout=0.4, **options)
    loop = loop.double().train()
    loop.load_state_dict(fast.state_dict())
    loop.force_loop = True
    _fixed_noise(monkeypatch, list(fast.cells), B)
    for c_fast, c_loop in zip(fast.cells, loop.cells, strict=True):
        monkeypatch.setattr(c_loop, "sample_noise", c_fast.sample_noise)
    state = _random_state(fast, B)
    lengths = LENGTHS if with_lengths else None
    a, b = _run(fast, x, state, lengths), _run(loop, x, state, lengths)
    if options.get("recurrent_dropout_shared"):
        assert a[-1].startswith("native:")
    assert b[-1].startswith("loop")
    _assert_same(a, b)
    # The mask matters: without it the result differs.
    loop.eval()
    assert not torch.allclose(loop(x, state, lengths=lengths)[0], a[0])


# --- proof that the fast path ran, and the plan -----------------------------------------------


def _spy(monkeypatch: pytest.MonkeyPatch, op: str) -> list[int]:
    calls: list[int] = []
    real = rnnkit.recurrent._NATIVE_OPS[op]

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setitem(rnnkit.recurrent._NATIVE_OPS, op, counting)
    return calls


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize(
    ("op", "cell", "options"),
    [
        ("lstm", "lstm", {}),
        ("lstm", "lstm", {"proj_size": 2}),
        ("gru", "gru", {}),
        ("rnn_tanh", "rnn", {}),
        ("rnn_relu", "rnn", {"nonlinearity": "relu"}),
    ],
)
def test_fused_kernel_runs(monkeypatch, op, cell, options, with_lengths):
    calls = _spy(monkeypatch, op)
    layer = Recurrent(cell, I, H, num_layers=2, bidirectional=True, **options)
    layer(torch.randn(T, B, I), lengths=LENGTHS if with_lengths else None)
    assert len(calls) == 1
    assert layer.last_path.startswith(f"native:{op} ")
    layer.force_loop = True
    layer(torch.randn(T, B, I))
    assert len(calls) == 1, "force_loop must not call the fused kernel"
    assert layer.last_path == "loop (force_loop=True)"


def test_fused_kernel_runs_with_recurrent_dropout(monkeypatch):
    calls = _spy(monkeypatch, "lstm")
    x = torch.randn(T, B, I)
    shared = Recurrent("lstm", I, H, recurrent_dropout=0.3, recurrent_dropout_shared=True).train()
    shared(x)
    assert len(calls) == 1 and shared.last_path.startswith("native:lstm")
    per_sequence = Recurrent("lstm", I, H, recurrent_dropout=0.3).eval()
    per_sequence(x)
    assert len(calls) == 2 and per_sequence.last_path.startswith("native:lstm")
    per_sequence.train()
    per_sequence(x)
    assert len(calls) == 2, "a per-sequence mask cannot run in torch.lstm"
    assert not per_sequence.last_path.startswith("native")
    assert "recurrent_dropout" in per_sequence.last_path


def test_scan_runs(monkeypatch):
    """The log-space scan (the CUDA path, and the CPU path without the C++ extension)."""
    monkeypatch.setattr(rnnkit._ext, "ops", lambda: None)
    calls: list[int] = []
    real = rnnkit.cells.minimal.parallel_scan_log

    def counting(*args: Any, **kwargs: Any) -> Tensor:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rnnkit.cells.minimal, "parallel_scan_log", counting)
    layer = Recurrent("mingru", I, H, num_layers=2, bidirectional=True)
    layer(torch.randn(T, B, I), lengths=LENGTHS)
    assert len(calls) == 4  # one scan per layer and direction
    assert layer.last_path.startswith("scan ")
    layer.force_loop = True
    layer(torch.randn(T, B, I))
    assert len(calls) == 4


def test_plan_reports_path_and_reason():
    assert Recurrent("lstm", I, H).last_path == "not run yet"
    path, reason = Recurrent("lstm", I, H).plan()
    assert path == "native:lstm" and "torch.lstm" in reason
    assert Recurrent("gru", I, H).plan()[0] == "native:gru"
    assert Recurrent("rnn", I, H, nonlinearity="relu").plan()[0] == "native:rnn_relu"

    path, reason = Recurrent("lstm", I, H, layer_norm=True).plan()
    assert not path.startswith("native") and "layer_norm" in reason
    path, reason = Recurrent("gru", I, H, layer_norm=True).plan()
    assert path == "fused:gru" and "layer_norm" in reason  # the C++ loop (tests/test_fused.py)

    dropout = Recurrent("gru", I, H, recurrent_dropout=0.2)
    path, reason = dropout.train().plan()
    assert path == "fused:gru" and "recurrent_dropout" in reason and "per-sequence" in reason
    assert dropout.eval().plan()[0] == "native:gru"
    shared = Recurrent("lstm", I, H, recurrent_dropout=0.2, recurrent_dropout_shared=True)
    assert shared.train().plan()[0] == "native:lstm"

    path, reason = Recurrent("gru", I, H, zoneout=0.1).plan()
    assert path == "fused:gru" and "zoneout" in reason
    assert Recurrent("minlstm", I, H).plan()[0] == "scan:cpp"
    assert Recurrent("lstm", I, H, force_loop=True).plan() == ("loop", "force_loop=True")

    layer = Recurrent("lstm", I, H, layer_norm=True)
    layer(torch.randn(T, B, I))
    assert layer.last_path == "{} ({})".format(*layer.plan())


# --- the layer equals a hand loop over its cell -----------------------------------------------


def _hand_loop(layer: Recurrent, x: Tensor, state: Any, lengths: list[int]) -> tuple[Tensor, Any]:
    """Each sequence alone, unpadded, one ``cell(x_t, s)`` at a time; the backward direction runs
    on the reversed sequence; layers stacked by hand. ``x`` is ``(T, B, I)``."""
    L, D = layer.num_layers, layer.num_directions
    out = torch.zeros(x.shape[0], x.shape[1], layer.output_size, dtype=x.dtype)
    finals: list[list[Any]] = [[None] * x.shape[1] for _ in range(L * D)]
    for b, n in enumerate(lengths):
        inp = x[:n, b : b + 1]  # (n, 1, I)
        for layer_index in range(L):
            outs = []
            for d in range(D):
                i = layer_index * D + d
                cell = layer.cells[i]
                s = (
                    LSTMState(state.h[i, b : b + 1], state.c[i, b : b + 1])
                    if isinstance(state, LSTMState)
                    else state[i, b : b + 1]
                )
                seq = inp if d == 0 else inp.flip(0)
                ys = []
                for x_t in seq.unbind(0):
                    y, s = cell(x_t, s)
                    ys.append(y)
                y_seq = torch.stack(ys)  # (n, 1, O)
                outs.append(y_seq if d == 0 else y_seq.flip(0))
                finals[i][b] = s
            inp = torch.cat(outs, dim=-1)
        out[:n, b] = inp[:, 0]
    if isinstance(state, LSTMState):
        final = LSTMState(
            torch.stack([torch.cat([s.h for s in row]) for row in finals]),
            torch.stack([torch.cat([s.c for s in row]) for row in finals]),
        )
    else:
        final = torch.stack([torch.cat(row) for row in finals])
    return out, final


HAND_CASES: dict[str, dict[str, Any]] = {
    "rnn": {"cell": "rnn"},
    "lstm": {"cell": "lstm"},
    "lstm_proj": {"cell": "lstm", "proj_size": 2},
    "gru": {"cell": "gru"},
    "mingru": {"cell": "mingru"},
    "minlstm": {"cell": "minlstm"},
    "lstm_layer_norm": {"cell": "lstm", "layer_norm": True},
    "gru_zoneout": {"cell": "gru", "zoneout": 0.2},
}


@pytest.mark.parametrize("force_loop", [False, True], ids=["default", "loop"])
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (1, True), (2, True)])
@pytest.mark.parametrize("case", list(HAND_CASES))
def test_layer_equals_hand_loop_over_cell(case, num_layers, bidirectional, force_loop):
    options = dict(HAND_CASES[case])
    layer = (
        Recurrent(
            options.pop("cell"),
            I,
            H,
            num_layers=num_layers,
            bidirectional=bidirectional,
            force_loop=force_loop,
            **options,
        )
        .double()
        .eval()
    )
    _perturb(layer)
    x = torch.randn(T, B, I, dtype=F64)
    state = _random_state(layer, B)
    with torch.no_grad():
        out, final = layer(x, state, lengths=LENGTHS)
        out_ref, final_ref = _hand_loop(layer, x, state, LENGTHS.tolist())
    torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=1e-10)
    for s, r in zip(_flat(final), _flat(final_ref), strict=True):
        torch.testing.assert_close(s, r, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("force_loop", [False, True], ids=["default", "loop"])
@pytest.mark.parametrize("cell", ["gru", "mingru"])
def test_bidirectional_batch_of_one_with_padding(cell, force_loop):
    """Regression: a batch of one shorter than T must be reversed within its length, not flipped
    whole (the backward direction would read the padding first)."""
    layer = Recurrent(cell, I, H, bidirectional=True, force_loop=force_loop).double().eval()
    x = torch.randn(T, 1, I, dtype=F64)
    out, final = layer(x, lengths=torch.tensor([4]))
    out_ref, final_ref = layer(x[:4])
    torch.testing.assert_close(out[:4], out_ref)
    assert torch.all(out[4:] == 0)
    torch.testing.assert_close(final, final_ref)


# --- gradcheck through the layer, each path, with lengths ------------------------------------


@pytest.mark.parametrize(
    ("cell", "options", "path"),
    [
        ("lstm", {}, "native:lstm"),
        ("lstm", {"proj_size": 1}, "native:lstm"),
        ("gru", {}, "native:gru"),
        ("rnn", {}, "native:rnn_tanh"),
        ("lstm", {"force_loop": True}, "loop"),
        ("gru", {"force_loop": True, "layer_norm": True}, "loop"),
        ("lstm", {"layer_norm": True}, ""),
        ("mingru", {}, "scan"),
        ("minlstm", {}, "scan"),
    ],
)
def test_gradcheck_through_layer(cell, options, path):
    layer = Recurrent(cell, 2, 2, bidirectional=True, **options).double().eval()
    _perturb(layer)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=F64)
    lengths = torch.tensor([4, 2])
    state = _flat(_random_state(layer, 2))
    n_state = len(state)

    def fn(x: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        s = LSTMState(*rest[:2]) if n_state == 2 else rest[0]
        params = dict(zip(names, rest[n_state:], strict=True))
        out, final = functional_call(layer, params, (x, s), {"lengths": lengths})
        return (out, *_flat(final))

    args = (x, *state, *[p.detach().clone() for p in layer.parameters()])
    assert torch.autograd.gradcheck(fn, tuple(a.requires_grad_() for a in args))
    assert layer.last_path.startswith(path)
