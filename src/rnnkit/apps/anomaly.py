"""Anomaly detection in a stream: an ECG lead scored one sample at a time by a forecaster.

Data: ``mitdb`` (one ECG lead from the MIT-BIH Arrhythmia Database, 7500 samples, a 0/1 anomaly
label per sample), split in time: train (first 60 %), validation (next 20 %), test (last 20 %).
Only the test part holds labelled anomalies, so nothing here can be tuned on real anomalies:

1. **Model**: a next-step forecaster (:class:`rnnkit.models.Forecaster`, autoregressive, Gaussian
   head: a mean and a log-variance for ``x_{t+1}``) trained on random windows of the training part;
   the checkpoint with the lowest validation NLL is kept, with early stopping on it and optional
   random restarts selected by it (model selection on validation only).
2. **Score**: the standardised residual ``|x_t - mu_t| / sigma_t``, averaged over a trailing window
   of ``s`` steps and scaled by its mean and standard deviation on the (clean) validation part.
3. **Tuning without labels**: ``s`` and the threshold are chosen on *validation copies with
   synthetic anomalies injected* (flat-line, amplitude scaling, noise burst, speed-up, wander; the
   generic injection families of Goswami et al., ICLR 2023), maximising F1 against the injected
   labels. The rolling z-score baseline gets the same treatment for its window, smoothing and
   threshold. The test labels are used once, to report.
4. **Streaming**: at test time the series is fed one sample at a time through the layer's
   ``Recurrent.step``; the streamed scores are checked against the full-sequence (batch) scores.

Baselines: rolling z-score of the raw signal (tuned as above), "flag nothing", "flag everything".
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.apps._common import config_field, record, seed_all, timer
from rnnkit.data import load
from rnnkit.evaluate import detection_scores
from rnnkit.models import Forecaster, ForecasterConfig

APP = "anomaly"
INJECTIONS = ("cutoff", "scale", "noise", "speedup", "wander")


# --- recipe checks ---------------------------------------------------------------------------


def _field(config: dict[str, Any], path: str) -> Any:
    return config_field(config, path, APP)


def _int(config: dict[str, Any], path: str, low: int = 1) -> int:
    value = _field(config, path)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(
            f"anomaly recipe: field {path!r} must be an integer >= {low}, got {value!r}"
        )
    return value


def _float(config: dict[str, Any], path: str, low: float = 0.0) -> float:
    value = _field(config, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
        raise ValueError(f"anomaly recipe: field {path!r} must be a number >= {low}, got {value!r}")
    return float(value)


def _windows(config: dict[str, Any], path: str) -> list[int | str]:
    value = _field(config, path)
    if (
        not isinstance(value, list)
        or not value
        or any(
            v != "beat" and (isinstance(v, bool) or not isinstance(v, int) or v < 1) for v in value
        )
    ):
        raise ValueError(
            f"anomaly recipe: field {path!r} must be a non-empty list of integers >= 1 "
            f"or 'beat' (one heartbeat, estimated from the training part), got {value!r}"
        )
    return list(value)


def beat_period(x: np.ndarray, low: int = 100, high: int = 600) -> int:
    """The dominant period of ``x`` in samples: the autocorrelation peak between the lags
    ``low`` and ``high`` (for ECG: one heartbeat)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[: high + 1]
    ac = ac / (n - np.arange(high + 1))  # unbiased
    return int(low + np.argmax(ac[low : high + 1]))


def _resolve(windows: list[int | str], beat: int) -> list[int]:
    return sorted({beat if w == "beat" else int(w) for w in windows})


