"""The recipes that ship with rnnkit: ``configs/*.yaml``, installed as package data.

In the repository ``src/rnnkit/configs`` is a link to the top-level ``configs/`` folder, so the
README's paths (``configs/demo_charlm.yaml``) and an installed wheel read the same files. A recipe
is named by a path, or by its name alone (``demo_charlm``) when no such file exists: that is how
a user who installed the wheel, with no ``configs/`` of their own, runs one.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def recipes_dir() -> Path:
    """The shipped recipes' folder (``RNNKIT_CONFIGS`` overrides it)."""
    env = os.environ.get("RNNKIT_CONFIGS")
    return Path(env) if env else Path(str(resources.files("rnnkit") / "configs"))


def list_recipes() -> list[str]:
    """The names of the shipped recipes."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def recipe_path(name_or_path: str | os.PathLike[str]) -> Path:
    """``name_or_path`` if it is a file, else the shipped recipe of that name (``.yaml`` optional).

    Raises ``ValueError`` naming the missing file and the shipped recipes.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path("."):
        shipped = recipes_dir() / (path.name if path.suffix else f"{path.name}.yaml")
        if shipped.is_file():
            return shipped
    raise ValueError(
        f"config file {path} does not exist, and no recipe of that name ships with rnnkit "
        f"(shipped: {', '.join(list_recipes())})"
    )
