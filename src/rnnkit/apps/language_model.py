"""Language modelling: character LSTM and GRU on English and on Python code, and a word-level LSTM.

Data: registry text sets read as one stream and split contiguously into train / validation / test
blocks (``shakespeare``: 38 plays; ``python_stdlib``: the first ``head_chars`` characters of the
standard library's sources), tokenised by characters, or by words for the word-level variant (vocab
from the training block, rarer words mapped to ``<unk>``). Every model is trained by the library's
own recipe: `rnnkit.train.fit` on a `LanguageModelExperiment` (truncated BPTT over parallel streams,
AdamW, cosine schedule, gradient clipping), the checkpoint with the best validation bits per token
is kept (model selection on validation only), and it is scored on the whole test block.

Baselines, fitted on the training block and scored on exactly the tokens the model scores (each
given the token before it): unigram and bigram `rnnkit.evaluate.NGram` models, add-k smoothed with
``k`` picked on the validation block. Metrics: bits per character (char level) and perplexity (word
level) on the test block.

Outputs in ``out_dir``: ``val_curves.png`` (validation bits per token over training steps, LSTM vs
GRU, baselines as lines), ``samples-<corpus>.txt`` (generated text), ``runs/`` (the run folders).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from rnnkit.apps._common import merge, record
from rnnkit.evaluate import NGram
from rnnkit.train import build, fit
from rnnkit.train.experiment_io import experiment_from_dict
from rnnkit.train.tasks.lm import sample_text

APP = "language_model"
TOP_KEYS = ("app", "experiment", "corpora", "ngram_k", "sample")
CORPUS_KEYS = ("name", "label", "cells", "prompt", "headline")
SAMPLE_KEYS = ("tokens", "temperature")


# ---- recipe checks ---------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{APP} recipe: field {where!r} must be a mapping, got {value!r}")
    return value


def _check_recipe(config: dict[str, Any]) -> None:
    unknown = sorted(set(config) - set(TOP_KEYS))
    if unknown:
        raise ValueError(
            f"{APP} recipe: unknown field(s) {unknown}; valid top-level fields: {list(TOP_KEYS)}"
        )
    for key in TOP_KEYS[1:]:
        if key not in config:
            raise ValueError(f"{APP} recipe: field {key!r} is missing")
    _mapping(config["experiment"], "experiment")
    corpora = config["corpora"]
    if not isinstance(corpora, list) or not corpora:
        raise ValueError(f"{APP} recipe: field 'corpora' must be a non-empty list, got {corpora!r}")
    names = []
    for i, c in enumerate(corpora):
        c = _mapping(c, f"corpora[{i}]")
        name = c.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{APP} recipe: field 'corpora[{i}].name' must be a non-empty string")
        names.append(name)
        cells = c.get("cells")
        if not isinstance(cells, list) or not cells or not all(isinstance(x, str) for x in cells):
            raise ValueError(
                f"{APP} recipe: field 'corpora[{i}].cells' must be a non-empty list of cell names "
                f"(lstm, gru, ...), got {cells!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"{APP} recipe: field 'corpora' repeats a name: {names}")
    ks = config["ngram_k"]
    if (
        not isinstance(ks, list)
        or not ks
        or not all(isinstance(k, (int, float)) and not isinstance(k, bool) and k > 0 for k in ks)
    ):
        raise ValueError(f"{APP} recipe: field 'ngram_k' must be a non-empty list of numbers > 0")
    sample = _mapping(config["sample"], "sample")
    unknown = sorted(set(sample) - set(SAMPLE_KEYS))
    if unknown:
        raise ValueError(
            f"{APP} recipe: unknown field(s) {unknown} in 'sample'; valid: {SAMPLE_KEYS}"
        )
    tokens = sample.get("tokens", 0)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError(f"{APP} recipe: field 'sample.tokens' must be an integer >= 0")


def _experiment(
    config: dict[str, Any], corpus: dict[str, Any], *, cell: str, seed: int, root: Path
) -> Any:
    """The `LanguageModelExperiment` of one (corpus, cell, seed), checked like ``rnnkit fit``."""
    over = {k: v for k, v in corpus.items() if k not in CORPUS_KEYS}
    data = merge(config["experiment"], over)
    data = merge(
        data,
        {
            "task": "language_model",
            "seed": seed,
            "model": {"cell": cell},
            "run": {
                "root": str(root),
                "name": f"{corpus['name']}-{cell}-seed{seed}",
                "plot": False,
            },
            "sample_chars": 0,
        },
    )
    try:
        return experiment_from_dict(data)
    except ValueError as err:
        raise ValueError(f"{APP} recipe, corpora[{corpus['name']!r}] + experiment: {err}") from None


# ---- baselines on exactly the model's tokens ---------------------------------------------------


def _pair_bits(model: NGram, x: np.ndarray, y: np.ndarray) -> float:
    """Mean bits of ``model`` on every target ``y[b, t]`` given the token ``x[b, t]`` before it.

    Rows are contiguous (``x[b, t+1] == y[b, t]``), so each row is the sequence
    ``x[b, 0], y[b, :]`` with its first token only conditioning.
    """
    rows = [np.concatenate([xr[:1], yr]).tolist() for xr, yr in zip(x, y, strict=True)]
    return model.bits(rows, skip_first=True)


def _baselines(built: Any, ks: Sequence[float], val_tokens: int) -> dict[str, dict[str, float]]:
    """Unigram and bigram, k picked on validation; bits on the test and the curve's tokens."""
    dm = built.datamodule
    corpus = dm.corpus
    V = len(corpus.vocab)
    test_dl, val_dl = dm.test_dataloader(), dm.val_dataloader()
    vx, vy = val_dl.x[:, :val_tokens], val_dl.y[:, :val_tokens]  # what the curve's checks read
    out: dict[str, dict[str, float]] = {}
    for order, name in ((1, "unigram"), (2, "bigram")):
        best: tuple[float, float, NGram] | None = None
        for k in ks:
            g = NGram(V, order=order, k=float(k)).fit([corpus.train])
            bits = _pair_bits(g, val_dl.x, val_dl.y)
            if best is None or bits < best[0]:
                best = (bits, float(k), g)
        assert best is not None
        _, k, g = best
        out[name] = {
            "k": k,
            "test_bits": _pair_bits(g, test_dl.x, test_dl.y),
            "val_bits": _pair_bits(g, val_dl.x, val_dl.y),
            "curve_bits": _pair_bits(g, vx, vy),
        }
    out["tokens"] = {"test": float(test_dl.y.size), "val": float(val_dl.y.size), "vocab": V}
    return out


