"""Running a steering model: one runtime for drive.py, evaluate.py and export.py.

- :func:`serving.load` (``serving.runtime.load``) -> :class:`serving.Predictor`: a model
  file or run folder behind ``predict(frame) -> float`` and ``predict_batch(frames)``
  (LiteRT, ONNX Runtime or a compiled Keras call);
- :data:`serving.RUNTIMES`: the ``--runtime`` choices of every command;
- :func:`serving.convert.to_tflite`: the one Keras -> LiteRT conversion.

Below ``drive``, ``export`` and ``evaluation``, above ``models`` (imported only when a
Keras file is loaded or converted), so serving an exported file never imports Keras.
"""

from core.runs import ModelLoadError
from serving.convert import to_tflite
from serving.runtime import RUNTIMES, Predictor, load, probe_frames

__all__ = ["RUNTIMES", "ModelLoadError", "Predictor", "load", "probe_frames", "to_tflite"]
