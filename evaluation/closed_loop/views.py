"""What the virtual car of the closed loop sees (:mod:`evaluation.closed_loop.loop`).

A view source answers ``views(base, right, forward, yaw)``: the view of the car
displaced ``right`` m, ``forward`` m and turned ``yaw`` rad from recorded frame
``base``, and the mask of its pixels that had a source. :class:`SynthesizedViews`
synthesises it from the recorded frames (:func:`sim.camera.synthesize_view`);
:class:`TransformedViews` passes it through a transform (the robustness
benchmark's corruptions).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evaluation.closed_loop.reference import side_cameras
from sim.camera import Camera, bonnet_mask, camera_offset_for_car_pose, synthesize_view


class SynthesizedViews:
    """Views of a displaced car synthesised from the recorded frames.

    ``sides`` holds the left and right frames when the recording has them; each view
    is then synthesised from whichever camera is nearest the virtual camera
    sideways, and pixels that camera never saw get the nearest recorded pixel
    (``fill=None``; pass a grey level to paint them instead). With ``bonnet`` the
    car's bonnet is kept where the frames show it.
    """

    def __init__(
        self,
        frames: np.ndarray,
        camera: Camera,
        sides: dict[str, np.ndarray] | None = None,
        *,
        bonnet: bool = False,
        fill: int | None = None,
    ):
        self.frames = frames
        self.camera = camera
        self.cams: list[tuple[Camera, np.ndarray]] = [(camera, frames)]
        for name, cam in side_cameras(camera).items():
            if sides and name in sides:
                self.cams.append((cam, sides[name]))
        self.keep = bonnet_mask(camera) if bonnet else None
        self.fill = fill

    def __call__(self, base: int, right: float, forward: float, yaw: float):
        lat, fwd, yaw_c = camera_offset_for_car_pose(self.camera, float(right), float(yaw))
        target_x = self.camera.lateral_m + lat
        src_cam, src = min(self.cams, key=lambda s: abs(s[0].lateral_m - target_x))
        return synthesize_view(
            src[base],
            lat,
            yaw_c,
            self.camera,
            forward_m=fwd + float(forward),
            fill=self.fill,
            source=src_cam,
            keep=self.keep,
            keep_image=self.frames[base],
        )


ViewSource = Callable[[int, float, float, float], tuple[np.ndarray, np.ndarray]]


class TransformedViews:
    """A view source whose views pass through ``transform(view, key)`` before the
    policy sees them (the robustness benchmark's corruptions); ``keys[base]`` names
    the recorded frame a view was made from (its row in the recording), so a random
    corruption is the same whenever that frame is the source."""

    def __init__(self, views: ViewSource, transform, keys: np.ndarray):
        self.views, self.transform, self.keys = views, transform, np.asarray(keys)

    def __call__(self, base: int, right: float, forward: float, yaw: float):
        view, valid = self.views(base, right, forward, yaw)
        return self.transform(view, int(self.keys[base])), valid