# ---- one model -------------------------------------------------------------------------------


class _Curve(L.Callback):
    """(step, validation bits per token) of every check during fitting."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_bpc")
        if value is not None:
            self.points.append((int(trainer.global_step), float(value)))


def _train_one(experiment: Any) -> dict[str, Any]:
    """Fit, then score the best-on-validation checkpoint on the whole test block."""
    run_dir = Path(experiment.run.root) / str(experiment.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    start, cpu0 = time.perf_counter(), time.process_time()
    built = build(experiment)
    curve = _Curve()
    result = fit(experiment, built=built, callbacks=[curve], test=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    shutil.rmtree(result.run_dir / "checkpoints", ignore_errors=True)  # the artifact stays
    return {
        "built": built,
        "test_bits": float(result.metrics["test_bpc"]),
        "val_bits": float(result.metrics["val_bpc"]),
        "curve": curve.points,
        "steps": int(result.summary.get("steps", 0)),
        "params": sum(p.numel() for p in built.module.model.parameters()),
        "wall_s": wall,
        "cpu_s": cpu,
    }


# ---- plot ------------------------------------------------------------------------------------


def _plot(panels: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    colours = {"lstm": "tab:blue", "gru": "tab:orange"}
    for ax, p in zip(axes[0], panels, strict=True):
        word = p["level"] == "word"
        conv = (lambda b: 2.0**b) if word else (lambda b: b)
        for i, (cell, runs) in enumerate(p["curves"].items()):
            colour = colours.get(cell, f"C{i + 2}")
            for j, pts in enumerate(runs):
                if pts:
                    s, b = zip(*pts, strict=True)
                    ax.plot(
                        s,
                        [conv(v) for v in b],
                        color=colour,
                        alpha=0.8,
                        lw=1.2,
                        label=cell.upper() if j == 0 else None,
                    )
        for name, style in (("unigram", ":"), ("bigram", "--")):
            ax.axhline(conv(p["baselines"][name]["curve_bits"]), color="grey", ls=style, label=name)
        ax.set_title(p["title"], fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("validation perplexity (log)" if word else "validation bits / char")
        if word:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Validation loss while training (one line per seed) vs n-gram baselines")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the application -------------------------------------------------------------------------


def run(
    config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool
) -> list[dict[str, Any]]:
    if not seeds:
        raise ValueError(f"{APP}: at least one seed is needed")
    _check_recipe(config)
    out_dir = Path(out_dir)
    root = out_dir / "runs"
    ks = [float(k) for k in config["ngram_k"]]
    n_sample = int(config["sample"].get("tokens", 0))
    temperature = float(config["sample"].get("temperature", 0.8))
    corpora = config["corpora"]
    # Check every experiment before training anything.
    for c in corpora:
        for cell in c["cells"]:
            _experiment(config, c, cell=cell, seed=seeds[0], root=root)

    records: list[dict[str, Any]] = []
    panels: list[dict[str, Any]] = []
    for ci, c in enumerate(corpora):
        base_exp = None
        baselines: dict[str, dict[str, float]] = {}
        per_cell: dict[str, list[dict[str, Any]]] = {cell: [] for cell in c["cells"]}
        samples: list[str] = []
        for seed in seeds:
            for cell in c["cells"]:
                exp = _experiment(config, c, cell=cell, seed=seed, root=root)
                res = _train_one(exp)
                if base_exp is None:
                    base_exp = exp
                    val_tokens = (
                        int(exp.trainer.limit_val_batches) * max(exp.tbptt.k1, 256)
                        if isinstance(exp.trainer.limit_val_batches, int)
                        else 1 << 62
                    )
                    baselines = _baselines(res["built"], ks, val_tokens)
                if n_sample > 0:
                    text = sample_text(
                        res["built"].module.model,
                        res["built"].datamodule.corpus.vocab,
                        prompt=str(c.get("prompt", "\n")),
                        chars=n_sample,
                        temperature=temperature,
                        seed=seed,
                        level=exp.data.level,
                    )
                    samples.append(
                        f"=== {cell.upper()}, seed {seed}, temperature {temperature}, test "
                        f"{_fmt_metric(exp.data.level, res['test_bits'])} ===\n"
                        f"{c.get('prompt', '')}{' ' if exp.data.level == 'word' else ''}{text}\n"
                    )
                res.pop("built")
                per_cell[cell].append(res)
        assert base_exp is not None
        if samples:
            (out_dir / f"samples-{c['name']}.txt").write_text("\n".join(samples), encoding="utf-8")
        level = base_exp.data.level
        dataset = c.get("label") or f"{base_exp.data.source} ({level})"
        tokens = int(baselines["tokens"]["test"])
        vocab = int(baselines["tokens"]["vocab"])
        d = base_exp.data
        for i, cell in enumerate(c["cells"]):
            runs = per_cell[cell]
            m = base_exp.model
            model_name = (
                f"{cell.upper()} {level} LM (E={m.embedding_dim}, H={m.hidden_size}, "
                f"L={m.num_layers}; {runs[0]['params'] / 1e3:.0f}k params)"
            )
            for name in ("bigram", "unigram"):
                b = baselines[name]
                headline = (
                    bool(c.get("headline", True)) and i == 0 and (name == "bigram" or ci == 0)
                )
                records.append(
                    record(
                        app=APP,
                        dataset=dataset,
                        model=model_name,
                        metric="perplexity" if level == "word" else "bits/char",
                        higher_is_better=False,
                        values=[_metric(level, r["test_bits"]) for r in runs],
                        baseline=f"{name} (add-{b['k']:g}, k picked on validation)",
                        baseline_values=_metric(level, b["test_bits"]),
                        seeds=seeds,
                        wall_s=float(np.mean([r["wall_s"] for r in runs])),
                        headline=headline,
                        corpus=c["name"],
                        level=level,
                        cell=cell,
                        test_tokens=tokens,
                        val_values=[_metric(level, r["val_bits"]) for r in runs],
                        baseline_val_value=_metric(level, b["val_bits"]),
                        test_bits_per_token=[r["test_bits"] for r in runs],
                        baseline_test_bits_per_token=b["test_bits"],
                        steps=[r["steps"] for r in runs],
                        parameters=runs[0]["params"],
                        per_seed_wall_s=[round(r["wall_s"], 1) for r in runs],
                        per_seed_cpu_s=[round(r["cpu_s"], 1) for r in runs],
                        notes=(
                            f"contiguous train/val/test split "
                            f"{1 - d.val_fraction - d.test_fraction:.0%}/{d.val_fraction:.0%}/"
                            f"{d.test_fraction:.0%}; vocab {vocab} tokens; {tokens} test tokens"
                        ),
                    )
                )
        panels.append(
            {
                "title": f"{dataset}",
                "level": level,
                "baselines": baselines,
                "curves": {cell: [r["curve"] for r in per_cell[cell]] for cell in c["cells"]},
            }
        )
    _plot(panels, out_dir / "val_curves.png")
    return records


def _metric(level: str, bits: float) -> float:
    """Bits per character as they are; perplexity (2 ** bits per word) at word level."""
    return float(2.0**bits) if level == "word" else float(bits)


def _fmt_metric(level: str, bits: float) -> str:
    return f"perplexity {2.0**bits:.1f}" if level == "word" else f"{bits:.3f} bits/char"
