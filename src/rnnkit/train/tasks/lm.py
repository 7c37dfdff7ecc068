"""Language models: truncated BPTT over one stream, or many independent padded sequences.

- ``data.mode: stream`` (`LanguageModelTask`): a corpus read as B parallel streams in chunks of
  ``tbptt.k1`` tokens, the state carried from chunk to chunk; metrics loss (nats), bpc, ppl.
- ``data.mode: sequences`` (`SequenceLMTask`): many short sequences (music, sessions, one per line
  of a text), each ``<bos> ... <eos>``, padded; every token after the first is predicted from the
  zero state and the loss is masked past each length; metrics loss (nats per token), bpt (bits per
  token), ppl. An application passes its own sequences with ``build(experiment, data=DataParts(
  train=[ids, ...], val=[...], test=[...], meta={"vocab": vocab}))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.data.lm_stream import StreamLoader, load_corpus, load_line_sequences, unigram_bpc
from rnnkit.data.text import Vocab, word_tokenize
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.train.config import OptimConfig, SchedulerConfig, TextDataConfig
from rnnkit.train.specs import LanguageModelExperiment, spec_dict
from rnnkit.train.tasks.base import (
    STAGES,
    Built,
    DataParts,
    SequenceData,
    TaskModule,
    as_parts,
    config_transform,
    data_options,
    preprocessing_files,
    steps_per_epoch,
    task_kwargs,
)
from rnnkit.types import Batch, State, detach_state, state_from_tensors, state_tensors

DEFAULT_PROMPT = "\n"


def sample_text(
    model: LanguageModel,
    vocab: Vocab,
    *,
    prompt: str = DEFAULT_PROMPT,
    chars: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    strategy: str = "sample",
    seed: int = 0,
    level: str = "char",
) -> str:
    """Continue ``prompt`` by ``chars`` tokens with ``model.generate`` (seeded).

    ``level="word"`` tokenises the prompt into words (an empty one starts from ``<unk>``) and joins
    the generated words with spaces.
    """
    if level == "word":
        words = vocab.encode(word_tokenize(prompt)) or [vocab.unk_id]
        ids = np.asarray(words, dtype=np.int64)
    else:
        ids = vocab.encode_chars(prompt or DEFAULT_PROMPT).astype("int64")
    device = next(model.parameters()).device
    prompt_ids = torch.from_numpy(ids)[None].to(device)  # (1, T0)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = model.generate(
        prompt_ids,
        max_new_tokens=chars,
        strategy=strategy,  # type: ignore[arg-type]
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=gen,
    )  # (1, N)
    if level == "word":
        return " ".join(vocab.decode(out[0].tolist(), skip_special=False))
    return "".join(vocab.decode(out[0].tolist(), skip_special=True))


class LanguageModelTask(TaskModule):
    """Next-token cross-entropy with truncated BPTT; metrics: loss (nats), bpc, perplexity.

    Train chunks arrive in stream order (`rnnkit.data.lm_stream.StreamLoader`); the state after
    chunk k starts chunk k+1, detached, so gradients flow back at most ``k2`` tokens. With
    ``k2 > k1`` the last ``k2 - k1`` tokens of the previous chunks are re-run with gradients from a
    detached state.
    """

    monitor_default = "val_bpc"

    def __init__(
        self,
        model: nn.Module,
        *,
        config: dict[str, Any],
        optim: OptimConfig,
        scheduler: SchedulerConfig,
        k1: int,
        k2: int | None = None,
        carry_state: bool = True,
        reset_every: int = 0,
    ) -> None:
        super().__init__(model, config=config, optim=optim, scheduler=scheduler)
        self.k1, self.k2 = k1, (k2 or k1)
        self.carry_state = carry_state
        self.reset_every = reset_every
        self._carry: dict[str, State | None] = {s: None for s in STAGES}
        self._window: Tensor | None = None  # the last k2 - k1 train tokens (k2 > k1 only)

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        if getattr(batch, "position", 0) == 0 or not self.carry_state:
            self._carry[stage] = None
            if stage == "train":
                self._window = None
        state = self._carry[stage]
        if stage == "train" and state is not None and self.reset_every > 0:
            state = self._reset_rows(state, batch)
        extra = self.k2 - self.k1
        if stage == "train" and extra > 0:
            logits = self._forward_with_window(batch.x, state, extra)
        else:
            logits, new_state = self.model(batch.x, state=state)
            self._carry[stage] = detach_state(new_state)
        T = batch.x.shape[1]
        logits = logits[:, -T:]  # (B, T, V)
        nats = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1), reduction="sum"
        )
        tokens = torch.tensor(float(batch.y.numel()), device=nats.device)
        return nats / tokens, {"nats": nats, "tokens": tokens}

    def _reset_rows(self, state: State, batch: Batch) -> State:
        """Zero the state of the streams whose turn it is (by global row: the same under DDP)."""
        position = int(getattr(batch, "position", 0))
        rows = int(getattr(batch, "row_offset", 0)) + torch.arange(batch.x.shape[0])
        reset = (position + rows * 7) % self.reset_every == 0  # (B,)
        if not bool(reset.any()):
            return state
        keep = (~reset).to(device=batch.x.device, dtype=torch.float32)[None, :, None]  # (1, B, 1)
        tensors = [t * keep.to(t.dtype) for t in state_tensors(state)]
        restored = state_from_tensors(tensors)
        assert restored is not None
        return restored

    def _forward_with_window(self, x: Tensor, state: State | None, extra: int) -> Tensor:
        full = x if self._window is None else torch.cat([self._window, x], dim=1)  # (B, W+T)
        cut = max(0, full.shape[1] - extra)
        parts = []
        if cut > 0:
            logits_a, state_a = self.model(full[:, :cut], state=state)
            parts.append(logits_a)
        else:
            state_a = state
        if cut < full.shape[1]:
            logits_b, _ = self.model(full[:, cut:], state=state_a)
            parts.append(logits_b)
        self._carry["train"] = None if state_a is None else detach_state(state_a)
        self._window = full[:, cut:].detach()
        return torch.cat(parts, dim=1)

    def _metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        loss = float(sums["nats"] / sums["tokens"])
        return {"loss": loss, "bpc": loss / math.log(2), "ppl": math.exp(min(loss, 50.0))}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["rnnkit_tbptt"] = {
            "state": [t.cpu() for t in state_tensors(self._carry["train"])],
            "window": None if self._window is None else self._window.cpu(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("rnnkit_tbptt")
        if saved is not None:
            self._carry["train"] = state_from_tensors(saved["state"])
            self._window = saved["window"]

    def on_fit_start(self) -> None:
        # A restored carry lives on the CPU until the device is known.
        state = self._carry["train"]
        if state is not None:
            moved = [t.to(self.device) for t in state_tensors(state)]
            self._carry["train"] = state_from_tensors(moved)
        if self._window is not None:
            self._window = self._window.to(self.device)


class SequenceLMTask(TaskModule):
    """Next-token cross-entropy over padded independent sequences, masked past each length.

    A batch holds ``x = seq[:-1]`` and ``y = seq[1:]`` per sequence (`collate_sequences`), so the
    first token of each sequence is context only and every later one is predicted once.
    """

    monitor_default = "val_loss"

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        logits = self.model(batch.x, lengths=batch.lengths).logits  # (B, T, V)
        real = batch.y != -100  # (B, T), False past each length
        nats = nn.functional.cross_entropy(logits[real], batch.y[real], reduction="sum")
        tokens = real.sum().to(nats.dtype)
        return nats / tokens, {"nats": nats, "tokens": tokens}

    def _metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        loss = float(sums["nats"] / sums["tokens"])
        return {"loss": loss, "bpt": loss / math.log(2), "ppl": math.exp(min(loss, 50.0))}


def collate_sequences(samples: Sequence[Any]) -> Batch:
    """Token-id sequences -> inputs ``seq[:-1]`` and targets ``seq[1:]``, padded (targets -100)."""
    seqs = [torch.as_tensor(np.asarray(s), dtype=torch.int64) for s in samples]
    for i, s in enumerate(seqs):
        if s.dim() != 1 or s.shape[0] < 2:
            raise ValueError(
                f"language-model sequence {i} of the batch has shape {tuple(s.shape)}; each "
                "sequence needs at least 2 token ids (one to read, one to predict)"
            )
    x = nn.utils.rnn.pad_sequence([s[:-1] for s in seqs], batch_first=True)  # (B, T)
    y = nn.utils.rnn.pad_sequence([s[1:] for s in seqs], batch_first=True, padding_value=-100)
    lengths = torch.tensor([len(s) - 1 for s in seqs], dtype=torch.int64)
    return Batch(x=x, lengths=lengths, y=y)


class TextStreamData(L.LightningDataModule):
    """Train/val/test `StreamLoader`s over a `Corpus`, split by rank under DDP."""

    def __init__(
        self, cfg: TextDataConfig, *, seq_len: int, val_seq_len: int | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.seq_len = seq_len
        self.val_seq_len = val_seq_len or seq_len
        self.corpus = load_corpus(cfg)

    @property
    def vocab(self) -> Vocab:
        return self.corpus.vocab

    def _ranks(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _trained_chunks(self) -> int:
        assert self.trainer is not None
        # Chunks processed this epoch; a checkpoint written at a batch's end counts that batch.
        current = self.trainer.fit_loop.epoch_loop.batch_progress.current
        return int(getattr(current, "processed", current.completed))

    def train_dataloader(self) -> StreamLoader:
        rank, world = self._ranks()
        return StreamLoader(
            self.corpus.train,
            batch_size=self.cfg.batch_size,
            seq_len=self.seq_len,
            rank=rank,
            world_size=world,
            progress=self._trained_chunks,
        )

    def _eval(self, ids: np.ndarray) -> StreamLoader:
        rank, world = self._ranks()
        rows = min(self.cfg.val_batch_size, max(1, (len(ids) - 1) // (self.val_seq_len + 1)))
        rows = max(world, rows - rows % world)
        return StreamLoader(
            ids, batch_size=rows, seq_len=self.val_seq_len, rank=rank, world_size=world
        )

    def val_dataloader(self) -> StreamLoader:
        return self._eval(self.corpus.val)

    def test_dataloader(self) -> StreamLoader:
        return self._eval(self.corpus.test)


def _vocab_of(meta: dict[str, Any]) -> tuple[Vocab | None, int]:
    vocab = meta.get("vocab")
    if vocab is not None:
        return vocab, len(vocab)
    if "vocab_size" not in meta:
        raise ValueError("language-model data needs meta['vocab'] (a Vocab) or meta['vocab_size']")
    return None, int(meta["vocab_size"])


def _vocab_file(vocab: Vocab) -> dict[str, str]:
    return preprocessing_files(vocab=vocab)[0]


def _lm_kwargs(experiment: LanguageModelExperiment) -> dict[str, Any]:
    return task_kwargs(experiment)


def build_sequence_lm(experiment: LanguageModelExperiment, data: Any = None) -> Built:
    """Independent sequences -> `LanguageModel` -> `SequenceLMTask` (``data.mode: sequences``)."""
    d = experiment.data
    if data is None:
        train, val, test, lines_vocab = load_line_sequences(d)
        data = DataParts(train, val, test, {"vocab": lines_vocab})
    parts = as_parts(data)
    vocab, size = _vocab_of(data.meta)
    config = LanguageModelConfig(vocab_size=size, **spec_dict(experiment.model))
    model = LanguageModel(config)
    module = SequenceLMTask(model, **_lm_kwargs(experiment))
    opts = data_options(d, parts, seed=experiment.seed, lengths=len)
    datamodule = SequenceData(parts, batch_size=d.batch_size, collate_fn=collate_sequences, **opts)
    return Built(
        module=module,
        datamodule=datamodule,
        model_config=config,
        train_batches=steps_per_epoch(len(parts[0]), d.batch_size),
        files=_vocab_file(vocab) if vocab is not None else {},
        artifact_json={"vocab": "vocab.json"} if vocab is not None else {},
        train_transform=config_transform(d),
    )


def build_language_model(experiment: LanguageModelExperiment, data: Any = None) -> Built:
    """Corpus -> vocab -> `LanguageModel` -> task, with the unigram baseline (stream mode)."""
    if experiment.data.mode == "sequences":
        return build_sequence_lm(experiment, data)
    if data is not None:
        raise ValueError(
            "build(data=...) for a language model needs data.mode: sequences (a stream is read "
            "from data.source)"
        )
    stream = TextStreamData(
        experiment.data, seq_len=experiment.tbptt.k1, val_seq_len=max(experiment.tbptt.k1, 256)
    )
    corpus = stream.corpus
    config = LanguageModelConfig(vocab_size=len(corpus.vocab), **spec_dict(experiment.model))
    model = LanguageModel(config)
    module = LanguageModelTask(
        model,
        k1=experiment.tbptt.k1,
        k2=experiment.tbptt.k2,
        carry_state=experiment.tbptt.carry_state,
        reset_every=experiment.tbptt.reset_every,
        **_lm_kwargs(experiment),
    )
    per_stream = (len(corpus.train) - 1) // experiment.data.batch_size
    baseline = unigram_bpc(corpus.train, corpus.val, len(corpus.vocab))

    def after_fit(built: Built) -> dict[str, Any]:
        if experiment.sample_chars <= 0:
            return {}
        text = sample_text(
            model,
            corpus.vocab,
            chars=experiment.sample_chars,
            seed=experiment.seed,
            level=experiment.data.level,
        )
        return {"sample": text}

    return Built(
        module=module,
        datamodule=stream,
        model_config=config,
        train_batches=max(1, math.ceil(per_stream / experiment.tbptt.k1)),
        files=_vocab_file(corpus.vocab),
        artifact_json={"vocab": "vocab.json", "corpus": corpus.source},
        baselines={
            "baseline_unigram_bpc": baseline,
            "train_chars": float(len(corpus.train)),
            "val_chars": float(len(corpus.val)),
        },
        use_distributed_sampler=False,
        after_fit=after_fit,
        train_transform=config_transform(experiment.data),
    )
