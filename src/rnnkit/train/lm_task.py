"""Build a language-model experiment: corpus, vocab, `LanguageModel`, task, baseline, samples."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from rnnkit.data import Vocab, word_tokenize
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.train.fit import Built
from rnnkit.train.lm_data import TextStreamData, unigram_bpc
from rnnkit.train.specs import LanguageModelExperiment, spec_dict
from rnnkit.train.tasks import LanguageModelTask, experiment_dict

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


def build_language_model(experiment: LanguageModelExperiment) -> Built:
    """Corpus -> vocab -> `LanguageModel` -> `LanguageModelTask`, with the unigram baseline."""
    data = TextStreamData(
        experiment.data, seq_len=experiment.tbptt.k1, val_seq_len=max(experiment.tbptt.k1, 256)
    )
    corpus = data.corpus
    config = LanguageModelConfig(vocab_size=len(corpus.vocab), **spec_dict(experiment.model))
    model = LanguageModel(config)
    module = LanguageModelTask(
        model,
        config=experiment_dict(experiment),
        optim=experiment.optim,
        scheduler=experiment.scheduler,
        k1=experiment.tbptt.k1,
        k2=experiment.tbptt.k2,
        carry_state=experiment.tbptt.carry_state,
        reset_every=experiment.tbptt.reset_every,
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
        datamodule=data,
        model_config=config,
        train_batches=max(1, math.ceil(per_stream / experiment.tbptt.k1)),
        files={
            "vocab.json": json.dumps(
                {"format": "rnnkit.vocab/1", "tokens": corpus.vocab.tokens}, ensure_ascii=False
            )
        },
        artifact_json={"vocab": "vocab.json", "corpus": corpus.source},
        baselines={
            "baseline_unigram_bpc": baseline,
            "train_chars": float(len(corpus.train)),
            "val_chars": float(len(corpus.val)),
        },
        use_distributed_sampler=False,
        after_fit=after_fit,
    )
