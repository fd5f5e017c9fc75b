"""Puts the repository root on sys.path for the tests (pytest rootdir conftest)."""

import os

# Quiet TensorFlow's C++ start-up chatter in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
