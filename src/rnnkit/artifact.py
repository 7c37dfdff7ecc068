"""Read a run's artifact without the trainer: the model, its vocabularies, scalers and label names.

An artifact folder (``runs/<name>/artifact/``, written by ``rnnkit.train.run.save_artifact``) holds
``model.safetensors`` (the weights), ``model.json`` (format, task, model class and config, the
experiment as plain data, and the names of the files below), ``vocab.json`` (token inputs),
``scalers.json`` (forecasting) and so on. Nothing here imports Lightning or unpickles anything, so
the serving side (``rnnkit.Predictor``, ``rnnkit serve``) loads a model with this module alone.

A seed ensemble's run folder (``model.ensemble: K``) holds ``ensemble.json`` instead: the member
runs under ``members/``, each sealed by the SHA-256 of its ``model.json``; ``load_artifact`` gives
them as one ``EnsembleClassifier``. The writer is ``rnnkit.train.ensemble``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from safetensors.torch import load_model
from torch import nn

from rnnkit.data.text import Vocab
from rnnkit.integrity import read_json, reason, sha256_file, verify_artifact
from rnnkit.models.ensemble import EnsembleClassifier

ARTIFACT_FORMAT = "rnnkit.artifact/1"
ENSEMBLE_FORMAT = "rnnkit.ensemble/1"
ENSEMBLE_FILE = "ensemble.json"

# model.json "model_class" -> (model class, config class) in rnnkit.models
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "LanguageModel": ("LanguageModel", "LanguageModelConfig"),
    "SequenceClassifier": ("SequenceClassifier", "SequenceClassifierConfig"),
    "SequenceTagger": ("SequenceTagger", "SequenceTaggerConfig"),
    "Forecaster": ("Forecaster", "ForecasterConfig"),
    "Seq2Seq": ("Seq2Seq", "Seq2SeqConfig"),
}


@dataclass
class Artifact:
    """A loaded artifact: the model (eval mode, CPU) and what turns raw input into its tensors.

    ``vocab`` maps tokens of token-input models (the source side for seq2seq), ``tgt_vocab`` the
    target side of a seq2seq model, ``classes`` names the outputs of a classifier or tagger, and
    ``scalers`` is the forecasting ``scalers.json`` content (None when the series was not scaled),
    ``encoder`` a user-file run's ``encoder.json`` (its classes, columns and training scaler).
    """

    folder: Path
    task: str
    model: nn.Module
    meta: dict[str, Any]
    vocab: Vocab | None = None
    tgt_vocab: Vocab | None = None
    classes: list[str] | None = None
    scalers: dict[str, Any] | None = None
    encoder: dict[str, Any] | None = None
    level: str = "char"
    extra: dict[str, Any] = field(default_factory=dict)


def artifact_folder(run_dir: str | os.PathLike[str]) -> Path:
    """The artifact folder of a run directory, or the folder itself when given one."""
    root = Path(run_dir)
    return root / "artifact" if (root / "artifact").is_dir() else root


def read_artifact_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``model.json`` of a run directory (or of an artifact folder), checked (adds ``_folder``)."""
    root = Path(run_dir)
    folder = artifact_folder(root)
    path = folder / "model.json"
    if not path.is_file():
        raise ValueError(
            f"{root} is not an rnnkit run directory: {path} is missing (was the run finished?)"
        )
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path}: format {got!r} is not {ARTIFACT_FORMAT!r}")
    verify_artifact(folder, meta)
    meta["_folder"] = str(folder)
    return meta


def load_weights(model: nn.Module, folder: str | os.PathLike[str]) -> None:
    """Load ``model.safetensors`` into ``model``; a clear ``ValueError`` when shapes disagree."""
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    try:
        load_model(model, str(path))
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit the model in model.json: {reason(err)}") from None
    except Exception as err:  # safetensors' own errors: a damaged header or data
        raise ValueError(f"{path} is not a readable safetensors file: {reason(err)}") from None


def build_model(meta: dict[str, Any]) -> nn.Module:
    """An untrained model of the class and config that ``model.json`` names."""
    import rnnkit.models as models

    where = Path(meta.get("_folder", ".")) / "model.json"
    names = MODEL_CLASSES.get(meta.get("model_class", ""))
    if names is None:
        raise ValueError(f"{where}: unknown model_class {meta.get('model_class')!r}")
    cls, cfg_cls = getattr(models, names[0]), getattr(models, names[1])
    try:
        config = cfg_cls(**meta["model_config"])
    except (TypeError, KeyError) as err:
        raise ValueError(f"{where}: model_config does not fit {names[1]}: {err}") from None
    return cls(config)


