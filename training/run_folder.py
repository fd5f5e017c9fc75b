"""One folder per training run: created fresh, never reused or overwritten."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path

import numpy as np


def create_run_folder(out: Path, arch: str) -> Path:
    """Create ``out/<YYYYmmdd-HHMMSS>_<arch>``; add ``-2``, ``-3``... if it exists."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{arch}"
    for n in range(1, 1000):
        folder = out / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"could not create a new run folder named {stem}* in {out}")


def git_commit(repo: Path) -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}{'-dirty' if dirty else ''}" if sha else None


def versions() -> dict[str, str]:
    import keras

    found = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    name = backend_module.get(keras.backend.backend())
    if name:
        found[name] = __import__(name).__version__
    return found
