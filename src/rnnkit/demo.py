"""``python -m rnnkit.demo``: a short live tour of the layers (what ``make demo`` runs).

Everything printed is computed now, on this machine: parity of each cell with ``torch.nn`` (outputs,
final states and every gradient, with torch's weights copied in), each fast path against the
reference Python loop, the path every layer takes and why, the minGRU scan against its step-by-step
loop, a small speed comparison, and streaming ``step`` against the full ``forward``. Under a minute
on two CPU cores.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.recurrent import Recurrent
from rnnkit.types import LSTMState, State

# Small shapes: T steps, B batch, I input, H hidden, L layers.
T, B, I, H, L = 12, 4, 8, 16, 2  # noqa: E741


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table with a title."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.1e}" if v < 0.01 else f"{v:.2f}"
    return str(v)


def load_torch_weights(layer: Recurrent, ref: nn.Module) -> None:
    """Copy ``torch.nn.RNN/LSTM/GRU`` parameters (``weight_ih_l0_reverse`` & co.) into the layer's
    cells, which keep torch's names and gate order."""
    D = layer.num_directions
    with torch.no_grad():
        for name, value in ref.named_parameters():
            base, suffix = name.rsplit("_l", 1)
            index = int(suffix.removesuffix("_reverse")) * D + suffix.endswith("_reverse")
            getattr(layer.cells[index], base).copy_(value)


def _states(state: State | tuple[Tensor, ...] | Tensor) -> list[Tensor]:
    if isinstance(state, Tensor):
        return [state]
    return list(state)


def run_and_grad(
    module: nn.Module, x: Tensor, seed_out: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """Forward, then backward of a fixed random projection of outputs and final states.

    Returns ``(values, grads)``: output and final states; the input's gradient, then every
    parameter's in ``named_parameters`` order.
    """
    x = x.detach().requires_grad_(True)
    for p in module.parameters():
        p.grad = None
    out, final = module(x)
    states = _states(final)
    loss = (out * seed_out).sum() + sum(s.square().sum() for s in states)
    loss.backward()
    assert x.grad is not None
    grads = [x.grad] + [
        p.grad if p.grad is not None else torch.zeros_like(p) for p in _params(module)
    ]
    return [out.detach(), *(s.detach() for s in states)], grads


def _params(module: nn.Module) -> list[Tensor]:
    return [p for _, p in module.named_parameters()]


def max_diff(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(a, b, strict=True))


def _torch_grads_in_cell_order(
    layer: Recurrent, ref: nn.Module, grads: list[Tensor]
) -> list[Tensor]:
    """torch.nn's gradients rearranged to match ``layer.named_parameters()`` order."""
    by_name = dict(zip([n for n, _ in ref.named_parameters()], grads[1:], strict=True))
    D = layer.num_directions
    ordered = [grads[0]]
    for name, _ in layer.named_parameters():
        _, index, base = name.split(".")
        k, d = divmod(int(index), D)
        ordered.append(by_name[f"{base}_l{k}{'_reverse' if d else ''}"])
    return ordered


# --- sections -------------------------------------------------------------------------------------


def parity_with_torch() -> None:
    """Each plain cell against torch.nn with the same weights: the dispatched path in fp32, and the
    cell's own equations (``force_loop=True``) in fp32 and fp64."""
    rows = []
    for cell, ref_cls, options in (
        ("rnn", nn.RNN, {}),
        ("rnn", nn.RNN, {"nonlinearity": "relu"}),
        ("lstm", nn.LSTM, {}),
        ("lstm", nn.LSTM, {"proj_size": 8}),
        ("gru", nn.GRU, {}),
    ):
        figures = []
        path = ""
        for dtype, force_loop in (
            (torch.float32, False),
            (torch.float32, True),
            (torch.float64, True),
        ):
            torch.manual_seed(0)
            ref = ref_cls(I, H, num_layers=L, bidirectional=True, **options).to(dtype)
            ours = Recurrent(
                cell, I, H, num_layers=L, bidirectional=True, force_loop=force_loop, **options
            ).to(dtype)
            load_torch_weights(ours, ref)
            x = torch.randn(T, B, I, dtype=dtype)
            seed_out = torch.randn(T, B, ours.output_size, dtype=dtype)
            v_ref, g_ref = run_and_grad(ref, x, seed_out)
            v_ours, g_ours = run_and_grad(ours, x, seed_out)
            g_ref = _torch_grads_in_cell_order(ours, ref, g_ref)
            figures.append(f"{max_diff(v_ours, v_ref):.1e} / {max_diff(g_ours, g_ref):.1e}")
            path = path or ours.last_path.split(" ")[0]
        name = f"{cell}" + "".join(f" {k}={v}" for k, v in options.items())
        rows.append([name, f"torch.nn.{ref_cls.__name__}", path, *figures])
    table(
        f"1. Parity with torch.nn, torch's weights copied in (T={T}, B={B}, I={I}, H={H}, L={L}, "
        "bidirectional). Max |difference| of outputs+final state / of every gradient (input and "
        "parameters)",
        [
            "layer",
            "reference",
            "path",
            "that path, fp32",
            "reference loop, fp32",
            "reference loop, fp64",
        ],
        rows,
    )


VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("rnn", "plain", {}),
    ("rnn", "relu", {"nonlinearity": "relu"}),
    ("lstm", "plain", {}),
    ("lstm", "proj_size=8", {"proj_size": 8}),
    ("gru", "plain", {}),
    ("lstm", "layer_norm", {"layer_norm": True}),
    ("lstm", "recurrent_dropout=0.25", {"recurrent_dropout": 0.25}),
    (
        "lstm",
        "recurrent_dropout_shared",
        {"recurrent_dropout": 0.25, "recurrent_dropout_shared": True},
    ),
    ("lstm", "zoneout=0.1", {"zoneout": 0.1}),
    ("gru", "layer_norm", {"layer_norm": True}),
    ("mingru", "plain", {}),
    ("minlstm", "plain", {}),
]


