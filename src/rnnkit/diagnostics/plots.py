"""PNGs and a plain-words verdict from a diagnostics directory (``diagnostics.json`` + NPZ).

- ``gradient_flow.png``: per layer, a heatmap of ``log10 ‖∂L/∂h_t‖`` over time step (x) and
  training step (y): a bright band only at the right edge is a signal that never reaches far back;
- ``gate_saturation.png``: per layer and gate, histograms of gate values at the first and last
  record, with the saturated fraction (< 0.05 or > 0.95);
- ``jacobian_spectrum.png``: per layer, the singular values of ``∂s_t/∂s_{t-1}`` along the
  sequence at the last record, and the spectral radius over training;
- ``verdict.txt``: the verdict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.diagnostics.flow import VANISH_THRESHOLD, signal_reach


def load(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``diagnostics.json`` and ``gradient_flow.npz`` of a diagnostics directory."""
    d = Path(directory)
    meta_path, npz_path = d / "diagnostics.json", d / "gradient_flow.npz"
    if not meta_path.is_file() or not npz_path.is_file():
        raise ValueError(
            f"{d} holds no diagnostics (diagnostics.json and gradient_flow.npz); train with the "
            "rnnkit.diagnostics.GradientDiagnostics callback or run `rnnkit diagnose --config`"
        )
    with np.load(npz_path) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(meta_path.read_text(encoding="utf-8")), arrays


