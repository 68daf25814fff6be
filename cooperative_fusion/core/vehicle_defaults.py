"""Defaults of the vehicle node's parameters that other nodes derive per vehicle from the platoon config.

No imports: :mod:`cooperative_fusion.core.platoon_config` (read by the launch files) takes a vehicle's
value from its params files and, where none gives it, from here, as the vehicle node does.
"""
from __future__ import annotations

#: ``extrinsics.lidar``: the lidar in base_link [x, y, z, roll, pitch, yaw] (the car of config/scenarios).
LIDAR_EXTRINSIC = (1.2, 0.0, 1.9, 0.0, 0.0, 0.0)
#: ``radar.moving_min_speed_mps``: radar returns slower than this (ego motion removed) are static: nothing is
#: moved with them, m/s.
MOVING_MIN_SPEED_MPS = 1.0
#: ``radar.moving_radius_m``: a hit moves with the nearest moving radar return within this (at the hit's
#: time), metres: a car's rear face and the first metres of its sides, not its neighbours one lane (3.5 m) away.
MOVING_RADIUS_M = 2.5
#: ``radar.moving_range_sigma_m`` / ``radar.moving_azimuth_sigma_deg``: a moving radar detection is spread by
#: the radar's own 1-sigma range (metres, along the line of sight) and azimuth (degrees, times range across
#: it) error, the simulated radars' noise figures; both 0: the 3-sigma disc of ``radar.sigma_m``.
MOVING_RANGE_SIGMA_M = 0.15
MOVING_AZIMUTH_SIGMA_DEG = 0.3
