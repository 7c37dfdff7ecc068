"""``data.frame`` on a registry set (`rnnkit fit --data.source gunpoint`): the builder frames every
split by the frame of the training lengths, model.json records it, and the serving `Predictor`
turns a raw (unscaled, unframed) series into the very input the model was tested on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from rnnkit.data import load
from rnnkit.data.framing import frame_series
from rnnkit.predictor import Predictor
from rnnkit.train.config import (
    EarlyStoppingConfig,
    RunConfig,
    SequenceDataConfig,
    TrainerConfig,
)
from rnnkit.train.predict import load_run
from rnnkit.train.specs import ClassificationExperiment, ClassifierSpec
from rnnkit.train.tasks import DataParts
from rnnkit.train.trainer import build, fit


def _experiment(tmp_path: Path, frame: int | str | None) -> ClassificationExperiment:
    return ClassificationExperiment(
        seed=0,
        data=SequenceDataConfig(source="gunpoint", batch_size=16, frame=frame),
        model=ClassifierSpec(hidden_size=8, cell="gru"),
        trainer=TrainerConfig(
            max_steps=2, val_check_interval=2, enable_progress_bar=False, num_threads=1
        ),
        early_stopping=EarlyStoppingConfig(enabled=False),
        run=RunConfig(root=str(tmp_path), name=f"frame-{frame}", plot=False),
    )


def test_registry_set_is_framed_and_served_alike(tmp_path: Path) -> None:
    result = fit(_experiment(tmp_path, "auto"), final_eval=False)
    meta = json.loads((result.run_dir / "artifact" / "model.json").read_text())
    assert meta["frame"] == 5  # GunPoint: 150 steps, ceil(150 / 30)
    assert meta["model_config"]["input_size"] == 5
    raw = load("gunpoint", scale=False).test.sequences[:3]  # the archive's values, (150, 1)
    served = Predictor.from_run(result.run_dir).predict([x.numpy().tolist() for x in raw])
    built = build(load_run(result.run_dir).experiment)  # the builder's framed test split
    model = load_run(result.run_dir).model
    x = torch.stack([torch.as_tensor(built.datamodule.parts[2][i][0]) for i in range(3)])
    assert x.shape == (3, 30, 5)
    with torch.no_grad():
        probs = torch.softmax(model(x), -1).numpy()
    for answer, p in zip(served, probs, strict=True):
        np.testing.assert_allclose(list(answer["probabilities"].values()), p, atol=1e-5)


def test_registry_frame_off_or_fixed(tmp_path: Path) -> None:
    off = build(_experiment(tmp_path, None))
    assert off.model_config.input_size == 1 and "frame" not in off.artifact_json
    assert len(off.datamodule.parts[0][0][0]) == 150
    fixed = build(_experiment(tmp_path, 7))
    assert fixed.model_config.input_size == 7 and fixed.artifact_json["frame"] == 7
    x_off, x_fixed = off.datamodule.parts[0][0][0], fixed.datamodule.parts[0][0][0]
    assert tuple(x_fixed.shape) == (22, 7)  # ceil(150 / 7), the tail padded with the last step
    np.testing.assert_allclose(np.asarray(x_fixed), frame_series(np.asarray(x_off), 7))


def test_baselines_of_a_framed_registry_set_read_the_steps(tmp_path: Path) -> None:
    """1-NN Euclidean/DTW score the series as a run on the same rows as files does: step by step."""
    from rnnkit.evaluate.run_inputs import run_inputs

    exp = _experiment(tmp_path, "auto")
    built = build(exp)
    assert built.artifact_json["frame"] == 5
    suite, inputs = run_inputs(built, exp, split="test")  # type: ignore[misc]
    assert suite == "classification"
    assert {x.shape for x in inputs["train"][0]} == {(150, 1)}
    assert len(inputs["test"][0]) == 150  # GunPoint's test split
    steps = np.concatenate([x.ravel() for x in inputs["test"][0][:2]])
    framed = np.concatenate([np.asarray(x).ravel() for x, _ in list(built.datamodule.parts[2])[:2]])
    np.testing.assert_allclose(steps, framed, rtol=1e-6)  # the same values, frame by frame


def test_in_memory_data_is_never_reframed(tmp_path: Path) -> None:
    """An application's samples (and the user's encoded files) arrive as the model reads them."""
    splits = load("gunpoint", val_fraction=0.2)
    parts = DataParts(
        *(
            list(zip(p.sequences, p.labels, strict=True))
            for p in (splits.train, splits.val, splits.test)
        ),
        meta={"classes": splits.meta["classes"], "n_features": 1},
    )
    built = build(_experiment(tmp_path, "auto"), data=parts)
    assert built.model_config.input_size == 1 and "frame" not in built.artifact_json
    assert len(built.datamodule.parts[0][0][0]) == 150


def test_a_rebuilt_run_reads_its_recorded_frame(tmp_path: Path) -> None:
    """`rnnkit test` / `predict` rebuild a run's data with the frame its model.json recorded, not
    the frame the experiment's options would choose today: a run saved before framing existed
    (its experiment parses with today's default ``auto``) was never framed."""
    from dataclasses import replace

    from rnnkit.train.trainer import rebuild

    old = fit(_experiment(tmp_path, None), final_eval=False)
    loaded = load_run(old.run_dir)
    auto = replace(loaded.experiment, data=replace(loaded.experiment.data, frame="auto"))
    assert build(auto).model_config.input_size == 5  # what the options alone would give
    assert rebuild(loaded, overrides=auto).model_config.input_size == 1
    framed = fit(_experiment(tmp_path, "auto"), final_eval=False)
    loaded = load_run(framed.run_dir)
    finer = replace(loaded.experiment, data=replace(loaded.experiment.data, frame_steps=10))
    assert rebuild(loaded, overrides=finer).model_config.input_size == 5  # not 15
