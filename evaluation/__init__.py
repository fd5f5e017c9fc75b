"""Evaluation of steering models on recorded logs, one subpackage per question.

Subcommands of ``python evaluate.py`` (options in :mod:`evaluation.cli`, bodies in
:mod:`evaluation.commands`):

- ``replay``: open-loop, the model against the human on every recorded centre frame
  (:mod:`evaluation.replay`, metrics in :mod:`evaluation.metrics`);
- ``closed-loop`` and ``path``: NVIDIA's method, a virtual car steered by the model
  along the recorded path with synthesised views, and the checks of that path
  (:mod:`evaluation.closed_loop`);
- ``robustness``: the model under image corruptions (:mod:`evaluation.robustness`);
- ``calibrate``: camera constants checked and fitted against the side cameras
  (:mod:`sim.calibrate`, report by :mod:`evaluation.calibration_report`);
- ``compare``: architectures side by side (:mod:`evaluation.compare`, report by
  :mod:`evaluation.compare_report`), with the per-layer multiply-accumulate counter
  of :mod:`models.macs`.

``python -m evaluation.closed_loop.demo_check`` validates the closed-loop method on
the procedural demo road, where the true view of any pose can be rendered;
``python -m evaluation.explain`` recomputes the slimming seeds' worked numbers.
"""
