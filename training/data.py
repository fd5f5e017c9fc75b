"""From recordings to the decoded frames and index arrays that training draws from.

- Validation split by contiguous time blocks inside each recording (consecutive
  frames are near-duplicates, so a random split leaks), with a guard gap, or whole
  held-out recordings (``--val-recording``).
- Side cameras with a steering correction, training only.
- Steering-histogram balancing of training rows, drawn anew every epoch.
- Each image decoded once; the batches are made from them by
  :mod:`training.sequences` (augmentation on training batches only; validation is
  fixed: never augmented, never resampled, so its loss is comparable across epochs
  and runs).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from core.recordings import Recording, decode_images_skipping
from training.augment import AugmentConfig
from training.config import DEFAULT_VAL_FRACTION, SEED_BATCH_SIZE, TrainConfig

logger = logging.getLogger(__name__)

CENTRE, LEFT, RIGHT = 0, 1, 2
CAMERA_NAMES = ("centre", "left", "right")

#: Undecodable files named per recording in a run's data summary (all are counted).
UNREADABLE_EXAMPLES = 5
#: Histogram bins for balancing: 21 bins of 0.1 with one centred on 0 (straight).
BALANCE_EDGES = np.linspace(-1.05, 1.05, 22)


def split_blocks(n: int, val_fraction: float, *, blocks: int = 5, gap: int = 10):
    """Split ``range(n)`` into train and validation indices by contiguous blocks.

    The recording is cut into ``blocks`` equal chunks; the last ``val_fraction`` of
    each chunk is validation, so validation covers several parts of the track. ``gap``
    frames before and after each validation run are dropped from training: frames
    come every ~70 ms, and neighbours of a validation frame are near-copies of it.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1). Received: {val_fraction}")
    idx = np.arange(n)
    if val_fraction == 0.0:
        return idx, idx[:0]
    is_val = np.zeros(n, bool)
    near_val = np.zeros(n, bool)
    bounds = np.linspace(0, n, blocks + 1).round().astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        size = max(1, round((hi - lo) * val_fraction))
        start = hi - size
        is_val[start:hi] = True
        near_val[max(lo, start - gap) : min(n, hi + gap)] = True
    return idx[~near_val], idx[is_val]


def balance_indices(labels: np.ndarray, cap_factor: float, rng: np.random.Generator):
    """Rows kept for one epoch: each steering bin holds at most ``cap_factor`` x the mean.

    The mean is over non-empty bins. Keyboard recordings are dominated by exact
    zeros (78% in akbari_lake); capping them keeps the model from learning to go
    straight everywhere while every row still appears over several epochs.
    ``cap_factor <= 0`` disables balancing.
    """
    all_rows = np.arange(len(labels))
    if cap_factor <= 0:
        return all_rows
    bins = np.digitize(labels, BALANCE_EDGES[1:-1])
    counts = np.bincount(bins, minlength=len(BALANCE_EDGES) - 1)
    cap = max(1, math.ceil(cap_factor * len(labels) / np.count_nonzero(counts)))
    keep = []
    for b in np.flatnonzero(counts):
        members = all_rows[bins == b]
        keep.append(members if len(members) <= cap else rng.choice(members, cap, replace=False))
    return np.sort(np.concatenate(keep))


def histogram(labels: np.ndarray) -> list[int]:
    return np.histogram(labels, BALANCE_EDGES)[0].tolist()


def smooth_steering(rec: Recording, window_s: float) -> np.ndarray:
    """The recording's steering, each row's replaced by the mean over the rows whose
    frame times lie within ``window_s`` / 2 of its own (``window_s`` 0: as recorded).

    A keyboard recording steers in full-lock taps between exact zeros (61% of the
    training rows): the label of one frame is the tap or its absence, the intended
    turn is their mean over a fraction of a second. The window is centred (a label
    may use what the driver did next: it is the turn meant at that place). Only
    training rows get it: validation frames keep the steering as recorded. A
    recording whose frame times are missing or run backwards keeps its steering, with
    a warning."""
    steering = np.asarray(rec.steering, np.float64)
    if not window_s or len(steering) < 2:
        return steering
    t = np.asarray(rec.timestamps, np.float64)
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        logger.warning(
            "%s: frame times missing or not in order: steering labels not smoothed", rec.name
        )
        return steering
    lo = np.searchsorted(t, t - window_s / 2, side="left")
    hi = np.searchsorted(t, t + window_s / 2, side="right")
    csum = np.concatenate([[0.0], np.cumsum(steering)])
    return (csum[hi] - csum[lo]) / (hi - lo)


