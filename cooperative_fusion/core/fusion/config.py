"""The fusion node's configuration: one frozen dataclass, built from ``{dotted.param.name: value}``.

:func:`config_from_params` is the one mapping from the parameter names (the node's
``PARAMS`` table, ``config/fusion.yaml``) to core configs; the node and the
report's ego-only baseline both use it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from ..config_values import config_from_values, seconds_to_ns as _ns
from ..errors import ConfigError
from ..grid import GridSpec
from .common_grid import Footprint, FusionConfig
from .consistency import ConsistencyConfig
from .coregistration import CoregConfig
from .dynamic import DynamicConfig
from .window import RoadWindowConfig

#: coregistration.* parameters of the node, not of CoregConfig
_COREG_NODE = ('enabled', 'period_s', 'smoothing', 'static_min_age_s', 'static_tolerance_m', 'accumulate_s',
               'sweeps')
_VEHICLE_ID = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


class WindowMode(str, Enum):
    """How the common window is placed."""

    FOLLOW_PLATOON = 'follow_platoon'
    FIXED = 'fixed'


@dataclass(frozen=True)
class FusionNodeConfig:
    """Validated node configuration (built once from the parameters by :func:`config_from_params`).

    vehicles : configured ids, in order; fusion : core config (its spec is the initial window)
    window_mode, size_x_m, size_y_m, resolution_m, forward_offset_m : window placement, metres
    coreg : ICP gates; coreg_enabled, coreg_period_s (s), coreg_smoothing (0..1]
    coreg_static_min_age_ns, coreg_static_tolerance_m : the static-structure filter (0 ns = off), ns / metres
    coreg_accumulate_ns : static cells of the evidence this far back are registered too (0 = latest only), ns
    coreg_sweeps : registration sweeps per round (core.fusion.coregistration.register_platoon)
    consistency : the cross-vehicle consistency check (None: off)
    road_window : follow_platoon turns the window along the road (None: axis-aligned in map)
    latency_allowance_max_ns : cap on the measured link latency added to the age limits, ns (0 = fixed limits)
    nominal_latency_ns : latency the fixed age limits already allow for (only the excess is added), ns
    link_window_ns : arrival-time window of the per-vehicle link statistics, ns; link_min_samples : messages
        in it before a latency is measured
    publish_period_s, discovery_period_s, diagnostics_period_s : timer periods, seconds (publish: the heartbeat)
    publish_min_interval_ns : shortest time between two grids; None: evidence does not trigger a grid, ns
    publish_max_delay_ns : fused evidence is in a grid at most this long after it (deadline), ns
    publish_check_period_s : period of the timer that publishes held evidence once its rate limit or deadline has
        passed, seconds
    frame_id, output_topic, time_reference_topic : names; evidence_depth, odom_depth : queue depths
    """

    vehicles: tuple[str, ...]
    fusion: FusionConfig
    window_mode: WindowMode
    size_x_m: float
    size_y_m: float
    resolution_m: float
    forward_offset_m: float
    coreg: CoregConfig
    coreg_enabled: bool
    coreg_period_s: float
    coreg_smoothing: float
    publish_period_s: float
    discovery_period_s: float
    diagnostics_period_s: float
    frame_id: str
    output_topic: str
    time_reference_topic: str
    evidence_depth: int
    odom_depth: int
    footprints: Mapping[str, Footprint] | None = None
    footprint_margin_m: float = 0.4
    footprint_margin_behind_m: float = 1.6
    dynamic: DynamicConfig | None = None
    dynamic_member_margin_m: float = 1.5
    publish_min_interval_ns: int | None = 20_000_000
    publish_max_delay_ns: int = 50_000_000
    publish_check_period_s: float = 0.01
    coreg_static_min_age_ns: int = 500_000_000
    coreg_static_tolerance_m: float = 0.3
    coreg_accumulate_ns: int = 0
    coreg_sweeps: int = 3
    latency_allowance_max_ns: int = 500_000_000
    nominal_latency_ns: int = 100_000_000
    link_window_ns: int = 2_000_000_000
    link_min_samples: int = 5
    consistency: ConsistencyConfig | None = None
    road_window: RoadWindowConfig | None = None


def _road_window(values: Mapping[str, Any], size_x: float, size_y: float, res: float) -> RoadWindowConfig | None:
    """The road-following window of the grid.* values; None for a yaw step of 0 (axis-aligned)."""
    step = float(values.get('grid.yaw_step_deg', 0.0))
    if step == 0.0:
        return None
    return RoadWindowConfig(size_x, size_y, res, float(values['grid.forward_offset_m']), step,
                            float(values.get('grid.yaw_hysteresis_deg', 0.5)),
                            float(values.get('grid.straight_max_curvature_per_m', 5e-4)))


def _on_lattice(value: float, resolution: float) -> bool:
    k = value / resolution
    return abs(k - round(k)) < 1e-6


def config_from_params(values: Mapping[str, Any]) -> FusionNodeConfig:
    """The validated FusionNodeConfig from parameter values (``{dotted.name: value}``, every name of the
    node's parameter table). The fusion.*, coregistration.*, dynamic.* and consistency.* values fill the core
    configs by field name (:func:`~cooperative_fusion.core.config_values.config_from_values`).

    Raises ConfigError naming the first unusable value.
    """
    vehicles = tuple(str(v) for v in values['vehicles'])
    weights = [float(w) for w in values['vehicle_weights']]
    if not vehicles:
        raise ConfigError('vehicles is empty: expected at least one vehicle id')
    for vid in vehicles:
        if not _VEHICLE_ID.match(vid):
            raise ConfigError(f'vehicle id {vid!r} is not a ROS name token: expected a letter then letters, '
                              f'digits or _')
    if len(set(vehicles)) != len(vehicles):
        raise ConfigError(f'vehicles {list(vehicles)} has duplicates')
    if len(weights) != len(vehicles):
        raise ConfigError(f'vehicle_weights has {len(weights)} values for {len(vehicles)} vehicles '
                          f'{list(vehicles)}: expected one weight per vehicle')
    try:
        mode = WindowMode(values['grid.mode'])
    except ValueError:
        raise ConfigError(f"grid.mode {values['grid.mode']!r}: expected one of "
                          f"{', '.join(m.value for m in WindowMode)}") from None
    res = float(values['grid.resolution_m'])
    size_x, size_y = float(values['grid.size_x_m']), float(values['grid.size_y_m'])
    if mode is WindowMode.FIXED:
        ox, oy = float(values['grid.fixed_origin_x_m']), float(values['grid.fixed_origin_y_m'])
        if not (_on_lattice(ox, res) and _on_lattice(oy, res)):
            raise ConfigError(f'grid.fixed_origin ({ox}, {oy}) m is not a multiple of grid.resolution_m {res} m')
        spec = GridSpec(ox, oy, res, max(1, int(round(size_x / res))), max(1, int(round(size_y / res))))
    else:
        spec = GridSpec.centered(0.0, 0.0, size_x, size_y, res)
    fusion = config_from_values(FusionConfig, values, 'fusion.', spec=spec,
                                vehicle_weights=dict(zip(vehicles, weights)))
    coreg = config_from_values(CoregConfig, values, 'coregistration.', ignore=_COREG_NODE)
    footprints = None
    if bool(values['footprints.enabled']):
        ids = [str(v) for v in values['footprints.vehicles']]
        dims = {k: [float(v) for v in values[f'footprints.{k}']]
                for k in ('length_m', 'width_m', 'rear_overhang_m', 'lidar_x_m', 'lidar_y_m')}
        for k, v in dims.items():
            if len(v) != len(ids):
                raise ConfigError(f'footprints.{k} has {len(v)} values for {len(ids)} footprints.vehicles '
                                  f'{ids}: expected one per entry')
        footprints = {vid: Footprint(dims['length_m'][i], dims['width_m'][i], dims['rear_overhang_m'][i],
                                     dims['lidar_x_m'][i], dims['lidar_y_m'][i])
                      for i, vid in enumerate(ids) if vid in vehicles}
    dynamic = (config_from_values(DynamicConfig, values, 'dynamic.', ignore=('enabled', 'member_margin_m'))
               if bool(values['dynamic.enabled']) else None)
    output = str(values['topics.output'])
    if not output:
        raise ConfigError('topics.output is empty: expected a topic name such as /cooperative/grid')
    if not str(values['frame_id']):
        raise ConfigError('frame_id is empty: expected the fusion frame, e.g. map')
    return FusionNodeConfig(
        vehicles=vehicles, fusion=fusion, window_mode=mode, size_x_m=size_x, size_y_m=size_y, resolution_m=res,
        forward_offset_m=float(values['grid.forward_offset_m']), coreg=coreg,
        road_window=_road_window(values, size_x, size_y, res),
        coreg_enabled=bool(values['coregistration.enabled']),
        coreg_period_s=float(values['coregistration.period_s']),
        coreg_smoothing=float(values['coregistration.smoothing']),
        coreg_static_min_age_ns=_ns(values['coregistration.static_min_age_s']),
        coreg_static_tolerance_m=float(values['coregistration.static_tolerance_m']),
        coreg_accumulate_ns=_ns(values['coregistration.accumulate_s']),
        coreg_sweeps=int(values['coregistration.sweeps']),
        latency_allowance_max_ns=_ns(values['link.latency_allowance_max_s']),
        nominal_latency_ns=_ns(values['link.nominal_latency_s']),
        link_window_ns=_ns(values['link.window_s']), link_min_samples=int(values['link.min_samples']),
        publish_period_s=1.0 / float(values['publish_rate_hz']),
        discovery_period_s=float(values['discovery_period_s']),
        diagnostics_period_s=float(values['diagnostics.period_s']),
        frame_id=str(values['frame_id']), output_topic=output,
        time_reference_topic=str(values['time_reference_topic']),
        evidence_depth=int(values['qos.evidence_depth']), odom_depth=int(values['qos.odom_depth']),
        footprints=footprints, footprint_margin_m=float(values['footprints.margin_m']),
        footprint_margin_behind_m=float(values['footprints.margin_behind_m']), dynamic=dynamic,
        dynamic_member_margin_m=float(values['dynamic.member_margin_m']),
        publish_min_interval_ns=(_ns(values['publish_min_interval_s']) if bool(values['publish_on_evidence'])
                                 else None),
        publish_max_delay_ns=_ns(values['publish_max_delay_s']),
        publish_check_period_s=float(values['publish_check_period_s']),
        consistency=consistency_from_params(values))


def consistency_from_params(values: Mapping[str, Any]) -> ConsistencyConfig | None:
    """The consistency check's config from parameter values; None when it is disabled."""
    if not bool(values['consistency.enabled']):
        return None
    return config_from_values(ConsistencyConfig, values, 'consistency.', ignore=('enabled',))
