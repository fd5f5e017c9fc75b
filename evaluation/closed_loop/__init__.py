"""The closed loop on recorded logs, and what validates it.

- :mod:`~evaluation.closed_loop.loop`: the virtual car steered by a policy along a
  recording's reference path, and its interventions; what it sees
  (:mod:`~evaluation.closed_loop.views`: views synthesised from the recorded frames),
  how a drive scores (:mod:`~evaluation.closed_loop.scores`) and whether a disturbed
  car recovers (:mod:`~evaluation.closed_loop.recovery`).
  :mod:`~evaluation.closed_loop.run` drives whole recordings;
  :mod:`~evaluation.closed_loop.report` writes ``evaluate.py closed-loop``'s outputs.
- What it drives against (:mod:`~evaluation.closed_loop.reference`): the path
  (:mod:`~evaluation.closed_loop.kinematics`, turning measured by
  :mod:`~evaluation.closed_loop.odometry`), the car's response
  (:mod:`~evaluation.closed_loop.car_model`), the road edges
  (:mod:`~evaluation.closed_loop.road`), laps found in the frames
  (:mod:`~evaluation.closed_loop.laps`); ``evaluate.py path`` checks them
  (:mod:`~evaluation.closed_loop.path_report`).
- What steers (:mod:`~evaluation.closed_loop.policies`): a model, a drive server
  through the simulator client, or a baseline.
- For training: closed-loop checkpoint selection
  (:mod:`~evaluation.closed_loop.selection`) and DAgger rounds
  (:mod:`~evaluation.closed_loop.dagger`).
- Validation on the procedural demo road, where the truth can be rendered:
  ``python -m evaluation.closed_loop.demo_check``.
"""