def _sides(config: dict[str, Any]) -> list[bool]:
    value = _field(config, "score.directions")
    table = {"high": False, "both": True}
    if not isinstance(value, list) or not value or any(v not in table for v in value):
        raise ValueError(
            f"anomaly recipe: field 'score.directions' must be a non-empty list from "
            f"['high', 'both'], got {value!r}"
        )
    return [table[v] for v in value]


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate the recipe; returns the flat settings. Errors name the offending field."""
    kinds = _field(config, "tuning.kinds")
    if not isinstance(kinds, list) or not kinds or any(k not in INJECTIONS for k in kinds):
        raise ValueError(
            f"anomaly recipe: field 'tuning.kinds' must be a non-empty list from "
            f"{list(INJECTIONS)}, got {kinds!r}"
        )
    length = _field(config, "tuning.length")
    if (
        not isinstance(length, list)
        or len(length) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in length)
        or not 1 <= length[0] <= length[1]
    ):
        raise ValueError(
            f"anomaly recipe: field 'tuning.length' must be [min, max] integers with "
            f"1 <= min <= max, got {length!r}"
        )
    s: dict[str, Any] = {
        "dataset": str(_field(config, "dataset")),
        "cell": str(_field(config, "model.cell")),
        "hidden_size": _int(config, "model.hidden_size"),
        "layers": _int(config, "model.layers"),
        "steps": _int(config, "train.steps"),
        "patience": _int(config, "train.patience"),
        "restarts": _int(config, "train.restarts"),
        "restart_steps": _int(config, "train.restart_steps"),
        "batch_size": _int(config, "train.batch_size"),
        "window": _int(config, "train.window", 2),
        "lr": _float(config, "train.lr"),
        "weight_decay": _float(config, "train.weight_decay"),
        "clip": _float(config, "train.clip"),
        "eval_every": _int(config, "train.eval_every"),
        "warmup": _int(config, "warmup"),
        "threads": _int(config, "threads"),
        "smoothing": _windows(config, "score.smoothing_windows"),
        "z_windows": _windows(config, "baseline.zscore_windows"),
        "z_smoothing": _windows(config, "baseline.smoothing_windows"),
        "copies": _int(config, "tuning.copies"),
        "per_copy": _int(config, "tuning.injections_per_copy"),
        "length": (int(length[0]), int(length[1])),
        "kinds": list(kinds),
        "sides": _sides(config),
    }
    longest = max([w for w in s["z_windows"] if isinstance(w, int)], default=0)
    if s["warmup"] < longest:
        raise ValueError(
            f"anomaly recipe: field 'warmup' ({s['warmup']}) must be at least the largest "
            f"'baseline.zscore_windows' ({longest})"
        )
    return s


# --- scores ----------------------------------------------------------------------------------


def _gaussian(model: Forecaster, out: Tensor) -> tuple[Tensor, Tensor]:
    """The head's mean and log-variance (clamped as the Forecaster does) from layer outputs."""
    raw = model.head(out)
    mean, log_var = raw.chunk(2, dim=-1)
    return mean[..., 0], log_var[..., 0].clamp(-12.0, 12.0)


def residual_z(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """Per-step standardised residual ``|x - mu| / sigma``."""
    return (x - mean).abs() * torch.exp(-0.5 * log_var)


@torch.no_grad()
def batch_residuals(model: Forecaster, series: Tensor) -> np.ndarray:
    """Full-sequence scores: ``series`` ``(B, N)`` -> ``(B, N)`` standardised one-step residuals
    (step 0 has no forecast and scores 0)."""
    out, _ = model.rnn(series[:, :-1, None])  # (B, N-1, P)
    mean, log_var = _gaussian(model, out)
    z = residual_z(series[:, 1:], mean, log_var)
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

    Runs the forecaster's recurrent layer one step at a time (``Recurrent.step``), keeps the
    forecast of the next sample, and smooths the standardised residual over ``window`` steps.
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
        y, self.state = self.model.rnn.step(x, self.state)
        self.forecast = _gaussian(self.model, y)
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


class _Run:
    """One forecaster being trained: AdamW + cosine schedule over ``steps``, gradient clipping,
    validation NLL every ``eval_every`` steps, best-validation checkpoint kept."""

    def __init__(self, s: dict[str, Any], train: Tensor, ctx: Tensor, v: int) -> None:
        cfg = ForecasterConfig(
            strategy="autoregressive",
            horizon=1,
            distribution="gaussian",
            cell=s["cell"],
            hidden_size=s["hidden_size"],
            num_layers=s["layers"],
        )
        self.s, self.train_x, self.ctx, self.v = s, train, ctx, v
        self.model = Forecaster(cfg)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"]
        )
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=s["steps"])
        self.step = 0
        self.best_nll = float("inf")
        self.best_state: dict[str, Tensor] | None = None
        self.since_best = 0  # validation checks since the last improvement
        self.history: list[float] = []

    @property
    def done(self) -> bool:
        return self.step >= self.s["steps"] or self.since_best >= self.s["patience"]

    def val_nll(self) -> float:
        model, ctx, v = self.model.eval(), self.ctx, self.v
        with torch.no_grad():
            out, _ = model.rnn(ctx[:, :-1])
            mean, log_var = _gaussian(model, out[:, -v:])
            y = ctx[:, -v:, 0]
            return float((0.5 * (log_var + (y - mean) ** 2 * torch.exp(-log_var))).mean())

    def advance(self, until: int) -> None:
        s, train, model = self.s, self.train_x, self.model
        L = min(s["window"], len(train) - 1)
        while self.step < min(until, s["steps"]) and not self.done:
            self.step += 1
            model.train()
            starts = torch.randint(0, len(train) - L, (s["batch_size"],))
            xb = torch.stack([train[i : i + L + 1] for i in starts.tolist()])[..., None]
            loss = model.loss(xb[:, :-1], xb[:, -1:])
            self.opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
            self.opt.step()
            self.sched.step()
            if self.step % s["eval_every"] == 0 or self.step == s["steps"]:
                nll = self.val_nll()
                self.history.append(round(nll, 4))
                if nll < self.best_nll - 1e-4:
                    self.best_nll, self.since_best = nll, 0
                    self.best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
                else:
                    self.since_best += 1


