"""Anomaly detection in a stream: an ECG lead scored one sample at a time by a forecaster.

Data: ``mitdb`` (one ECG lead from the MIT-BIH Arrhythmia Database, 7500 samples, a 0/1 anomaly
label per sample), split in time: train (first 60 %), validation (next 20 %), test (last 20 %).
Only the test part holds labelled anomalies, so nothing here can be tuned on real anomalies:

1. **Model**: a next-step forecaster (:class:`rnnkit.models.Forecaster`, autoregressive, Gaussian
   head: a mean and a log-variance for ``x_{t+1}``) trained by the library's trainer
   (`rnnkit.train.fit` on the recipe's ``experiment:``, a typed `ForecastingExperiment`) on the
   windows of the training part, shuffled; every ``trainer.val_check_interval`` steps the
   one-step NLL of the validation part (after a warm-up on the end of train) is logged as
   ``val_nll`` (`rnnkit.train.ExtraMetrics`), and the best checkpoint by it is kept, with early
   stopping on it (model selection on validation only). Each seed leaves a run directory under
   ``out_dir/runs``; scoring uses the model loaded back from its artifact.
2. **Score**: the standardised residual ``|x_t - mu_t| / sigma_t``, averaged over a trailing window
   of ``s`` steps and scaled by its mean and standard deviation on the (clean) validation part.
3. **Tuning without labels**: ``s`` and the threshold are chosen on *validation copies with
   synthetic anomalies injected* (flat-line, amplitude scaling, noise burst, speed-up, wander; the
   generic injection families of Goswami et al., ICLR 2023), maximising F1 against the injected
   labels. The rolling z-score baseline gets the same treatment for its window, smoothing and
   threshold. The test labels are used once, to report.
4. **Streaming**: at test time the series is fed one sample at a time through
   `Forecaster.step` (observation in, next mean and log-variance out); the streamed scores are
   checked against the full-sequence scores of `Forecaster.predict_next`.

Baselines: rolling z-score of the raw signal (tuned as above), "flag nothing", "flag everything".
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor

from rnnkit.apps._common import merge, record, settings_from_dict, timer
from rnnkit.data import load
from rnnkit.evaluate import detection_scores
from rnnkit.models import Forecaster
from rnnkit.train import DataParts, ExtraMetrics, fit, load_run
from rnnkit.train.experiment_io import experiment_from_dict

APP = "anomaly"
INJECTIONS = ("cutoff", "scale", "noise", "speedup", "wander")
Injection = Literal["cutoff", "scale", "noise", "speedup", "wander"]
Window = int | Literal["beat"]  # samples, or one heartbeat estimated from the training part


# --- the recipe ------------------------------------------------------------------------------


def _windows_ok(name: str, windows: list[Window]) -> None:
    if not windows or any(w != "beat" and w < 1 for w in windows):
        raise ValueError(
            f"field {name!r} must be a non-empty list of integers >= 1 or 'beat' (one "
            f"heartbeat, estimated from the training part), got {windows!r}"
        )


@dataclass
class ScoreSpec:
    """The model's score: smoothing windows and directions, one of each picked on validation."""

    smoothing_windows: list[Window] = field(default_factory=lambda: ["beat"])
    directions: list[Literal["high", "both"]] = field(default_factory=lambda: ["high", "both"])

    def __post_init__(self) -> None:
        _windows_ok("score.smoothing_windows", self.smoothing_windows)
        if not self.directions:
            raise ValueError("field 'score.directions' must list 'high' and/or 'both'")


@dataclass
class BaselineSpec:
    """The rolling z-score baseline's history lengths and smoothing windows, picked on val."""

    zscore_windows: list[Window] = field(default_factory=lambda: [50, 150, 300, 600])
    smoothing_windows: list[Window] = field(default_factory=lambda: ["beat"])

    def __post_init__(self) -> None:
        _windows_ok("baseline.zscore_windows", self.zscore_windows)
        _windows_ok("baseline.smoothing_windows", self.smoothing_windows)


