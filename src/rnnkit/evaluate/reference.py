"""The baselines every `rnnkit fit` / `rnnkit test` reports beside the model, and the verdict.

Every run has them, whatever its data: the user's files, a registry set, a synthetic task or
in-memory `DataParts` (`rnnkit.evaluate.run_inputs` reads the inputs of those). Each suite is
cheap by default and scored on the very split the model is scored on (the test split, or the
validation split of a run without ``run.test``), in the same units (forecasts in the scaled units
of each series, language models in bits per token, as the model's metrics are). The verdict says
plainly whether the model beats each baseline on the task's headline metric; a tie does not
count as beating. ``evaluate.baselines: false`` in a recipe skips all of it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.evaluate.baselines import (
    NGram,
    dtw_distances,
    ets_forecast,
    euclidean_distances,
    naive_forecast,
    seasonal_naive_forecast,
    tfidf_logreg,
)
from rnnkit.evaluate.metrics import accuracy, bleu, chrf, macro_f1

Scores = dict[str, dict[str, float]]

# The headline metric of each task: (name, higher is better).
HEADLINE = {
    "classification": ("accuracy", True),
    "regression": ("mae", False),
    "text": ("accuracy", True),
    "forecasting": ("mae", False),
    "seq2seq": ("exact_match", True),
    "seq2seq_ids": ("exact_match", True),
    "tagging": ("accuracy", True),
    "language_model": ("bpc", False),  # bits per token of the stream (per character at char level)
    "sequence_lm": ("bpt", False),  # bits per predicted token of independent sequences
}

NAMES = {
    "majority": "majority class",
    "mean": "training mean",
    "1nn_euclidean": "1-NN Euclidean",
    "1nn_dtw": "1-NN DTW",
    "tfidf_logreg": "TF-IDF logistic regression",
    "naive": "naive (last value)",
    "seasonal_naive": "seasonal naive",
    "ets": "ETS",
    "most_frequent": "most-frequent output",
    "most_frequent_tag": "most-frequent tag per token",
    "unigram": "unigram",
    "bigram": "bigram",
}


def verdict(kind: str, model: dict[str, float], baselines: Scores) -> dict[str, Any]:
    """``model`` (metric -> value, without a stage prefix) against each baseline, on the headline
    metric of ``kind``; ``line`` is the sentence the console and summary show."""
    metric, higher = HEADLINE[kind]
    if metric not in model:
        raise ValueError(f"verdict: the model has no {metric!r} metric; it has {sorted(model)}")
    mine = model[metric]
    beats: list[str] = []
    loses: list[str] = []
    for name, scores in baselines.items():
        if metric not in scores:
            continue
        better = mine > scores[metric] if higher else mine < scores[metric]
        (beats if better else loses).append(name)

    def listed(names: list[str]) -> str:
        return ", ".join(f"{NAMES.get(n, n)} ({baselines[n][metric]:.4g})" for n in names)

    parts = [f"model {metric} {mine:.4g}"]
    if beats:
        parts.append(f"beats {listed(beats)}")
    if loses:
        parts.append(f"loses to {listed(loses)}")
    return {
        "metric": metric,
        "higher_is_better": higher,
        "model": mine,
        "baselines": {n: s[metric] for n, s in baselines.items() if metric in s},
        "beats": beats,
        "loses_to": loses,
        "line": "; ".join(parts) if beats or loses else parts[0] + " (no baselines)",
    }


def _class_scores(y: Any, pred: Any) -> dict[str, float]:
    return {"accuracy": accuracy(np.asarray(y), np.asarray(pred)), "f1": macro_f1(y, pred)}


def _regression_scores(y: Any, pred: Any) -> dict[str, float]:
    err = np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))}


def series_baselines(
    train: tuple[Sequence[np.ndarray], Sequence[Any]],
    test: tuple[Sequence[np.ndarray], Sequence[Any]],
    *,
    regression: bool = False,
    dtw_max_cells: float = 3e8,
) -> Scores:
    """Majority class (or training mean), 1-NN Euclidean, and 1-NN DTW when the test x train
    cost grid has at most ``dtw_max_cells`` cells (DTW is quadratic in length)."""
    xs, ys = list(train[0]), np.asarray(train[1])
    xt, yt = list(test[0]), np.asarray(test[1])
    out: Scores = {}
    if regression:
        out["mean"] = _regression_scores(yt, np.broadcast_to(ys.mean(axis=0), yt.shape))
    else:
        values, counts = np.unique(ys, return_counts=True)
        out["majority"] = _class_scores(yt, np.full(len(yt), values[np.argmax(counts)]))
    score = _regression_scores if regression else _class_scores
    out["1nn_euclidean"] = score(yt, ys[euclidean_distances(xt, xs).argmin(axis=1)])
    t_train = max(len(s) for s in xs)
    t_test = max(len(s) for s in xt)
    if len(xs) * len(xt) * t_train * t_test <= dtw_max_cells:
        out["1nn_dtw"] = score(yt, ys[dtw_distances(xt, xs).argmin(axis=1)])
    return out


def text_baselines(
    train: tuple[Sequence[str], Sequence[int]],
    val: tuple[Sequence[str], Sequence[int]],
    test: tuple[Sequence[str], Sequence[int]],
) -> Scores:
    """Majority class and uni+bigram TF-IDF logistic regression (C chosen on validation).
    Texts are the model's tokens joined by spaces, so both see the same words."""
    ys, yt = np.asarray(train[1]), np.asarray(test[1])
    values, counts = np.unique(ys, return_counts=True)
    pred, _ = tfidf_logreg(train, val, test[0])
    return {
        "majority": _class_scores(yt, np.full(len(yt), values[np.argmax(counts)])),
        "tfidf_logreg": _class_scores(yt, pred),
    }


