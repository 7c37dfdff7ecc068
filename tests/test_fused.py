"""The fused C++ path (``rnnkit.fused``): gradcheck of every autograd Function in float64, parity
with the reference loop over lengths x directions x layers x each option (outputs, final states,
every gradient), the same dropout and zoneout masks from the same seed, a spy proving the fused
kernel ran, and the fallback when the extension is missing."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from rnnkit import LSTMState, Recurrent, _ext, fused

F64 = torch.float64
I, H, T, B = 3, 4, 6, 3  # noqa: E741 (the shape glossary's I)
LENGTHS = torch.tensor([6, 2, 4])
OPTIONS = [
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.2},
    {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.2},
]


class _Spy:
    """Stands in for ``torch.ops.rnnkit`` and counts the calls of each op."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, {}

    def __getattr__(self, name: str) -> Any:
        op = getattr(self.real, name)

        def counted(*args: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return op(*args)

        return counted


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    real = _ext.ops()
    assert real is not None, _ext.reason()
    wrapper = _Spy(real)
    monkeypatch.setattr(_ext, "ops", lambda: wrapper)
    return wrapper


def _flat(state: Any) -> list[Tensor]:
    return list(state) if isinstance(state, LSTMState) else [state]


def _run(layer: Recurrent, x: Tensor, state: Any, lengths: Tensor | None, seed: int) -> tuple:
    layer.zero_grad()
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same dropout/zoneout draws on both paths
    out, final = layer(x, state, lengths=lengths)
    g = torch.Generator().manual_seed(7)
    # Drawn in float32 and cast: the same weights whatever the layer's dtype.
    loss = (out * torch.randn(out.shape, generator=g).to(out.dtype)).sum()
    for s in _flat(final):
        loss = loss + (s * torch.randn(s.shape, generator=g).to(s.dtype)).sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
    return out.detach(), [s.detach() for s in _flat(final)], x.grad, grads


def _pair(cell: str, options: dict, *, train: bool, dtype: torch.dtype = F64, **kw: Any) -> tuple:
    fast = Recurrent(cell, I, H, **options, **kw).to(dtype).train(train)
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(0.2 * torch.randn_like(p))
    loop = Recurrent(cell, I, H, force_loop=True, **options, **kw).to(dtype).train(train)
    loop.load_state_dict(fast.state_dict())
    return fast, loop


def _assert_close(a: tuple, b: tuple, tol: float) -> None:
    torch.testing.assert_close(a[0], b[0], atol=tol, rtol=tol)
    for s, t in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(s, t, atol=tol, rtol=tol)
    torch.testing.assert_close(a[2], b[2], atol=tol, rtol=tol)
    assert a[3].keys() == b[3].keys()
    for name in a[3]:  # sums over all steps and rows: compared relative to their largest entry
        scale = max(1.0, float(b[3][name].abs().max()))
        torch.testing.assert_close(a[3][name], b[3][name], atol=tol * scale, rtol=tol, msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "lengths"),
    [(1, False, None), (2, True, LENGTHS), (1, True, None), (2, False, LENGTHS)],
    ids=["1-uni", "2-bi-len", "1-bi", "2-uni-len"],
)
def test_fused_equals_loop(spy, cell, options, train, num_layers, bidirectional, lengths):
    fast, loop = _pair(
        cell, options, train=train, num_layers=num_layers, bidirectional=bidirectional
    )
    x = torch.randn(T, B, I, dtype=F64)
    state = fast.init_state(B, dtype=F64)
    state = type(state)(*[torch.randn_like(s) for s in state]) if cell == "lstm" else state + 0.5
    got = _run(fast, x, state, lengths, seed=11)
    if options == {"recurrent_dropout": 0.3} and not train:  # no mask in eval: torch's kernel
        assert fast.last_path.startswith(f"native:{cell} ") and not spy.calls
    else:
        assert fast.last_path.startswith(f"fused:{cell} "), fast.last_path
        assert spy.calls.get(f"{cell}_backward") == num_layers * (2 if bidirectional else 1)
    want = _run(loop, x, state, lengths, seed=11)
    assert loop.last_path == "loop (force_loop=True)"
    _assert_close(got, want, 1e-10)


