"""Recovery views in ``keras.ops``: the car displaced and turned, its view and label.

The first transform of :func:`training.augment.apply` (NVIDIA 2016, section 2): the car
displaced sideways by ``offset_m`` and turned by ``yaw_rad``, its centre view
synthesised with the camera model of :mod:`sim.camera` from the nearest of the
recorded centre, left and right frames (ground below the horizon, rotation only above
it, border pixels repeated: no black wedges; the bonnet kept from the centre frame), as
the closed-loop evaluator does. The label becomes the recorded steering plus the
pure-pursuit correction back to the recorded path over ``lookahead_m``, added in
curvature. Every function is batched and runs inside the compiled train step.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from sim.camera import (
    LEFT_CAMERA_X_M,
    MAX_STEER_DEG,
    RIGHT_CAMERA_X_M,
    WHEELBASE_M,
    Camera,
    bonnet_mask,
    first_ground_row,
)

#: Lateral position of the recorded cameras, index = camera (centre, left, right).
SOURCE_X_M = (0.0, LEFT_CAMERA_X_M, RIGHT_CAMERA_X_M)


def nearest_source(offset_m, yaw_rad, available) -> np.ndarray:
    """Recorded camera (0 centre, 1 left, 2 right) nearest the displaced centre camera.

    ``available`` (N, 3) bool says which cameras a row has (centre always).
    """
    cam_x, _ = camera_pose(offset_m, yaw_rad)
    dist = ops.abs(ops.convert_to_tensor(SOURCE_X_M, "float32")[None, :] - cam_x[:, None])
    dist = ops.where(ops.convert_to_tensor(np.asarray(available, bool)), dist, 1e9)
    return np.asarray(ops.convert_to_numpy(ops.argmin(dist, axis=1)), np.int32)


def camera_pose(offset_m, yaw_rad, camera: Camera = Camera()):  # noqa: B008 - frozen
    """(lateral, forward) displacement of the centre camera of a car whose rear axle
    is ``offset_m`` right of its recorded place and which is turned ``yaw_rad`` right
    (as :func:`sim.camera.camera_offset_for_car_pose`, batched)."""
    offset = ops.convert_to_tensor(offset_m, "float32")
    yaw = ops.convert_to_tensor(yaw_rad, "float32")
    b = camera.z_in_car_m
    return offset + b * ops.sin(yaw), b * ops.cos(yaw) - b


def recovery_label(labels, offset_m, yaw_rad, lookahead_m: float, gain: float = 1.0):
    """Recorded steering plus the pure-pursuit correction back to the recorded path.

    The car aims at the path point ``lookahead_m`` ahead: in its own frame that
    point lies at ``x = -offset cos(yaw) - ahead sin(yaw)``, so the added curvature is
    ``gain * 2 x / L^2`` (as :func:`sim.camera.recovery_steering`); the sum goes back
    to the -1..1 command through the kinematic bicycle and is clipped.
    """
    y = ops.convert_to_tensor(labels, "float32")
    offset = ops.convert_to_tensor(offset_m, "float32")
    yaw = ops.convert_to_tensor(yaw_rad, "float32")
    max_steer = math.radians(MAX_STEER_DEG)
    ahead = ops.sqrt(ops.maximum(lookahead_m**2 - offset**2, 1e-6))
    x_car = -offset * ops.cos(yaw) - ahead * ops.sin(yaw)
    curvature = ops.tan(y * max_steer) / WHEELBASE_M + gain * 2.0 * x_car / lookahead_m**2
    return ops.clip(ops.arctan(curvature * WHEELBASE_M) / max_steer, -1.0, 1.0)


def _ground_matrix(cam_x, cam_z, yaw, camera: Camera):
    """Batched :meth:`sim.camera.Camera.ground_homography`: (N, 3, 3)."""
    c, s = ops.cos(yaw), ops.sin(yaw)
    zero = ops.zeros_like(c)
    rows = [
        ops.stack([c, -s, -c * cam_x + s * cam_z], axis=-1),
        ops.stack([zero, zero, zero + camera.height_m], axis=-1),
        ops.stack([s, c, -s * cam_x - c * cam_z], axis=-1),
    ]
    kp = camera.intrinsics() @ camera._pitch_matrix()
    return ops.matmul(ops.convert_to_tensor(kp, "float32"), ops.stack(rows, axis=1))


def view_homographies(offset_m, yaw_rad, source_x_m, camera: Camera = Camera()):  # noqa: B008
    """(H_ground, H_sky), each (N, 3, 3): target pixel -> source pixel, batched
    :func:`sim.camera.view_homographies` for the car pose and source camera."""
    yaw = ops.convert_to_tensor(yaw_rad, "float32")
    lat, fwd = camera_pose(offset_m, yaw, camera)
    z = camera.z_in_car_m
    src_x = ops.convert_to_tensor(source_x_m, "float32")
    g_src = _ground_matrix(src_x, ops.zeros_like(yaw) + z, ops.zeros_like(yaw), camera)
    g_tgt = _ground_matrix(lat, fwd + z, yaw, camera)
    h_ground = ops.matmul(g_src, ops.inv(g_tgt))
    k = camera.intrinsics()
    rp = camera._pitch_matrix()
    left = ops.convert_to_tensor(k @ rp, "float32")
    right = ops.convert_to_tensor(rp.T @ np.linalg.inv(k), "float32")
    c, s = ops.cos(yaw), ops.sin(yaw)
    zero, one = ops.zeros_like(c), ops.ones_like(c)
    rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    ryaw_t = ops.stack([ops.stack(r, axis=-1) for r in rows], axis=1)
    return h_ground, ops.matmul(ops.matmul(left, ryaw_t), right)


def _bilinear(images, us, vs):
    """Sample (N, H, W, 3) images at continuous pixel coordinates (N, P), edges repeated."""
    n, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]
    x = ops.clip(us - 0.5, 0.0, w - 1.0)
    y = ops.clip(vs - 0.5, 0.0, h - 1.0)
    x0 = ops.minimum(ops.floor(x), w - 2.0)
    y0 = ops.minimum(ops.floor(y), h - 2.0)
    ax, ay = (x - x0)[..., None], (y - y0)[..., None]
    # One gather over the whole batch: flat pixel index = image * H * W + row * W + col.
    flat = ops.reshape(images, (-1, 3))
    base = ops.arange(n, dtype="int32")[:, None] * (h * w)
    i00 = base + ops.cast(y0 * w + x0, "int32")

    def at(offset):
        return ops.take(flat, i00 + offset, axis=0)

    top = at(0) * (1.0 - ax) + at(1) * ax
    bottom = at(w) * (1.0 - ax) + at(w + 1) * ax
    return top * (1.0 - ay) + bottom * ay


def recovery_view(source, centre, offset_m, yaw_rad, source_x_m, camera: Camera = Camera()):  # noqa: B008
    """Centre view of the displaced car synthesised from ``source`` frames (float32).

    ``source_x_m`` is the lateral position of the camera each source frame was taken
    by; ``centre`` gives the bonnet, which moves with the car. Matches
    :func:`sim.camera.synthesize_view` with ``fill=None`` and the bonnet kept (OpenCV
    interpolates with 5-bit weights: within a few grey levels).
    """
    h, w = camera.height, camera.width
    h_ground, h_sky = view_homographies(offset_m, yaw_rad, source_x_m, camera)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    grid = ops.convert_to_tensor(np.stack([cols.ravel(), rows.ravel(), np.ones(h * w, np.float32)]))
    sky = ops.convert_to_tensor(rows.ravel() < first_ground_row(camera))
    q = ops.where(sky[None, None, :], ops.matmul(h_sky, grid), ops.matmul(h_ground, grid))
    view = _bilinear(source, q[:, 0] / q[:, 2], q[:, 1] / q[:, 2])
    view = ops.reshape(view, (-1, h, w, 3))
    keep = ops.convert_to_tensor(bonnet_mask(camera)[None, :, :, None])
    return ops.where(keep, centre, view)