@dataclass
class TuningSpec:
    """Synthetic anomalies injected into validation copies (there are no real ones there)."""

    copies: int = 16
    injections_per_copy: int = 1
    length: tuple[int, int] = (100, 300)  # [min, max] samples per injected anomaly
    kinds: list[Injection] = field(default_factory=lambda: list(INJECTIONS))  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for name in ("copies", "injections_per_copy"):
            if getattr(self, name) < 1:
                raise ValueError(f"field 'tuning.{name}' must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.length[0] <= self.length[1]:
            raise ValueError(
                f"field 'tuning.length' must be [min, max] with 1 <= min <= max, got "
                f"{list(self.length)}"
            )
        if not self.kinds:
            raise ValueError(f"field 'tuning.kinds' must list some of {list(INJECTIONS)}")


@dataclass
class AnomalySettings:
    """The app's own keys; training keys live in ``experiment:`` (a `ForecastingExperiment`)."""

    dataset: str = "mitdb"  # registry set: one series, a 0/1 label per sample
    warmup: int = 600  # samples of the end of train fed before validation (state warm-up)
    score: ScoreSpec = field(default_factory=ScoreSpec)
    baseline: BaselineSpec = field(default_factory=BaselineSpec)
    tuning: TuningSpec = field(default_factory=TuningSpec)

    def __post_init__(self) -> None:
        longest = max([w for w in self.baseline.zscore_windows if w != "beat"], default=0)
        if self.warmup < max(1, longest):
            raise ValueError(
                f"field 'warmup' ({self.warmup}) must be at least 1 and the largest "
                f"'baseline.zscore_windows' ({longest})"
            )


@dataclass
class Recipe:
    settings: AnomalySettings
    experiment: dict[str, Any]  # the recipe's experiment section, checked


def check_config(config: dict[str, Any]) -> Recipe:
    """The recipe as typed settings; a bad field raises ``ValueError`` naming it."""
    where = f"{APP} recipe"
    known = ("app", "threads", "experiment", "quick", *AnomalySettings.__dataclass_fields__)
    unknown = [k for k in config if k not in known]
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; valid keys at the top level: {', '.join(known)}"
            " (training keys go under 'experiment:', as `rnnkit fit` reads them)"
        )
    own = {k: v for k, v in config.items() if k in AnomalySettings.__dataclass_fields__}
    settings = settings_from_dict(AnomalySettings, own, where=where)
    exp = config.get("experiment", {})
    if not isinstance(exp, dict):
        raise ValueError(f"{where}: field 'experiment' must be a mapping, got {exp!r}")
    recipe = Recipe(settings, exp)
    experiment(recipe, seed=0, root=Path("runs"))  # checked like `rnnkit fit` checks a recipe
    return recipe


def experiment(recipe: Recipe, *, seed: int, root: Path) -> Any:
    """One seed's `ForecastingExperiment`: the recipe's ``experiment:`` plus the run's place."""
    fixed = {
        "task": "forecasting",
        "seed": seed,
        # windows built in memory from the registry's series: the source names them
        "data": {"source": f"{APP}:{recipe.settings.dataset}", "horizon": 1},
        "run": {"root": str(root), "name": f"anomaly-seed{seed}"},
    }
    try:
        exp = experiment_from_dict(merge(recipe.experiment, fixed))
    except ValueError as err:
        raise ValueError(f"{APP} recipe, field 'experiment': {err}") from None
    m = exp.model
    if m.strategy != "autoregressive" or m.distribution != "gaussian":
        raise ValueError(
            f"{APP} recipe: fields 'experiment.model.strategy' / 'distribution' must be "
            f"autoregressive / gaussian (the score streams one-step mean and variance), got "
            f"{m.strategy!r} / {m.distribution!r}"
        )
    if exp.data.seq_len < 2:
        raise ValueError(
            f"{APP} recipe: field 'experiment.data.seq_len' (samples per training window) must "
            f"be >= 2, got {exp.data.seq_len}"
        )
    return exp


