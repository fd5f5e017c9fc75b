"""The frames the conversion uses: training frames (capped) and the validation recording.

Recordings are read with the project's reader (:func:`core.recordings.read_recordings`,
whose :class:`~core.recordings.RecordingError` names a folder without
``driving_log.csv``). Defaults come from the run's ``config.json``: ``"data"`` for the
training recordings and ``"val_recordings"`` for validation; a run without held-out
recordings validates on the time blocks ``train.py`` held out
(:func:`training.data.split_blocks` with the run's ``val_fraction``). Only centre
frames are used, spread evenly over the rows so a cap still covers every recording.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.recordings import RecordingError, decode_images, read_recordings
from training.config import DEFAULT_VAL_FRACTION
from training.data import split_blocks

logger = logging.getLogger(__name__)

#: Frames used by default (``slim.py --train-frames``, ``--fit-frames``,
#: ``--probe-frames``): training frames spread over the rows, those whose activations
#: fit and fine-tune each pair, and the other training frames its errors are measured on.
TRAIN_FRAMES = 2000
FIT_FRAMES = 256
PROBE_FRAMES = 64


@dataclass
class SlimData:
    """Frames for the conversion, decoded once (uint8 ``(N, 160, 320, 3)``)."""

    train_frames: np.ndarray
    val_frames: np.ndarray
    val_labels: np.ndarray
    fit_idx: np.ndarray  # train frames whose activations fit and fine-tune the pair
    probe_idx: np.ndarray  # disjoint train frames on which layer errors are measured
    summary: dict = field(default_factory=dict)


def _existing(paths: list[str], what: str, config_file: Path | None) -> list[str]:
    """Config paths as given, or resolved against the working directory's repository."""
    out = []
    for raw in paths:
        p = Path(raw)
        if not p.exists() and not p.is_absolute():
            p = Path.cwd() / p
        if not p.exists():
            where = f" (from {config_file})" if config_file else ""
            raise RecordingError(
                f"{what} recording {raw}{where} does not exist on this machine: pass "
                f"{'--data' if what == 'training' else '--val'} DIR explicitly"
            )
        out.append(str(p))
    return out


def recordings_from_config(
    config: dict, config_file: Path | None
) -> tuple[list[str], list[str], float]:
    """(training recordings, validation recordings, val_fraction) named by a run config."""
    settings = config.get("settings", {}) if isinstance(config.get("settings"), dict) else {}
    data = config.get("data") or settings.get("data") or []
    val = config.get("val_recordings") or settings.get("val_recordings") or []
    data = [data] if isinstance(data, str) else list(data)
    val = [val] if isinstance(val, str) else list(val)
    fraction = settings.get("val_fraction")
    if fraction is None:
        fraction = 0.0 if val else DEFAULT_VAL_FRACTION  # train.py's default
    return (
        _existing(data, "training", config_file),
        _existing(val, "validation", config_file),
        float(fraction),
    )


def _spread(n: int, k: int | None) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)`` (all of them if ``k`` is None or >= n)."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def load(
    train_paths: list[str],
    val_paths: list[str],
    *,
    val_fraction: float = 0.0,
    train_frames: int = TRAIN_FRAMES,
    val_frames: int | None = None,
    fit_frames: int = FIT_FRAMES,
    probe_frames: int = PROBE_FRAMES,
    seed: int = 0,
) -> SlimData:
    """Read, pick and decode the frames; the fit and probe sets are disjoint training frames."""
    if not train_paths:
        raise RecordingError(
            "no training recordings: pass --data DIR [DIR ...] (the run config names none)"
        )
    train_recs = read_recordings(train_paths)
    val_recs = read_recordings(val_paths) if val_paths else []
    train_rows: list = []
    val_rows: list = []
    for rec in train_recs:
        if val_recs:
            tr, va = np.arange(len(rec)), np.arange(0)
        else:
            tr, va = split_blocks(len(rec), val_fraction)
        train_rows += [rec.rows[i] for i in tr]
        val_rows += [rec.rows[i] for i in va]
    for rec in val_recs:
        val_rows += list(rec.rows)
    if not val_rows:
        raise RecordingError(
            "no validation frames: pass --val DIR (a recording the model never trained on) "
            "or use a run whose config holds out a val_fraction"
        )
    train_pick = [train_rows[i] for i in _spread(len(train_rows), train_frames)]
    val_pick = [val_rows[i] for i in _spread(len(val_rows), val_frames)]
    if len(train_pick) < 2:
        raise RecordingError(f"need at least 2 training frames, found {len(train_pick)}")
    start = time.perf_counter()
    train = decode_images([r.centre for r in train_pick], progress=False)
    val = decode_images([r.centre for r in val_pick], progress=False)
    logger.info(
        "decoded %d training and %d validation frames in %.1f s",
        len(train),
        len(val),
        time.perf_counter() - start,
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    n_probe = max(1, min(probe_frames, len(train) // 4))
    n_fit = max(1, min(fit_frames, len(train) - n_probe))
    summary = {
        "train_recordings": [str(r.csv_path.parent) for r in train_recs],
        "val_recordings": [str(r.csv_path.parent) for r in val_recs],
        "validation": "held-out recordings"
        if val_recs
        else f"time blocks held out of the training recordings (val_fraction {val_fraction:g})",
        "train_rows_available": len(train_rows),
        "train_frames": len(train),
        "val_rows_available": len(val_rows),
        "val_frames": len(val),
        "fit_frames": n_fit,
        "probe_frames": n_probe,
        "camera": "centre",
    }
    return SlimData(
        train_frames=train,
        val_frames=val,
        val_labels=np.array([r.steering for r in val_pick], np.float32),
        fit_idx=np.sort(order[:n_fit]),
        probe_idx=np.sort(order[n_fit : n_fit + n_probe]),
        summary=summary,
    )
