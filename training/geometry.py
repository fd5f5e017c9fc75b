"""Steering corrections derived from the simulator's camera and car geometry.

Both corrections use pure pursuit towards a point on the recorded path a fixed
look-ahead ``L`` ahead: curvature ``k = 2 sin(a) / L`` for a target at bearing
``a``, wheel angle ``atan(wheelbase * k)``, and csv steering = wheel angle / 25 deg.
Constants come from ``sim.camera`` (../shared/docs/camera-model.md): wheelbase
2.87 m, side cameras 0.806 m / 0.825 m off the centre line, fx = 138.56 px, max
steer 25 deg.
"""

from __future__ import annotations

import math

from sim.camera import LEFT_CAMERA_X_M, MAX_STEER_DEG, RIGHT_CAMERA_X_M, WHEELBASE_M, Camera

FOCAL_PX = Camera().fx  # 138.56 px: 60 deg vertical FOV over 160 rows
SIDE_CAMERA_OFFSET_M = (RIGHT_CAMERA_X_M - LEFT_CAMERA_X_M) / 2.0

#: Look-ahead of the corrective manoeuvre. 7.3 m is about 1.8 s at Udacity's 9 mph
#: reference speed, and is the distance at which the side-camera correction comes to
#: the value the community converged on by trial (0.2): both corrections below
#: follow from this one number instead of two unrelated constants.
LOOKAHEAD_M = 7.3

#: Steering added for the LEFT camera (subtracted for the right) to rejoin the path
#: (``--side-correction``). A camera ``SIDE_CAMERA_OFFSET_M`` to the left sees the
#: path that far to its right, at bearing ``offset / LOOKAHEAD_M``: pure pursuit gives
#: ``k = 2 offset / L^2``, steering 0.2008, used rounded (tests/training/test_augment.py).
SIDE_CAMERA_CORRECTION = 0.2


def _steering_for_curvature(curvature: float) -> float:
    return math.degrees(math.atan(WHEELBASE_M * curvature)) / MAX_STEER_DEG


def shift_correction_per_pixel(
    focal_px: float = FOCAL_PX, lookahead_m: float = LOOKAHEAD_M
) -> float:
    """Steering per pixel of horizontal image shift, treating the shift as a small yaw.

    Shifting the frame ``t`` pixels to the right is the view of a car yawed ``atan(t/fx)``
    to the left, which must steer right by pure pursuit ``k = 2 sin(yaw) / L``.
    With the defaults: 0.0131 per pixel (about 0.26 for a 20-pixel shift).
    """
    yaw = math.atan(1.0 / focal_px)
    return _steering_for_curvature(2.0 * math.sin(yaw) / lookahead_m)
