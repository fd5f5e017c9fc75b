"""Steering models: one registry of architectures, all taking the raw simulator frame.

Every model maps a raw ``(160, 320, 3)`` RGB frame with values 0..255 to one
steering value in -1..1 (wheel angle / 25 degrees, positive = right). Cropping,
resizing and normalisation are layers at the start of the graph, so training and
serving cannot diverge. This package imports only keras, numpy and h5py (Keras' own
HDF5 reader, which ``models.legacy`` uses to import Keras 1/2 ``.h5`` files).
"""

from models.io import describe, load_model, parameter_counts, scale_steering
from models.registry import ARCHITECTURES, INPUT_SHAPE, Architecture, build_model, register

# Importing the module registers the architectures.
from models import architectures  # noqa: E402, F401  isort: skip
from models import families  # noqa: E402, F401  isort: skip

__all__ = [
    "ARCHITECTURES",
    "INPUT_SHAPE",
    "Architecture",
    "build_model",
    "describe",
    "load_model",
    "parameter_counts",
    "register",
    "scale_steering",
]
