"""Date normalisation: human-written dates in five languages -> ISO ``YYYY-MM-DD``, char to char.

Data: `rnnkit.data.dates` (seeded, synthetic; test dates never occur in training, and one
format is held out of training entirely). Model: `rnnkit.models.Seq2Seq`, a GRU encoder–decoder
with Bahdanau attention, trained by the library's trainer (`rnnkit.train.fit` on the recipe's
``experiment:``, a `Seq2SeqExperiment`): AdamW, warm-up then cosine decay, gradient clipping,
teacher forcing; the validation exact match is measured every ``trainer.val_check_interval``
steps and its best checkpoint scores the test split. The recipe's other ``variants`` (the same
network without attention, with the same budget and with about the same CPU time) are the same
experiment with a few keys overridden. Every seed and variant leaves a run directory under
``out_dir/runs/``.

Baselines: the most frequent training target, and a hand-written parser
(``dateutil.parser.parse(s, dayfirst=True, fuzzy=True)``). Metrics: exact match and per-character
accuracy on the test split, exact match on the held-out format; plots: attention heatmaps
(``attention.png``) and exact match per format (``per_format.png``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.apps._common import ValidationCurve, app_experiment, app_settings, merge, record, timer
from rnnkit.data.dates import DateSplits, all_formats, make_splits, two_digit_year
from rnnkit.data.text import Vocab
from rnnkit.models import Seq2Seq
from rnnkit.train import DataParts, fit, load_run

APP = "dates"
DATASET = "synthetic dates (5 languages, 24 formats)"
TARGET_CHARS = "0123456789-"
MAX_TARGET = 11  # YYYY-MM-DD and EOS
ATTENTION_LABEL = {
    "bahdanau": "GRU seq2seq + Bahdanau attention",
    "general": "GRU seq2seq + Luong attention",
    "dot": "GRU seq2seq + dot-product attention",
    "none": "GRU seq2seq, no attention",
}

Triple = tuple[str, str, str]


# ----------------------------------------------------------------------------- recipe


@dataclass
class DataSettings:
    """`rnnkit.data.dates.make_splits` arguments: the data set is fixed, the model seeds vary."""

    seed: int = 20261123  # the data set's seed
    n_train: int = 20000  # strings from the training pool of calendar days
    n_val: int = 500  # model selection (validation pool of days)
    n_test: int = 2000  # evaluation (test pool of days: never seen in training)
    n_heldout: int = 500  # test-pool days written in the held-out format(s)
    heldout_formats: list[str] = field(default_factory=lambda: ["weekday_de"])
    noise: float = 1.0  # scales case / accent / punctuation noise (0 = clean)

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test", "n_heldout"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        unknown = [f for f in self.heldout_formats if f not in all_formats()]
        if unknown:
            raise ValueError(
                f"data.heldout_formats: {unknown} are not formats; choose from {all_formats()}"
            )
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"data.noise must be a finite number >= 0, got {self.noise}")


@dataclass
class Variant:
    """One trained network: the recipe's ``experiment:`` with ``experiment`` merged over it (e.g.
    ``{model: {attention: none}, trainer: {max_steps: 2000}}``), checked as `rnnkit fit` checks a
    recipe. ``name`` labels it in the records (None: from its attention)."""

    name: str | None = None
    experiment: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plots:
    heatmap_formats: list[str] = field(
        default_factory=lambda: ["weekday_en", "long_fr", "mdy_slash"]
    )

    def __post_init__(self) -> None:
        unknown = [f for f in self.heatmap_formats if f not in all_formats()]
        if unknown:
            raise ValueError(f"plots.heatmap_formats: {unknown} are not formats")


@dataclass
class Settings:
    """The recipe's application keys; training is the ``experiment:`` section (`rnnkit fit`'s)."""

    data: DataSettings = field(default_factory=DataSettings)
    # The first is the main model; the others are its comparisons.
    variants: list[Variant] = field(default_factory=lambda: [Variant()])
    plots: Plots = field(default_factory=Plots)

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError("variants must list at least one network (the first is the main one)")


@dataclass
class Net:
    """A variant resolved: its label, its ``experiment:`` mapping and its place in the recipe."""

    name: str
    section: dict[str, Any]
    index: int  # 0: the main model

    def experiment(self, seed: int, root: Path) -> Any:
        """This variant's typed `Seq2SeqExperiment` for ``seed``, its run under ``root``."""
        fixed = {
            "task": "seq2seq",
            "seed": seed,
            # recorded (the samples are the app's); char level: predictions join without spaces
            "data": {"source": "rnnkit.data.dates", "level": "char"},
            "run": {"root": str(root), "name": f"dates-{self.index}-seed{seed}", "plot": False},
        }
        where = "experiment" if self.index == 0 else f"variants[{self.index}].experiment"
        return app_experiment(APP, self.section, fixed, where=where)