@dataclass
class DataSettings:
    """The data side of a run; its defaults are train.py's (training.config)."""

    val_fraction: float = DEFAULT_VAL_FRACTION
    side_cameras: bool = TrainConfig.side_cameras
    side_correction: float = TrainConfig.side_correction
    balance_cap: float = TrainConfig.balance_cap
    smooth_steering_s: float = TrainConfig.smooth_steering_s
    batch_size: int = SEED_BATCH_SIZE
    #: Passes over the balanced rows per epoch, each with its own draw of rows and
    #: cameras. An epoch of one pass is only 10 steps at batch 128 on a 3,000-row
    #: recording: too few steps between validations on a GPU, where an epoch takes 0.1 s.
    passes: int = TrainConfig.passes
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: With DAgger states attached: share of each epoch's samples drawn from them.
    dagger_share: float = 0.5


@dataclass
class TrainingData:
    """Decoded frames plus the index arrays that make batches from them."""

    frames: np.ndarray  # (M, 160, 320, 3) uint8, every image used, train and val
    train_row_frames: np.ndarray  # (R, 3) frame index per training row and camera, -1 = none
    train_row_labels: np.ndarray  # (R,) centre-camera steering of each training row
    val_frames: np.ndarray  # (V,) frame indices of validation frames (centre camera)
    val_labels: np.ndarray  # (V,)
    summary: dict
    #: (R,) "recording name:csv line" of each training row, to find rows by key.
    train_row_keys: np.ndarray | None = None
    #: States visited off the recorded path (DAgger): ``row`` (training row),
    #: ``offset_m``, ``yaw_rad``, each (S,); drawn as recovery views.
    states: dict[str, np.ndarray] | None = None

    def attach_states(self, keys, offset_m, yaw_rad) -> int:
        """Add visited states by row key (states of rows not trained on are dropped);
        return how many were kept."""
        index = {k: i for i, k in enumerate(self.train_row_keys)}
        rows = np.array([index.get(k, -1) for k in keys], np.int64)
        keep = rows >= 0
        self.states = {
            "row": rows[keep],
            "offset_m": np.asarray(offset_m, np.float32)[keep],
            "yaw_rad": np.asarray(yaw_rad, np.float32)[keep],
        }
        return int(keep.sum())


@dataclass
class _Gathered:
    """What :func:`prepare` collects before decoding: the image paths and, as frame
    indices into them, the training rows and validation frames."""

    paths: list = field(default_factory=list)
    owner: list[int] = field(default_factory=list)  # per frame: its recording's entry
    row_frames: list[list[int]] = field(default_factory=list)
    row_labels: list[float] = field(default_factory=list)
    row_keys: list[str] = field(default_factory=list)
    val_frames: list[int] = field(default_factory=list)
    val_labels: list[float] = field(default_factory=list)
    per_recording: list[dict] = field(default_factory=list)

    def add(self, path) -> int:
        """Index of a new frame to decode, owned by the recording being gathered."""
        self.paths.append(path)
        self.owner.append(len(self.per_recording))
        return len(self.paths) - 1

    def add_recording(self, rec: Recording, settings: DataSettings, *, held_out: bool) -> None:
        """A held-out recording's rows all validate; another's are split by time blocks."""
        if held_out:
            train_idx, val_idx = np.arange(0), np.arange(len(rec))
        else:
            train_idx, val_idx = split_blocks(len(rec), settings.val_fraction)
        sides = 0
        steering = smooth_steering(rec, settings.smooth_steering_s)
        for i in train_idx:
            row = rec.rows[i]
            cams = [self.add(row.centre), -1, -1]
            if settings.side_cameras:
                for cam, path in ((LEFT, row.left), (RIGHT, row.right)):
                    if path is not None:
                        cams[cam] = self.add(path)
                        sides += 1
            self.row_frames.append(cams)
            self.row_labels.append(float(steering[i]))
            self.row_keys.append(f"{rec.name}:{row.line}")
        for i in val_idx:
            self.val_frames.append(self.add(rec.rows[i].centre))
            self.val_labels.append(rec.rows[i].steering)
        self.per_recording.append(
            {
                "name": rec.name,
                "csv": str(rec.csv_path),
                "rows": len(rec),
                "skipped": rec.skip_counts(),
                "role": "validation" if held_out else "train+val split",
                "train_rows": int(len(train_idx)),
                "val_rows": int(len(val_idx)),
                "side_frames": sides,
            }
        )
        if rec.skipped:
            logger.warning("%s", rec.summary())


