"""Recovery views in keras.ops against the project's OpenCV camera model (sim.camera)."""

from pathlib import Path

import numpy as np
import pytest

from core.recordings import decode_images, read_recordings
from sim.camera import (
    Camera,
    bonnet_mask,
    camera_offset_for_car_pose,
    recovery_steering,
    synthesize_view,
)
from training.recovery_view import (
    SOURCE_X_M,
    camera_pose,
    nearest_source,
    recovery_label,
    recovery_view,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "udacity"
POSES = [(0.0, 0.0), (0.5, 0.05), (-1.2, -0.1), (1.5, 0.14), (-0.9, 0.12), (0.3, -0.14)]


@pytest.fixture(scope="module")
def cameras():
    """Centre, left and right frames of one real lake frame (a turn with kerbs)."""
    rec = read_recordings([SHARED / "akbari_lake"])[0]
    row = rec.rows[500]
    return decode_images([row.centre, row.left, row.right], progress=False)


def test_camera_pose_is_the_camera_models():
    for off, yaw in POSES:
        lat, fwd, _ = camera_offset_for_car_pose(Camera(), off, yaw)
        got = [float(np.asarray(v)) for v in camera_pose(np.float32(off), np.float32(yaw))]
        np.testing.assert_allclose(got, [lat, fwd], atol=1e-5)


@pytest.mark.parametrize("off,yaw", POSES)
def test_recovery_view_matches_opencv_synthesis(cameras, off, yaw):
    """The batched ops warp reproduces sim.camera.synthesize_view (nearest camera, edge
    pixels repeated, bonnet kept) to within OpenCV's 5-bit interpolation weights."""
    cam = Camera()
    src = int(nearest_source(np.float32([off]), np.float32([yaw]), np.ones((1, 3), bool))[0])
    lat, fwd, yaw_c = camera_offset_for_car_pose(cam, off, yaw)
    expected, _ = synthesize_view(
        cameras[src],
        lat,
        yaw_c,
        cam,
        forward_m=fwd,
        fill=None,
        source=Camera(lateral_m=SOURCE_X_M[src]),
        keep=bonnet_mask(cam),
        keep_image=cameras[0],
    )
    got = recovery_view(
        cameras[src][None].astype(np.float32),
        cameras[0][None].astype(np.float32),
        np.float32([off]),
        np.float32([yaw]),
        np.float32([SOURCE_X_M[src]]),
    )
    diff = np.abs(np.asarray(got)[0] - expected.astype(np.float32))
    assert diff.max() <= 1.0  # OpenCV rounds to whole grey levels
    assert diff.mean() < 0.3
    if (off, yaw) != (0.0, 0.0):
        assert np.abs(expected.astype(np.float32) - cameras[src]).mean() > 5  # it moved


def test_nearest_source_picks_the_camera_beside_the_displaced_one():
    offsets = np.float32([0.0, -1.0, 1.0, -1.0, 0.2, 0.0])
    yaws = np.float32([0.0, 0.0, 0.0, 0.0, 0.0, 0.2])  # 0.2 rad: camera 0.52 m right
    available = np.ones((6, 3), bool)
    available[3, 1:] = False  # a centre-only row
    np.testing.assert_array_equal(nearest_source(offsets, yaws, available), [0, 1, 2, 0, 0, 2])


def test_recovery_label_is_pure_pursuit_added_in_curvature():
    for off, yaw in POSES:
        # From a straight recorded path the label is the camera model's pure pursuit.
        got = float(np.asarray(recovery_label(np.float32([0.0]), [off], [yaw], 10.0))[0])
        assert got == pytest.approx(float(recovery_steering(off, yaw, 10.0)), abs=1e-5)
    # A car right of the path (or turned right) steers left, and the other way round.
    assert float(np.asarray(recovery_label([0.1], [1.0], [0.0], 10.0))[0]) < 0.1
    assert float(np.asarray(recovery_label([0.1], [0.0], [0.1], 10.0))[0]) < 0.1
    assert float(np.asarray(recovery_label([0.1], [-1.0], [0.0], 10.0))[0]) > 0.1
    # In curvature: the correction of a 1 m offset over 10 m on a 0.2 left turn.
    kappa = np.tan(np.radians(-0.2 * 25)) / 2.87 + 2 * (-1.0) / 10**2
    expected = np.degrees(np.arctan(kappa * 2.87)) / 25
    assert float(np.asarray(recovery_label([-0.2], [1.0], [0.0], 10.0))[0]) == pytest.approx(
        expected, abs=1e-5
    )
    # Gain 0 leaves the label; large corrections are clipped to the wheel's range.
    assert float(np.asarray(recovery_label([0.3], [1.5], [0.1], 10.0, 0.0))[0]) == pytest.approx(
        0.3, abs=1e-6
    )
    assert float(np.asarray(recovery_label([-0.9], [1.5], [0.14], 2.0))[0]) == -1.0
