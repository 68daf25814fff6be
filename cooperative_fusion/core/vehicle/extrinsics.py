"""Sensor extrinsics from parameters.

Without tf2_ros, each sensor's mounting (``<v>/lidar`` -> ``<v>/base_link`` and so
on) is a parameter of six numbers ``[x, y, z, roll, pitch, yaw]``: the sensor
origin in ``base_link`` (metres) and its orientation as static-axes roll, pitch,
yaw (radians), the convention of ``static_transform_publisher`` and URDF.
The result is ``sensor2base``: it maps points in the sensor frame into base_link.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import transforms3d
from numpy.typing import NDArray

from ..errors import ConfigError
from ..se3 import from_xyz_rpy

#: Order of the six numbers of an extrinsic parameter.
EXTRINSIC_FIELDS = ('x', 'y', 'z', 'roll', 'pitch', 'yaw')


def extrinsic_from_params(name: str, values: Sequence[float]) -> NDArray[np.float64]:
    """4×4 ``sensor2base`` from ``values = [x, y, z, roll, pitch, yaw]`` (metres, radians).

    ``name`` is the parameter's name; it appears in the error raised for a wrong
    count, a non-number or a non-finite value.
    """
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'parameter {name!r}: expected 6 numbers [x, y, z, roll, pitch, yaw] '
                          f'(metres, radians), got {values!r}') from exc
    if len(vals) != len(EXTRINSIC_FIELDS):
        raise ConfigError(f'parameter {name!r}: expected 6 numbers [x, y, z, roll, pitch, yaw] '
                          f'(metres, radians), got {len(vals)}: {vals}')
    for field, v in zip(EXTRINSIC_FIELDS, vals):
        if not math.isfinite(v):
            raise ConfigError(f'parameter {name!r}: {field} must be finite, got {v}')
    return from_xyz_rpy(vals[:3], vals[3:])


def extrinsic_to_params(sensor2base: NDArray[np.floating]) -> list[float]:
    """Inverse of :func:`extrinsic_from_params`: ``[x, y, z, roll, pitch, yaw]`` of a rigid 4×4.

    Pitch is returned in [-pi/2, pi/2]; at pitch = ±pi/2 roll and yaw are not unique.
    """
    t = np.asarray(sensor2base, dtype=np.float64)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise ConfigError(f'sensor2base must be a finite 4×4 matrix, got shape {t.shape}')
    roll, pitch, yaw = transforms3d.euler.mat2euler(t[:3, :3], axes='sxyz')
    return [float(t[0, 3]), float(t[1, 3]), float(t[2, 3]), float(roll), float(pitch), float(yaw)]
