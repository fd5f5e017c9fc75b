"""Reading the MNIST IDX files and the fixed 8,000 / 2,000 split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

#: ../shared/data/mnist from the repository root.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"
#: The split is a permutation with this seed: train on the first 8,000, test on the rest.
SPLIT_SEED = 0
N_TRAIN = 8_000


class DigitsDataError(ValueError):
    """Missing or malformed IDX files."""


def _read_idx(path: Path, magic: int, header: int) -> np.ndarray:
    if not path.is_file():
        raise DigitsDataError(f"MNIST file not found: {path}")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise DigitsDataError(f"{path.name}: expected IDX magic {magic}, got {got}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header)


def load(directory: str | Path = DEFAULT_DIR) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 digits as ``(N, 28, 28, 1)`` uint8 images and ``(N,)`` labels."""
    directory = Path(directory)
    images = _read_idx(directory / IMAGES, 2051, 16)
    labels = _read_idx(directory / LABELS, 2049, 8)
    if images.size != labels.size * 28 * 28:
        raise DigitsDataError(
            f"expected 28x28 images, one per label: {images.size} pixels for {labels.size} labels"
        )
    return images.reshape(-1, 28, 28, 1), labels


def split(
    images: np.ndarray, labels: np.ndarray, *, n_train: int = N_TRAIN, limit: int | None = None
):
    """The fixed split: a seeded permutation, first ``n_train`` to train, the rest to test.

    ``limit`` keeps only that many digits of the permutation (for quick tests), split
    in the same 80/20 proportion.
    """
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    if limit is not None:
        order = order[:limit]
        n_train = int(round(limit * N_TRAIN / 10_000))
    train, test = order[:n_train], order[n_train:]
    return (images[train], labels[train]), (images[test], labels[test])
