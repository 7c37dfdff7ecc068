"""What a run records about where it ran: library versions and the platform."""

from __future__ import annotations

import platform


def versions() -> dict[str, str]:
    """Library versions a summary records."""
    import lightning
    import numpy
    import torch

    import rnnkit

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "numpy": numpy.__version__,
        "rnnkit": getattr(rnnkit, "__version__", "unknown"),
        "platform": platform.platform(),
    }