def _flatten(result: tuple) -> dict[str, Tensor]:
    out, states, x_grad, grads = result
    named = {"out": out, "x.grad": x_grad, **{f"state{i}": s for i, s in enumerate(states)}}
    return {n: t.double() for n, t in (named | grads).items()}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_and_no_grad(spy, cell):
    """float32 (the vectorised kernels' polynomial exp, their own layer-norm passes) as accurate
    as the float32 loop: every output and gradient within three times the loop's own distance
    from the float64 loop (relative to the tensor's largest entry; over seeds the worst ratio
    seen is about 2). Comparing the two float32 paths directly would ask them to round alike,
    not to be right. The no-grad forward (nothing saved) equals the autograd one."""
    fast, loop = _pair(cell, OPTIONS[-1], train=False, dtype=torch.float32, num_layers=2)
    truth = Recurrent(cell, I, H, force_loop=True, num_layers=2, **OPTIONS[-1]).to(F64).eval()
    truth.load_state_dict(loop.state_dict())
    x = torch.randn(50, 8, I)
    # A random state: from zeros, layer norm of W_hh h ~ 0 amplifies rounding by 1/sqrt(eps).
    state = fast.init_state(8)
    state = type(state)(*[torch.randn_like(s) for s in state]) if cell == "lstm" else state + 0.5
    state64 = type(state)(*[s.double() for s in _flat(state)]) if cell == "lstm" else state.double()
    got = _flatten(_run(fast, x, state, None, 1))
    ref = _flatten(_run(loop, x, state, None, 1))
    want = _flatten(_run(truth, x.double(), state64, None, 1))
    assert got.keys() == want.keys()
    for name, w in want.items():
        scale = max(1.0, float(w.abs().max()))
        err, ref_err = [float((t[name] - w).abs().max()) / scale for t in (got, ref)]
        assert err <= 3 * ref_err + 1e-6, (name, err, ref_err)
    with torch.no_grad():
        out, _ = fast(x, state)
    torch.testing.assert_close(out, fast(x, state)[0].detach(), atol=0, rtol=0)
    assert spy.calls[f"{cell}_forward"] >= 3


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("option", [{"recurrent_dropout": 0.5}, {"zoneout": 0.5}], ids=str)
def test_masks_follow_the_seed(cell, option):
    """Train mode: the same seed gives the loop's masks (equal outputs); another seed other
    masks (different outputs), so the masks are really drawn and applied."""
    fast, loop = _pair(cell, option, train=True, dtype=torch.float32)
    x = torch.randn(T, B, I)
    outs = []
    for layer, seed in ((fast, 5), (loop, 5), (fast, 6)):
        torch.manual_seed(seed)
        outs.append(layer(x)[0])
    torch.testing.assert_close(outs[0], outs[1], atol=2e-6, rtol=2e-6)
    assert not torch.allclose(outs[0], outs[2], atol=1e-3)


