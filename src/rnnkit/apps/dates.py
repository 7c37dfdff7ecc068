"""Date normalisation: human-written dates in five languages -> ISO ``YYYY-MM-DD``, char to char.

Data: `rnnkit.data.dates` (seeded, synthetic; test dates never occur in training, and one
format is held out of training entirely). Model: `rnnkit.models.Seq2Seq`, a GRU encoder–decoder
with Bahdanau attention, against the same network without attention, trained with the same
budget. Baselines: the most frequent training target, and a hand-written parser
(``dateutil.parser.parse(s, dayfirst=True, fuzzy=True)``). Metrics: exact match and per-character
accuracy on the test split; plots: attention heatmaps and exact match per format.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.apps._common import record, seed_all, timer
from rnnkit.data.dates import DateSplits, all_formats, make_splits, two_digit_year
from rnnkit.data.text import Vocab
from rnnkit.models import Seq2Seq, Seq2SeqConfig

APP = "dates"
DATASET = "synthetic dates (5 languages, 24 formats)"
TARGET_CHARS = "0123456789-"
MAX_TARGET = 11  # YYYY-MM-DD and EOS
ATTENTION_LABEL = {
    "bahdanau": "GRU seq2seq + Bahdanau attention",
    "general": "GRU seq2seq + Luong attention",
    "none": "GRU seq2seq, no attention",
}

Triple = tuple[str, str, str]


# ----------------------------------------------------------------------------- recipe checks


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"dates recipe: field {name!r} must be a mapping, got {value!r}")
    return value


def _positive_int(section: dict[str, Any], where: str, name: str) -> int:
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"dates recipe: field '{where}.{name}' must be a positive integer, got {value!r}"
        )
    return value


def _positive_float(section: dict[str, Any], where: str, name: str) -> float:
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"dates recipe: field '{where}.{name}' must be a positive number, got {value!r}"
        )
    return float(value)


def check_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the field for a recipe that cannot run."""
    data, model, train = (_section(config, k) for k in ("data", "model", "train"))
    for name in ("seed", "n_train", "n_val", "n_test", "n_heldout"):
        if name == "seed":
            if not isinstance(data.get(name), int):
                raise ValueError(
                    f"dates recipe: field 'data.seed' must be an integer, got {data.get(name)!r}"
                )
        else:
            _positive_int(data, "data", name)
    held = data.get("heldout_formats", [])
    if not isinstance(held, list) or any(f not in all_formats() for f in held):
        raise ValueError(
            f"dates recipe: field 'data.heldout_formats' must list formats from {all_formats()}, "
            f"got {held!r}"
        )
    for name in ("embedding_dim", "hidden_size"):
        _positive_int(model, "model", name)
    for name in ("steps", "batch_size", "eval_every"):
        _positive_int(train, "train", name)
    for name in ("lr", "clip"):
        _positive_float(train, "train", name)
    variants(config)


class Variant(NamedTuple):
    """One trained network: its name in the records, its attention, its training steps."""

    name: str
    attention: str
    steps: int


def variants(config: dict[str, Any]) -> list[Variant]:
    """The recipe's ``variants`` (the first is the main model), each ``{attention, steps?,
    name?}``; ``steps`` defaults to ``train.steps``."""
    items = config.get("variants")
    if not isinstance(items, list) or not items:
        raise ValueError(f"dates recipe: field 'variants' must be a non-empty list, got {items!r}")
    out = []
    for i, item in enumerate(items):
        where = f"variants[{i}]"
        if not isinstance(item, dict) or item.get("attention") not in ATTENTION_LABEL:
            raise ValueError(
                f"dates recipe: field '{where}.attention' must be one of "
                f"{sorted(ATTENTION_LABEL)}, got {item!r}"
            )
        steps = _positive_int(
            {"steps": item.get("steps", config["train"]["steps"])}, where, "steps"
        )
        name = item.get("name") or ATTENTION_LABEL[item["attention"]]
        out.append(Variant(str(name), str(item["attention"]), steps))
    if len({v.name for v in out}) != len(out):
        raise ValueError("dates recipe: field 'variants' has two entries with one name; set 'name'")
    return out


# ----------------------------------------------------------------------------- data


def build_data(config: dict[str, Any]) -> DateSplits:
    d = config["data"]
    return make_splits(
        seed=int(d["seed"]),
        n_train=int(d["n_train"]),
        n_val=int(d["n_val"]),
        n_test=int(d["n_test"]),
        n_heldout=int(d["n_heldout"]),
        heldout_formats=list(d.get("heldout_formats", [])),
        noise=float(d.get("noise", 1.0)),
    )


def _vocabs(train: Sequence[Triple]) -> tuple[Vocab, Vocab]:
    src = Vocab.build(Counter(c for s, _, _ in train for c in s))
    tgt = Vocab.build(Counter(TARGET_CHARS))
    return src, tgt


