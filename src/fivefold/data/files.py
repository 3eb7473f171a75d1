"""Finding data files and checking them: the data root, sha256 verification, clear errors for missing files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fivefold.errors import ChecksumError, DataError

__all__ = ["data_root", "sha256", "verify", "require_file"]

ENV_VAR = "FIVEFOLD_DATA"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the real data sets: ``root`` if given, else ``$FIVEFOLD_DATA``."""
    if root is None:
        root = os.environ.get(ENV_VAR)
        if not root:
            raise DataError(
                f"no data folder given: pass root=... (or --data-root on the command line) or set {ENV_VAR} "
                "to the folder that holds planetoid/, tudataset/, ..."
            )
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"data folder {path} is a file, not a folder: name the folder that holds planetoid/, "
                        "tudataset/, ...")
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist")
    return path


def data_root_given(root: str | os.PathLike | None = None) -> bool:
    """Whether a data folder is named: ``root``, or ``$FIVEFOLD_DATA`` (what ``data_root`` would use)."""
    return root is not None or bool(os.environ.get(ENV_VAR))


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{what}: expected file {path} is missing")
    return path


def verify(path: Path, expected: str) -> Path:
    """Raise :class:`ChecksumError` unless ``path``'s sha256 is ``expected``; return the path."""
    require_file(path, "checksum check")
    actual = sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"{path} is corrupted or not the expected file: sha256 {actual}, expected {expected}. "
            "Copy the original file again."
        )
    return path
