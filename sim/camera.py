"""Camera model of the Udacity simulator car and NVIDIA-style view synthesis.

Constants come from the simulator's Unity assets (see shared/docs/camera-model.md):
a 320x160 image, 60 degrees *vertical* field of view, camera 1.28 m above the
ground, pitched 9.5 degrees down, 1.0 m ahead of the car root (2.6 m ahead of the
rear axle); side cameras at x = -0.806 m (left) and +0.825 m (right).

Conventions used project-wide (all functions here follow them):

* **Car frame** (ground plane): origin on the ground below the centre of the rear
  axle, ``x`` to the right, ``z`` forward, metres.  Points are ``(x, z)`` pairs.
* **Camera frame** (OpenCV): ``x`` right, ``y`` down, ``z`` along the optical axis.
* **Pixels**: continuous coordinates ``(u, v)``, ``u`` to the right, ``v`` down,
  with the pixel whose array index is ``[row, col]`` covering ``[col, col+1) x
  [row, row+1)``, so its centre is ``(col + 0.5, row + 0.5)``; ``cx = 160``,
  ``cy = 80`` is then the exact image centre.
* **Steering**: ``steering > 0`` turns **right**, as in the simulator's
  driving_log.csv; ``steering`` in -1..1 is the wheel angle / 25 degrees.
* **Yaw**: ``yaw_rad > 0`` means the camera (or car) is turned **right**, i.e.
  clockwise seen from above.  Lateral offsets ``> 0`` are to the **right**.
  (In the world frame of :mod:`sim.track` the heading is counter-clockwise
  from +x, so a right turn *decreases* the heading.)

Why one file of this length: the camera model, the steering geometry and the view
synthesis share the conventions above and the :class:`Camera`'s homographies; the
synthesis is those homographies applied to a frame. Their users take from every part
at once (``training/augment.py``, ``sim/render.py`` and the closed loop import the
camera, its geometry and the synthesis together), so two modules would be imported
as a pair everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WHEELBASE_M = 2.87  # hub z +1.27 / -1.6 in Prefabs/Car.prefab
MAX_STEER_DEG = 25.0  # csv steering = wheel angle / 25 deg
MPH_PER_MPS = 2.2369  # simulator speed unit: mph = m/s x 2.2369
ROOT_AHEAD_OF_REAR_AXLE_M = 1.6  # rear hub at z = -1.6 m from the car root
LEFT_CAMERA_X_M = -0.806
RIGHT_CAMERA_X_M = 0.825


@dataclass(frozen=True)
class Camera:
    """Pinhole camera mounted on the simulator car (defaults: centre camera).

    ``forward_m`` is measured from the car root, as in the Unity prefab; the car
    frame used by the projection methods has its origin below the rear axle, so
    the camera sits ``forward_m + 1.6`` m ahead of it (2.6 m by default).
    """

    width: int = 320
    height: int = 160
    vfov_deg: float = 60.0  # Unity's FOV is vertical: fy = (height/2) / tan(30 deg)
    height_m: float = 1.28  # 1.2 m above the root + about 0.08 m root above ground
    pitch_deg: float = 9.5  # downwards
    forward_m: float = 1.0  # ahead of the car root
    lateral_m: float = 0.0  # centre 0, left -0.806, right +0.825

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(
                f"image size must be > 0. Received: width={self.width}, height={self.height}"
            )
        if not 0.0 < self.vfov_deg < 180.0:
            raise ValueError(f"vfov_deg must be in (0, 180). Received: vfov_deg={self.vfov_deg}")
        if self.height_m <= 0.0:
            raise ValueError(f"height_m must be > 0. Received: height_m={self.height_m}")
        if not 0.0 <= self.pitch_deg < 60.0:
            raise ValueError(
                f"pitch_deg (downwards) must be in [0, 60). Received: pitch_deg={self.pitch_deg}"
            )

    # ----------------------------------------------------------------- intrinsics
    @property
    def fy(self) -> float:
        return (self.height / 2.0) / math.tan(math.radians(self.vfov_deg) / 2.0)

    @property
    def fx(self) -> float:
        return self.fy  # square pixels

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return self.height / 2.0

    @property
    def pitch_rad(self) -> float:
        return math.radians(self.pitch_deg)

    @property
    def z_in_car_m(self) -> float:
        """Distance of the camera ahead of the rear axle (2.6 m by default)."""
        return self.forward_m + ROOT_AHEAD_OF_REAR_AXLE_M

    def intrinsics(self) -> np.ndarray:
        """3x3 matrix K (pixel-centre convention of the module docstring)."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def horizon_row(self) -> float:
        """Continuous row v of the horizon: cy - fy tan(pitch) = 56.8 for the defaults."""
        return self.cy - self.fy * math.tan(self.pitch_rad)

    def _pitch_matrix(self) -> np.ndarray:
        # Level camera coords (x right, y down, z forward) -> pitched camera coords.
        # A point straight ahead at infinity lands at y_c/z_c = -tan(pitch), i.e. above
        # the image centre, as it must for a camera looking down.
        c, s = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])

    # ------------------------------------------------------------- homographies
    def ground_homography(
        self, lateral_m: float = 0.0, forward_m: float = 0.0, yaw_rad: float = 0.0
    ) -> np.ndarray:
        """3x3 G with ``[u, v, 1] ~ G @ [x, z, 1]`` for car-frame ground points.

        The camera may be displaced from its mount by ``lateral_m`` (right > 0) and
        ``forward_m`` and turned by ``yaw_rad`` (right > 0) about its own vertical
        axis; all three are expressed in the car frame.
        """
        px = self.lateral_m + lateral_m
        pz = self.z_in_car_m + forward_m
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        # Ground point -> level camera coords: rotate the offset (x-px, z-pz) into the
        # yawed camera; y (down) is the camera height for every ground point.
        m = np.array(
            [
                [c, -s, -c * px + s * pz],
                [0.0, 0.0, self.height_m],
                [s, c, -s * px - c * pz],
            ]
        )
        return self.intrinsics() @ self._pitch_matrix() @ m

    def rotation_homography(self, yaw_rad: float) -> np.ndarray:
        """3x3 H mapping pixels of a camera turned by ``yaw_rad`` to pixels of the
        unturned one, for points at infinity (the sky / far background)."""
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        # Level coords of a world direction seen by a camera yawed right by psi.
        ryaw = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
        k = self.intrinsics()
        rp = self._pitch_matrix()
        return k @ rp @ ryaw.T @ rp.T @ np.linalg.inv(k)

    # ------------------------------------------------------------ point mapping
    def ground_to_pixel(self, points: np.ndarray) -> np.ndarray:
        """Project car-frame ground points ``(..., 2)`` = (x, z) to pixels (u, v).

        Points behind the camera (or on its horizon) give NaN.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape[-1] != 2:
            raise ValueError(f"points must have shape (..., 2). Received: shape={pts.shape}")
        hom = np.stack([pts[..., 0], pts[..., 1], np.ones(pts.shape[:-1])], axis=-1)
        q = hom @ self.ground_homography().T
        w = q[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = q[..., :2] / w[..., None]
        uv[w <= 1e-9] = np.nan
        return uv

    def pixel_to_ground(self, pixels: np.ndarray) -> np.ndarray:
        """Back-project pixels ``(..., 2)`` = (u, v) to car-frame ground (x, z).

        Pixels on or above the horizon never meet the (flat) ground and give NaN.
        """
        uv = np.asarray(pixels, dtype=np.float64)
        if uv.shape[-1] != 2:
            raise ValueError(f"pixels must have shape (..., 2). Received: shape={uv.shape}")
        hom = np.stack([uv[..., 0], uv[..., 1], np.ones(uv.shape[:-1])], axis=-1)
        q = hom @ np.linalg.inv(self.ground_homography()).T
        w = q[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xz = q[..., :2] / w[..., None]
        xz[~(uv[..., 1] > self.horizon_row() + 1e-6)] = np.nan
        return xz


# ------------------------------------------------------------------ steering
def steering_to_curvature(steering: float | np.ndarray) -> float | np.ndarray:
    """Path curvature (1/m) of the kinematic bicycle; > 0 means turning right.

    ``steering`` is the simulator's -1..1 command (wheel angle / 25 deg), > 0 = right.
    """
    return np.tan(np.radians(np.asarray(steering) * MAX_STEER_DEG)) / WHEELBASE_M


def curvature_to_steering(curvature: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`steering_to_curvature`, clipped to -1..1 (> 0 = right)."""
    wheel_deg = np.degrees(np.arctan(np.asarray(curvature) * WHEELBASE_M))
    return np.clip(wheel_deg / MAX_STEER_DEG, -1.0, 1.0)