def _gradcheck(fn: Any, inputs: tuple) -> None:
    assert torch.autograd.gradcheck(fn, inputs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("masks", [False, True], ids=["eval", "masks"])
@pytest.mark.parametrize("layer_norm", [False, True], ids=["plain", "ln"])
def test_gradcheck_fused_lstm(masks, layer_norm):
    """Every input the Function differentiates, the input side's layer norm and bias (applied
    inside the kernel) included."""
    Tn, Bn, Hn = 4, 3, 3
    r = lambda *s: torch.randn(*s, dtype=F64, requires_grad=True)  # noqa: E731
    xw, h0, c0, w = r(Tn, Bn, 4 * Hn), r(Bn, Hn), r(Bn, Hn), r(4 * Hn, Hn)
    bi, b = r(4 * Hn), r(4 * Hn)
    gi, g, gc, bc = (r(4 * Hn), r(4 * Hn), r(Hn), r(Hn)) if layer_norm else (None,) * 4
    noise = torch.bernoulli(torch.full((Bn, Hn), 0.7, dtype=F64)) / 0.7 if masks else None
    zu = torch.rand(Tn, 2, Bn, Hn, dtype=F64) if masks else None
    lengths = torch.tensor([4, 1, 3])
    _gradcheck(
        lambda *a: fused.FusedLSTM.apply(*a[:10], noise, zu, 0.3, lengths),
        (xw, h0, c0, w, bi, gi, b, g, gc, bc),
    )


@pytest.mark.parametrize("masks", [False, True], ids=["eval", "masks"])
@pytest.mark.parametrize("layer_norm", [False, True], ids=["plain", "ln"])
def test_gradcheck_fused_gru(masks, layer_norm):
    Tn, Bn, Hn = 4, 3, 3
    r = lambda *s: torch.randn(*s, dtype=F64, requires_grad=True)  # noqa: E731
    xw, h0, w, bi, b = r(Tn, Bn, 3 * Hn), r(Bn, Hn), r(3 * Hn, Hn), r(3 * Hn), r(3 * Hn)
    gi, g = (r(3 * Hn), r(3 * Hn)) if layer_norm else (None, None)
    noise = torch.bernoulli(torch.full((1, Hn), 0.7, dtype=F64)) / 0.7 if masks else None
    zu = torch.rand(Tn, 1, Bn, Hn, dtype=F64) if masks else None
    _gradcheck(
        lambda *a: fused.FusedGRU.apply(*a, noise, zu, 0.3, torch.tensor([2, 4, 3])),
        (xw, h0, w, bi, gi, b, g),
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradcheck_input_norm_without_biases(cell):
    """The input layer norm with no biases and no recurrent norm: each optional input alone."""
    Tn, Bn, Hn, k = 3, 2, 3, 4 if cell == "lstm" else 3
    r = lambda *s: torch.randn(*s, dtype=F64, requires_grad=True)  # noqa: E731
    xw, h0, w, gi = r(Tn, Bn, k * Hn), r(Bn, Hn), r(k * Hn, Hn), r(k * Hn)
    if cell == "lstm":
        c0 = r(Bn, Hn)
        fn = lambda *a: fused.FusedLSTM.apply(  # noqa: E731
            a[0], a[1], c0, a[2], None, a[3], None, None, None, None, None, None, 0.0, None
        )
    else:
        fn = lambda *a: fused.FusedGRU.apply(  # noqa: E731
            a[0], a[1], a[2], None, a[3], None, None, None, None, 0.0, None
        )
    _gradcheck(fn, (xw, h0, w, gi))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bias_grads_do_not_share_storage(cell):
    """In the LSTM both biases get the same gradient: two tensors, not one, so accumulating into
    one parameter's .grad leaves the other's alone."""
    layer = Recurrent(cell, I, H, layer_norm=True)
    layer(torch.randn(T, B, I))[0].sum().backward()
    assert layer.last_path.startswith(f"fused:{cell} ")
    grads = {n.rsplit(".", 1)[-1]: p.grad for n, p in layer.named_parameters()}
    assert grads["bias_ih"] is not None and grads["bias_hh"] is not None
    assert grads["bias_ih"].data_ptr() != grads["bias_hh"].data_ptr()


@pytest.mark.parametrize("gates", [2, 3], ids=["mingru", "minlstm"])
def test_gradcheck_min_scan(gates):
    xp = (3 * torch.randn(5, 2, gates * 3, dtype=F64)).requires_grad_()
    h0 = torch.randn(2, 3, dtype=F64, requires_grad=True)
    _gradcheck(lambda a, b: fused.MinScan.apply(a, b, gates), (xp, h0))


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_min_scan_equals_loop(spy, cell, bidirectional):
    fast, loop = _pair(cell, {}, train=False, num_layers=2, bidirectional=bidirectional)
    x = 3 * torch.randn(T, B, I, dtype=F64)
    state = fast.init_state(B, dtype=F64) + 0.3
    got = _run(fast, x, state, LENGTHS, seed=0)
    assert fast.last_path.startswith("scan:cpp "), fast.last_path
    assert spy.calls["min_scan_backward"] == 2 * (2 if bidirectional else 1)
    _assert_close(got, _run(loop, x, state, LENGTHS, seed=0), 1e-10)


def test_plan_without_the_extension(monkeypatch):
    """No build: the loop (and the log-space scan) run, and plan() says why and how to fix it."""
    monkeypatch.setattr(_ext, "ops", lambda: None)
    monkeypatch.setattr(_ext, "reason", lambda: "C++ extension not built (run `make`)")
    path, reason = Recurrent("lstm", I, H, zoneout=0.1).plan()
    assert path == "loop" and "zoneout" in reason and "not built" in reason
    assert Recurrent("mingru", I, H).plan(batch_size=2)[0] == "scan"
    layer = Recurrent("gru", I, H, layer_norm=True)
    layer(torch.randn(T, B, I))
    assert layer.last_path.startswith("loop (layer_norm=True")


def test_not_fusable_cells_take_the_loop():
    path, reason = Recurrent("lstm", I, H, proj_size=2, layer_norm=True).plan()
    assert path == "loop" and "proj_size" in reason
    half = Recurrent("gru", I, H, zoneout=0.1).to(torch.float16)
    assert half.plan()[0] == "loop" and "float16" in half.plan()[1]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reused_buffers_equal_the_loop(cell):
    """Buffers of 1 MiB and more come from the kernel's block cache, so a second call runs on
    blocks holding the first call's values (the tiny shapes above never reach the cache): it
    still equals the loop, every padded row included."""
    Tn, Bn, Hn = 40, 32, 48  # float64 (T, B, 4H) buffers of ~2 MiB
    fast = Recurrent(cell, I, Hn, **OPTIONS[-1]).to(F64).train()
    loop = Recurrent(cell, I, Hn, force_loop=True, **OPTIONS[-1]).to(F64).train()
    loop.load_state_dict(fast.state_dict())
    lengths = torch.randint(1, Tn + 1, (Bn,))
    for _ in range(2):
        x = torch.randn(Tn, Bn, I, dtype=F64)
        zeros = fast.init_state(Bn, dtype=F64)
        state = (
            LSTMState(*[torch.randn_like(s) for s in zeros])
            if isinstance(zeros, LSTMState)
            else torch.randn_like(zeros)
        )
        got = _run(fast, x, state, lengths, seed=3)
        assert fast.last_path.startswith(f"fused:{cell} ")
        _assert_close(got, _run(loop, x, state, lengths, seed=3), 1e-10)


def test_second_call_maps_no_new_pages():
    """The point of the block cache: a fresh large buffer costs a page fault per 4 KiB page
    (about 40 ms per 64 MiB here); the second call of a shape reuses the first call's blocks."""
    resource = pytest.importorskip("resource")
    ops = _ext.ops()
    Tn, Bn, Hn = 128, 64, 64
    xw, w = torch.randn(Tn, Bn, 4 * Hn), torch.randn(4 * Hn, Hn) / 8
    h0, c0, g = torch.randn(Bn, Hn), torch.randn(Bn, Hn), torch.ones(4 * Hn)
    gc, bc = torch.ones(Hn), torch.zeros(Hn)
    args = (xw, h0, c0, w, None, g, None, g, gc, bc, None, None, 0.0, None, True)

    def faults() -> tuple[int, int]:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        r = ops.lstm_forward(*args)
        pages = sum(t.numel() * t.element_size() for t in r) // 4096
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, pages

    faults()
    second, pages = faults()
    assert pages > 5000 and second < pages // 20, (second, pages)


def test_build_path_is_the_load_path(monkeypatch, tmp_path):
    """torch's ``load`` appends its own flags to the lists it is given: the build must hand it
    copies, or the tag (and so the path ``ops()`` loads from) changes under it."""
    import torch.utils.cpp_extension as cpp

    def fake_load(**kw: Any) -> None:
        kw["extra_cflags"].append("-DX")
        kw["extra_ldflags"].append("-lc10")

    monkeypatch.setenv("RNNKIT_EXT_DIR", str(tmp_path))
    monkeypatch.setattr(cpp, "load", fake_load)
    monkeypatch.setattr(_ext, "_state", dict(_ext._state))
    tag = _ext._tag()
    assert _ext.build() == tmp_path / tag / "rnnkit_ext.so"
    assert _ext._tag() == tag
