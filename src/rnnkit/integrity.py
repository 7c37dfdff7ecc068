"""File integrity for run directories: SHA-256 digests, atomic writes, orphan clean-up.

Safetensors and torch's zip checkpoints carry no checksum of their data, so a flipped byte in a
weight loads silently. Every file a run keeps is therefore written atomically (a temporary file
beside it, then ``os.replace``) and its SHA-256 is recorded in JSON beside it:

- the artifact: ``model.json`` holds ``sha256: {file: digest}`` for ``model.safetensors`` and the
  extra files (``vocab.json``, ``scalers.json``), and ``meta_sha256``, the digest of its own
  content without that field (so an edited or damaged ``model.json`` is caught too);
- a checkpoint ``X.ckpt``: the sidecar ``X.ckpt.sha256.json``, written *before* the checkpoint is
  replaced and naming both the new and the previous digest, so a kill between the two writes
  leaves a pair that still verifies.

Readers call `verify_file` / `verify_artifact`; a mismatch is one ``ValueError`` line naming the
file. This module imports neither torch nor Lightning, so a serving reader can use it as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"  # every temporary file of an atomic write is ".<name>.<random>.tmp"
SIDECAR_SUFFIX = ".sha256.json"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(
    path: str | os.PathLike[str], expected: str | Iterable[str], *, record: str = ""
) -> None:
    """``ValueError`` naming ``path`` unless its SHA-256 is ``expected`` (or one of them);
    ``record`` names where the digest was read, for the message."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} is missing")
    allowed = {expected} if isinstance(expected, str) else set(expected)
    actual = sha256_file(p)
    if actual not in allowed:
        raise ValueError(
            f"{p} is corrupt: its SHA-256 {actual[:12]}... does not match the recorded "
            f"{sorted(allowed)[0][:12]}...{f' in {record}' if record else ''} (damaged or "
            "changed after it was written)"
        )


def tmp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``, recognisable by `clean_orphans`."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and ``os.replace``."""
    p = Path(path)
    tmp = tmp_path(p)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and ``os.replace``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def clean_orphans(root: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files that an interrupted atomic write left under ``root``; the removed.

    Only names of the form ``.<name>...tmp`` are touched (what `tmp_path` and the checkpoint
    writer create); call it when a run starts, before anything writes.
    """
    base = Path(root)
    if not base.is_dir():
        return []
    removed = []
    for p in sorted(base.rglob(f".*{TMP_SUFFIX}")):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file's data; unreadable bytes or broken syntax become one line naming the file."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p} is missing") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{p} is corrupt: byte {err.start} is not UTF-8") from None
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{p} is corrupt: not valid JSON at line {err.lineno}, column {err.colno} ({err.msg})"
        ) from None


def _canonical(meta: dict[str, Any]) -> bytes:
    body = {k: v for k, v in meta.items() if k != "meta_sha256" and not k.startswith("_")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal_meta(meta: dict[str, Any], folder: Path, files: Iterable[str]) -> dict[str, Any]:
    """``meta`` with the digests of ``files`` (in ``folder``) and of its own content added."""
    sealed = {**meta, "sha256": {name: sha256_file(folder / name) for name in files}}
    sealed["meta_sha256"] = hashlib.sha256(_canonical(sealed)).hexdigest()
    return sealed


def verify_artifact(folder: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Check ``model.json``'s own digest and each recorded file's; ``ValueError`` naming the first
    mismatch. Artifacts written before digests were recorded (no ``meta_sha256``) pass as they
    are."""
    root = Path(folder)
    if "meta_sha256" not in meta:
        return
    if hashlib.sha256(_canonical(meta)).hexdigest() != meta["meta_sha256"]:
        raise ValueError(
            f"{root / 'model.json'} is corrupt: its content does not match its recorded SHA-256 "
            "(damaged or edited after it was written)"
        )
    digests = meta.get("sha256")
    if not isinstance(digests, dict):
        raise ValueError(f"{root / 'model.json'} is corrupt: 'sha256' is not a mapping")
    for name, digest in digests.items():
        if Path(name).name != name:
            raise ValueError(f"{root / 'model.json'} is corrupt: file name {name!r} is not plain")
        verify_file(root / name, digest)


def sidecar(path: str | os.PathLike[str]) -> Path:
    """The digest file that goes with checkpoint ``path``."""
    p = Path(path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def record_digest(path: Path, digest: str) -> None:
    """Write ``path``'s sidecar naming ``digest`` and the digest of the file now at ``path`` (when
    it verified), before ``path`` is replaced by a file with ``digest``: whenever the writer dies,
    the pair on disk still verifies."""
    previous = None
    if path.is_file() and sidecar(path).is_file():
        try:
            data = read_json(sidecar(path))
            known = {data.get("sha256"), data.get("previous_sha256")} - {None}
        except (ValueError, AttributeError):
            known = set()
        current = sha256_file(path)
        previous = current if current in known else None
    body = {"file": path.name, "sha256": digest, "previous_sha256": previous}
    atomic_write_bytes(sidecar(path), json.dumps(body, indent=1).encode())


def verify_recorded(path: str | os.PathLike[str]) -> bool:
    """Verify ``path`` against its sidecar; False when there is none (an older run)."""
    side = sidecar(path)
    if not side.is_file():
        return False
    data = read_json(side)
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        raise ValueError(f"{side} is corrupt: no 'sha256' digest in it")
    allowed = [data["sha256"]] + ([data["previous_sha256"]] if data.get("previous_sha256") else [])
    verify_file(path, allowed, record=side.name)
    return True


__all__ = [
    "atomic_write_bytes",
    "clean_orphans",
    "read_json",
    "record_digest",
    "seal_meta",
    "sha256_file",
    "sidecar",
    "tmp_path",
    "verify_artifact",
    "verify_file",
    "verify_recorded",
]


def reason(err: BaseException) -> str:
    """The first line of a loader's error. torch's unpickling errors go on to suggest
    ``weights_only=False``, which would run whatever code the file holds: never show that."""
    text = str(err).strip()
    if "weights_only" in text or "Unpickler" in text or "unpickl" in text.lower():
        return "it is damaged, or holds objects other than tensors and plain data"
    if isinstance(err, OSError) or "zip archive" in text or "central directory" in text:
        return "it is truncated or damaged"
    return text.splitlines()[0][:200] if text else type(err).__name__
