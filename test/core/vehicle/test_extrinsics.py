from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.vehicle.extrinsics import extrinsic_from_params, extrinsic_to_params
from cooperative_fusion.core.se3 import apply


def test_lidar_on_roof_maps_points_into_base_link():
    # lidar 1.2 m forward, 1.8 m up, turned 90° left: its +x looks along base +y
    lidar2base = extrinsic_from_params('lidar.extrinsic', [1.2, 0.0, 1.8, 0.0, 0.0, np.pi / 2])
    assert lidar2base.shape == (4, 4)
    assert_allclose(apply(lidar2base, np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])),
                    [[1.2, 10.0, 1.8], [1.2, 0.0, 1.8]], atol=1e-12)


def test_optical_frame_convention():
    # camera_optical: z forward, x right, y down -> rpy (-pi/2, 0, -pi/2) as in ROS URDFs
    cam2base = extrinsic_from_params('camera.extrinsic', (0.0, 0.0, 1.5, -np.pi / 2, 0.0, -np.pi / 2))
    assert_allclose(apply(cam2base, np.array([[0.0, 0.0, 5.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
                    [[5.0, 0.0, 1.5], [0.0, -1.0, 1.5], [0.0, 0.0, 0.5]], atol=1e-12)


def test_round_trip_through_params():
    rng = np.random.default_rng(0)
    for _ in range(20):
        vals = np.concatenate([rng.uniform(-3, 3, 3), rng.uniform(-1.2, 1.2, 3)])
        t = extrinsic_from_params('x', vals)
        assert_allclose(extrinsic_to_params(t), vals, atol=1e-12)
        assert_allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize('values, match', [
    ([1.0, 2.0, 3.0, 0.0, 0.0], r"'radar.extrinsic': expected 6 numbers .* got 5"),
    ([0.0] * 7, r"'radar.extrinsic': expected 6 numbers .* got 7"),
    ([0.0, 0.0, float('nan'), 0.0, 0.0, 0.0], r"'radar.extrinsic': z must be finite, got nan"),
    ([0.0, 0.0, 0.0, 0.0, 0.0, float('inf')], r"'radar.extrinsic': yaw must be finite, got inf"),
    (['a', 0, 0, 0, 0, 0], r"'radar.extrinsic': expected 6 numbers .* got \['a'"),
])
def test_bad_values_name_parameter_and_value(values, match):
    with pytest.raises(ConfigError, match=match):
        extrinsic_from_params('radar.extrinsic', values)
