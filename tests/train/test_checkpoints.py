"""When checkpoints are written, and the final validation that reuses the kept one's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rnnkit.train import load_run
from rnnkit.train.run import AtomicCheckpointIO, load_checkpoint
from rnnkit.train.trainer import evaluate, fit


def _spy(monkeypatch: Any) -> dict[str, list[int]]:
    """The global step of every checkpoint write, by file name."""
    writes: dict[str, list[int]] = {"best.ckpt": [], "last.ckpt": []}
    real = AtomicCheckpointIO.save_checkpoint

    def save(self: Any, checkpoint: dict[str, Any], path: Any, **kwargs: Any) -> None:
        writes[Path(path).name].append(int(checkpoint["global_step"]))
        real(self, checkpoint, path, **kwargs)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save)
    return writes


@pytest.mark.parametrize(("every_s", "last_steps"), [(0.0, [4, 8, 12, 14]), (3600.0, [14])])
def test_last_checkpoint_at_the_interval_and_at_the_end(
    tiny_lm: Any, monkeypatch: Any, every_s: float, last_steps: list[int]
) -> None:
    writes = _spy(monkeypatch)
    exp = tiny_lm(f"every{every_s:g}", max_steps=14, last_checkpoint_every_s=every_s)
    result = fit(exp, final_eval=False)
    # 14 is no validation step: the end of training still leaves its state to resume from
    assert writes["last.ckpt"] == last_steps
    assert load_checkpoint(result.run_dir / "checkpoints" / "last.ckpt")["global_step"] == 14
    # the best checkpoint is written once per improvement, never at the end
    assert writes["best.ckpt"] and set(writes["best.ckpt"]) <= {4, 8, 12}


def test_final_metrics_are_the_kept_checkpoints_own_validation(tiny_lm: Any) -> None:
    result = fit(tiny_lm("kept", max_steps=12), final_eval=True)
    best = load_checkpoint(result.run_dir / "checkpoints" / "best.ckpt")
    again = evaluate(str(result.run_dir), stage="validate")  # the artifact, validated afresh
    assert again and again.keys() <= result.metrics.keys()
    for name, value in again.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    # the artifact holds the kept checkpoint's weights, not the last ones
    artifact = torch.load(result.run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert artifact["global_step"] == best["global_step"]
    state = {k.removeprefix("model."): v for k, v in best["state_dict"].items()}
    for name, value in load_run(result.run_dir).model.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0, msg=name)