def nets(config: dict[str, Any], settings: Settings) -> list[Net]:
    """The variants with their experiments checked (before anything is trained); names unique."""
    base = config.get("experiment", {})
    if not isinstance(base, dict):
        raise ValueError(f"{APP} recipe: field 'experiment' must be a mapping, got {base!r}")
    out = []
    for i, v in enumerate(settings.variants):
        net = Net("", merge(base, v.experiment), i)
        exp = net.experiment(0, Path("runs"))
        net.name = v.name or ATTENTION_LABEL[exp.model.attention]
        out.append(net)
    if len({n.name for n in out}) != len(out):
        raise ValueError(
            f"{APP} recipe: field 'variants' has two entries with one name; set 'name'"
        )
    return out


def build_data(settings: DataSettings) -> DateSplits:
    return make_splits(
        seed=settings.seed,
        n_train=settings.n_train,
        n_val=settings.n_val,
        n_test=settings.n_test,
        n_heldout=settings.n_heldout,
        heldout_formats=list(settings.heldout_formats),
        noise=settings.noise,
    )


# ----------------------------------------------------------------------------- data


def _vocabs(train: Sequence[Triple]) -> tuple[Vocab, Vocab]:
    src = Vocab.build(Counter(c for s, _, _ in train for c in s))
    tgt = Vocab.build(Counter(TARGET_CHARS))
    return src, tgt


def _pairs(items: Sequence[Triple], src: Vocab, tgt: Vocab) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(source ids, EOS-terminated target ids)`` per string, as `Seq2SeqTask` batches them."""
    return [
        (
            np.asarray(src.encode(s), dtype=np.int64),
            np.asarray(tgt.encode(t, eos=True), dtype=np.int64),
        )
        for s, t, _ in items
    ]


def _decode_strings(
    model: Seq2Seq, pairs: Sequence[tuple[np.ndarray, np.ndarray]], tgt: Vocab, *, chunk: int = 512
) -> tuple[list[str], list[Tensor | None]]:
    """Greedy decodes of the sources of ``pairs`` as strings, with each row's attention weights."""
    out: list[str] = []
    weights: list[Tensor | None] = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pairs), chunk):
            xs = [torch.from_numpy(s) for s, _ in pairs[i : i + chunk]]
            x = nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=Vocab.pad_id)
            lengths = torch.tensor([len(s) for s in xs])
            dec = model.decode(x, lengths=lengths, max_len=MAX_TARGET)
            for row, toks in enumerate(dec.tokens.tolist()):
                text = []
                for t in toks:
                    if t == Vocab.eos_id:
                        break
                    text.append(tgt.decode([t])[0] if t >= 4 else "?")
                out.append("".join(text))
                weights.append(None if dec.aux is None else dec.aux[row])
    return out, weights


def exact_match(pred: Sequence[str], gold: Sequence[str]) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold, strict=True)]))