def fast_path_vs_loop() -> None:
    """Each layer in training mode against the same weights with ``force_loop=True``; random masks
    (recurrent dropout, zoneout) are drawn from the same seed on both sides."""
    rows = []
    for cell, variant, options in VARIANTS:
        torch.manual_seed(0)
        fast = Recurrent(cell, I, H, **options).double().train()
        slow = Recurrent(cell, I, H, force_loop=True, **options).double().train()
        slow.load_state_dict(fast.state_dict())
        x = torch.randn(T, B, I, dtype=torch.float64)
        seed_out = torch.randn(T, B, fast.output_size, dtype=torch.float64)
        torch.manual_seed(1)
        v_fast, g_fast = run_and_grad(fast, x, seed_out)
        torch.manual_seed(1)
        v_slow, g_slow = run_and_grad(slow, x, seed_out)
        path, reason = fast.plan()
        fast.eval()
        eval_path = fast.plan()[0]
        rows.append(
            [
                f"{cell} {variant}",
                path,
                eval_path,
                max_diff(v_fast, v_slow),
                max_diff(g_fast, g_slow),
                reason,
            ]
        )
    table(
        "2. Which path each layer takes, and the fast path against the reference loop "
        "(fp64, training mode, same seed; max |difference|)",
        ["layer", "path (train)", "path (eval)", "out+state", "grads", "why (layer.plan())"],
        rows,
    )


def scan_vs_loop() -> None:
    rows = []
    for cell in ("mingru", "minlstm"):
        for dtype, steps in ((torch.float32, 1024), (torch.float64, 1024)):
            torch.manual_seed(0)
            scan = Recurrent(cell, I, H).to(dtype)
            loop = Recurrent(cell, I, H, force_loop=True).to(dtype)
            loop.load_state_dict(scan.state_dict())
            x = torch.randn(steps, B, I, dtype=dtype)
            seed_out = torch.randn(steps, B, H, dtype=dtype)
            v_scan, g_scan = run_and_grad(scan, x, seed_out)
            v_loop, g_loop = run_and_grad(loop, x, seed_out)
            grad_scale = max(float(g.abs().max()) for g in g_loop)
            rows.append(
                [
                    cell,
                    str(dtype).removeprefix("torch."),
                    steps,
                    max_diff(v_scan, v_loop),
                    max_diff(g_scan, g_loop) / grad_scale,
                ]
            )
    table(
        "3. minGRU / minLSTM: parallel scan (log space, chunked) against the step-by-step loop",
        ["cell", "dtype", "T", "max |Δ out+state|", "max |Δ grad| / max |grad|"],
        rows,
    )


