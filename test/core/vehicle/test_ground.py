from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.vehicle.ground import GroundConfig, GroundMode, fit_ground_plane, split_ground


def flat_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground at z=0 with 2 cm noise, obstacle points 0.5-2.5 m high; returns (points, is_ground, is_obstacle)."""
    ground = np.column_stack([rng.uniform(-30, 30, 3000), rng.uniform(-10, 10, 3000), rng.normal(0, 0.02, 3000)])
    obst = np.column_stack([rng.uniform(5, 7, 400), rng.uniform(-1, 1, 400), rng.uniform(0.5, 2.5, 400)])
    points = np.concatenate([ground, obst])
    is_ground = np.arange(len(points)) < len(ground)
    return points, is_ground, ~is_ground


@pytest.mark.parametrize('mode', list(GroundMode))
def test_flat_ground_removed_in_both_modes(mode):
    points, is_ground, is_obstacle = flat_scene(np.random.default_rng(0))
    obstacle, ground = split_ground(points, GroundConfig(mode=mode))
    assert_array_equal(ground, is_ground)
    assert_array_equal(obstacle, is_obstacle)


def test_height_band_classes():
    pts = np.array([[0, 0, 0.05], [0, 0, -0.2], [0, 0, 1.0], [0, 0, 0.31], [0, 0, 2.99],
                    [0, 0, 4.0], [0, 0, -1.0], [0, 0, np.nan]])
    obstacle, ground = split_ground(pts + [0, 0, 2.0], GroundConfig(ground_z_m=2.0))
    assert_array_equal(ground, [True, True, False, False, False, False, False, False])
    assert_array_equal(obstacle, [False, False, True, True, True, False, False, False])


def test_ransac_on_tilted_plane():
    rng = np.random.default_rng(0)
    # z = 0.1 x + 0.05 y + 0.5: about 6.4 deg of slope, 3.5 m of rise at x = 30.
    xy = np.column_stack([rng.uniform(-30, 30, 5000), rng.uniform(-10, 10, 5000)])
    z = 0.1 * xy[:, 0] + 0.05 * xy[:, 1] + 0.5 + rng.normal(0, 0.02, 5000)
    obst_xy = np.column_stack([rng.uniform(10, 14, 300), rng.uniform(-1, 1, 300)])
    obst_z = 0.1 * obst_xy[:, 0] + 0.05 * obst_xy[:, 1] + 0.5 + rng.uniform(0.6, 2.0, 300)
    points = np.concatenate([np.column_stack([xy, z]), np.column_stack([obst_xy, obst_z])])
    truth_ground = np.arange(len(points)) < 5000

    cfg = GroundConfig(mode=GroundMode.RANSAC)
    plane = fit_ground_plane(points, cfg)
    normal = np.array([-0.1, -0.05, 1.0]) / np.linalg.norm([-0.1, -0.05, 1.0])
    assert_allclose(plane[:3], normal, atol=5e-3)
    assert_allclose(plane[3], -0.5 * normal[2], atol=0.03)

    obstacle, ground = split_ground(points, cfg)
    assert_array_equal(ground, truth_ground)
    assert_array_equal(obstacle, ~truth_ground)
    again = split_ground(points, cfg)
    assert_array_equal(again[0], obstacle)

    # The flat height band gets this slope wrong: far uphill ground looks like obstacle or overhang.
    band_obstacle, band_ground = split_ground(points, GroundConfig())
    assert (~band_ground[truth_ground]).sum() > 1000


def test_ransac_skips_a_dominant_wall():
    rng = np.random.default_rng(0)
    ground = np.column_stack([rng.uniform(0, 20, 1500), rng.uniform(-5, 5, 1500), rng.normal(0, 0.02, 1500)])
    wall = np.column_stack([rng.uniform(0, 20, 4000), np.full(4000, 6.0) + rng.normal(0, 0.02, 4000),
                            rng.uniform(0.5, 8.0, 4000)])
    plane = fit_ground_plane(np.concatenate([wall, ground]), GroundConfig(mode='ransac'))
    assert_allclose(plane, [0.0, 0.0, 1.0, 0.0], atol=0.02)


def test_ransac_falls_back_to_band_without_points():
    cfg = GroundConfig(mode=GroundMode.RANSAC, ground_z_m=1.0)
    assert fit_ground_plane(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]), cfg) is None
    obstacle, ground = split_ground(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 2.0]]), cfg)
    assert_array_equal(ground, [True, False])
    assert_array_equal(obstacle, [False, True])


def test_config_mode_from_string_and_validation():
    assert GroundConfig(mode='ransac').mode is GroundMode.RANSAC
    with pytest.raises(ConfigError, match=r"GroundConfig.mode must be one of height_band, ransac, got 'plane'"):
        GroundConfig(mode='plane')
    with pytest.raises(ConfigError, match=r'GroundConfig.max_obstacle_height_m must be > min_obstacle_height_m'):
        GroundConfig(min_obstacle_height_m=0.5, max_obstacle_height_m=0.4)
    with pytest.raises(ConfigError, match=r'GroundConfig.min_obstacle_height_m must be > 0, got -0.1'):
        GroundConfig(min_obstacle_height_m=-0.1)
    with pytest.raises(ConfigError, match=r'GroundConfig.ransac_iterations must be an integer >= 1, got 0'):
        GroundConfig(ransac_iterations=0)
    with pytest.raises(ConfigError, match=r'points must have shape \(N, 3\), got \(4, 2\)'):
        split_ground(np.zeros((4, 2)), GroundConfig())


@pytest.mark.parametrize('mode', list(GroundMode))
def test_non_finite_points_are_neither(mode):
    points, is_ground, is_obstacle = flat_scene(np.random.default_rng(1))
    points[[0, 5, 3100]] = [[np.nan, 0.0, 0.0], [0.0, np.inf, 0.0], [1.0, 0.0, np.nan]]
    obstacle, ground = split_ground(points, GroundConfig(mode=mode))
    assert not (obstacle[[0, 5, 3100]] | ground[[0, 5, 3100]]).any()
    keep = np.ones(len(points), dtype=bool)
    keep[[0, 5, 3100]] = False
    assert_array_equal(ground[keep], is_ground[keep])
    assert_array_equal(obstacle[keep], is_obstacle[keep])