def beat_period(x: np.ndarray, low: int = 100, high: int = 600) -> int:
    """The dominant period of ``x`` in samples: the autocorrelation peak between the lags
    ``low`` and ``high`` (for ECG: one heartbeat)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[: high + 1]
    ac = ac / (n - np.arange(high + 1))  # unbiased
    return int(low + np.argmax(ac[low : high + 1]))


def _resolve(windows: Sequence[Window], beat: int) -> list[int]:
    return sorted({beat if w == "beat" else int(w) for w in windows})


# --- scores ----------------------------------------------------------------------------------


def residual_z(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """Per-step standardised residual ``|x - mu| / sigma``."""
    return (x - mean).abs() * torch.exp(-0.5 * log_var)


@torch.no_grad()
def batch_residuals(model: Forecaster, series: Tensor) -> np.ndarray:
    """Full-sequence scores: ``series`` ``(B, N)`` -> ``(B, N)`` standardised one-step residuals
    (step 0 has no forecast and scores 0)."""
    forecast = model.predict_next(series[:, :-1, None])  # (B, N-1, 1): forecasts of 1..N-1
    assert forecast.log_var is not None
    z = residual_z(series[:, 1:], forecast.mean[..., 0], forecast.log_var[..., 0])
    return np.concatenate([np.zeros((series.shape[0], 1)), z.double().numpy()], axis=1)


def moving_average(a: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` steps (fewer at the start), along the last axis."""
    c = np.cumsum(np.asarray(a, dtype=np.float64), axis=-1)
    out = c.copy()
    out[..., window:] = c[..., window:] - c[..., :-window]
    counts = np.minimum(np.arange(1, a.shape[-1] + 1), window)
    return out / counts


def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """``|x_t - mean| / std`` of the ``window`` samples before ``t`` (0 until a window is full)."""
    x = np.asarray(x, dtype=np.float64)
    c1 = np.cumsum(np.concatenate([np.zeros((*x.shape[:-1], 1)), x], axis=-1), axis=-1)
    c2 = np.cumsum(np.concatenate([np.zeros((*x.shape[:-1], 1)), x * x], axis=-1), axis=-1)
    n = x.shape[-1]
    out = np.zeros_like(x)
    t = np.arange(window, n)
    s1 = c1[..., t] - c1[..., t - window]
    s2 = c2[..., t] - c2[..., t - window]
    mean = s1 / window
    std = np.sqrt(np.maximum(s2 / window - mean**2, 0.0))
    out[..., window:] = np.abs(x[..., window:] - mean) / (std + 1e-6)
    return out


class StreamingDetector:
    """Online monitor: ``update(x_t)`` -> ``(score_t, flag_t)``, O(1) per sample.

    Feeds each sample to `Forecaster.step`, keeps its forecast (mean, log-variance) of the next
    sample, and smooths the standardised residual over ``window`` steps.
    ``score = (smoothed - center) / scale`` (its absolute value when ``two_sided``); flagged
    when ``score > threshold``.
    """

    def __init__(
        self,
        model: Forecaster,
        *,
        window: int,
        center: float = 0.0,
        scale: float = 1.0,
        threshold: float = float("inf"),
        two_sided: bool = False,
    ) -> None:
        self.model = model.eval()
        self.window, self.center, self.scale, self.threshold = window, center, scale, threshold
        self.two_sided = two_sided
        self.state: Any = None
        self.forecast: tuple[Tensor, Tensor] | None = None
        self.recent: deque[float] = deque()
        self.total = 0.0

    @torch.no_grad()
    def update(self, value: float) -> tuple[float, bool]:
        x = torch.tensor([[value]], dtype=torch.float32)  # (B=1, I=1)
        z = 0.0
        if self.forecast is not None:
            mean, log_var = self.forecast
            z = float(residual_z(x[:, 0], mean, log_var)[0])
        forecast, self.state = self.model.step(x, self.state)
        assert forecast.log_var is not None
        self.forecast = (forecast.mean[:, 0], forecast.log_var[:, 0])
        self.recent.append(z)
        self.total += z
        if len(self.recent) > self.window:
            self.total -= self.recent.popleft()
        score = (self.total / len(self.recent) - self.center) / self.scale
        if self.two_sided:
            score = abs(score)
        return score, score > self.threshold