def _encode(items: Sequence[Triple], src: Vocab, tgt: Vocab) -> tuple[Tensor, Tensor, Tensor]:
    """Padded source ids ``(N, S)``, lengths ``(N,)``, EOS-terminated target ids ``(N, 11)``."""
    xs = [torch.tensor(src.encode(s), dtype=torch.int64) for s, _, _ in items]
    x = nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=Vocab.pad_id)
    lengths = torch.tensor([len(t) for t in xs], dtype=torch.int64)
    y = torch.tensor([tgt.encode(t, eos=True) for _, t, _ in items], dtype=torch.int64)
    return x, lengths, y


# ----------------------------------------------------------------------------- model


def _decode_strings(
    model: Seq2Seq, x: Tensor, lengths: Tensor, tgt: Vocab, *, chunk: int = 512
) -> tuple[list[str], list[Tensor | None]]:
    out: list[str] = []
    weights: list[Tensor | None] = []
    for i in range(0, len(x), chunk):
        xb, lb = x[i : i + chunk], lengths[i : i + chunk]
        width = int(lb.max())
        dec = model.decode(xb[:, :width], lengths=lb, max_len=MAX_TARGET)
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


def train_model(
    config: dict[str, Any],
    attention: str,
    data: DateSplits,
    src: Vocab,
    tgt: Vocab,
    seed: int,
    steps: int | None = None,
) -> tuple[Seq2Seq, dict[str, Any]]:
    """AdamW, cosine learning rate, gradient clipping; keeps the state with the best validation
    exact match (checked every ``eval_every`` steps)."""
    seed_all(seed)
    m, t = config["model"], config["train"]
    model = Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=len(src),
            tgt_vocab_size=len(tgt),
            pad_id=Vocab.pad_id,
            bos_id=Vocab.bos_id,
            eos_id=Vocab.eos_id,
            embedding_dim=int(m["embedding_dim"]),
            cell=m.get("cell", "gru"),
            hidden_size=int(m["hidden_size"]),
            num_layers=int(m.get("num_layers", 1)),
            bidirectional_encoder=bool(m.get("bidirectional_encoder", True)),
            attention=attention,  # type: ignore[arg-type]
            dropout=float(m.get("dropout", 0.0)),
        )
    )
    x, lengths, y = _encode(data.train, src, tgt)
    vx, vl, _ = _encode(data.val, src, tgt)
    vgold = [g for _, g, _ in data.val]
    steps = int(t["steps"]) if steps is None else steps
    batch, every = int(t["batch_size"]), int(t["eval_every"])
    lr = float(t["lr"])
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=float(t.get("weight_decay", 0.0))
    )
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(seed)
    best: tuple[float, int, dict[str, Tensor]] = (-1.0, 0, {})
    curve: list[tuple[int, float]] = []
    model.train()
    for step in range(steps):
        idx = torch.randint(len(x), (batch,), generator=gen)
        lb = lengths[idx]
        xb = x[idx][:, : int(lb.max())]
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model.loss(xb, y[idx], lengths=lb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), float(t["clip"]))
        opt.step()
        if (step + 1) % every == 0 or step + 1 == steps:
            pred, _ = _decode_strings(model, vx, vl, tgt)
            score = exact_match(pred, vgold)
            curve.append((step + 1, score))
            if score > best[0]:
                best = (score, step + 1, copy.deepcopy(model.state_dict()))
            model.train()
    model.load_state_dict(best[2])
    model.eval()
    return model, {"val_exact_match": best[0], "best_step": best[1], "val_curve": curve}


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


