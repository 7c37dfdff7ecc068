"""The parallel log-space scan against the sequential recurrence ``h_t = a_t h_{t-1} + b_t``."""

from __future__ import annotations

import pytest
import torch

from rnnkit.scan import parallel_scan_log, sequential_scan

F64 = torch.float64


def _coefficients(T: int, regime: str, shape: tuple[int, ...] = (2, 3)) -> tuple[torch.Tensor, ...]:
    """``log_a <= 0`` and ``log_b`` for gates in a given regime."""
    if regime == "mixed":
        log_a = -torch.nn.functional.softplus(3 * torch.randn(T, *shape, dtype=F64))
    elif regime == "near_one":  # a ~ 1: state carried for thousands of steps
        log_a = -1e-6 * torch.rand(T, *shape, dtype=F64)
    elif regime == "near_zero":  # a ~ 0: log_a very negative, state forgotten every step
        log_a = -30 - 50 * torch.rand(T, *shape, dtype=F64)
    else:  # alternating runs of both extremes
        log_a = torch.where(
            (torch.arange(T) // 7 % 2 == 0).reshape(T, *[1] * len(shape)),
            torch.full((T, *shape), -1e-7, dtype=F64),
            torch.full((T, *shape), -40.0, dtype=F64),
        )
    log_b = torch.randn(T, *shape, dtype=F64) - (3.0 if regime == "near_one" else 0.0)
    return log_a, log_b


@pytest.mark.parametrize("regime", ["mixed", "near_one", "near_zero", "alternating"])
@pytest.mark.parametrize("h0_sign", ["none", "positive", "negative"])
@pytest.mark.parametrize(("T", "chunk"), [(2048, 128), (2001, 128), (2000, 7)])
def test_scan_matches_sequential_fp64(regime, h0_sign, T, chunk):
    log_a, log_b = _coefficients(T, regime)
    h0 = {
        "none": None,
        "positive": 1 + torch.rand(2, 3, dtype=F64),
        "negative": -5 * torch.rand(2, 3, dtype=F64) - 1,
    }[h0_sign]
    fast = parallel_scan_log(log_a, log_b, h0, chunk=chunk)
    slow = sequential_scan(log_a.exp(), log_b.exp(), h0)
    assert fast.shape == slow.shape == (T, 2, 3)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, slow, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 64, 1000])
def test_scan_any_chunk_size(chunk):
    """Chunks that divide T, that don't, of one step, and longer than T."""
    log_a, log_b = _coefficients(20, "mixed")
    h0 = torch.randn(2, 3, dtype=F64)
    torch.testing.assert_close(
        parallel_scan_log(log_a, log_b, h0, chunk=chunk),
        sequential_scan(log_a.exp(), log_b.exp(), h0),
        atol=1e-12,
        rtol=1e-12,
    )


def test_scan_long_sequence_fp32_stays_accurate():
    """The reason for chunking: float32 over T=4096 with slowly decaying gates."""
    log_a, log_b = _coefficients(4096, "near_one", shape=(4,))
    h0 = torch.randn(4, dtype=F64)
    slow = sequential_scan(log_a.exp(), log_b.exp(), h0)
    fast = parallel_scan_log(log_a.float(), log_b.float(), h0.float())
    torch.testing.assert_close(fast.double(), slow, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("regime", ["mixed", "near_one", "near_zero"])
@pytest.mark.parametrize("chunk", [16, 37])
def test_scan_gradients_match_sequential(regime, chunk):
    T = 300
    log_a, log_b = _coefficients(T, regime)
    h0 = torch.randn(2, 3, dtype=F64)
    weight = torch.randn(T, 2, 3, dtype=F64)
    grads = []
    for fast in (True, False):
        la, lb, h = (t.clone().requires_grad_() for t in (log_a, log_b, h0))
        out = (
            parallel_scan_log(la, lb, h, chunk=chunk)
            if fast
            else sequential_scan(la.exp(), lb.exp(), h)
        )
        (out * weight).sum().backward()
        grads.append((la.grad, lb.grad, h.grad))
    for g_fast, g_slow in zip(*grads, strict=True):
        assert torch.isfinite(g_fast).all()
        torch.testing.assert_close(g_fast, g_slow, atol=1e-9, rtol=1e-9)


def test_scan_gradcheck():
    log_a, log_b = _coefficients(11, "mixed", shape=(2,))
    h0 = torch.randn(2, dtype=F64)
    args = tuple(t.requires_grad_() for t in (log_a, log_b, h0))
    assert torch.autograd.gradcheck(lambda a, b, h: parallel_scan_log(a, b, h, chunk=4), args)


def test_scan_rejects_bad_arguments():
    a = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"log_a \(4, 2\) and log_b \(4, 3\) differ"):
        parallel_scan_log(a, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="chunk must be positive, got 0"):
        parallel_scan_log(a, a, chunk=0)