def steering_to_yaw_rate(steering: float | np.ndarray, speed_mps: float) -> float | np.ndarray:
    """Yaw rate in rad/s, > 0 = clockwise seen from above (turning right)."""
    return speed_mps * steering_to_curvature(steering)


def recovery_steering(
    lateral_m: float | np.ndarray,
    yaw_rad: float | np.ndarray = 0.0,
    lookahead_m: float = 10.0,
) -> float | np.ndarray:
    """Pure-pursuit steering that brings a displaced car back to a straight path.

    The car's rear axle is ``lateral_m`` to the right of the path (> 0 = right) and
    its heading is turned ``yaw_rad`` to the right of the path's.  It aims at the
    path point ``lookahead_m`` away; the answer is the -1..1 command (> 0 = right),
    so a car right of the path gets a negative (left) command.  NVIDIA adjust the
    label of shifted views so the car is back "in two seconds": at 10 m/s that is
    a lookahead of about 10-20 m.
    """
    lat = np.asarray(lateral_m, dtype=np.float64)
    yaw = np.asarray(yaw_rad, dtype=np.float64)
    ahead = np.sqrt(np.maximum(lookahead_m**2 - lat**2, 1e-6))
    # Target (-lat, ahead) in path coords, expressed in the yawed car frame.
    x_car = -lat * np.cos(yaw) - ahead * np.sin(yaw)
    curvature = 2.0 * x_car / lookahead_m**2
    return curvature_to_steering(curvature)


