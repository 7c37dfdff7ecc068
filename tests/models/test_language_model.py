"""One-to-many: the language model learns a phrase; generation is stateful, O(1)/token, exact."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.models import LanguageModel, LanguageModelConfig, filter_logits, sample_next

PHRASE = "the cat sat on the mat. "
CHARS = sorted(set(PHRASE))
STREAM = torch.tensor([CHARS.index(ch) for ch in PHRASE * 20])


def encode(text: str) -> Tensor:
    return torch.tensor([[CHARS.index(ch) for ch in text]])


def decode(ids: Tensor) -> str:
    return "".join(CHARS[i] for i in ids.tolist())


def windows(n: int, steps: int = 32) -> Tensor:
    starts = torch.randint(0, len(STREAM) - steps, (n,))
    return torch.stack([STREAM[s : s + steps] for s in starts.tolist()])  # (n, steps)


def small_model(**overrides: object) -> LanguageModel:
    options: dict = {"vocab_size": len(CHARS), "embedding_dim": 16, "hidden_size": 32, **overrides}
    return LanguageModel(LanguageModelConfig(**options)).eval()


@pytest.mark.parametrize("tie_weights", [False, True])
def test_learns_a_repeated_phrase_and_greedy_continues_it(fit, tie_weights: bool) -> None:
    model = small_model(tie_weights=tie_weights)
    fit(model, lambda step: model.loss(windows(32)), steps=150)
    new = model.generate(encode("the cat "), max_new_tokens=40, strategy="greedy")
    assert decode(new[0]) == (PHRASE * 3)[8:48]
    beam = model.generate(encode("the cat "), max_new_tokens=16, strategy="beam", beam_width=3)
    assert decode(beam[0]) == (PHRASE * 3)[8:24]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stateful_generation_equals_rerunning_the_full_prefix(cell: str) -> None:
    model = small_model(cell=cell, num_layers=2)
    prompt = torch.randint(0, len(CHARS), (3, 4))
    new = model.generate(prompt, max_new_tokens=10, strategy="greedy")
    full = torch.cat([prompt, new], dim=1)
    logits = model(full[:, :-1]).logits  # the whole prefix, re-run at once
    torch.testing.assert_close(logits[:, 3:].argmax(-1), new)
    state = None  # and the step method replays forward exactly
    for t in range(full.shape[1] - 1):
        step_logits, state = model.step(full[:, t], state)
        torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)


def test_generation_never_reruns_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_model()
    calls: list[int] = []
    original = type(model.rnn).forward

    def counting(self, x, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(x.shape[1])
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(type(model.rnn), "forward", counting)
    model.generate(encode("the "), max_new_tokens=20, strategy="sample")
    assert calls == [4]  # one pass over the prompt, then only O(1) steps


def test_beam_width_1_equals_greedy() -> None:
    model = small_model()
    prompt = torch.randint(0, len(CHARS), (4, 3))
    greedy = model.generate(prompt, max_new_tokens=12, strategy="greedy")
    beam = model.generate(prompt, max_new_tokens=12, strategy="beam", beam_width=1)
    torch.testing.assert_close(beam, greedy)


def test_greedy_is_deterministic_and_sampling_is_seeded() -> None:
    model = small_model()
    prompt = torch.randint(0, len(CHARS), (2, 3))
    first = model.generate(prompt, max_new_tokens=10, strategy="greedy")
    torch.testing.assert_close(model.generate(prompt, max_new_tokens=10, strategy="greedy"), first)
    samples = [
        model.generate(prompt, max_new_tokens=10, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    torch.testing.assert_close(samples[0], samples[1])


def test_top_k_never_samples_outside_the_top_k() -> None:
    model = small_model()
    prompt = torch.randint(0, len(CHARS), (64, 3))
    new = model.generate(prompt, max_new_tokens=8, top_k=3, temperature=2.0)
    logits = model(torch.cat([prompt, new], dim=1)[:, :-1]).logits[:, 2:]  # (B, N, V)
    allowed = logits.topk(3, dim=-1).indices
    assert (allowed == new[..., None]).any(-1).all()


def test_filters_keep_exactly_the_top_k_and_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [
        [True, False, False, False]
    ]
    draws = sample_next(
        logits.expand(2000, 4), top_p=0.7, generator=torch.Generator().manual_seed(0)
    )
    assert set(draws.tolist()) == {0, 1}


def test_eos_stops_rows_and_pads_with_eos() -> None:
    model = small_model()
    prompt = torch.randint(0, len(CHARS), (3, 2))
    greedy = model.generate(prompt, max_new_tokens=30, strategy="greedy")
    eos = int(greedy[0, 0])  # the first token row 0 emits: it stops at once
    stopped = model.generate(prompt, max_new_tokens=30, strategy="greedy", eos_id=eos)
    assert (stopped[0] == eos).all()
    for row in stopped:
        hits = (row == eos).nonzero()
        if len(hits):
            assert (row[int(hits[0]) :] == eos).all()


def test_ragged_prompts_prime_each_row_at_its_own_length() -> None:
    model = small_model()
    prompts = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    both = model.generate(
        prompts, max_new_tokens=6, strategy="greedy", prompt_lengths=torch.tensor([4, 2])
    )
    alone = model.generate(prompts[1:, :2], max_new_tokens=6, strategy="greedy")
    torch.testing.assert_close(both[1:], alone)


def test_bad_generation_options_fail_with_the_reason() -> None:
    model = small_model()
    prompt = encode("the")
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0\.0"):
        model.generate(prompt, max_new_tokens=3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
        model.generate(prompt, max_new_tokens=3, top_k=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        model.generate(prompt, max_new_tokens=3, top_p=1.5)
    with pytest.raises(ValueError, match=r"prompt must be \(B, T0\) ids with T0 >= 1"):
        model.generate(prompt[:, :0], max_new_tokens=3)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        model.generate(prompt, max_new_tokens=0)
    with pytest.raises(ValueError, match=r"beam_width must be in \[1, vocab size"):
        model.generate(prompt, max_new_tokens=3, strategy="beam", beam_width=100)
    with pytest.raises(
        ValueError, match="strategy must be one of sample, greedy, beam; got 'nucleus'"
    ):
        model.generate(prompt, max_new_tokens=3, strategy="nucleus")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="language-model loss needs sequences of at least 2 tokens"
    ):
        model.loss(prompt[:, :1])
