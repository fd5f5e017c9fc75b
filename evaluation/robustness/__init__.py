"""``evaluate.py robustness``: steering models under image corruptions.

- :mod:`~evaluation.robustness.corruptions`: eleven corruptions in the manner of
  ImageNet-C, each at intensities 1-5.
- :mod:`~evaluation.robustness.benchmark`: the model under each, open and closed loop.
- :mod:`~evaluation.robustness.report`: its reports;
  :mod:`~evaluation.robustness.comparison`: mCE across models for
  ``evaluate.py compare --robustness``.
"""