def forecast_baselines(
    series: Sequence[np.ndarray],
    origins: Sequence[Sequence[int]],
    *,
    horizon: int,
    season: int,
    naive_scale: float,
    max_ets_fits: int = 500,
) -> Scores:
    """Naive, seasonal naive and ETS forecasts of every test window: ``series[i]`` is the scaled
    target of series ``i`` and ``origins[i]`` the first target step of each of its test windows;
    each forecast sees only the steps before its origin. ETS is skipped past ``max_ets_fits``
    windows (one fit per window)."""
    preds: dict[str, list[np.ndarray]] = {"naive": [], "seasonal_naive": [], "ets": []}
    truth: list[np.ndarray] = []
    windows = sum(len(o) for o in origins)
    for values, starts in zip(series, origins, strict=True):
        for o in starts:
            history = values[:o]
            truth.append(values[o : o + horizon])
            preds["naive"].append(naive_forecast(history, horizon))
            if season > 1 and len(history) >= season:
                preds["seasonal_naive"].append(seasonal_naive_forecast(history, horizon, season))
            if windows <= max_ets_fits:
                preds["ets"].append(ets_forecast(history, horizon, season))
    out: Scores = {}
    y = np.concatenate(truth) if truth else np.zeros(0)
    for name, p in preds.items():
        if len(p) != len(truth) or not truth:
            continue  # a baseline that cannot forecast every window is left out, not half-scored
        scores = _regression_scores(y, np.concatenate(p))
        scores["mase"] = scores["mae"] / naive_scale if naive_scale > 0 else float("nan")
        out[name] = scores
    return out