def layers(arrays: dict[str, np.ndarray]) -> list[str]:
    return sorted(k.split("__", 1)[1] for k in arrays if k.startswith("hidden__"))


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_flow_heatmap(
    ax: Any, norms: np.ndarray, steps: np.ndarray, *, title: str, vmin: float | None = None
) -> Any:
    """``log10`` of ``norms`` ``(R, T)`` as an image: time step across, training step down."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logn = np.log10(np.where(norms > 0, norms, np.nan))
    extent = (-0.5, norms.shape[1] - 0.5, float(steps[-1]) if len(steps) else 0.0, 0.0)
    im = ax.imshow(
        logn,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        extent=extent if len(steps) > 1 else None,
        vmin=vmin,
    )
    ax.set_xlabel("time step t")
    ax.set_ylabel("training step")
    ax.set_title(title, fontsize=9)
    return im


def write_plots(directory: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the three PNGs and ``verdict.txt``; returns the paths written."""
    meta, arrays = load(directory)
    out_dir = Path(out) if out is not None else Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    names = layers(arrays)
    steps = arrays["steps"]
    written = []

    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        im = plot_flow_heatmap(ax, arrays[f"hidden__{name}"], steps, title=name)
        fig.colorbar(im, ax=ax, label="log10 ||dL/dh_t||")
    fig.suptitle("gradient flow through time")
    fig.tight_layout()
    written.append(out_dir / "gradient_flow.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    gate_keys = [k for k in arrays if k.startswith("gates__")]
    if gate_keys:
        fig, axes = plt.subplots(
            1, len(gate_keys), figsize=(3.2 * len(gate_keys), 3), squeeze=False
        )
        for ax, key in zip(axes[0], sorted(gate_keys), strict=True):
            _, layer, gate = key.split("__")
            hist = arrays[key]
            edges = np.linspace(0, 1, hist.shape[1] + 1)
            for row, label, alpha in ((0, f"step {steps[0]}", 0.5), (-1, f"step {steps[-1]}", 0.8)):
                h = np.nan_to_num(hist[row])
                total = h.sum() or 1.0
                sat = (h[edges[1:] <= 0.05].sum() + h[edges[:-1] >= 0.95].sum()) / total
                ax.bar(
                    edges[:-1],
                    h / total,
                    width=edges[1] - edges[0],
                    align="edge",
                    alpha=alpha,
                    label=f"{label} (sat. {sat:.0%})",
                )
            ax.set_title(f"{layer}: {gate}", fontsize=9)
            ax.set_xlabel("gate value")
            ax.legend(fontsize=7)
        fig.suptitle("gate saturation (share of values per bin)")
        fig.tight_layout()
        written.append(out_dir / "gate_saturation.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    jac = [n for n in names if f"jac_sv__{n}" in arrays]
    if jac:
        fig, axes = plt.subplots(2, len(jac), figsize=(5 * len(jac), 6), squeeze=False)
        for col, name in enumerate(jac):
            sv = arrays[f"jac_sv__{name}"][-1]  # (N, S) at the last record
            ts = arrays[f"jac_steps__{name}"][-1]
            ok = ~np.isnan(ts)
            ax = axes[0][col]
            ax.plot(ts[ok], sv[ok], color="tab:blue", alpha=0.25, lw=0.8)
            ax.plot(ts[ok], sv[ok][:, 0], color="tab:red", lw=1.5, label="largest")
            ax.axhline(1.0, color="k", ls="--", lw=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("time step t")
            ax.set_ylabel("singular values of ds_t/ds_{t-1}")
            ax.set_title(f"{name} (training step {steps[-1]})", fontsize=9)
            ax.legend(fontsize=7)
            ax = axes[1][col]
            radius = np.nanmean(arrays[f"jac_radius__{name}"], axis=1)
            ax.plot(steps, radius, marker="o")
            ax.axhline(1.0, color="k", ls="--", lw=0.8)
            ax.set_xlabel("training step")
            ax.set_ylabel("mean spectral radius")
        fig.tight_layout()
        written.append(out_dir / "jacobian_spectrum.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    text = verdict(meta, arrays)
    written.append(out_dir / "verdict.txt")
    written[-1].write_text(text + "\n", encoding="utf-8")
    return written


def verdict(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """A few plain sentences: does the signal reach back, did gradients explode, are gates stuck."""
    lines = []
    records = meta.get("records", [])
    threshold = float(meta.get("config", {}).get("vanish_threshold", VANISH_THRESHOLD))
    steps = arrays.get("steps", np.zeros(0))
    for name in layers(arrays):
        norms = arrays[f"hidden__{name}"]
        if not len(norms):
            continue
        last = norms[-1][~np.isnan(norms[-1])]
        T = len(last)
        reach = signal_reach(last, threshold)
        if reach is None:
            lines.append(
                f"{name}: the learning signal reaches all {T} steps back (it never falls below "
                f"{threshold:g} of its peak) at training step {steps[-1]}."
            )
        else:
            lines.append(
                f"{name}: VANISHING — at training step {steps[-1]} the learning signal falls "
                f"below {threshold:g} of its peak {reach} steps back (sequence of {T}); "
                f"dependencies longer than ~{reach} steps cannot be learned."
            )
        if last.size and last[-1] > 0 and last[0] > 0:
            lines.append(
                f"  ||dL/dh_0|| / ||dL/dh_T-1|| = {last[0] / last[-1]:.2g}"
                f" (log10 {math.log10(last[0] / last[-1]):+.1f})."
            )
    if records:
        sat = records[-1].get("saturation", {})
        for name, gates in sat.items():
            hot = {g: v for g, v in gates.items() if v is not None and v > 0.5}
            if hot:
                parts = ", ".join(f"{g} {v:.0%}" for g, v in hot.items())
                lines.append(f"{name}: saturated gates ({parts} of values < 0.05 or > 0.95).")
        for name, s in records[-1].get("jacobian", {}).items():
            r = s.get("spectral_radius_mean")
            if r is not None:
                trend = "shrink" if r < 1 else "can grow"
                lines.append(
                    f"{name}: recurrent Jacobian mean spectral radius {r:.3g}, largest singular "
                    f"value {s.get('sigma_max_mean', float('nan')):.3g}: long products of "
                    f"Jacobians {trend} on average."
                )
    events = meta.get("events", [])
    kinds = [e["kind"] for e in events]
    bad = kinds.count("nonfinite") + kinds.count("jump")
    if bad:
        skipped = len(meta.get("skipped_steps", []))
        first = next(e for e in events if e["kind"] in ("nonfinite", "jump"))
        lines.append(
            f"EXPLODING: {kinds.count('nonfinite')} non-finite and {kinds.count('jump')} jumping "
            f"gradient norms; {skipped} updates skipped. First: {first['message']}"
        )
    elif meta.get("grad_norms"):
        lines.append("No exploding or non-finite gradients were seen.")
    return "\n".join(lines) if lines else "No diagnostics were recorded."
