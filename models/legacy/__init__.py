"""Importing Keras 1.x / 2.x ``.h5`` steering models (the Udacity course's) safely.

``python -m models.legacy OLD.h5 --out model.keras [--crop TOP BOTTOM] [--resize HxW]
[--interpolation bilinear] [--colour rgb|bgr|yuv|yuv-opencv31] [--lambda NAME=SPEC]``

Keras 3 cannot load most models trained in the course: their layer configs use Keras 1
names (``Convolution2D`` with ``subsample``, ``border_mode``, ``nb_filter``...), and
their first layer is usually a ``Lambda`` holding marshalled bytecode of the Python
that trained them, which safe mode rightly refuses to run. This package reads the file
with h5py (the ``model_config`` JSON and the ``model_weights`` arrays), rebuilds the
network from Keras 3 built-in layers and sets the weights; it never unpickles,
unmarshals or runs anything stored in the file.

The old ``drive.py`` often cropped, resized and converted colours before calling the
model. The options put those steps in front of the network as layers, so the imported
model takes the raw ``(160, 320, 3)`` RGB frame like every model of the project and
runs in ``drive.py``, ``evaluate.py`` and ``export.py`` unchanged.

One step a module, in the order they run:

- :mod:`models.legacy.h5file`: the file read into plain data
  (:class:`~models.legacy.spec.LegacyModel`, :mod:`models.legacy.spec`);
- :mod:`models.legacy.codeobject`, :mod:`models.legacy.affine`: a ``Lambda``'s
  marshalled code read without ``marshal``, and whether it is ``a * x + b``;
- :mod:`models.legacy.converters`: each layer config as a Keras 3 layer, its weights;
- :mod:`models.legacy.build`: the preprocessing layers and the network, checked;
- :mod:`models.legacy.cli`: the command (``python -m models.legacy``).
"""

from models.legacy.build import build, import_model
from models.legacy.h5file import import_command, legacy_hint, read_legacy
from models.legacy.spec import (
    COLOURS,
    INTERPOLATIONS,
    LayerSpec,
    LegacyImportError,
    LegacyModel,
    Preprocess,
)

__all__ = [
    "COLOURS",
    "INTERPOLATIONS",
    "LayerSpec",
    "LegacyImportError",
    "LegacyModel",
    "Preprocess",
    "build",
    "import_command",
    "import_model",
    "legacy_hint",
    "read_legacy",
]
