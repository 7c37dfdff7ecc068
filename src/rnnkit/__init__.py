"""rnnkit: recurrent neural networks from their equations to deployment, on PyTorch.

The public names below are imported on first use (PEP 562), so ``import rnnkit`` — and with it the
``rnnkit`` command's ``--help`` and its argument errors — never waits for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "ElmanCell": "rnnkit.cells",
    "GRUCell": "rnnkit.cells",
    "LSTMCell": "rnnkit.cells",
    "MinGRUCell": "rnnkit.cells",
    "MinLSTMCell": "rnnkit.cells",
    "RecurrentCell": "rnnkit.cells",
    "ScanCell": "rnnkit.cells",
    "Recurrent": "rnnkit.recurrent",
    "Batch": "rnnkit.types",
    "LSTMState": "rnnkit.types",
    "State": "rnnkit.types",
    # The serving layer, reached lazily only: the root is core and imports nothing above it.
    "Predictor": "rnnkit.predictor",
}

if TYPE_CHECKING:
    from rnnkit.cells import (
        ElmanCell,
        GRUCell,
        LSTMCell,
        MinGRUCell,
        MinLSTMCell,
        RecurrentCell,
        ScanCell,
    )
    from rnnkit.recurrent import Recurrent
    from rnnkit.types import Batch, LSTMState, State


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Batch",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "MinGRUCell",
    "MinLSTMCell",
    "Predictor",
    "Recurrent",
    "RecurrentCell",
    "ScanCell",
    "State",
    "__version__",
]
