"""The run directory of a seed ensemble: ``ensemble.json`` names the member runs, sealed.

```
runs/<name>/
  ensemble.json       format, task, how members combine, each member's run folder, seed and the
                      SHA-256 of its artifact/model.json (which seals its weights); own digest
  config.yaml         the experiment (model.ensemble = K, seed = the first member's)
  summary.json        the ensemble's validation/test metrics, each member's, wall time
  members/seed<S>/    one normal run per member (seeds seed, seed+1, ...)
```

`rnnkit.train.load_run` on the folder returns the members as one `EnsembleClassifier`, so
``rnnkit predict`` and `rnnkit.train.evaluate` use the averaged probabilities. Only JSON and
safetensors are read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rnnkit.integrity import atomic_write_text, read_json, sha256_file

ENSEMBLE_FORMAT = "rnnkit.ensemble/1"
ENSEMBLE_FILE = "ensemble.json"


def is_ensemble(run_dir: str | os.PathLike[str]) -> bool:
    return (Path(run_dir) / ENSEMBLE_FILE).is_file()


def member_name(seed: int) -> str:
    return f"members/seed{seed}"


def _digest(body: dict[str, Any]) -> str:
    plain = {k: v for k, v in body.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()


def write_ensemble(
    run_dir: Path, *, task: str, combine: str, seeds: list[int], experiment: dict[str, Any]
) -> dict[str, Any]:
    """Record the finished members of ``run_dir`` in ``ensemble.json`` (atomic)."""
    members = [
        {
            "run": member_name(seed),
            "seed": seed,
            "model_json_sha256": sha256_file(
                run_dir / member_name(seed) / "artifact" / "model.json"
            ),
        }
        for seed in seeds
    ]
    body: dict[str, Any] = {
        "format": ENSEMBLE_FORMAT,
        "task": task,
        "combine": combine,
        "members": members,
        "experiment": experiment,
    }
    body["meta_sha256"] = _digest(body)
    atomic_write_text(run_dir / ENSEMBLE_FILE, json.dumps(body, indent=2))
    return body


def read_ensemble(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Path]]:
    """``ensemble.json`` checked (format, own digest, each member's model.json digest) and the
    member run folders; ``ValueError`` naming the first problem."""
    root = Path(run_dir)
    path = root / ENSEMBLE_FILE
    body = read_json(path)
    if not isinstance(body, dict) or body.get("format") != ENSEMBLE_FORMAT:
        got = body.get("format") if isinstance(body, dict) else type(body).__name__
        raise ValueError(f"{path}: format {got!r} is not {ENSEMBLE_FORMAT!r}")
    if body.get("meta_sha256") != _digest(body):
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