def text_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Exact match, BLEU and chrF of output strings."""
    exact = float(np.mean([h == r for h, r in zip(hypotheses, references, strict=True)]))
    return {
        "exact_match": exact,
        "bleu": bleu(hypotheses, references),
        "chrf": chrf(hypotheses, references),
    }


def seq2seq_baselines(train_targets: Sequence[str], test_targets: Sequence[str]) -> Scores:
    """The most frequent training target, output for every test source."""
    counts = Counter(train_targets)
    top = min(counts, key=lambda t: (-counts[t], t))
    return {"most_frequent": text_scores([top] * len(test_targets), test_targets)}


def tagging_baselines(
    train: tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]],
    test: tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]],
) -> Scores:
    """Each token's most frequent training tag (the overall most frequent tag for unseen ones)."""
    by_token: dict[int, Counter[int]] = {}
    overall: Counter[int] = Counter()
    for tokens, tags in zip(*train, strict=True):
        for t, g in zip(tokens, tags, strict=True):
            by_token.setdefault(int(t), Counter())[int(g)] += 1
            overall[int(g)] += 1
    default = overall.most_common(1)[0][0]
    gold, pred = [], []
    for tokens, tags in zip(*test, strict=True):
        for t, g in zip(tokens, tags, strict=True):
            seen = by_token.get(int(t))
            pred.append(seen.most_common(1)[0][0] if seen else default)
            gold.append(int(g))
    return {"most_frequent_tag": _class_scores(gold, pred)}


def seq2seq_id_baselines(
    train_targets: Sequence[tuple[int, ...]], test_targets: Sequence[tuple[int, ...]]
) -> Scores:
    """The most frequent training target (token ids) for every test source: exact match and
    token accuracy as the seq2seq task counts them (position by position over the real target)."""
    counts = Counter(train_targets)
    top = min(counts, key=lambda t: (-counts[t], t))
    exact = float(np.mean([t == top for t in test_targets]))
    tokens = sum(len(t) for t in test_targets)
    same = sum(sum(a == b for a, b in zip(t, top, strict=False)) for t in test_targets)
    return {"most_frequent": {"exact_match": exact, "token_accuracy": same / max(tokens, 1)}}


def lm_baselines(
    train: Sequence[Sequence[int]],
    test: Sequence[Sequence[int]],
    *,
    vocab_size: int,
    unit: str,
    max_bigram_cells: float = 2.5e7,
) -> Scores:
    """Unigram and bigram (add-0.1) models of the training tokens, in bits per predicted token
    of ``test`` (each sequence's first token is context only, as for the model). The bigram
    table is ``vocab_size``^2 floats: skipped past ``max_bigram_cells`` (a large vocabulary)."""
    out: Scores = {
        "unigram": {unit: NGram(vocab_size, order=1).fit(train).bits(test, skip_first=True)}
    }
    if vocab_size * vocab_size <= max_bigram_cells:
        bigram = NGram(vocab_size, order=2).fit(train)
        out["bigram"] = {unit: bigram.bits(test, skip_first=True)}
    return out


def suite_scores(kind: str, r: dict[str, Any], *, dtw_max_cells: float) -> Scores:
    """The baseline scores of suite ``kind`` on its inputs ``r`` (seq2seq on strings is scored
    by `baselines_of`, which decodes the model too)."""
    if kind in ("classification", "regression"):
        return series_baselines(
            r["train"], r["test"], regression=kind == "regression", dtw_max_cells=dtw_max_cells
        )
    if kind == "text":
        return text_baselines(r["train"], r["val"], r["test"])
    if kind == "tagging":
        return tagging_baselines(r["train"], r["test"])
    if kind == "forecasting":
        return forecast_baselines(
            r["series"],
            r["origins"],
            horizon=r["horizon"],
            season=r["season"],
            naive_scale=r["naive_scale"],
        )
    if kind == "seq2seq_ids":
        return seq2seq_id_baselines(r["train_targets"], r["test_targets"])
    if kind in ("language_model", "sequence_lm"):
        unit = HEADLINE[kind][0]
        return lm_baselines(r["train"], r["test"], vocab_size=r["vocab_size"], unit=unit)
    raise ValueError(f"no baseline suite for {kind!r}")


# ---- runs on the user's files: score the suite of a `Built`, report beside the model ----


