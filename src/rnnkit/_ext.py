"""Build and load rnnkit's C++ extension (``csrc/rnnkit_ext.cpp``): the fused CPU time loops.

The install step builds it once (``python -m rnnkit._ext build``; the Makefile's ``venv`` target
does this), with ``torch.utils.cpp_extension`` into a cache directory keyed by the source, torch
and Python versions. At run time ``ops()`` only *loads* a finished build: a forward call never
starts a compiler, because a first build takes a minute and a user's training step is no place
for that surprise. Without a build the layer falls back to the Python loop and ``plan()`` says so,
with the command that builds it.

Where the build lives: ``$RNNKIT_EXT_DIR`` if set, else ``<sys.prefix>/share/rnnkit-ext`` when
that is writable (a virtualenv: ``make clean`` removes it with the venv), else
``~/.cache/rnnkit/ext``.

    python -m rnnkit._ext build     # compile (seconds when already built)
    python -m rnnkit._ext status    # where it is, or why it is not loaded
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import torch

NAME = "rnnkit_ext"
SOURCE = Path(__file__).resolve().parent / "csrc" / "rnnkit_ext.cpp"
# -O3 and no -march=native: the build may be cached and reused on another CPU of the same
# architecture; the kernels are written so that plain x86-64/arm64 vectorisation suffices.
# -fno-trapping-math lets g++ if-convert (and so vectorise) the clamps and selects; NaN and
# infinity semantics stay as they are (no -ffast-math).
CFLAGS = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fopenmp", "-std=c++17"]
LDFLAGS = ["-fopenmp"]

_state: dict[str, Any] = {"loaded": False, "ops": None, "reason": "not looked for yet"}


def _tag() -> str:
    """A key that changes whenever the source, the flags, torch or Python change."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join(CFLAGS + LDFLAGS).encode())
    digest.update(torch.__version__.encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """The directory under which builds are kept (see the module docstring)."""
    if env := os.environ.get("RNNKIT_EXT_DIR"):
        return Path(env)
    share = Path(sys.prefix) / "share"
    if os.access(share if share.exists() else sys.prefix, os.W_OK):
        return share / "rnnkit-ext"
    return Path.home() / ".cache" / "rnnkit" / "ext"


def build_dir() -> Path:
    return cache_root() / _tag()


def library_path() -> Path:
    return build_dir() / f"{NAME}.so"


def build(*, verbose: bool = False) -> Path:
    """Compile the extension (a no-op when this source is already built) and load it."""
    from torch.utils.cpp_extension import load

    directory = build_dir()
    directory.mkdir(parents=True, exist_ok=True)
    load(
        name=NAME,
        sources=[str(SOURCE)],
        # Copies: torch appends its own flags to these lists, which would change _tag() mid-build.
        extra_cflags=list(CFLAGS),
        extra_ldflags=list(LDFLAGS),
        build_directory=str(directory),
        is_python_module=False,
        verbose=verbose,
    )
    _state.update(loaded=True, ops=torch.ops.rnnkit, reason=f"loaded from {library_path()}")
    return library_path()


def ops() -> Any | None:
    """``torch.ops.rnnkit`` when the extension is built (loading it on first use), else None;
    ``reason()`` then says why."""
    if not _state["loaded"]:
        _state["loaded"] = True
        path = library_path()
        if not path.exists():
            _state["reason"] = (
                f"C++ extension not built for this source (run `python -m rnnkit._ext build`; "
                f"looked for {path})"
            )
        else:
            try:
                torch.ops.load_library(str(path))
                _state.update(ops=torch.ops.rnnkit, reason=f"loaded from {path}")
            except (OSError, RuntimeError) as err:
                _state["reason"] = f"C++ extension at {path} failed to load: {err}"
    return _state["ops"]


def reason() -> str:
    """Why ``ops()`` returned what it did."""
    ops()
    return str(_state["reason"])


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        print(f"rnnkit: C++ extension built at {build(verbose='-v' in argv)}")
        return 0
    if argv[:1] == ["status"]:
        print(f"rnnkit: {'available' if ops() is not None else 'unavailable'}: {reason()}")
        return 0 if ops() is not None else 1
    print("usage: python -m rnnkit._ext build [-v] | status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
