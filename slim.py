"""Seed 004's conversion: ``python slim.py MODEL_OR_RUN [--data DIR...] [--tolerance 0.02]``.

Replaces the KxK convolutions of a trained model by depthwise + pointwise pairs, one
layer at a time, keeping each only while validation MSE stays within the tolerance.
See ``python slim.py --help`` and slimming/cli.py."""

import os
import sys

# Quiet TensorFlow's C++ start-up lines; the progress log is what the user reads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from slimming.cli import main  # noqa: E402  after the environment is set

if __name__ == "__main__":
    sys.exit(main())
