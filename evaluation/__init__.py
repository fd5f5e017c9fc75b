"""Evaluation of steering models on recorded logs.

Subcommands of ``python evaluate.py`` (see :mod:`evaluation.cli`):

- ``replay``: open-loop, the model against the human on every recorded centre frame
  (:mod:`evaluation.replay`, metrics in :mod:`evaluation.metrics`);
- ``closed-loop``: NVIDIA's method, a virtual car steered by the model along the
  recorded path with synthesised views (:mod:`evaluation.closed_loop`);
- ``calibrate``: camera constants checked and fitted against the side cameras
  (:mod:`evaluation.calibrate`);
- ``compare``: architectures side by side (:mod:`evaluation.compare`), with the
  per-layer multiply-accumulate counter of :mod:`evaluation.macs`.

``python -m evaluation.demo_check`` validates the closed-loop method on the
procedural demo road, where the true view of any pose can be rendered.
"""
