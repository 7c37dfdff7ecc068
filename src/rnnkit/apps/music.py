"""Music: a next-note language model on the soprano lines of Bach's chorales.

Data: ``rnnkit.data.load("bach_chorales", representation="events")`` -- music21's corpus, one
``(T, 2)`` array ``[midi pitch (0 = rest), duration in quarters]`` per chorale (the soprano part),
split by chorale with the loader's seeded split (``data.split_seed``, fixed across model seeds so
every seed is scored on the same held-out chorales).

Tokens: one token per note event, the pair ``(pitch, duration)`` (e.g. ``A4 crotchet``, rests
included as pitch 0). The vocabulary is read from the training chorales; pairs seen fewer than
``tokens.min_count`` times there map to ``<unk>``, so ``<unk>`` is learnt and held-out chorales can
hold unseen pairs. Each chorale is ``<bos> note ... note <eos>``.

Metric: negative log-likelihood per predicted token on the test chorales -- every note and the
``<eos>``, each given everything before it in its chorale -- in nats and in bits. The unigram and
bigram (`rnnkit.evaluate.NGram`, add-k smoothing with k chosen on the validation chorales) score
exactly the same tokens with the same vocabulary: the unigram never predicts ``<bos>``, the
bigram's first prediction of a chorale is conditioned on ``<bos>``.

Model: `rnnkit.models.LanguageModel` trained by the library's trainer (`rnnkit.train.fit` on the
recipe's ``experiment:``, a `LanguageModelExperiment` with ``data.mode: sequences``: padded
chorales bucketed by length, the loss masked past each one), AdamW, gradient clipping and early
stopping on the validation chorales' NLL; the best checkpoint is restored and scores the test
split once. Each seed leaves a run directory under ``runs/``.

Outputs in ``out_dir``: ``generated_<i>.mid`` (chorale melodies sampled from the first seed's model,
written with music21), ``test_chorale.mid`` (a real held-out melody), ``pianoroll.png`` (generated
vs real) and ``val_curve.png`` (validation NLL per epoch against the baselines).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch

from rnnkit.apps._common import app_experiment, app_settings, record, timer
from rnnkit.evaluate import NGram, bits_per_token
from rnnkit.models.language_model import LanguageModel
from rnnkit.train import DataParts, build, fit

APP = "music"
BOS, EOS, UNK = 0, 1, 2
SPECIALS = ("<bos>", "<eos>", "<unk>")
Token = tuple[int, float]  # (midi pitch, 0 = rest; duration in quarter notes)


# ---- recipe ----


@dataclass
class DataSettings:
    """``rnnkit.data.load("bach_chorales", ...)``: the chorales and their seeded split, fixed
    across model seeds so every seed is scored on the same held-out chorales."""

    name: Literal["bach_chorales"] = "bach_chorales"  # music21 corpus, cached as .npz
    limit: int | None = None  # the first N chorales (None: all 371)
    val_fraction: float = 0.1  # split by chorale
    test_fraction: float = 0.1
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 10:
            raise ValueError(f"data.limit must be null or >= 10, got {self.limit}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise ValueError(f"data.{name} must be in (0, 0.5), got {value}")


@dataclass
class Tokens:
    min_count: int = 2  # (pitch, duration) pairs seen fewer times in train -> <unk>

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise ValueError(f"tokens.min_count must be >= 1, got {self.min_count}")


@dataclass
class Baselines:
    # add-k smoothing of the unigram and bigram, chosen on the validation chorales
    k_grid: list[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])

    def __post_init__(self) -> None:
        if not self.k_grid or any(not k > 0 for k in self.k_grid):
            raise ValueError(
                f"baselines.k_grid must be a non-empty list of numbers > 0, got {self.k_grid}"
            )


@dataclass
class Generate:
    """Melodies sampled from the first seed's model."""

    samples: int = 4  # written as MIDI, the first 3 in the piano roll
    stats_samples: int | None = 64  # sampled for melody_stats (None: ``samples``)
    max_notes: int = 200  # a melody is cut here if it has not sampled <eos>
    temperature: float = 1.0
    top_p: float | None = None  # nucleus sampling (None: the whole distribution)

    def __post_init__(self) -> None:
        for name in ("samples", "stats_samples", "max_notes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"generate.{name} must be >= 1, got {value}")
        if not self.temperature > 0:
            raise ValueError(f"generate.temperature must be > 0, got {self.temperature}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"generate.top_p must be null or in (0, 1], got {self.top_p}")


@dataclass
class Settings:
    """The recipe's application keys; training is the ``experiment:`` section (`rnnkit fit`'s)."""

    data: DataSettings = field(default_factory=DataSettings)
    tokens: Tokens = field(default_factory=Tokens)
    baselines: Baselines = field(default_factory=Baselines)
    generate: Generate = field(default_factory=Generate)


def check_config(config: dict[str, Any]) -> Settings:
    """The recipe's settings, with its ``experiment:`` checked too (before anything is loaded);
    a bad field is a one-line ``ValueError`` naming it."""
    settings = app_settings(Settings, config, app=APP)
    experiment(config, seed=0, root=Path("runs"))
    return settings


# ---- tokens ----


def _events(dataset: Any) -> list[list[Token]]:
    return [[(int(p), float(d)) for p, d in seq.numpy()] for seq in dataset.sequences]


class NoteVocab:
    """``(pitch, duration)`` pairs <-> ids; ids 0, 1, 2 are ``<bos>``, ``<eos>``, ``<unk>``."""

    def __init__(self, train: Sequence[Sequence[Token]], *, min_count: int) -> None:
        counts = Counter(t for seq in train for t in seq)
        kept = sorted(t for t, c in counts.items() if c >= min_count)
        self.tokens: list[Token] = kept
        self.index = {t: i + len(SPECIALS) for i, t in enumerate(kept)}

    def __len__(self) -> int:
        return len(self.tokens) + len(SPECIALS)

    def encode(self, seq: Sequence[Token]) -> list[int]:
        """``<bos>`` + one id per note (``<unk>`` if unseen) + ``<eos>``."""
        return [BOS] + [self.index.get(t, UNK) for t in seq] + [EOS]

    def decode(self, ids: Sequence[int]) -> list[Token]:
        """Notes of ``ids``, stopping at ``<eos>``; ``<bos>``/``<unk>`` are dropped."""
        out: list[Token] = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(SPECIALS):
                out.append(self.tokens[i - len(SPECIALS)])
        return out


# ---- baselines ----


def ngram_nll(model: NGram, seqs: Sequence[Sequence[int]]) -> float:
    """Mean NLL (nats) per *predicted* token of ``<bos>``-started ``seqs``, as the LM scores them:
    ``<bos>`` only conditions the first note."""
    return model.nll(seqs, skip_first=True)


def fit_ngrams(
    train: Sequence[Sequence[int]],
    val: Sequence[Sequence[int]],
    vocab_size: int,
    k_grid: Sequence[float],
) -> dict[str, tuple[NGram, float, dict[float, float]]]:
    """Unigram and bigram with the add-k smoothing that minimises validation NLL."""
    out = {}
    for name, order in (("unigram", 1), ("bigram", 2)):
        fit_on = [s[1:] for s in train] if order == 1 else list(train)
        scores = {}
        for k in k_grid:
            ng = NGram(vocab_size, order=order, k=float(k)).fit(fit_on)
            scores[float(k)] = ngram_nll(ng, val)
        best = min(scores, key=lambda k: scores[k])
        out[name] = (NGram(vocab_size, order=order, k=best).fit(fit_on), best, scores)
    return out


# ---- the model ----


def experiment(config: dict[str, Any], *, seed: int, root: Path) -> Any:
    """The recipe's ``experiment:`` as one seed's `LanguageModelExperiment` (sequences mode)."""
    fixed = {
        "task": "language_model",
        "seed": seed,
        "data": {"mode": "sequences"},
        "run": {"root": str(root), "name": f"music-seed{seed}", "plot": False},
        "sample_chars": 0,
    }
    return app_experiment(APP, config.get("experiment", {}), fixed)


class _Curve(L.Callback):
    """Validation NLL (nats per note) after each epoch of fitting."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.values.append(float(trainer.callback_metrics["val_loss"]))


def train_lm(
    encoded: dict[str, list[list[int]]],
    vocab_size: int,
    config: dict[str, Any],
    *,
    seed: int,
    root: Path,
) -> tuple[LanguageModel, list[float], int, float]:
    """Fit through `rnnkit.train`; returns the best-on-validation model, the validation curve
    (one value per epoch), the best epoch (1-based) and the test NLL (nats per note)."""
    exp = experiment(config, seed=seed, root=root)
    run_dir = root / str(exp.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    # arrays, not lists: a sample that is a list reads as a tuple of fields, and the run could
    # not keep its test split (`rnnkit test` / `predict` read it)
    arrays = {k: [np.asarray(s, dtype=np.int64) for s in v] for k, v in encoded.items()}
    data = DataParts(arrays["train"], arrays["val"], arrays["test"], {"vocab_size": vocab_size})
    built = build(exp, data=data)
    curve = _Curve()
    result = fit(exp, built=built, callbacks=[curve], test=True)  # ends on the best checkpoint
    model: LanguageModel = built.module.model.eval()
    best_epoch = int(np.argmin(curve.values)) + 1
    return model, curve.values, best_epoch, float(result.metrics["test_loss"])


def generate(
    model: LanguageModel, vocab: NoteVocab, gen: Generate, seed: int, n: int
) -> tuple[list[list[Token]], int]:
    """Sample ``n`` melodies from ``<bos>``; also returns how many reached ``<eos>``."""
    g = torch.Generator().manual_seed(seed)
    ids = model.generate(
        torch.full((n, 1), BOS, dtype=torch.int64),
        max_new_tokens=gen.max_notes,
        strategy="sample",
        temperature=gen.temperature,
        top_p=gen.top_p,
        eos_id=EOS,
        generator=g,
    )
    rows = ids.tolist()
    return [vocab.decode(r) for r in rows], sum(EOS in r for r in rows)


def melody_stats(melodies: Sequence[Sequence[Token]]) -> dict[str, float]:
    """Simple, comparable descriptions of melodies: notes per melody, share of melodic steps
    (consecutive pitched notes at most 2 semitones apart), mean absolute interval (semitones),
    pitch range per melody (semitones), and share of rests."""
    lengths: list[int] = []
    ranges: list[int] = []
    steps: list[bool] = []
    rests: list[bool] = []
    intervals: list[float] = []
    for m in melodies:
        lengths.append(len(m))
        rests.extend(p == 0 for p, _ in m)
        pitched = [p for p, _ in m if p > 0]
        if pitched:
            ranges.append(max(pitched) - min(pitched))
        d = np.abs(np.diff(pitched)) if len(pitched) > 1 else np.zeros(0)
        intervals.extend(d.tolist())
        steps.extend((d <= 2).tolist())

    def mean(v: Sequence[float]) -> float:
        return round(float(np.mean(v)), 3) if len(v) else float("nan")

    return {
        "melodies": len(melodies),
        "notes_per_melody": mean(lengths),
        "step_share": mean(steps),
        "mean_abs_interval": mean(intervals),
        "pitch_range": mean(ranges),
        "rest_share": mean(rests),
    }


# ---- outputs ----


def write_midi(notes: Sequence[Token], path: Path, *, title: str) -> None:
    """A one-voice MIDI file of ``notes`` (zero-length grace notes are left out)."""
    from music21 import metadata, note, stream

    part: stream.Stream[Any] = stream.Stream()
    part.metadata = metadata.Metadata(title=title)
    for pitch, dur in notes:
        if dur <= 0:
            continue
        n = note.Rest(quarterLength=dur) if pitch == 0 else note.Note(pitch, quarterLength=dur)
        part.append(n)
    part.write("midi", fp=str(path))


def _plot_pianoroll(pieces: list[tuple[str, list[Token]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(pieces), 1, figsize=(10, 1.9 * len(pieces)), sharex=True, sharey=True
    )
    pitches = [p for _, notes in pieces for p, _ in notes if p > 0] or [60, 72]
    lo, hi = min(pitches) - 2, max(pitches) + 2
    end = max(1.0, *(sum(d for _, d in notes) for _, notes in pieces))
    for ax, (title, notes) in zip(np.atleast_1d(axes), pieces, strict=True):
        t = 0.0
        for pitch, dur in notes:
            if pitch > 0 and dur > 0:
                ax.broken_barh([(t, dur * 0.95)], (pitch - 0.4, 0.8), color="tab:blue")
            t += dur
        ax.set_xlim(0, end)
        ax.set_ylim(lo, hi)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("MIDI pitch")
        ax.grid(axis="x", alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel("time (quarter notes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_curves(
    curves: dict[int, list[float]], baselines: dict[str, float], best: dict[int, int], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for seed, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=f"LSTM LM, seed {seed}")
        ax.plot([best[seed]], [curve[best[seed] - 1]], "k.", ms=6)
    for (name, v), style in zip(baselines.items(), ("--", ":"), strict=False):
        ax.axhline(v, color="gray", ls=style, label=f"{name} (best k)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NLL (nats / note)")
    ax.set_title("Bach soprano lines: validation NLL per epoch (dot = kept)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the application ----


def run(
    config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool
) -> list[dict[str, Any]]:
    """Train the note LM per seed, score it and the n-gram baselines on the test chorales."""
    if importlib.util.find_spec("music21") is None:
        raise ValueError("the music app needs music21: pip install 'rnnkit[music]'")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    settings = check_config(config)
    from rnnkit.data import load

    data = settings.data
    splits = load(
        data.name,
        representation="events",
        limit=data.limit,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=data.split_seed,
    )
    raw = {name: _events(getattr(splits, name)) for name in ("train", "val", "test")}
    vocab = NoteVocab(raw["train"], min_count=settings.tokens.min_count)
    enc = {name: [vocab.encode(s) for s in seqs] for name, seqs in raw.items()}
    V = len(vocab)

    with timer() as t_ng:
        ngrams = fit_ngrams(enc["train"], enc["val"], V, settings.baselines.k_grid)
    base_test = {name: ngram_nll(ng, enc["test"]) for name, (ng, _, _) in ngrams.items()}
    base_val = {name: min(scores.values()) for name, (_, _, scores) in ngrams.items()}

    lm_test: list[float] = []
    walls: list[float] = []
    curves: dict[int, list[float]] = {}
    best_epochs: dict[int, int] = {}
    first_model: LanguageModel | None = None
    for seed in seeds:
        with timer() as t:
            model, curve, best_epoch, test_nll = train_lm(
                enc, V, config, seed=seed, root=out_dir / "runs"
            )
            lm_test.append(test_nll)
        walls.append(t["s"])
        curves[seed], best_epochs[seed] = curve, best_epoch
        if first_model is None:
            first_model = model
    assert first_model is not None

    # generated melodies from the first seed's model, and a real test melody to compare with
    gen = settings.generate
    n_files = gen.samples
    samples, ended = generate(
        first_model, vocab, gen, seeds[0], max(n_files, gen.stats_samples or n_files)
    )
    stats = {"generated": melody_stats(samples), "test_chorales": melody_stats(raw["test"])}
    samples = samples[:n_files]
    real = raw["test"][0]
    for i, notes in enumerate(samples):
        write_midi(notes, out_dir / f"generated_{i}.mid", title=f"rnnkit sample {i}")
    write_midi(real, out_dir / "test_chorale.mid", title="held-out Bach chorale (soprano)")
    _plot_pianoroll(
        [("real: held-out test chorale (soprano)", real)]
        + [(f"generated {i} (LSTM LM, seed {seeds[0]})", s) for i, s in enumerate(samples[:3])],
        out_dir / "pianoroll.png",
    )
    _plot_curves(
        curves, {f"{k} val": v for k, v in base_val.items()}, best_epochs, out_dir / "val_curve.png"
    )

    n_pred = sum(len(s) - 1 for s in enc["test"])
    unk_test = sum(s.count(UNK) for s in enc["test"])
    common: dict[str, Any] = {
        "app": APP,
        "dataset": "bach_chorales (soprano, test chorales)",
        "seeds": list(seeds),
        "wall_s": float(np.mean(walls)),
        "per_seed_wall_s": [round(w, 1) for w in walls],
        "split_sizes": {k: len(v) for k, v in raw.items()},
        "split_seed": data.split_seed,
        "vocab_size": V,
        "test_tokens_scored": n_pred,
        "test_unk_tokens": unk_test,
        "ngram_k": {k: v[1] for k, v in ngrams.items()},
        "ngram_fit_s": round(t_ng["s"], 2),
        "best_epochs": [best_epochs[s] for s in seeds],
        "samples_reaching_eos": f"{ended}/{stats['generated']['melodies']}",
        "melody_stats": stats,
        "max_notes": gen.max_notes,
        "runs": [str(out_dir / "runs" / f"music-seed{s}") for s in seeds],
    }
    spec = experiment(config, seed=seeds[0], root=out_dir / "runs").model
    model_name = f"{spec.cell.upper()} LM (H={spec.hidden_size})"
    records = []
    for baseline, unit, headline in (
        ("bigram", "nats", True),
        ("unigram", "nats", True),
        ("bigram", "bits", False),
    ):
        conv = bits_per_token if unit == "bits" else float
        records.append(
            record(
                model=model_name,
                metric=f"NLL ({unit}/note)",
                higher_is_better=False,
                values=[conv(v) for v in lm_test],
                baseline=f"{baseline} (add-k, k={ngrams[baseline][1]:g})",
                baseline_values=conv(base_test[baseline]),
                headline=headline,
                **common,
            )
        )
    return records