def camera_offset_for_car_pose(
    camera: Camera, car_lateral_m: float, car_yaw_rad: float
) -> tuple[float, float, float]:
    """Camera displacement ``(lateral_m, forward_m, yaw_rad)`` for a displaced car.

    The car's rear axle is moved ``car_lateral_m`` to the right and the car turned
    ``car_yaw_rad`` to the right about the rear axle.  Because the camera is 2.6 m
    ahead of the axle, a yaw also moves it sideways by 2.6 sin(yaw).  The result is
    what :func:`synthesize_view` expects (car-frame displacement of the camera).
    """
    a, b = camera.lateral_m, camera.z_in_car_m
    c, s = math.cos(car_yaw_rad), math.sin(car_yaw_rad)
    new_x = car_lateral_m + a * c + b * s
    new_z = -a * s + b * c
    return new_x - a, new_z - b, car_yaw_rad


# ------------------------------------------------------------ view synthesis
def first_ground_row(camera: Camera) -> int:
    """Index of the first image row whose pixel centre lies below the horizon
    (57 for the defaults): rows from here on are treated as flat ground."""
    return int(np.clip(math.floor(camera.horizon_row() + 0.5), 0, camera.height))


def view_homographies(
    lateral_m: float,
    yaw_rad: float,
    camera: Camera = Camera(),  # noqa: B008 - frozen, immutable default
    forward_m: float = 0.0,
    source: Camera | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(H_ground, H_sky): target pixel -> source pixel for the synthesised camera.

    The target is ``camera`` displaced by ``lateral_m``/``forward_m`` and turned by
    ``yaw_rad``; the source is the recorded camera ``source`` (default: ``camera``
    itself, undisplaced; a side camera of the same car gives a real view 0.8 m to
    the side). H_ground = G_src @ inv(G_tgt) for flat ground below the horizon;
    H_sky is the rotation-only homography for points at infinity above it (the
    side cameras are parallel to the centre one, so only the yaw matters there).
    """
    src = camera if source is None else source
    g_src = src.ground_homography()
    g_tgt = camera.ground_homography(lateral_m, forward_m, yaw_rad)
    return g_src @ np.linalg.inv(g_tgt), camera.rotation_homography(yaw_rad)


_LANES = np.uint32(0x00FF00FF)  # two 8-bit channels in 16-bit lanes (SWAR)
_HIGH_LANES = np.uint32(0xFF00FF00)
_ROUND = np.uint32(0x00800080)


def pack_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint32 (H*W,) with R, G, B in bytes 0, 1, 2."""
    h, w = image.shape[:2]
    rgba = np.zeros((h * w, 4), dtype=np.uint8)
    rgba[:, :3] = image.reshape(h * w, 3)
    return rgba.view(np.uint32).ravel()


def sample_packed(
    packed: np.ndarray, width: int, height: int, us: np.ndarray, vs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of a :func:`pack_rgb` image at continuous pixel coords.

    A sample is valid when its whole 2x2 footprint lies inside the image (pixel
    centres 0.5 .. W-0.5); invalid ones are clamped to the border.  The blend runs
    in 8-bit fixed point on packed pixels (two channels per 16-bit lane): 4 gathers
    instead of 12 and about 3x faster than float lerps per channel; rounding error
    <= 1 grey level.
    """
    w, h = width, height
    x = us.astype(np.float32).ravel() - np.float32(0.5)
    y = vs.astype(np.float32).ravel() - np.float32(0.5)
    eps = 1e-3  # round-off tolerance so an identity warp keeps the border pixels
    valid = (x >= -eps) & (x <= w - 1 + eps) & (y >= -eps) & (y <= h - 1 + eps)
    np.clip(x, 0.0, w - 1.0, out=x)
    np.clip(y, 0.0, h - 1.0, out=y)
    x0 = np.minimum(x.astype(np.int32), w - 2)
    y0 = np.minimum(y.astype(np.int32), h - 2)
    ax = ((x - x0) * 256.0 + 0.5).astype(np.uint32)
    ay = ((y - y0) * 256.0 + 0.5).astype(np.uint32)
    bx = 256 - ax
    by = 256 - ay
    w00 = (bx * by + 128) >> 8
    w01 = (ax * by + 128) >> 8
    w10 = (bx * ay + 128) >> 8
    w11 = 256 - w00 - w01 - w10  # weights sum to exactly 256: lanes cannot overflow
    i00 = y0 * w + x0
    acc_rb = np.zeros(x.size, dtype=np.uint32)
    acc_g = np.zeros(x.size, dtype=np.uint32)
    for idx, wt in ((i00, w00), (i00 + 1, w01), (i00 + w, w10), (i00 + w + 1, w11)):
        p = np.take(packed, idx)
        acc_rb += (p & _LANES) * wt
        acc_g += ((p >> 8) & _LANES) * wt
    out = (((acc_rb + _ROUND) >> 8) & _LANES) | ((acc_g + _ROUND) & _HIGH_LANES)
    return out.view(np.uint8).reshape(-1, 4)[:, :3], valid


#: Pixel coordinates of this module (centre of pixel [r, c] at (c + 0.5, r + 0.5))
#: from OpenCV's (centre at (c, r)) and back.
_FROM_CV = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_TO_CV = np.linalg.inv(_FROM_CV)


def _warp_rows(
    image: np.ndarray, h: np.ndarray, row0: int, rows: int, border: int, value=0
) -> np.ndarray:
    """Rows ``row0 .. row0+rows`` of the view whose pixel p samples ``image`` at h(p)
    (bilinear, OpenCV); ``border`` is an OpenCV border mode for samples outside."""
    shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, float(row0)], [0.0, 0.0, 1.0]])
    m = _TO_CV @ h @ _FROM_CV @ shift
    return cv2.warpPerspective(
        image,
        m,
        (image.shape[1], rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
        borderValue=value,
    )


def synthesize_view(
    image: np.ndarray,
    lateral_m: float,
    yaw_rad: float,
    camera: Camera = Camera(),  # noqa: B008 - frozen, immutable default
    *,
    forward_m: float = 0.0,
    fill: int | None = 0,
    source: Camera | None = None,
    keep: np.ndarray | None = None,
    keep_image: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """View of a displaced/turned camera synthesised from a recorded frame (NVIDIA).

    ``lateral_m`` > 0 moves the camera to the **right**, ``yaw_rad`` > 0 turns it to
    the **right** (clockwise seen from above) about its own vertical axis;
    ``forward_m`` > 0 moves it forward.  Use :func:`camera_offset_for_car_pose` to
    turn a car displacement (about the rear axle) into these numbers.  ``image`` was
    taken by ``source`` (default: ``camera`` at its own mount; pass a side camera's
    :class:`Camera` to synthesise the centre view from a side frame).

    Pixels below the horizon are treated as flat ground, those above as infinitely
    far (rotation only), both sampled bilinearly (OpenCV).  Returns ``(view,
    valid)``: the uint8 (H, W, 3) view and a bool (H, W) mask that is False where
    the source fell outside the recorded image; those pixels get ``fill``, or with
    ``fill=None`` the nearest recorded pixel (border replication: nothing black).
    ``keep`` (bool (H, W)) marks pixels fixed to the car, such as the bonnet: they
    are copied unwarped from ``keep_image`` (default ``image``) and count as valid.
    """
    img = np.asarray(image)
    if img.shape != (camera.height, camera.width, 3):
        raise ValueError(
            f"image must be RGB with shape ({camera.height}, {camera.width}, 3) to match the "
            "camera. "
            f"Received: shape={img.shape}"
        )
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8. Received: dtype={img.dtype}")
    split = first_ground_row(camera)
    h_ground, h_sky = view_homographies(lateral_m, yaw_rad, camera, forward_m, source)
    border = cv2.BORDER_REPLICATE if fill is None else cv2.BORDER_CONSTANT
    value = (0, 0, 0) if fill is None else (fill, fill, fill)
    ones = np.full(img.shape[:2], 255, np.uint8)
    parts, masks = [], []
    for h, row0, rows in ((h_sky, 0, split), (h_ground, split, camera.height - split)):
        if rows <= 0:
            continue
        parts.append(_warp_rows(img, h, row0, rows, border, value))
        masks.append(_warp_rows(ones, h, row0, rows, cv2.BORDER_CONSTANT, 0))
    view = np.concatenate(parts, axis=0)
    # A sample is valid when its whole 2x2 footprint lies inside the recorded image.
    valid = np.concatenate(masks, axis=0) == 255
    if fill is not None:
        view[~valid] = fill
    if keep is not None:
        fixed = img if keep_image is None else keep_image
        view[keep] = fixed[keep]
        valid |= keep
    return view, valid


def bonnet_mask(camera: Camera = Camera()) -> np.ndarray:  # noqa: B008 - frozen default
    """Pixels of the simulator car's bonnet in its centre camera (bool (H, W)).

    The bonnet fills the bottom of every real frame, its top edge an arc from row
    135 at the centre column to about row 152 at the image sides (read off real
    recordings of the lake, jungle and mountain tracks); it moves with the camera,
    so a synthesised view shows it where the recorded frame does.
    """
    u = (np.arange(camera.width) + 0.5 - camera.cx) / camera.cx
    top = 135.0 + 17.0 * u**2
    v = np.arange(camera.height)[:, None] + 0.5
    return v >= top[None, :]