def char_accuracy(pred: Sequence[str], gold: Sequence[str]) -> float:
    """Share of the gold string's characters matched position by position."""
    hits = total = 0
    for p, g in zip(pred, gold, strict=True):
        hits += sum(a == b for a, b in zip(p, g, strict=False))
        total += len(g)
    return hits / total


# ----------------------------------------------------------------------------- baselines

_FOUR_DIGITS = re.compile(r"(?<!\d)\d{4}(?!\d)|\d{8}")


def dateutil_parse(text: str) -> str:
    """The hand-written parser: ``dateutil.parser.parse(text, dayfirst=True, fuzzy=True)`` with
    a fixed default (2000-01-01) for missing fields; a two-digit year gets the data set's stated
    pivot. An exception gives an empty prediction."""
    from dateutil import parser

    try:
        parsed = parser.parse(text, dayfirst=True, fuzzy=True, default=dt.datetime(2000, 1, 1))
    except (ValueError, OverflowError, TypeError):
        return ""
    day = parsed.date()
    if not _FOUR_DIGITS.search(text):  # only a two-digit year was written
        try:
            day = day.replace(year=two_digit_year(day.year % 100))
        except ValueError:  # 29 February in a non-leap year
            return ""
    return day.isoformat()


def most_frequent(train: Sequence[Triple]) -> str:
    counts = Counter(t for _, t, _ in train)
    return min(counts, key=lambda k: (-counts[k], k))


# ----------------------------------------------------------------------------- plots


