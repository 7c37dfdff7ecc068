"""The run directory: atomic checkpoints, the artifact to predict from, the loss plot, the summary.

```
runs/<name>/
  config.yaml            the resolved experiment (every value the run used)
  metrics.csv            Lightning CSV logger rows (train_loss per log step, val_* per validation)
  tensorboard/           TensorBoard events
  checkpoints/           best.ckpt (monitored metric), last.ckpt (for --resume); atomic writes
  artifact/              model.safetensors, model.json (+ vocab.json / scalers.json; an app's
                         test_split.safetensors + data_meta.json, rnnkit.train.in_memory)
  loss_curve.png         train and validation loss against optimiser steps
  summary.json           metrics, versions, wall time, seed, the recurrent path that ran
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from safetensors.torch import save_model
from torch import nn

# The reader (read_artifact_meta, load_weights) is rnnkit.artifact: serving loads without Lightning.
from rnnkit.artifact import ARTIFACT_FORMAT
from rnnkit.integrity import (
    atomic_write_bytes,
    atomic_write_text,
    reason,
    record_digest,
    seal_meta,
    sha256_file,
    sidecar,
    tmp_path,
    verify_recorded,
)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then ``os.replace``s it into place.

    A kill mid-write leaves the previous checkpoint intact (and a ``.tmp`` orphan that the next
    start of the run removes). The file's SHA-256 goes to its sidecar ``X.ckpt.sha256.json``
    (`rnnkit.integrity`), checked at load. Weights holding NaN/Inf are refused, never written.
    Loading is ``weights_only=True``: a checkpoint holds tensors and plain data only.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        path = Path(path)
        refuse_nonfinite(checkpoint.get("state_dict", {}), path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(path)
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            record_digest(path, sha256_file(tmp))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def remove_checkpoint(self, path: Any) -> None:
        super().remove_checkpoint(path)
        sidecar(path).unlink(missing_ok=True)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location)


def load_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a Lightning checkpoint with ``weights_only=True``; ``ValueError`` if unusable."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"checkpoint {p} does not exist")
    verify_recorded(p)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(
            f"checkpoint {p} is not a readable rnnkit checkpoint: {reason(err)}"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"checkpoint {p} holds no 'state_dict'; it was not written by rnnkit fit")
    return ckpt


def refuse_nonfinite(state: Mapping[str, Any], path: Path) -> None:
    """``ValueError`` naming the first NaN/Inf tensor of ``state``: no NaN is ever saved."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                raise ValueError(
                    f"refusing to write {path}: weight {name!r} holds NaN or Inf (the run diverged)"
                )


def save_artifact(
    directory: Path,
    model: nn.Module,
    *,
    task: str,
    model_config: Any,
    extra_json: dict[str, Any] | None = None,
    files: Mapping[str, str | bytes] | None = None,
) -> None:
    """Write ``model.safetensors`` + extra JSON files + ``model.json`` (with every file's SHA-256,
    written last) into ``directory``; weights holding NaN/Inf are refused."""
    refuse_nonfinite(model.state_dict(), directory / "model.safetensors")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(directory / "model.safetensors")
    try:
        save_model(model, str(tmp))  # handles tied weights (one tensor saved once)
        os.replace(tmp, directory / "model.safetensors")
    finally:
        tmp.unlink(missing_ok=True)
    for name, content in (files or {}).items():
        if isinstance(content, bytes):
            atomic_write_bytes(directory / name, content)
        else:
            atomic_write_text(directory / name, content)
    meta = {
        "format": ARTIFACT_FORMAT,
        "task": task,
        "model_class": type(model).__name__,
        "model_config": asdict(model_config),
        **(extra_json or {}),
    }
    meta = seal_meta(meta, directory, ["model.safetensors", *(files or {})])
    atomic_write_text(directory / "model.json", json.dumps(meta, indent=2))


def plot_loss_curve(metrics_csv: Path, out_png: Path, *, title: str) -> bool:
    """Plot train and validation loss against step from a Lightning ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if not metrics_csv.is_file():
        return False
    frame = pd.read_csv(metrics_csv)
    fig, ax = plt.subplots(figsize=(7, 4))
    for column, label in (("train_loss", "train (per step)"), ("val_loss", "validation")):
        if column in frame:
            rows = frame[["step", column]].dropna()
            ax.plot(
                rows["step"],
                rows[column],
                label=label,
                marker="o" if column == "val_loss" else None,
            )
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (nats per target)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return True


@dataclass
class RunResult:
    """What ``fit`` returns: where the run is and its final metrics."""

    run_dir: Path
    metrics: dict[str, float]
    summary: dict[str, Any]
