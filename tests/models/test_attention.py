"""Attention: weights are a distribution over real source steps; bad shapes fail with the reason."""

from __future__ import annotations

import pytest
import torch

from rnnkit.attention import AdditiveAttention, MultiplicativeAttention, make_attention


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general"])
def test_weights_sum_to_one_over_unmasked_positions(kind: str) -> None:
    attention = make_attention(kind, 6, 6)
    query, memory = torch.randn(3, 6), torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]).bool()
    context, weights = attention(query, memory, mask=mask)
    assert context.shape == (3, 6) and weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert (weights[~mask] == 0).all()
    torch.testing.assert_close(context, torch.einsum("bs,bsk->bk", weights, memory))


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general"])
def test_padding_values_do_not_change_the_result(kind: str) -> None:
    attention = make_attention(kind, 4, 4)
    query, memory = torch.randn(2, 4), torch.randn(2, 6, 4)
    mask = torch.arange(6)[None] < torch.tensor([[4], [2]])
    noisy = memory.masked_fill(~mask[..., None], 1e3)
    for a, b in zip(
        attention(query, memory, mask=mask), attention(query, noisy, mask=mask), strict=True
    ):
        torch.testing.assert_close(a, b)


def test_dot_score_is_the_inner_product() -> None:
    attention = MultiplicativeAttention(3, 3, kind="dot")
    query, memory = torch.randn(2, 3), torch.randn(2, 4, 3)
    expected = torch.softmax(torch.einsum("bk,bsk->bs", query, memory), dim=-1)
    torch.testing.assert_close(attention(query, memory).weights, expected)


def test_gradients_reach_every_parameter() -> None:
    attention = AdditiveAttention(4, 5, attention_size=7)
    context, _ = attention(torch.randn(2, 4), torch.randn(2, 3, 5))
    context.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attention.parameters())


def test_bad_inputs_fail_with_the_reason() -> None:
    attention = make_attention("general", 4, 4)
    with pytest.raises(
        ValueError, match=r"attention expects query \(B, Q\) and memory \(B, S, K\)"
    ):
        attention(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="query batch 3 does not match memory batch 2"):
        attention(torch.randn(3, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="needs at least one True"):
        attention(torch.randn(1, 4), torch.randn(1, 2, 4), mask=torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        attention(torch.randn(1, 4), torch.randn(1, 2, 4), mask=torch.ones(1, 2))
    with pytest.raises(ValueError, match="dot attention needs query_size == key_size, got 4 and 8"):
        make_attention("dot", 4, 8)
    with pytest.raises(ValueError, match="unknown attention 'cosine'"):
        make_attention("cosine", 4, 4)


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general"])
def test_precomputed_keys_give_the_same_attention(kind: str) -> None:
    attn = make_attention(kind, 6, 6)
    q, m = torch.randn(3, 6), torch.randn(3, 5, 6)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    plain = attn(q, m, mask=mask)
    cached = attn(q, m, mask=mask, keys=attn.keys(m))
    torch.testing.assert_close(cached.context, plain.context)
    torch.testing.assert_close(cached.weights, plain.weights)
    with pytest.raises(ValueError, match=r"keys .* do not match memory"):
        attn(q, m, keys=attn.keys(m)[:, :4])
