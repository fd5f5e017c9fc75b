"""What a training run records about itself: git commit and versions.

The run folder itself is created by :func:`core.runs.create_run_folder` (fresh, never
reused or overwritten), beside the rest of what a run folder means to every command.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import keras
import numpy as np


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