def baselines_of(user: Any, model: Any, *, dtw_max_cells: float) -> tuple[dict[str, float], Scores]:
    """Extra model metrics (seq2seq: BLEU, chrF of greedy decodes) and the baseline scores of
    a run on the user's files (``user``: its `rnnkit.train.user_data.UserFiles`)."""
    r = user.reference
    if user.kind == "seq2seq":
        from rnnkit.data.formats.encode import PairEncoder
        from rnnkit.train.user_data import greedy_strings

        enc = PairEncoder.from_dict(user.encoder)
        outputs = greedy_strings(model, enc, r["test_sources"], r["max_len"])
        mine = text_scores(outputs, r["test_targets"])
        return mine, seq2seq_baselines(r["train_targets"], r["test_targets"])
    return {}, suite_scores(user.kind, r, dtw_max_cells=dtw_max_cells)


def judge(built: Any, metrics: dict[str, float], experiment: Any) -> dict[str, Any]:
    """The baselines and the verdict of any run, on the split its metrics score: the test split
    when ``metrics`` has ``test_*`` values, else the validation split; {} with
    ``evaluate.baselines: false``. The model is ``built.module.model`` as it stands (the best
    checkpoint's weights after `fit`)."""
    settings = getattr(experiment, "evaluate", None)
    if settings is None or not settings.baselines:
        return {}
    split = "test" if any(k.startswith("test_") for k in metrics) else "val"
    mine = {k.removeprefix(f"{split}_"): v for k, v in metrics.items() if k.startswith(f"{split}_")}
    model = built.module.model.eval()
    extra: dict[str, float] = {}
    user = built.user_files
    if user is not None:
        kind = user.kind
        extra, scores = baselines_of(user, model, dtw_max_cells=settings.dtw_max_cells)
    else:
        from rnnkit.evaluate.run_inputs import run_inputs

        found = run_inputs(built, experiment, split=split)
        if found is None:
            return {}
        kind, inputs = found
        scores = suite_scores(kind, inputs, dtw_max_cells=settings.dtw_max_cells)
    mine.update(extra)
    report: dict[str, Any] = {"baselines": scores, "baselines_split": split}
    if extra:
        report[f"{split}_extra"] = extra
    metric = HEADLINE[kind][0]
    if metric in mine:
        report["verdict"] = verdict(kind, mine, scores)
        if split == "val":  # say so: the checkpoint was chosen on this split
            report["verdict"]["line"] = "validation split: " + report["verdict"]["line"]
    return report


def _update_summary(run_dir: Any, entries: dict[str, Any]) -> None:
    from pathlib import Path

    from rnnkit.integrity import atomic_write_text

    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary.update(entries)
    atomic_write_text(path, json.dumps(summary, indent=2))


def judge_run(
    built: Any, metrics: dict[str, float], experiment: Any, run_dir: Any
) -> dict[str, Any]:
    """`judge`, added to the run's ``summary.json``; `rnnkit.train.fit` calls it at the end of
    every run."""
    report = judge(built, metrics, experiment)
    if report:
        _update_summary(run_dir, report)
    return report


def test_report(run_dir: str) -> dict[str, Any]:
    """``rnnkit test``: the run's test metrics, the baselines on the same split and the verdict;
    stored as ``summary.json``'s ``"test"`` entry too."""
    from rnnkit.train.artifact import load_run
    from rnnkit.train.trainer import evaluate, rebuild

    loaded = load_run(run_dir)
    metrics = evaluate(run_dir, stage="test")
    report: dict[str, Any] = {"metrics": metrics}
    built = rebuild(loaded)
    built.module.model.load_state_dict(loaded.model.state_dict())
    if built.user_files is not None:
        report["data"] = {"split": built.user_files.split}
    report.update(judge(built, metrics, loaded.experiment))
    _update_summary(run_dir, {"test": report})
    return report