def train_forecaster(
    s: dict[str, Any], train: Tensor, val: Tensor
) -> tuple[Forecaster, float, list[float]]:
    """Fit on random windows of ``train`` ``(N,)``; keep the best validation-NLL checkpoint.

    ``restarts`` random initialisations are each trained for ``restart_steps`` steps; the one
    with the lowest validation NLL is trained on (model selection on validation only), up to
    ``steps`` steps or until the validation NLL has not improved for ``patience`` checks.
    Returns the model, its validation NLL and the NLL at every check of the chosen run."""
    # validation: warm up on the end of train, judge on the validation part only
    ctx = torch.cat([train[-s["warmup"] :], val])[None, :, None]
    runs = [_Run(s, train, ctx, len(val)) for _ in range(s["restarts"])]
    if len(runs) > 1:
        for r in runs:
            r.advance(s["restart_steps"])
    run = min(runs, key=lambda r: r.best_nll)
    run.advance(s["steps"])
    assert run.best_state is not None
    run.model.load_state_dict(run.best_state)
    return run.model.eval(), run.best_nll, run.history


# --- one seed --------------------------------------------------------------------------------


def _one_seed(s: dict[str, Any], seed: int, data: Any) -> dict[str, Any]:
    seed_all(seed)
    cpu0 = time.process_time()
    train = data.train.x[:, 0].float()
    val = data.val.x[:, 0].float()
    test = data.test.x[:, 0].float()
    labels = data.test.y.numpy()
    w0 = s["warmup"]
    beat = beat_period(train.numpy())
    smoothing, z_smoothing = _resolve(s["smoothing"], beat), _resolve(s["z_smoothing"], beat)
    z_windows = _resolve(s["z_windows"], beat)
    with timer() as t_train:
        model, val_nll, history = train_forecaster(s, train, val)

    # synthetic anomalies on validation copies (the same copies for model and baseline)
    rng = np.random.default_rng(seed)
    clean = np.concatenate([train[-w0:].numpy(), val.numpy()]).astype(np.float64)
    inj, inj_labels = [], []
    for _ in range(s["copies"]):
        xi, yi = inject(val.numpy(), rng, count=s["per_copy"], length=s["length"], kinds=s["kinds"])
        inj.append(np.concatenate([train[-w0:].numpy(), xi]))
        inj_labels.append(yi)
    injected, inj_y = np.stack(inj), np.stack(inj_labels)

    with timer() as t_eval:

        def model_scores(series: np.ndarray) -> np.ndarray:
            return batch_residuals(model, torch.from_numpy(series).float())

        tuned = tune(model_scores, smoothing, s["sides"], clean, injected, inj_y)

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

        cand = tune(z_scores, z_smoothing, s["sides"], clean, injected, inj_y)
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
        "val_nll": val_nll,
        "val_nll_history": history,
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
    s = check_config(config)
    data = load(s["dataset"])
    results = [_one_seed(s, seed, data) for seed in seeds]  # `threads`: applied by run_app
    assert data.train is not None and data.val is not None
    offset = len(data.train) + len(data.val)
    _plot(results[0]["plot"], Path(out_dir) / "detections.png", offset)

    def vals(who: str, metric: str) -> list[float]:
        return [r[who][metric] for r in results]

    walls = [r["wall_s"] for r in results]
    common: dict[str, Any] = {
        "app": APP,
        "dataset": s["dataset"],
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
    model_name = f"{s['cell'].upper()}-{s['hidden_size']} forecaster, streamed residual score"
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