def _interleaved(
    ours: Callable[[], object], ref: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of each, timed alternately after one warm-up call of each, so that load from
    elsewhere on the machine slows both sides alike."""
    ours()
    ref()
    t_ours: list[float] = []
    t_ref: list[float] = []
    for _ in range(repeats):
        for fn, times in ((ours, t_ours), (ref, t_ref)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(t_ours), statistics.median(t_ref)


def _fwdbwd(module: nn.Module, x: Tensor) -> Callable[[], object]:
    def run() -> None:
        for p in module.parameters():
            p.grad = None
        out, _ = module(x)
        out.sum().backward()

    return run


def speed() -> None:
    rows = []
    configs: list[tuple[str, dict[str, Any], type[nn.Module], tuple[int, int, int, int]]] = [
        ("lstm", {}, nn.LSTM, (128, 32, 64, 128)),
        ("lstm", {"layer_norm": True}, nn.LSTM, (128, 32, 64, 128)),
        ("mingru", {}, nn.GRU, (1024, 16, 64, 128)),
    ]
    for cell, options, ref_cls, (steps, batch, inp, hid) in configs:
        torch.manual_seed(0)
        ours = Recurrent(cell, inp, hid, **options)
        ref = ref_cls(inp, hid)
        x = torch.randn(steps, batch, inp)
        t_ours, t_ref = _interleaved(_fwdbwd(ours, x), _fwdbwd(ref, x), repeats=3)
        tokens = steps * batch
        name = cell + "".join(f" {k}" for k in options)
        rows.append(
            [
                f"{name} T={steps} B={batch} H={hid}",
                ours.last_path.split(" ")[0],
                f"{tokens / t_ours:,.0f}",
                f"torch.nn.{ref_cls.__name__}",
                f"{tokens / t_ref:,.0f}",
                f"{t_ref / t_ours:.2f}x",
            ]
        )
    table(
        f"4. Speed, forward+backward tokens/s (median of 3 interleaved, {torch.get_num_threads()} "
        "threads; the full benchmark is `make bench`)",
        ["layer", "path", "rnnkit", "reference", "reference tok/s", "ratio"],
        rows,
    )


def streaming() -> None:
    rows = []
    for cell in ("rnn", "lstm", "gru", "mingru", "minlstm"):
        torch.manual_seed(0)
        layer = Recurrent(cell, I, H, num_layers=L).eval()
        x = torch.randn(T, B, I)
        with torch.no_grad():
            out, final = layer(x)
            state: State | None = None
            ys = []
            for x_t in x.unbind(0):
                y, state = layer.step(x_t, state)
                ys.append(y)
        assert state is not None
        f_states = [final.h, final.c] if isinstance(final, LSTMState) else [final]
        s_states = [state.h, state.c] if isinstance(state, LSTMState) else [state]
        rows.append(
            [
                cell,
                layer.last_path.split(" ")[0],
                T,
                float((torch.stack(ys) - out).abs().max()),
                max_diff(s_states, f_states),
            ]
        )
    table(
        f"5. Streaming: {T} calls of layer.step(x_t, state) against one forward (L={L}, fp32)",
        ["cell", "forward path", "steps", "max |Δ outputs|", "max |Δ final state|"],
        rows,
    )


def main() -> None:
    start = time.perf_counter()
    print(f"rnnkit demo — torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    parity_with_torch()
    fast_path_vs_loop()
    scan_vs_loop()
    speed()
    streaming()
    print(f"\nall figures computed live in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