def _plot_heatmaps(examples: Sequence[tuple[str, str, str, Tensor]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2
    rows = math.ceil(len(examples) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.2 * rows), squeeze=False)
    for ax, (src, pred, fmt, w) in zip(axes.flat, examples, strict=False):
        out = [*pred, "<eos>"]
        grid = w[: len(out), : len(src)].numpy()
        ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(src)), [c if c != " " else "␣" for c in src], fontsize=8)
        ax.set_yticks(range(len(out)), out, fontsize=8)
        ax.set_title(f"{fmt}: {src!r} -> {pred}", fontsize=9)
        ax.set_xlabel("source character")
        ax.set_ylabel("output")
    for ax in list(axes.flat)[len(examples) :]:
        ax.axis("off")
    fig.suptitle("Bahdanau attention weights on test dates (seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_per_format(per_format: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(per_format)
    present = set(next(iter(per_format.values())))
    order = [*all_formats(), *(f"{f} *" for f in all_formats())]
    formats = [f for f in order if f in present]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(formats) + 1.5))
    height = 0.8 / len(methods)
    pos = np.arange(len(formats))
    for i, method in enumerate(methods):
        vals = [per_format[method][f] for f in formats]
        ax.barh(pos + i * height, vals, height=height, label=method)
    ax.set_yticks(pos + height * (len(methods) - 1) / 2, formats, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("exact match on test dates (seed 0; * = format held out of training)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _per_format(items: Sequence[Triple], pred: Sequence[str]) -> dict[str, float]:
    hits: dict[str, list[bool]] = {}
    for (_, gold, fmt), p in zip(items, pred, strict=True):
        hits.setdefault(fmt, []).append(p == gold)
    return {f: float(np.mean(v)) for f, v in hits.items()}


# ----------------------------------------------------------------------------- run


@dataclass
class Trained:
    """One fitted network: its scores on the test and held-out splits and where its run is."""

    em: float
    char: float
    held: float | None
    wall: float
    cpu: float
    val: float
    best_step: int
    steps: int
    run: str


def _fit_one(
    net: Net,
    seed: int,
    root: Path,
    parts: DataParts,
    held: list[tuple[np.ndarray, np.ndarray]],
    tgt: Vocab,
) -> tuple[Trained, list[str], list[Tensor | None], list[str], list[Tensor | None]]:
    """Fit ``net`` for ``seed`` through `rnnkit.train.fit`, then decode the test and held-out
    strings with the best checkpoint (the run's artifact, as `rnnkit predict` loads it).

    The trainer's own test pass is skipped (``test=False``): it would decode the same test
    split again for the same exact match. The run still stores the test split, so `rnnkit test`
    and `rnnkit predict` score it from the run directory alone."""
    exp = net.experiment(seed, root)
    run_dir = root / str(exp.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    curve = ValidationCurve(str(exp.run.monitor))
    cpu = time.process_time()
    with timer() as clock:
        result = fit(exp, data=parts, callbacks=[curve], test=False)
        model: Any = load_run(result.run_dir).model
        assert parts.test is not None
        pred, weights = _decode_strings(model, parts.test, tgt)
    held_pred, held_w = _decode_strings(model, held, tgt) if held else ([], [])
    gold = [tgt_string(t, tgt) for _, t in parts.test]
    held_gold = [tgt_string(t, tgt) for _, t in held]
    trained = Trained(
        em=exact_match(pred, gold),
        char=char_accuracy(pred, gold),
        held=exact_match(held_pred, held_gold) if held else None,
        wall=clock["s"],
        cpu=time.process_time() - cpu,
        val=float(result.metrics[str(exp.run.monitor)]),
        best_step=int(result.summary.get("best_step") or 0),  # the checkpoint kept (tie-break)
        steps=int(exp.trainer.max_steps),
        run=str(result.run_dir),
    )
    return trained, pred, weights, held_pred, held_w


def tgt_string(ids: np.ndarray, tgt: Vocab) -> str:
    """The ISO string of EOS-terminated target ids."""
    return "".join(tgt.decode([int(t) for t in ids if t != Vocab.eos_id]))


def run(
    config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool
) -> list[dict[str, Any]]:
    """Fit every variant over ``seeds``, score the baselines once, and return the records."""
    if not seeds:
        raise ValueError(f"{APP}: no seeds given")
    settings = app_settings(Settings, config, app=APP)
    networks = nets(config, settings)  # every experiment checked before anything is fitted
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir / "runs"
    data = build_data(settings.data)
    src, tgt = _vocabs(data.train)
    gold = [g for _, g, _ in data.test]
    held_gold = [g for _, g, _ in data.test_heldout]

    # Baselines: deterministic, computed once on the fixed test split.
    trivial = most_frequent(data.train)
    trivial_pred = [trivial] * len(gold)
    with timer() as t_parse:
        parser_pred = [dateutil_parse(s) for s, _, _ in data.test]
    parser_held = [dateutil_parse(s) for s, _, _ in data.test_heldout]
    base = {
        "trivial": (exact_match(trivial_pred, gold), char_accuracy(trivial_pred, gold)),
        "parser": (exact_match(parser_pred, gold), char_accuracy(parser_pred, gold)),
    }
    parser_held_em = exact_match(parser_held, held_gold) if held_gold else float("nan")

    parts = DataParts(
        _pairs(data.train, src, tgt),
        _pairs(data.val, src, tgt),
        _pairs(data.test, src, tgt),
        {"src_vocab": src, "tgt_vocab": tgt},
    )
    held = _pairs(data.test_heldout, src, tgt)
    res: dict[str, list[Trained]] = {n.name: [] for n in networks}
    per_format: dict[str, dict[str, float]] = {}
    heatmaps: list[tuple[str, str, str, Tensor]] = []
    for seed in seeds:
        for net in networks:
            trained, pred, weights, held_pred, held_w = _fit_one(net, seed, root, parts, held, tgt)
            res[net.name].append(trained)
            if seed != seeds[0]:
                continue
            fmt_scores = _per_format(data.test, pred)
            fmt_scores.update(
                {f"{k} *": v for k, v in _per_format(data.test_heldout, held_pred).items()}
            )
            per_format[net.name] = fmt_scores
            if net.index == 0 and weights and weights[0] is not None:
                heatmaps = _pick_heatmaps(settings.plots.heatmap_formats, data, pred, weights)
                if held_pred and held_w[0] is not None:
                    s, _, f = data.test_heldout[0]
                    heatmaps.append((s, held_pred[0], f + " (held out)", held_w[0]))
    fmt_parser = _per_format(data.test, parser_pred)
    fmt_parser.update({f"{k} *": v for k, v in _per_format(data.test_heldout, parser_held).items()})
    per_format["dateutil parser"] = fmt_parser
    _plot_per_format(per_format, out_dir / "per_format.png")
    if heatmaps:
        _plot_heatmaps(heatmaps[:4], out_dir / "attention.png")
    return _records(seeds, networks, res, base, parser_held_em, t_parse["s"], trivial, data)


def _pick_heatmaps(
    wanted: Sequence[str], data: DateSplits, pred: Sequence[str], weights: Sequence[Tensor | None]
) -> list[tuple[str, str, str, Tensor]]:
    out = []
    for fmt in wanted:
        for i, (s, _, f) in enumerate(data.test):
            w = weights[i]
            if f == fmt and w is not None:
                out.append((s, pred[i], f, w))
                break
    return out


def _records(
    seeds: list[int],
    networks: list[Net],
    res: dict[str, list[Trained]],
    base: dict[str, tuple[float, float]],
    parser_held_em: float,
    parse_s: float,
    trivial: str,
    data: DateSplits,
) -> list[dict[str, Any]]:
    main = networks[0].name
    r = res[main]
    wall = float(np.mean([t.wall for t in r]))
    common: dict[str, Any] = {
        "app": APP,
        "dataset": DATASET,
        "seeds": seeds,
        "higher_is_better": True,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "n_test_heldout": len(data.test_heldout),
        "heldout_formats": data.heldout_formats,
    }
    extra: dict[str, Any] = {
        "per_seed_wall_s": [round(t.wall, 1) for t in r],
        "per_seed_cpu_s": [round(t.cpu, 1) for t in r],
        "val_exact_match": [t.val for t in r],
        "best_step": [t.best_step for t in r],
        "train_steps": r[0].steps,
        "runs": [t.run for t in r],
    }
    parser_name = "dateutil parser (dayfirst, fuzzy)"
    trivial_name = f"most frequent training target ({trivial})"
    em, char = [t.em for t in r], [t.char for t in r]
    out = [
        record(**common, model=main, metric="exact match", values=em, baseline=parser_name,
               baseline_values=base["parser"][0], wall_s=wall, headline=True, **extra),
        record(**common, model=main, metric="exact match", values=em, baseline=trivial_name,
               baseline_values=base["trivial"][0], wall_s=wall, headline=True, **extra),
        record(**common, model=main, metric="char accuracy", values=char, baseline=parser_name,
               baseline_values=base["parser"][1], wall_s=wall, headline=False,
               trivial_char_accuracy=base["trivial"][1], **extra),
    ]  # fmt: skip
    if data.test_heldout:
        out.append(
            record(
                **common,
                model=main,
                metric="exact match, held-out format",
                values=[float(t.held or 0.0) for t in r],
                baseline=parser_name,
                baseline_values=parser_held_em,
                wall_s=wall,
                split="test, held-out format " + ", ".join(data.heldout_formats),
                headline=False,
                **extra,
            )
        )
    for net in networks[1:]:
        other = res[net.name]
        out.append(
            record(
                **common,
                model=main,
                metric="exact match",
                values=em,
                baseline=net.name,
                baseline_values=[t.em for t in other],
                wall_s=wall,
                baseline_wall_s=round(float(np.mean([t.wall for t in other])), 1),
                baseline_train_steps=other[0].steps,
                baseline_cpu_s=[round(t.cpu, 1) for t in other],
                baseline_char_accuracy=[t.char for t in other],
                baseline_heldout_exact_match=[t.held for t in other if t.held is not None],
                baseline_val_exact_match=[t.val for t in other],
                baseline_runs=[t.run for t in other],
                headline=other[0].steps == r[0].steps,
            )
        )
    for rec in out:
        rec["parser_wall_s"] = round(parse_s, 2)
    return out
