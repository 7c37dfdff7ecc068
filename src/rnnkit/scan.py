r"""Parallel scan for the linear recurrence ``h_t = a_t * h_{t-1} + b_t`` (elementwise).

With ``a_t`` in (0, 1) and ``b_t > 0`` given as logarithms, the closed form (Heinsen 2023)

    log h_t = a*_t + logcumsumexp_{s<=t}(log b_s - a*_s),     a*_t = sum_{s<=t} log a_s

computes every ``h_t`` with two cumulative operations instead of T sequential steps. Over long
sequences ``a*`` grows without bound and ``a*_t + (...)`` cancels catastrophically in float32, so
the sequence is cut into chunks: the closed form runs within each chunk (all chunks at once) and
only the chunk boundaries are carried sequentially, ``T / chunk`` steps on ``(B, H)`` tensors.
The initial state ``h0`` may have any sign: its contribution ``exp(a*_t) * h0`` is added outside
the logarithm.

``sequential_scan`` is the slow reference that tests hold the fast path to.
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_CHUNK = 128


def parallel_scan_log(
    log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, *, chunk: int = DEFAULT_CHUNK
) -> Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` from ``log_a``, ``log_b`` ``(T, ...)``.

    **Arguments:**
    - ``log_a``: ``(T, *S)``, log of the decay, ``<= 0``.
    - ``log_b``: ``(T, *S)``, log of the (positive) input term.
    - ``h0``: ``(*S)`` initial state of any sign, zeros when None.
    - ``chunk``: steps per chunk of the closed form.

    **Returns:** ``h`` ``(T, *S)``.
    """
    if log_a.shape != log_b.shape:
        raise ValueError(f"log_a {tuple(log_a.shape)} and log_b {tuple(log_b.shape)} differ")
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    T, rest = log_a.shape[0], log_a.shape[1:]
    n = -(-T // chunk)
    pad = n * chunk - T
    if pad:
        # Padded steps come after the real ones, so they cannot change any real h_t.
        log_a = torch.cat([log_a, log_a.new_zeros((pad, *rest))])
        log_b = torch.cat([log_b, log_b.new_full((pad, *rest), -1e4)])
    log_a = log_a.reshape(n, chunk, *rest)  # (N, C, *S)
    log_b = log_b.reshape(n, chunk, *rest)
    a_star = torch.cumsum(log_a, dim=1)
    local = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))  # h within a chunk from 0
    decay = torch.exp(a_star)  # (N, C, *S): product of a over the chunk so far
    # Only chunk boundaries are sequential, on small (*S) tensors: the state entering chunk k.
    # unbind, not [k]: indexing would give each step's backward a full-size zero gradient.
    carry = log_a.new_zeros(rest) if h0 is None else h0
    entering = []
    for end_local, end_decay in zip(local[:, -1].unbind(0), decay[:, -1].unbind(0), strict=True):
        entering.append(carry)
        carry = end_local + end_decay * carry
    h = local + decay * torch.stack(entering)[:, None]  # (N, C, *S)
    return h.reshape(n * chunk, *rest)[:T]


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Reference: ``h_t = a_t * h_{t-1} + b_t`` one step at a time. ``a, b`` ``(T, *S)``."""
    h = a.new_zeros(a.shape[1:]) if h0 is None else h0
    out = []
    for a_t, b_t in zip(a.unbind(0), b.unbind(0), strict=True):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out)
