"""Truncated BPTT carries the state exactly; every optimiser and schedule builds and steps."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch

from rnnkit.data.lm_stream import StreamBatch, StreamLoader
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.train.config import OptimConfig, SchedulerConfig
from rnnkit.train.optim import build_optimizer, build_scheduler, cosine_with_warmup
from rnnkit.train.tasks import LanguageModelTask


def _task(k2: int | None = None, reset_every: int = 0) -> LanguageModelTask:
    model = LanguageModel(LanguageModelConfig(vocab_size=11, embedding_dim=4, hidden_size=6))
    return LanguageModelTask(
        model,
        config={},
        optim=OptimConfig(),
        scheduler=SchedulerConfig(),
        k1=5,
        k2=k2,
        reset_every=reset_every,
    )


def _chunks(batch: int = 2, steps: int = 20) -> list[StreamBatch]:
    ids = torch.randint(0, 11, (batch * steps + 1,)).numpy()
    return list(StreamLoader(ids, batch_size=batch, seq_len=5))


def test_carried_state_equals_one_pass_over_the_stream() -> None:
    task = _task()
    chunks = _chunks()
    for chunk in chunks:
        task._loss_and_sums(chunk, "train")
    carried = task._carry["train"]
    assert carried is not None and not carried.h.requires_grad  # detached between chunks
    whole = torch.cat([c.x for c in chunks], dim=1)  # (B, 20)
    _, final = task.model(whole)
    torch.testing.assert_close(carried.h, final.h)
    torch.testing.assert_close(carried.c, final.c)


@pytest.mark.parametrize("k2", [8, None])
def test_k2_window_tokens_get_gradient(k2: int | None) -> None:
    """With ``k2 = 8`` the last 3 tokens of the previous chunk get gradient through the carried
    state; without a window (the control) the state is detached and they get none."""
    torch.manual_seed(0)
    task = _task(k2=k2)
    first, second = _chunks()[:2]
    task._loss_and_sums(first, "train")
    emb = task.model.inputs.embedding
    emb.weight.grad = None
    loss, _ = task._loss_and_sums(second, "train")
    loss.backward()
    reached = set(torch.nonzero(emb.weight.grad.abs().sum(-1)).flatten().tolist())
    # Tokens only the window can reach: in the window, and absent from the chunk itself.
    only_window = set(first.x[:, -3:].flatten().tolist()) - set(second.x.flatten().tolist())
    assert only_window, "the seed must give window tokens that chunk two does not repeat"
    if k2 is None:
        assert not (only_window & reached)
    else:
        assert only_window <= reached


def test_reset_every_zeroes_some_streams_by_global_row() -> None:
    task = _task(reset_every=2)
    chunks = _chunks(batch=2)
    task._loss_and_sums(chunks[0], "train")
    state = task._carry["train"]
    assert state is not None
    # position 1: row r resets when (1 + 7 r) % 2 == 0, i.e. row 1 only.
    reset = task._reset_rows(state, chunks[1])
    assert torch.all(reset.h[:, 1] == 0) and torch.equal(reset.h[:, 0], state.h[:, 0])


def test_stream_loader_resumes_at_the_saved_chunk() -> None:
    ids = torch.arange(41).numpy()
    loader = StreamLoader(ids, batch_size=2, seq_len=5, progress=lambda: 3)
    assert len(loader) == 4 and loader.state_dict() == {"next_chunk": 3}
    loader.load_state_dict({"next_chunk": 3})
    assert [b.position for b in loader] == [3]
    assert [b.position for b in loader] == [0, 1, 2, 3]  # the next epoch starts over


def test_ddp_ranks_read_disjoint_rows_of_the_same_global_batch() -> None:
    ids = torch.arange(81).numpy()
    whole = next(iter(StreamLoader(ids, batch_size=4, seq_len=5)))
    parts = [
        next(iter(StreamLoader(ids, batch_size=4, seq_len=5, rank=r, world_size=2)))
        for r in range(2)
    ]
    torch.testing.assert_close(torch.cat([p.x for p in parts]), whole.x)
    assert [p.row_offset for p in parts] == [0, 2]
    with pytest.raises(ValueError, match="must be divisible by the number of processes 3"):
        StreamLoader(ids, batch_size=4, seq_len=5, rank=0, world_size=3)


@pytest.mark.parametrize("optim", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize("sched", ["none", "cosine", "step", "plateau", "onecycle"])
def test_optimisers_and_schedules_step(optim: Any, sched: Any) -> None:
    """Each optimiser steps its parameters; after 3 steps each schedule's lr is the one its
    definition gives (computed here by hand, not by the code under test)."""
    model = torch.nn.Linear(3, 2)
    before = model.weight.detach().clone()
    opt = build_optimizer(model, OptimConfig(name=optim, lr=0.1))
    assert type(opt).__name__.lower() == optim
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]  # no decay on the bias
    cfg = SchedulerConfig(name=sched, warmup_steps=2, step_size=2, gamma=0.5, patience=0)
    spec = build_scheduler(opt, cfg, total_steps=10, monitor="val_loss")
    lrs = []
    for _ in range(3):
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        if spec is not None:
            if sched == "plateau":
                spec["scheduler"].step(1.0)  # a validation loss that never improves
            else:
                spec["scheduler"].step()
        lrs.append(opt.param_groups[0]["lr"])
    assert not torch.equal(model.weight, before)
    if sched == "none":
        assert spec is None and lrs == [0.1] * 3
    elif sched == "cosine":  # step 3: past the 2 warm-up steps, 1/8 of the way down
        expected = 0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 1 / 8)))
        assert lrs[-1] == pytest.approx(expected)
    elif sched == "step":
        assert lrs == pytest.approx([0.1, 0.05, 0.05])
    elif sched == "plateau":  # patience 0: halved at each validation after the first
        assert spec is not None and spec["monitor"] == "val_loss"
        assert lrs == pytest.approx([0.1, 0.05, 0.025])
    else:  # onecycle: up from max_lr / 25 to max_lr at step 0.3 * 10 - 1 = 2, then down
        assert 0.1 / 25 < lrs[0] < lrs[1] and lrs[1] == pytest.approx(0.1) and lrs[2] < 0.1


def test_cosine_warmup_shape() -> None:
    lr = [cosine_with_warmup(s, warmup=4, total=20, min_ratio=0.1) for s in range(21)]
    assert lr[0] == 0.25 and lr[3] == 1.0 and lr[4] == 1.0
    assert lr[20] == pytest.approx(0.1) and all(a >= b for a, b in itertools.pairwise(lr[4:]))


def test_onecycle_on_few_steps_warms_up_over_two_steps_or_says_why_not() -> None:
    """Ten steps at pct_start 0.1 is a one-step warm-up, where torch divides by zero: the warm-up
    is stretched to two steps; under three steps there is no cycle, and the error says so."""

    def lrs(total: int) -> list[float]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        cfg = SchedulerConfig(name="onecycle", pct_start=0.1)
        built = build_scheduler(opt, cfg, total_steps=total, monitor="val_loss")
        assert built is not None
        sched = built["scheduler"]
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    got = lrs(10)
    assert got[0] == pytest.approx(1 / 25) and got[1] == pytest.approx(1.0)  # up, peak at step 1
    assert all(a > b for a, b in itertools.pairwise(got[1:]))  # then strictly down
    assert lrs(100)[9] == pytest.approx(1.0)  # long runs keep pct_start as given
    with pytest.raises(ValueError, match=r"^scheduler onecycle needs at least 3 optimiser steps"):
        lrs(2)