def prepare(
    train_recordings: list[Recording],
    val_recordings: list[Recording],
    settings: DataSettings,
    *,
    progress: bool = True,
) -> TrainingData:
    """Split, pick the images that are needed, decode them once, report what was done."""
    found = _Gathered()
    held_out = {id(r) for r in val_recordings}
    for rec in [*train_recordings, *val_recordings]:
        found.add_recording(rec, settings, held_out=id(rec) in held_out)
    if not found.row_labels:
        raise ValueError("no training rows: every recording was used for validation")
    if not found.val_labels:
        raise ValueError("no validation rows: give --val-recording or a --val-fraction above 0")
    paths = found.paths
    frames, unreadable = decode_images_skipping(paths, progress=progress, desc="decoding frames")
    row_frames_a = np.asarray(found.row_frames, np.int64).reshape(-1, 3)
    row_labels_a = np.asarray(found.row_labels, np.float32)
    val_frames_a = np.asarray(found.val_frames, np.int64)
    val_labels_a = np.asarray(found.val_labels, np.float32)
    row_keys_a = np.asarray(found.row_keys, dtype=str)
    if unreadable:
        row_keys_a = row_keys_a[~np.isin(row_frames_a[:, CENTRE], list(unreadable))]
        row_frames_a, row_labels_a, val_frames_a, val_labels_a = _skip_unreadable(
            unreadable,
            found.owner,
            found.per_recording,
            row_frames_a,
            row_labels_a,
            val_frames_a,
            val_labels_a,
        )
    decoded = len(paths) - len(unreadable)
    summary = _summary(found.per_recording, row_labels_a, val_labels_a, decoded, settings)
    return TrainingData(
        frames=frames,
        train_row_frames=row_frames_a,
        train_row_labels=row_labels_a,
        val_frames=val_frames_a,
        val_labels=val_labels_a,
        summary=summary,
        train_row_keys=row_keys_a,
    )


def _summary(per_recording, labels, val_labels, decoded: int, settings: DataSettings) -> dict:
    """The data summary of a run's config.json: recordings, counts, one balanced draw."""
    balanced = balance_indices(labels, settings.balance_cap, np.random.default_rng(0))
    return {
        "recordings": per_recording,
        "train_rows": len(labels),
        "val_frames": len(val_labels),
        "decoded_frames": decoded,
        "side_cameras": settings.side_cameras,
        "side_correction": settings.side_correction,
        "balance": {
            "cap_factor": settings.balance_cap,
            "bin_edges": [round(float(e), 2) for e in BALANCE_EDGES],
            "train_histogram_before": histogram(labels),
            "train_histogram_after_one_draw": histogram(labels[balanced]),
            "rows_per_epoch": int(len(balanced)),
            "exact_zero_share_before": float(np.mean(labels == 0)),
            "exact_zero_share_after": float(np.mean(labels[balanced] == 0)),
        },
        "val_histogram": histogram(val_labels),
    }


def _skip_unreadable(unreadable, owner, per_recording, rows, labels, val, val_labels):
    """Drop what an undecodable image was needed for, as a missing one would have been.

    A centre frame takes its training row (or validation frame) with it; a side frame
    only stops that camera being drawn. Each recording's summary counts them under
    ``skipped`` (``centre_image_unreadable``, ``side_image_unreadable``) and names the
    files, and a warning says the same.
    """
    bad = np.fromiter(unreadable, np.int64)
    centre_bad = np.isin(rows[:, CENTRE], bad)
    side_bad = np.isin(rows, bad) & (np.arange(3) != CENTRE)
    val_bad = np.isin(val, bad)
    dropped_train = Counter(owner[i] for i in rows[centre_bad, CENTRE])
    dropped_val = Counter(owner[i] for i in val[val_bad])
    sides = Counter(owner[i] for i in rows[side_bad])
    for k, entry in enumerate(per_recording):
        files = sorted(i for i in unreadable if owner[i] == k)
        if not files:
            continue
        centre = dropped_train[k] + dropped_val[k]
        for reason, n in (("centre_image_unreadable", centre), ("side_image_unreadable", sides[k])):
            if n:
                entry["skipped"][reason] = n
        entry["train_rows"] -= dropped_train[k]
        entry["val_rows"] -= dropped_val[k]
        entry["side_frames"] -= sides[k]
        entry["unreadable_images"] = [str(unreadable[i]) for i in files[:UNREADABLE_EXAMPLES]]
        logger.warning(
            "recording %r: %d images cannot be decoded and were skipped (%d training rows "
            "and %d validation frames dropped, %d side frames unused)%s: %s",
            entry["name"],
            len(files),
            dropped_train[k],
            dropped_val[k],
            sides[k],
            f", the first {UNREADABLE_EXAMPLES}" if len(files) > UNREADABLE_EXAMPLES else "",
            "; ".join(entry["unreadable_images"]),
        )
    rows = rows[~centre_bad]
    rows[side_bad[~centre_bad]] = -1
    labels = labels[~centre_bad]
    if not len(labels):
        raise ValueError("no training rows left: no training row's centre image can be decoded")
    if val_bad.all():
        raise ValueError("no validation frames left: none of their images can be decoded")
    return rows, labels, val[~val_bad], val_labels[~val_bad]