def is_ensemble(run_dir: str | os.PathLike[str]) -> bool:
    return (Path(run_dir) / ENSEMBLE_FILE).is_file()


def ensemble_digest(body: dict[str, Any]) -> str:
    """The SHA-256 that seals ``ensemble.json`` (of everything but the digest itself)."""
    plain = {k: v for k, v in body.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()


def read_ensemble(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Path]]:
    """``ensemble.json`` checked (format, own digest, each member's model.json digest) and the
    member run folders; ``ValueError`` naming the first problem."""
    root = Path(run_dir)
    path = root / ENSEMBLE_FILE
    body = read_json(path)
    if not isinstance(body, dict) or body.get("format") != ENSEMBLE_FORMAT:
        got = body.get("format") if isinstance(body, dict) else type(body).__name__
        raise ValueError(f"{path}: format {got!r} is not {ENSEMBLE_FORMAT!r}")
    if body.get("meta_sha256") != ensemble_digest(body):
        raise ValueError(
            f"{path} is corrupt: its content does not match its recorded SHA-256 "
            "(damaged or edited after it was written)"
        )
    members = body.get("members")
    if not isinstance(members, list) or not members:
        raise ValueError(f"{path} is corrupt: 'members' is not a non-empty list")
    folders = []
    for entry in members:
        name = str(entry.get("run", ""))
        folder = root / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not name:
            raise ValueError(f"{path} is corrupt: member folder {name!r} is not inside the run")
        model_json = folder / "artifact" / "model.json"
        if not model_json.is_file():
            raise ValueError(f"{path} names member {name}, whose {model_json} is missing")
        if sha256_file(model_json) != entry.get("model_json_sha256"):
            raise ValueError(
                f"{model_json} does not match the SHA-256 that {path} recorded for member {name}"
            )
        folders.append(folder)
    return body, folders


def load_artifact(run_dir: str | os.PathLike[str]) -> Artifact:
    """Rebuild the model of ``run_dir`` (a run directory or artifact folder), load its weights and
    its preprocessing files.

    A seed ensemble's folder gives its members as one `EnsembleClassifier` (averaged
    probabilities) with the first member's preprocessing; ``meta`` is the first member's
    ``model.json`` plus ``"ensemble"``, the checked ``ensemble.json``.
    """
    if is_ensemble(run_dir):
        body, folders = read_ensemble(run_dir)
        arts = [load_artifact(folder) for folder in folders]
        first = arts[0]
        for folder, art in zip(folders[1:], arts[1:], strict=True):
            if _inputs(art) != _inputs(first):  # one Predictor encodes the input for all
                raise ValueError(
                    f"{folder}: its classes, vocabulary or scalers differ from member "
                    f"{folders[0]}'s; the members of an ensemble must share them"
                )
        ensemble = EnsembleClassifier([a.model for a in arts]).eval()
        return replace(first, model=ensemble, meta={**first.meta, "ensemble": body})
    meta = read_artifact_meta(run_dir)
    folder = Path(meta["_folder"])
    model = build_model(meta)
    load_weights(model, folder)
    model.eval()

    def vocab(key: str) -> Vocab | None:
        name = meta.get(key)
        return Vocab.load(folder / name) if name else None

    scalers = None
    if meta.get("scalers"):
        path = folder / meta["scalers"]
        if not path.is_file():
            raise ValueError(f"{folder / 'model.json'} names {meta['scalers']}, which is missing")
        scalers = json.loads(path.read_text(encoding="utf-8"))
    encoder = None
    if meta.get("encoder"):  # runs on the user's own files (verified with the artifact)
        encoder = json.loads((folder / meta["encoder"]).read_text(encoding="utf-8"))
    data = meta.get("experiment", {}).get("data", {}) or {}
    classes = meta.get("classes")
    return Artifact(
        folder=folder,
        task=str(meta["task"]),
        model=model,
        meta=meta,
        vocab=vocab("vocab"),
        tgt_vocab=vocab("tgt_vocab"),
        classes=[str(c) for c in classes] if classes else None,
        scalers=scalers,
        encoder=encoder,
        level=str(data.get("level", "char")),
    )


def _inputs(art: Artifact) -> tuple[Any, ...]:
    """What turns raw input into a member's tensors and its outputs into names."""
    vocab = art.vocab.tokens if art.vocab is not None else None
    return (art.classes, art.scalers, art.encoder, vocab)
