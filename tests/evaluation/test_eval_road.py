"""Road edges from the recording (evaluation.closed_loop.road): the profile rule by hand."""

import numpy as np
import pytest

from evaluation.closed_loop.road import BirdsEye, profile_edges, road_mask


def _profile(pattern: str):
    """'.' road, '#' not road, '?' not seen; the middle character is the path."""
    road = np.array([c == "." for c in pattern])[None]
    seen = np.array([c != "?" for c in pattern])[None]
    return road, seen


def test_edges_of_a_plain_road():
    road, seen = _profile("####.........####")  # 17 samples, middle index 8
    left, right = profile_edges(road, seen, 0.5, bridge_m=0.4)
    # Road samples 4..12 around the middle: edges half a step outside them.
    assert left[0] == pytest.approx((4 - 8) * 0.5 - 0.25)
    assert right[0] == pytest.approx((12 - 8) * 0.5 + 0.25)


def test_a_painted_line_is_bridged_and_a_wide_verge_is_not():
    road, seen = _profile("##..#....#.....##")
    left, right = profile_edges(road, seen, 0.5, bridge_m=0.5)  # one sample bridged
    assert left[0] == pytest.approx((2 - 8) * 0.5 - 0.25)
    assert right[0] == pytest.approx((14 - 8) * 0.5 + 0.25)
    left, right = profile_edges(road, seen, 0.5, bridge_m=0.0)  # nothing bridged
    assert left[0] == pytest.approx((5 - 8) * 0.5 - 0.25)
    assert right[0] == pytest.approx(0.25)
    # A run of non-road that ends the profile is a seen edge only when it is wider
    # than a line: a single sample at the very end leaves the edge unknown.
    road, seen = _profile("#...#....#.....##")
    left, _ = profile_edges(road, seen, 0.5, bridge_m=0.5)
    assert np.isnan(left[0])


def test_an_edge_out_of_view_is_unknown():
    road, seen = _profile("??.....#.....????")
    left, right = profile_edges(road, seen, 0.5)
    assert np.isnan(left[0]) and np.isnan(right[0])
    # The path on a line: the nearest road sample within 0.6 m starts the run.
    road, seen = _profile("##......#....####")
    left, right = profile_edges(road, seen, 0.3, bridge_m=0.3)
    assert left[0] == pytest.approx((2 - 8) * 0.3 - 0.15)
    assert right[0] == pytest.approx((12 - 8) * 0.3 + 0.15)


def test_road_mask_takes_the_colour_ahead_and_red_kerbs():
    """Grey asphalt ahead, green grass beyond 3 m to the left, a red kerb then grass
    on the right: the mask is the asphalt plus the kerb."""
    from sim.camera import Camera

    cam = Camera()
    bev = BirdsEye(cam)
    u = np.arange(320) + 0.5
    v = np.arange(160) + 0.5
    uu, vv = np.meshgrid(u, v)
    ground = cam.pixel_to_ground(np.stack([uu, vv], axis=-1))
    x = ground[..., 0]
    img = np.zeros((160, 320, 3), np.uint8)
    img[:] = (60, 120, 50)  # grass
    asphalt = (x > -3.0) & (x < 2.5)
    kerb = (x >= 2.5) & (x < 3.2)
    img[asphalt] = (100, 100, 104)
    img[kerb] = (215, 70, 60)
    mask = road_mask(img, bev)
    row = bev.height // 2
    cols = {xv: int((xv + 9.0) / 0.05) for xv in (-4.0, -2.0, 0.0, 2.8, 4.0)}
    assert not mask[row, cols[-4.0]] and mask[row, cols[-2.0]] and mask[row, cols[0.0]]
    assert mask[row, cols[2.8]] and not mask[row, cols[4.0]]


def test_a_blurred_edge_is_placed_at_its_middle_not_where_the_threshold_cuts():
    """A road (colour distance 1) meeting grass (distance 9) at 0.55 m right of the
    path, blurred over 0.2 m: the mask's threshold cuts on the road side, the
    refinement puts the edge where the distance is halfway (5), at 0.55 m."""
    step = 0.05
    x = (np.arange(-40, 41)) * step  # samples from -2 m to +2 m, the middle on the path
    dist = np.interp(np.abs(x), [0.0, 0.45, 0.65, 3.0], [1.0, 1.0, 9.0, 9.0])
    road = dist < 4.0
    seen = np.ones_like(road)
    plain_l, plain_r = profile_edges(road[None], seen[None], step, bridge_m=0.0)
    left, right = profile_edges(road[None], seen[None], step, bridge_m=0.0, dist=dist[None])
    assert plain_r[0] < 0.55 - 0.02  # the threshold sits inside the blur
    assert right[0] == pytest.approx(0.55, abs=0.01)
    assert left[0] == pytest.approx(-0.55, abs=0.01)
