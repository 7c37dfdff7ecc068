"""The run directory of a seed ensemble: ``ensemble.json`` names the member runs, sealed.

```
runs/<name>/
  ensemble.json       format, task, how members combine, each member's run folder, seed and the
                      SHA-256 of its artifact/model.json (which seals its weights); own digest
  config.yaml         the experiment (model.ensemble = K, seed = the first member's)
  summary.json        the ensemble's validation/test metrics, each member's, wall time
  members/seed<S>/    one normal run per member (seeds seed, seed+1, ...)
```

`rnnkit.artifact.load_artifact` (the reader, Lightning-free; `rnnkit.train.load_run` calls it)
returns the members as one `EnsembleClassifier`, so ``rnnkit predict``, `rnnkit.train.evaluate`,
`rnnkit.Predictor`, ``rnnkit serve`` and ``rnnkit export`` all use the averaged probabilities.
Only JSON and safetensors are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnnkit.artifact import ENSEMBLE_FILE, ENSEMBLE_FORMAT, ensemble_digest
from rnnkit.integrity import atomic_write_text, sha256_file

__all__ = ["ENSEMBLE_FILE", "member_name", "write_ensemble"]


def member_name(seed: int) -> str:
    return f"members/seed{seed}"


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
    body["meta_sha256"] = ensemble_digest(body)
    atomic_write_text(run_dir / ENSEMBLE_FILE, json.dumps(body, indent=2))
    return body
