"""Models in, steering out: resolving MODEL arguments and running frames through them.

Inference goes through :mod:`serving` (the runtime the drive server runs), so
evaluation measures exactly what the server runs: a Keras model converted to
LiteRT in memory with a parity check against ``model.predict``, or the compiled
Keras call when conversion fails. On this 2-core CPU LiteRT with two threads and
batch 1 is the fastest path we measured for ``eff`` (batches of 8-32 were slower;
one thread was faster only while JPEG decoding through Pillow took ~0.5-0.9 ms of
the other core, before :mod:`core.frames`); see ``benchmarks/replay_speed.py``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import serving
from core.recordings import decode_images
from core.runs import MODEL_SUFFIXES, config_path, read_config
from core.runs import resolve_model as resolve_file

logger = logging.getLogger(__name__)

#: Frames decoded per chunk while the previous chunk runs through the model:
#: 256 frames are 39 MB of uint8, small next to the recording, large enough that
#: the decode pool stays busy.
CHUNK_FRAMES = 256


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: its file, the run's config and a short label."""

    path: Path
    label: str
    config: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None

    @property
    def arch(self) -> str | None:
        return self.config.get("arch")


def resolve_model(arg: str | os.PathLike, suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> ModelSpec:
    """A model file (``.h5``, ``.keras``, ``.tflite``, ``.onnx``, or only ``suffixes``) or
    a training run folder (``model.keras`` preferred): :func:`core.runs.resolve_model`
    and its run config (:func:`core.runs.read_config`)."""
    path = Path(arg)
    model_path = resolve_file(path, suffixes)
    config = read_config(model_path)
    run_dir = path if path.is_dir() else None
    label = path.name if run_dir is not None else model_path.stem
    if run_dir is None and model_path.stem == "model" and config_path(model_path).is_file():
        run_dir, label = model_path.parent, model_path.parent.name
    return ModelSpec(path=model_path, label=label, config=config, run_dir=run_dir)


def load_predictor(spec: ModelSpec, runtime: str = "auto", threads: int | None = 2):
    """The drive server's :class:`serving.Predictor` for ``spec`` (warmed up)."""
    start = time.perf_counter()
    predictor = serving.load(spec.path, runtime, threads=threads)
    logger.info(
        "loaded %s as %s in %.1f s (parity max |diff| %s)",
        spec.path,
        predictor.name,
        time.perf_counter() - start,
        predictor.info.get("parity_max_abs_diff", "n/a"),
    )
    return predictor


@dataclass
class Timing:
    frames: int = 0
    wall_s: float = 0.0
    infer_s: float = 0.0  # time inside the model only

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def infer_fps(self) -> float:
        return self.frames / self.infer_s if self.infer_s > 0 else float("nan")


def predict_paths(
    predictor,
    paths: Sequence[str | os.PathLike],
    *,
    progress: bool = True,
    desc: str = "replay",
    chunk: int = CHUNK_FRAMES,
    timing: Timing | None = None,
) -> np.ndarray:
    """Steering for image files: JPEG decoding of the next chunk overlaps inference.

    Decoding runs in :func:`core.recordings.decode_images` (a thread pool; PIL
    releases the GIL) while this thread runs the model on the current chunk.
    """
    paths = list(paths)
    out = np.empty(len(paths), dtype=np.float32)
    timing = timing if timing is not None else Timing()
    start = time.perf_counter()

    def decode(lo: int) -> np.ndarray:
        # One chunk at a time (a single-worker pool), each with its own 2 decode threads.
        return decode_images(paths[lo : lo + chunk], progress=False, workers=2)

    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        tqdm(total=len(paths), desc=desc, unit="frame", disable=not progress) as bar,
    ):
        pending: Future | None = pool.submit(decode, 0) if paths else None
        for lo in range(0, len(paths), chunk):
            frames = pending.result()
            nxt = lo + chunk
            pending = pool.submit(decode, nxt) if nxt < len(paths) else None
            t0 = time.perf_counter()
            out[lo : lo + len(frames)] = predictor.predict_batch(frames)
            timing.infer_s += time.perf_counter() - t0
            bar.update(len(frames))
    timing.frames += len(paths)
    timing.wall_s += time.perf_counter() - start
    return out
