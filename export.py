"""Export a steering model to TFLite or ONNX: ``python export.py MODEL --to tflite|onnx``."""

import os
import sys

# Quiet TensorFlow's C++ start-up lines; the summary is what the user reads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from export.cli import main  # noqa: E402  after the environment is set

if __name__ == "__main__":
    sys.exit(main())