# --- synthetic anomalies for tuning on validation --------------------------------------------


def inject(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    count: int,
    length: tuple[int, int],
    kinds: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``x`` with ``count`` non-overlapping synthetic anomalies, and their 0/1 labels."""
    x = np.array(x, dtype=np.float64)
    labels = np.zeros(len(x), dtype=np.int64)
    n = len(x)
    slots = np.array_split(np.arange(n), count)  # one anomaly per slot: no overlaps
    for slot in slots:
        size = int(rng.integers(length[0], length[1] + 1))
        size = min(size, len(slot) // 2)
        if size < 2:
            continue
        kind = kinds[int(rng.integers(len(kinds)))]
        a = int(rng.integers(slot[0], slot[-1] - size + 1))
        seg = slice(a, a + size)
        if kind == "cutoff":  # the signal goes flat
            x[seg] = x[a] + rng.normal(0.0, 0.02, size)
        elif kind == "scale":  # amplitude shrinks or grows
            f = rng.uniform(0.2, 0.5) if rng.random() < 0.5 else rng.uniform(1.5, 2.5)
            mid = x[seg].mean()
            x[seg] = mid + f * (x[seg] - mid)
        elif kind == "noise":  # a burst of noise
            x[seg] += rng.normal(0.0, rng.uniform(0.2, 0.5), size)
        elif kind == "speedup":  # the rhythm speeds up (early beats)
            f = rng.uniform(1.5, 2.0)
            src = a + np.floor(np.arange(size) * f).astype(int)
            x[seg] = x[np.minimum(src, n - 1)].copy()
        else:  # "wander": the baseline drifts away and back
            x[seg] += (
                rng.choice([-1.0, 1.0])
                * rng.uniform(1.0, 2.0)
                * np.sin(np.linspace(0.0, np.pi, size))
            )
        labels[seg] = 1
    return x, labels


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold (flag ``score > threshold``) with the highest F1, and that F1."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # cut only between different scores
    f1 = np.where(last, 2 * tp / (k + y.sum()), -1.0)
    i = int(np.argmax(f1))
    nxt = s[i + 1] if i + 1 < len(s) else s[i] - 1.0
    return float(0.5 * (s[i] + nxt)), float(f1[i])


def tune(
    score_fn: Any,
    windows: list[int],
    sides: list[bool],
    clean: np.ndarray,
    injected: np.ndarray,
    labels: np.ndarray,
) -> dict[str, Any]:
    """Pick the smoothing window, the direction and the threshold with the best F1 on the
    injected copies.

    ``score_fn(series (B, N)) -> (B, N)`` raw per-step scores of warm-up + validation; the last
    ``V`` columns are the validation part. Smoothed scores are standardised by the clean
    validation part; ``sides`` lists the directions to try: False flags an unusually *high*
    smoothed score, True an unusual one either way (e.g. a flat line has too *little* residual).
    """
    v = labels.shape[1]
    raw_clean = score_fn(clean[None])
    raw_inj = score_fn(injected)
    best: dict[str, Any] = {"f1": -1.0}
    for w in windows:
        ref = moving_average(raw_clean, w)[0, -v:]
        center, scale = float(ref.mean()), float(ref.std() + 1e-12)
        z = (moving_average(raw_inj, w)[:, -v:] - center) / scale
        for two_sided in sides:
            thr, f1 = best_threshold(np.abs(z) if two_sided else z, labels)
            if f1 > best["f1"]:
                best = {
                    "window": w,
                    "two_sided": two_sided,
                    "threshold": thr,
                    "f1": f1,
                    "center": center,
                    "scale": scale,
                }
    return best


# --- training --------------------------------------------------------------------------------


@torch.no_grad()
def val_nll(model: Forecaster, ctx: Tensor, v: int) -> float:
    """Mean one-step Gaussian NLL (without the constant) of the last ``v`` values of ``ctx``
    ``(N,)``, each forecast from everything before it (the first ``N - v`` values warm up)."""
    forecast = model.predict_next(ctx[None, :-1, None])
    assert forecast.log_var is not None
    mean, log_var = forecast.mean[0, -v:, 0], forecast.log_var[0, -v:, 0]
    y = ctx[-v:]
    return float((0.5 * (log_var + (y - mean) ** 2 * torch.exp(-log_var))).mean())


class _Curve(L.Callback):
    """``val_nll`` at every validation during fitting."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.values = []  # the curve of the last fit: the chosen seed's, not the restart probes'

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.values.append(round(float(trainer.callback_metrics["val_nll"]), 4))


def _window_samples(x: Tensor, length: int) -> list[tuple[Tensor, Tensor]]:
    """Every window of ``length + 1`` consecutive values of ``x`` ``(N,)`` as ``(past (length,
    1), next (1, 1))`` views, no copies (the autoregressive loss teacher-forces the window)."""
    views = x.unfold(0, length + 1, 1)  # (W, length + 1)
    return [(w[:-1, None], w[-1:, None]) for w in views]


def train_forecaster(
    recipe: Recipe, train: Tensor, val: Tensor, test: Tensor, *, seed: int, root: Path
) -> tuple[Forecaster, float, list[float], str]:
    """Fit through `rnnkit.train.fit` on windows of ``train`` ``(N,)``; the checkpoint with the
    best ``val_nll`` is kept. The test stream is the run's test split (its one-step NLL lands in
    ``summary.json``; nothing is selected on it).

    Returns the model loaded from the run's artifact, its validation NLL, the NLL at every
    check, and the run directory."""
    exp = experiment(recipe, seed=seed, root=root)
    run_dir = root / str(exp.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    warm = train[-recipe.settings.warmup :]
    ctx = torch.cat([warm, val])  # validation: warm up on the end of train, judge val only
    stream = torch.cat([ctx, test])
    length = min(exp.data.seq_len, len(train) - 1)
    data = DataParts(
        _window_samples(train, length),
        [(ctx[:-1, None], ctx[-1:, None])],
        [(stream[:-1, None], stream[-1:, None])],
    )
    curve = _Curve()
    nll = ExtraMetrics(lambda module: {"nll": val_nll(module.model, ctx, len(val))})
    result = fit(exp, data=data, callbacks=[nll, curve], test=True)
    model: Forecaster = load_run(result.run_dir).model  # type: ignore[assignment]
    return model, val_nll(model, ctx, len(val)), curve.values, str(result.run_dir)


# --- one seed --------------------------------------------------------------------------------


def _one_seed(recipe: Recipe, seed: int, data: Any, *, root: Path) -> dict[str, Any]:
    s, sides = recipe.settings, [d == "both" for d in recipe.settings.score.directions]
    cpu0 = time.process_time()
    train = data.train.x[:, 0].float()
    val = data.val.x[:, 0].float()
    test = data.test.x[:, 0].float()
    labels = data.test.y.numpy()
    w0 = s.warmup
    beat = beat_period(train.numpy())
    smoothing = _resolve(s.score.smoothing_windows, beat)
    z_smoothing = _resolve(s.baseline.smoothing_windows, beat)
    z_windows = _resolve(s.baseline.zscore_windows, beat)
    with timer() as t_train:
        model, nll, history, run_dir = train_forecaster(
            recipe, train, val, test, seed=seed, root=root
        )

    # synthetic anomalies on validation copies (the same copies for model and baseline)
    rng = np.random.default_rng(seed)
    clean = np.concatenate([train[-w0:].numpy(), val.numpy()]).astype(np.float64)
    inj, inj_labels = [], []
    t = s.tuning
    for _ in range(t.copies):
        xi, yi = inject(
            val.numpy(), rng, count=t.injections_per_copy, length=t.length, kinds=list(t.kinds)
        )
        inj.append(np.concatenate([train[-w0:].numpy(), xi]))
        inj_labels.append(yi)
    injected, inj_y = np.stack(inj), np.stack(inj_labels)

    with timer() as t_eval:

        def model_scores(series: np.ndarray) -> np.ndarray:
            return batch_residuals(model, torch.from_numpy(series).float())

        tuned = tune(model_scores, smoothing, sides, clean, injected, inj_y)

        # test: stream warm-up + validation + test one sample at a time
        stream = torch.cat([train[-w0:], val, test])
        det = StreamingDetector(
            model,
            window=tuned["window"],
            center=tuned["center"],
            scale=tuned["scale"],
            threshold=tuned["threshold"],
            two_sided=tuned["two_sided"],
        )
        streamed = np.array([det.update(float(v))[0] for v in stream.tolist()])
        n_test = len(test)
        score = streamed[-n_test:]
        flags = score > tuned["threshold"]
        # the same scores from one full-sequence pass
        batch = moving_average(model_scores(stream.numpy()[None]), tuned["window"])[0]
        batch = (batch - tuned["center"]) / tuned["scale"]
        batch = np.abs(batch) if tuned["two_sided"] else batch
        stream_diff = float(np.abs(batch - streamed).max())
        m = detection_scores(labels, score, flags)

    # rolling z-score baseline: window, smoothing and threshold tuned the same way
    best_z: dict[str, Any] = {"f1": -1.0}
    for zw in z_windows:

        def z_scores(series: np.ndarray, zw: int = zw) -> np.ndarray:
            return rolling_zscore(series, zw)

        cand = tune(z_scores, z_smoothing, sides, clean, injected, inj_y)
        if cand["f1"] > best_z["f1"]:
            best_z = {**cand, "zscore_window": zw}
    full = stream.numpy().astype(np.float64)
    zs = moving_average(rolling_zscore(full[None], best_z["zscore_window"]), best_z["window"])[0]
    zs = (zs - best_z["center"]) / best_z["scale"]
    zs = np.abs(zs) if best_z["two_sided"] else zs
    z_score = zs[-n_test:]
    z_flags = z_score > best_z["threshold"]
    zm = detection_scores(labels, z_score, z_flags)

    everything = detection_scores(labels, np.zeros(n_test), np.ones(n_test, dtype=bool))
    nothing = detection_scores(labels, np.zeros(n_test), np.zeros(n_test, dtype=bool))
    return {
        "model": m,
        "zscore": zm,
        "everything": everything,
        "nothing": nothing,
        "tuned": tuned,
        "tuned_z": best_z,
        "val_nll": nll,
        "val_nll_history": history,
        "run_dir": run_dir,
        "inj_prevalence": float(inj_y.mean()),
        "beat": beat,
        "stream_diff": stream_diff,
        "wall_s": t_train["s"] + t_eval["s"],
        "cpu_s": time.process_time() - cpu0,
        "train_s": t_train["s"],
        "stream_s_per_step": t_eval["s"] / len(stream),
        "plot": {
            "x": full[-n_test:],
            "labels": labels,
            "score": score,
            "flags": flags,
            "thr": tuned["threshold"],
            "z_score": z_score,
            "z_flags": z_flags,
            "z_thr": best_z["threshold"],
        },
    }


def _plot(p: dict[str, Any], path: Path, offset: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(p["x"])) + offset
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True, height_ratios=[2, 1, 1])

    def shade(ax: Any) -> None:
        lo, hi = ax.get_ylim()
        ax.fill_between(t, lo, hi, where=p["labels"] > 0, color="tab:red", alpha=0.15, lw=0)
        ax.set_ylim(lo, hi)

    ax = axes[0]
    ax.plot(t, p["x"], lw=0.7, color="black")
    shade(ax)
    lo = ax.get_ylim()[0]
    ax.plot(t[p["flags"]], np.full(p["flags"].sum(), lo + 0.3), "|", color="tab:blue", ms=6)
    ax.plot(t[p["z_flags"]], np.full(p["z_flags"].sum(), lo + 0.9), "|", color="tab:orange", ms=6)
    ax.set_ylabel("ECG (standardised)")
    ax.set_title(
        "mitdb test part: true anomaly shaded; detections: GRU forecaster (blue), "
        "rolling z-score (orange)",
        fontsize=9,
    )
    for ax, key, thr, colour, name in (
        (axes[1], "score", p["thr"], "tab:blue", "forecaster score"),
        (axes[2], "z_score", p["z_thr"], "tab:orange", "rolling z-score"),
    ):
        ax.plot(t, p[key], lw=0.8, color=colour)
        ax.axhline(thr, ls="--", color="black", lw=0.8, label=f"threshold {thr:.2f} (from val)")
        shade(ax)
        ax.set_ylabel(name, fontsize=8)
        ax.legend(loc="upper left", fontsize=7)
    axes[-1].set_xlabel("sample index in the full series")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool
) -> list[dict[str, Any]]:
    recipe = check_config(config)
    if not seeds:
        raise ValueError("anomaly: give at least one seed")
    data = load(recipe.settings.dataset)
    root = Path(out_dir) / "runs"
    results = [_one_seed(recipe, seed, data, root=root) for seed in seeds]  # threads: run_app
    assert data.train is not None and data.val is not None
    offset = len(data.train) + len(data.val)
    _plot(results[0]["plot"], Path(out_dir) / "detections.png", offset)

    def vals(who: str, metric: str) -> list[float]:
        return [r[who][metric] for r in results]

    walls = [r["wall_s"] for r in results]
    common: dict[str, Any] = {
        "app": APP,
        "dataset": recipe.settings.dataset,
        "seeds": seeds,
        "wall_s": float(np.mean(walls)),
        "per_seed_wall_s": [round(w, 1) for w in walls],
        # process CPU time per seed (training, tuning, streaming, baselines): the machine is
        # shared, so wall time overstates the cost
        "per_seed_cpu_s": [round(r["cpu_s"], 1) for r in results],
        "stream_vs_batch_max_abs_diff": max(r["stream_diff"] for r in results),
        "stream_ms_per_sample": round(
            1e3 * float(np.mean([r["stream_s_per_step"] for r in results])), 3
        ),
        "beat_period": [r["beat"] for r in results],
        "runs": [r["run_dir"] for r in results],  # run directories (rnnkit.train.load_run)
        "val_nll": [round(r["val_nll"], 4) for r in results],
        "val_nll_history": [r["val_nll_history"] for r in results],
        "tuned_smoothing": [r["tuned"]["window"] for r in results],
        "tuned_threshold": [round(r["tuned"]["threshold"], 3) for r in results],
        "tuned_zscore_window": [r["tuned_z"]["zscore_window"] for r in results],
        "tuned_zscore_smoothing": [r["tuned_z"]["window"] for r in results],
        "tuned_two_sided": [r["tuned"]["two_sided"] for r in results],
        "tuned_zscore_two_sided": [r["tuned_z"]["two_sided"] for r in results],
        "val_injected_f1": [round(r["tuned"]["f1"], 3) for r in results],
        "val_injected_f1_zscore": [round(r["tuned_z"]["f1"], 3) for r in results],
        # F1 of "flag everything" on the injected validation copies: 2p / (1 + p)
        "val_injected_f1_flag_everything": [
            round(2 * r["inj_prevalence"] / (1 + r["inj_prevalence"]), 3) for r in results
        ],
    }
    spec = experiment(recipe, seed=seeds[0], root=root).model
    model_name = f"{spec.cell.upper()}-{spec.hidden_size} forecaster, streamed residual score"
    z_name = "rolling z-score (tuned on val)"
    out = []
    for metric, headline in (
        ("f1", True),
        ("roc_auc", True),
        ("precision", False),
        ("recall", False),
    ):
        out.append(
            record(
                model=model_name,
                metric=metric,
                higher_is_better=True,
                values=vals("model", metric),
                baseline=z_name,
                baseline_values=vals("zscore", metric),
                headline=headline,
                **common,
            )
        )
    out.append(
        record(
            model=model_name,
            metric="f1",
            higher_is_better=True,
            values=vals("model", "f1"),
            baseline="flag everything",
            baseline_values=vals("everything", "f1"),
            headline=True,
            **common,
        )
    )
    out.append(
        record(
            model=model_name,
            metric="f1",
            higher_is_better=True,
            values=vals("model", "f1"),
            baseline="flag nothing",
            baseline_values=vals("nothing", "f1"),
            headline=False,
            **common,
        )
    )
    return out