def run(
    config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool
) -> list[dict[str, Any]]:
    check_config(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = build_data(config)
    src, tgt = _vocabs(data.train)
    gold = [g for _, g, _ in data.test]
    held_gold = [g for _, g, _ in data.test_heldout]
    nets = variants(config)

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

    tx, tl, _ = _encode(data.test, src, tgt)
    hx, hl, _ = _encode(data.test_heldout, src, tgt) if data.test_heldout else (None, None, None)
    res: dict[str, dict[str, list[Any]]] = {
        v: {"em": [], "char": [], "held": [], "wall": [], "cpu": [], "val": [], "best_step": []}
        for v in [n.name for n in nets]
    }
    per_format: dict[str, dict[str, float]] = {}
    heatmaps: list[tuple[str, str, str, Tensor]] = []
    for seed in seeds:
        for net in nets:
            cpu = time.process_time()
            with timer() as clock:
                model, info = train_model(
                    config, net.attention, data, src, tgt, seed, steps=net.steps
                )
                pred, weights = _decode_strings(model, tx, tl, tgt)
            r = res[net.name]
            r["em"].append(exact_match(pred, gold))
            r["char"].append(char_accuracy(pred, gold))
            r["wall"].append(clock["s"])
            r["cpu"].append(time.process_time() - cpu)
            r["val"].append(info["val_exact_match"])
            r["best_step"].append(info["best_step"])
            held_pred: list[str] = []
            if hx is not None and hl is not None:
                held_pred, held_w = _decode_strings(model, hx, hl, tgt)
                r["held"].append(exact_match(held_pred, held_gold))
            if seed == seeds[0]:
                fmt_scores = _per_format(data.test, pred)
                fmt_scores.update(
                    {f"{k} *": v for k, v in _per_format(data.test_heldout, held_pred).items()}
                )
                per_format[net.name] = fmt_scores
                if net == nets[0] and net.attention != "none":
                    heatmaps = _pick_heatmaps(config, data, pred, weights)
                    if data.test_heldout and held_pred:
                        i = 0
                        s, _, f = data.test_heldout[i]
                        w = held_w[i]
                        if w is not None:
                            heatmaps.append((s, held_pred[i], f + " (held out)", w))
    fmt_parser = _per_format(data.test, parser_pred)
    fmt_parser.update({f"{k} *": v for k, v in _per_format(data.test_heldout, parser_held).items()})
    per_format["dateutil parser"] = fmt_parser
    _plot_per_format(per_format, out_dir / "per_format.png")
    if heatmaps:
        _plot_heatmaps(heatmaps[:4], out_dir / "attention.png")
    return _records(config, seeds, nets, res, base, parser_held_em, t_parse["s"], trivial, data)


def _pick_heatmaps(
    config: dict[str, Any], data: DateSplits, pred: Sequence[str], weights: Sequence[Tensor | None]
) -> list[tuple[str, str, str, Tensor]]:
    wanted = list(
        config.get("plots", {}).get("heatmap_formats", ["weekday_en", "long_fr", "mdy_slash"])
    )
    out = []
    for fmt in wanted:
        for i, (s, _, f) in enumerate(data.test):
            w = weights[i]
            if f == fmt and w is not None:
                out.append((s, pred[i], f, w))
                break
    return out


def _records(
    config: dict[str, Any],
    seeds: list[int],
    nets: list[Variant],
    res: dict[str, dict[str, list[Any]]],
    base: dict[str, tuple[float, float]],
    parser_held_em: float,
    parse_s: float,
    trivial: str,
    data: DateSplits,
) -> list[dict[str, Any]]:
    main = nets[0].name
    common: dict[str, Any] = {
        "app": APP,
        "dataset": DATASET,
        "seeds": seeds,
        "higher_is_better": True,
    }
    sizes: dict[str, Any] = {
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "n_test_heldout": len(data.test_heldout),
        "heldout_formats": data.heldout_formats,
    }
    parser_name = "dateutil parser (dayfirst, fuzzy)"
    trivial_name = f"most frequent training target ({trivial})"
    out: list[dict[str, Any]] = []
    for net in nets[:1]:
        r = res[net.name]
        label = net.name
        extra: dict[str, Any] = {
            "per_seed_wall_s": [round(w, 1) for w in r["wall"]],
            "per_seed_cpu_s": [round(c, 1) for c in r["cpu"]],
            "val_exact_match": r["val"],
            "best_step": r["best_step"],
            "train_steps": net.steps,
            **sizes,
        }
        head = net.name == main
        out.append(
            record(
                **common,
                model=label,
                metric="exact match",
                values=r["em"],
                baseline=parser_name,
                baseline_values=base["parser"][0],
                wall_s=float(np.mean(r["wall"])),
                headline=head,
                **extra,
            )
        )
        out.append(
            record(
                **common,
                model=label,
                metric="exact match",
                values=r["em"],
                baseline=trivial_name,
                baseline_values=base["trivial"][0],
                wall_s=float(np.mean(r["wall"])),
                headline=head,
                **extra,
            )
        )
        out.append(
            record(
                **common,
                model=label,
                metric="char accuracy",
                values=r["char"],
                baseline=parser_name,
                baseline_values=base["parser"][1],
                wall_s=float(np.mean(r["wall"])),
                headline=False,
                trivial_char_accuracy=base["trivial"][1],
                **extra,
            )
        )
        if r["held"]:
            out.append(
                record(
                    **common,
                    model=label,
                    metric="exact match, held-out format",
                    values=r["held"],
                    baseline=parser_name,
                    baseline_values=parser_held_em,
                    wall_s=float(np.mean(r["wall"])),
                    split="test, held-out format " + ", ".join(data.heldout_formats),
                    headline=False,
                    **extra,
                )
            )
    for net in nets[1:]:
        out.append(
            record(
                **common,
                model=main,
                metric="exact match",
                values=res[main]["em"],
                baseline=net.name,
                baseline_values=res[net.name]["em"],
                wall_s=float(np.mean(res[main]["wall"])),
                baseline_wall_s=round(float(np.mean(res[net.name]["wall"])), 1),
                baseline_train_steps=net.steps,
                baseline_cpu_s=[round(c, 1) for c in res[net.name]["cpu"]],
                baseline_char_accuracy=res[net.name]["char"],
                baseline_heldout_exact_match=res[net.name]["held"],
                baseline_val_exact_match=res[net.name]["val"],
                headline=net.steps == nets[0].steps,
                **sizes,
            )
        )
    for rec in out:
        rec["parser_wall_s"] = round(parse_s, 2)
    return out
