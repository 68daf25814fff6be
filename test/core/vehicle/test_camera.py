from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.vehicle.camera import backproject, pixel_rays, project, validate_k
from cooperative_fusion.core.errors import ConfigError, MessageFormatError

K = np.array([[500.0, 0.0, 320.0], [0.0, 400.0, 240.0], [0.0, 0.0, 1.0]])


def test_known_pixel_backprojects_to_known_point():
    depth = np.full((480, 640), np.nan, dtype=np.float32)
    depth[340, 420] = 10.0   # 100 px right of cx, 100 px below cy
    depth[240, 320] = 2.5    # principal point
    pts = backproject(depth, K)
    # row-major order: (240, 320) first
    assert_allclose(pts, [[0.0, 0.0, 2.5], [10.0 * 100 / 500, 10.0 * 100 / 400, 10.0]], rtol=1e-6)
    assert pts.dtype == np.float32


def test_invalid_pixels_skipped_and_max_range():
    depth = np.array([[1.0, np.nan, 0.0, -2.0], [5.0, 30.0, np.inf, 3.0]], dtype=np.float32)
    k = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1]])
    pts = backproject(depth, k)
    assert_allclose(pts[:, 2], [1.0, 5.0, 30.0, 3.0])
    pts = backproject(depth, k, max_range_m=10.0)
    assert_allclose(pts, [[0, 0, 1.0], [0, 5.0, 5.0], [9.0, 3.0, 3.0]])


def test_random_points_round_trip_through_projection():
    rng = np.random.default_rng(0)
    h, w = 48, 64
    k = np.array([[50.0, 0.5, 31.5], [0.0, 45.0, 23.5], [0.0, 0.0, 1.0]])  # with skew
    depth = rng.uniform(0.5, 20.0, (h, w)).astype(np.float32)
    pts = backproject(depth, k)
    u, v = project(pts, k)
    uu, vv = np.meshgrid(np.arange(w), np.arange(h))
    assert_allclose(u, uu.ravel(), atol=1e-3)
    assert_allclose(v, vv.ravel(), atol=1e-3)
    assert_allclose(pts[:, 2], depth.ravel())


def test_stride_subsamples():
    depth = np.ones((4, 6), dtype=np.float32)
    pts = backproject(depth, K, stride=2)
    assert pts.shape == (6, 3)
    assert_allclose(pts[1], [(2 - 320) / 500, (0 - 240) / 400, 1.0])


def test_pixel_rays_cached_and_unit():
    a = pixel_rays(K, 8, 4)
    assert a is pixel_rays(K.copy(), 8, 4)
    assert not a.flags.writeable
    assert_allclose(a[:, :, 2], 1.0)
    unit = pixel_rays(K, 8, 4, normalize=True)
    assert_allclose(np.linalg.norm(unit, axis=-1), 1.0, rtol=1e-6)
    assert_allclose(unit[2, 3] / unit[2, 3, 2], a[2, 3], rtol=1e-6)


def test_project_behind_camera_is_nan():
    u, v = project(np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 5.0]]), K)
    assert np.isnan(u[0]) and np.isnan(v[0])
    assert_allclose([u[1], v[1]], [420.0, 240.0])


@pytest.mark.parametrize('k, match', [
    (np.eye(2), r'shape \(2, 2\): expected \(3, 3\)'),
    (np.diag([0.0, 1.0, 1.0]), r'fx=0.0, fy=1.0: expected both > 0'),
    (np.diag([np.nan, 1.0, 1.0]), r'non-finite'),
    (np.diag([1.0, 1.0, 2.0]), r'last row \[0.0, 0.0, 2.0\]'),
])
def test_bad_k(k, match):
    with pytest.raises(ConfigError, match=match):
        validate_k(k)


def test_bad_depth_shape():
    with pytest.raises(MessageFormatError, match=r'depth image has shape \(3,\): expected \(H, W\)'):
        backproject(np.ones(3), K)
