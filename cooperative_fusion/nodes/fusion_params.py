"""The fusion node's parameter table: names, defaults, descriptions and ranges (config/fusion.yaml documents
each row; :func:`cooperative_fusion.core.fusion.config.config_from_params` maps them to the core config)."""
from __future__ import annotations

from ..core.vehicle_defaults import MOVING_MIN_SPEED_MPS, MOVING_RADIUS_M
from ..ros.names import COMMON_GRID, MAP_FRAME
from ..ros.params import Param

#: Every parameter of the node, in one place; config/fusion.yaml documents each row.
PARAMS: tuple[Param, ...] = (
    Param('vehicles', ['v1', 'v2', 'v3', 'v4'], 'ids of the vehicles whose evidence is fused'),
    Param('vehicle_weights', [1.0, 1.0, 1.0, 1.0], 'reliability weight in (0, 1] per vehicle, parallel to vehicles'),
    Param('frame_id', MAP_FRAME, 'fusion frame: evidence in another frame is dropped; frame of the output'),
    Param('topics.output', COMMON_GRID, 'OccupancyGrid output (latched: TRANSIENT_LOCAL, depth 1)'),
    Param('time_reference_topic', '',
          'TimeReference mapping the node clock to common time; empty = the node clock is common time'),
    Param('publish_rate_hz', 10.0, 'heartbeat: grids (decay + publish) per second on a fixed phase, whatever '
          'arrives, node clock', 0.01, 1000.0),
    Param('publish_on_evidence', True,
          'publish when new evidence has been fused (no sooner than publish_min_interval_s after the last grid); '
          'false: grids at the heartbeat and the deadline only'),
    Param('publish_min_interval_s', 0.02, 'publish_on_evidence: shortest time between two grids (rate limit), '
          'seconds', 0.0, 3600.0),
    Param('publish_max_delay_s', 0.05, 'deadline: fused evidence is in a grid at most this long after the oldest '
          'evidence not yet published, whatever the rate limit (to within publish_check_period_s), seconds',
          0.0, 3600.0),
    Param('publish_check_period_s', 0.01, 'period of the timer that publishes held evidence once the rate limit '
          'or the deadline has passed (it runs only while evidence is held), node clock, seconds', 0.001, 10.0),
    # grid window
    Param('grid.mode', 'follow_platoon', 'follow_platoon: window around the platoon centroid; fixed: at fixed_origin'),
    Param('grid.size_x_m', 260.0, 'window extent along the road (map x when not turned), metres', 1.0, 5000.0),
    Param('grid.size_y_m', 30.0, 'window extent across the road (map y when not turned), metres', 1.0, 5000.0),
    Param('grid.resolution_m', 0.2, 'cell size, metres (evidence at an integer multiple/fraction is resampled)',
          0.01, 10.0),
    Param('grid.forward_offset_m', 50.0, 'follow_platoon: window centre this far ahead of the centroid, metres',
          -5000.0, 5000.0),
    Param('grid.fixed_origin_x_m', 0.0, 'fixed: lower-left corner x in map, metres, on the lattice'),
    Param('grid.fixed_origin_y_m', 0.0, 'fixed: lower-left corner y in map, metres, on the lattice'),
    Param('grid.yaw_step_deg', 2.0, 'follow_platoon: the window turns with the road in steps of this many degrees '
          '(0: axis-aligned in map)', 0.0, 90.0),
    Param('grid.yaw_hysteresis_deg', 0.5, 'follow_platoon: the window turns only when the road is half a step '
          'plus this from its yaw, degrees', 0.0, 45.0),
    Param('grid.straight_max_curvature_per_m', 5e-4, 'follow_platoon: a road curvature fitted to the members '
          'below this is straight; above, the window follows the chord of the curve, 1/m', 0.0, 1.0),
    # fusion (core.fusion.common_grid.FusionConfig)
    Param('fusion.clamp_min', -2.0, 'lower log-odds bound after every update', -100.0, 0.0),
    Param('fusion.clamp_max', 3.5, 'upper log-odds bound after every update', 0.0, 100.0),
    Param('fusion.half_life_s', 2.0, 'decay of log-odds towards unknown, seconds', 0.001, 3600.0),
    Param('fusion.max_age_s', 0.5, 'evidence older than now - max_age (plus the vehicle\'s link latency '
          'allowance, see link.*) is dropped (too_old), seconds', 0.0, 3600.0),
    Param('fusion.future_tolerance_s', 0.05, 'evidence stamped after now + this is dropped (future), seconds',
          0.0, 3600.0),
    Param('fusion.vehicle_timeout_s', 2.0, 'a vehicle without accepted evidence this long is flagged dropped, s',
          0.0, 3600.0),
    Param('fusion.pose_sigma_min_m', 0.05, 'blur evidence only when the pose sigma beyond a cell reaches this, m',
          0.0, 100.0),
    Param('fusion.pose_sigma_ref_m', 0.5, 'pose sigma at which a vehicle\'s weight is halved, metres', 0.001, 100.0),
    Param('fusion.max_blur_sigma_m', 1.0, 'cap on the pose blur sigma, metres', 0.001, 100.0),
    Param('fusion.confident_logodds', 0.4, '|weighted evidence| from which it counts as confident', 0.001, 100.0),
    Param('fusion.free_reset_logodds', 0.0, 'occupied cells are lowered to this by fresh confident free evidence',
          -100.0, 100.0),
    Param('fusion.free_wins_after_s', 0.05, 'occupied evidence this much older than free evidence is reset, s',
          0.0, 3600.0),
    Param('fusion.unknown_logodds', 0.05, '|L| below this is published unknown (-1)', 0.0001, 100.0),
    # platoon members' own bodies (core.fusion.common_grid.Footprint), lists parallel to footprints.vehicles
    Param('footprints.enabled', True,
          'draw each member\'s body (odometry pose + speed, at publish time) and drop evidence hits on it'),
    Param('footprints.vehicles', ['v1', 'v2', 'v3', 'v4'],
          'ids whose body is known (fused vehicles not listed get none); the lists below are parallel'),
    Param('footprints.length_m', [4.5, 12.0, 4.5, 4.5], 'body length per footprints.vehicles entry, metres'),
    Param('footprints.width_m', [1.8, 2.5, 1.8, 1.8], 'body width per footprints.vehicles entry, metres'),
    Param('footprints.rear_overhang_m', [1.0, 2.5, 1.0, 1.0],
          'rear face behind base_link per footprints.vehicles entry, metres'),
    Param('footprints.lidar_x_m', [1.2, 9.6, 1.2, 1.2],
          'rotating lidar ahead of base_link per footprints.vehicles entry (its extrinsics.lidar, derived from the '
          'platoon config), metres'),
    Param('footprints.lidar_y_m', [0.0, 0.0, 0.0, 0.0],
          'rotating lidar left of base_link per footprints.vehicles entry (its extrinsics.lidar, derived from the '
          'platoon config), metres'),
    Param('footprints.margin_m', 0.4, 'evidence hits this close to a member\'s body (any side) are dropped, m',
          0.0, 100.0),
    Param('footprints.margin_behind_m', 1.6,
          'extra margin behind a member\'s body: hits of sensors sampled before the cycle stamp, metres',
          0.0, 100.0),
    # moving objects (core.fusion.dynamic.DynamicConfig)
    Param('dynamic.enabled', True,
          'moving components of the evidence kept as objects and drawn at publish time, not fused as static'),
    Param('dynamic.occupied_logodds', 0.4, 'evidence log-odds from which a cell belongs to a component',
          0.001, 100.0),
    Param('dynamic.merge_gap_m', 0.4, 'occupied cells at most this far apart are one component, metres', 0.0, 100.0),
    Param('dynamic.min_cells', 3, 'smaller components stay static', 1, 1_000_000),
    Param('dynamic.max_length_m', 20.0, 'components longer than this along the road stay static, metres',
          0.01, 10000.0),
    Param('dynamic.radar_radius_m', 2.0, 'a radar target joins the component with the nearest cell within this, m',
          0.01, 100.0),
    Param('dynamic.radar_max_dt_s', 0.15, 'radar targets stamped further than this from the evidence are unused, s',
          0.0, 10.0),
    Param('dynamic.max_los_angle_deg', 25.0, 'radar speed v_r/cos(a) only where line of sight and road are '
          'within this, degrees', 0.1, 89.9),
    Param('dynamic.min_speed_mps', 3.0, 'along-road speed from which a component is moving, m/s', 0.01, 1000.0),
    Param('dynamic.max_speed_mps', 50.0, 'tracking gate along the road: max_speed_mps x dt, m/s', 0.01, 1000.0),
    Param('dynamic.track_lateral_gate_m', 1.0, 'tracking gate across the road, metres', 0.01, 100.0),
    Param('dynamic.track_smoothing', 0.5, 'weight of a new tracking speed in a component\'s speed', 0.01, 1.0),
    Param('dynamic.max_age_s', 0.3, 'a moving object not renewed for this long expires (plus the vehicle\'s '
          'link latency allowance, see link.*), seconds', 0.0, 10.0),
    Param('dynamic.duplicate_radius_m', 1.0,
          'an object with half its cells this close to a newer object\'s is not drawn (unless it is another '
          'vehicle\'s fuller radar-speed view: then it is drawn instead), metres', 0.0, 100.0),
    Param('dynamic.sweep_phase', True,
          'a tracked object\'s cells are moved by its speed from when a rotating lidar saw them (azimuth / 360 '
          'of the vehicle\'s evidence period after the stamp) to the stamp'),
    Param('dynamic.thin_faces', True,
          'a moving object\'s cells two or more deep along the line of sight lose the one nearest the sensor '
          '(a face drawn thicker than it is: coarser shared lattice, range noise)'),
    Param('dynamic.moved_radius_m', MOVING_RADIUS_M,
          'the vehicles\' radar.moving_radius_m (derived from the platoon config, like footprints.*; without one, '
          'give the vehicles\' value): cells this close to a moving radar target were moved to the stamp by '
          'their vehicle, and the sweep phase leaves them, metres', 0.0, 100.0),
    Param('dynamic.moved_min_speed_mps', MOVING_MIN_SPEED_MPS,
          'the vehicles\' radar.moving_min_speed_mps (derived from the platoon config, like footprints.*; without '
          'one, give the vehicles\' value): radar targets at least this fast (radial) moved hits, m/s',
          0.0, 100.0),
    Param('dynamic.member_margin_m', 1.5,
          'components this much beyond the footprint margins of a member (along its heading) stay static, m',
          0.0, 100.0),
    # co-registration (core.fusion.coregistration.CoregConfig)
    Param('coregistration.enabled', True, 'estimate and apply per-vehicle pose corrections (docs/quality.md: a '
          '0.5 m / 1 deg biased vehicle corrected on the landmark scene, no change without roadside structure)'),
    Param('coregistration.period_s', 1.0, 'period of the estimate, seconds (node clock)', 0.01, 3600.0),
    Param('coregistration.smoothing', 0.5, 'weight of a new accepted estimate in the running correction', 0.01, 1.0),
    Param('coregistration.min_points', 10, 'occupied points needed on each side and as matches', 3, 1_000_000),
    Param('coregistration.max_correspondence_m', 2.0, 'ICP match radius, metres', 0.01, 100.0),
    Param('coregistration.min_fitness', 0.5, 'fraction of the vehicle\'s points matched, to accept', 0.0, 1.0),
    Param('coregistration.max_rmse_m', 0.35, 'RMS distance of the matches, to accept, metres', 0.001, 100.0),
    Param('coregistration.max_correction_m', 2.0, 'largest translation accepted, metres', 0.001, 100.0),
    Param('coregistration.max_correction_deg', 5.0, 'largest rotation accepted, degrees', 0.001, 180.0),
    Param('coregistration.min_constraint', 0.02, 'smallest eigenvalue of the normalised information matrix',
          0.0, 100.0),
    Param('coregistration.max_std_m', 0.1, 'largest standard deviation of the estimate along its least determined '
          'direction (residual variance times the inverse information matrix), to accept, metres', 0.001, 100.0),
    Param('coregistration.max_iterations', 50, 'ICP iterations', 1, 10_000),
    Param('coregistration.normal_radius_m', 1.0, 'neighbours of a reference cell for its line normal; a cell '
          'without a line around it (post, corner) is matched point-to-point, metres', 0.01, 100.0),
    Param('coregistration.static_min_age_s', 0.5, 'register only cells the vehicle\'s own evidence at least '
          'this much older also holds (static structure); 0 = all occupied cells, seconds', 0.0, 60.0),
    Param('coregistration.static_tolerance_m', 0.3, 'static_min_age_s: a cell counts as held within this, metres',
          0.0, 100.0),
    Param('coregistration.accumulate_s', 2.0, 'register the union of each vehicle\'s static cells over its '
          'evidence of the last accumulate_s (static structure stays put in map); 0 = latest evidence only, seconds',
          0.0, 60.0),
    Param('coregistration.sweeps', 3, 'per round, times every vehicle is registered against the others\' evidence '
          'moved by their latest estimates, before the platoon median correction is removed', 1, 100),
    Param('coregistration.body_enabled', True, 'also localise each member by where the other members\' evidence '
          'sees its body (rear/front faces: along it; sides: across it), combined with the static fit '
          '(core.fusion.body_registration)'),
    Param('coregistration.body_margin_m', 0.8, 'occupied cells within this outside a member\'s odometry box, or '
          'this shallow inside it, are its faces (deeper: its roof), metres', 0.01, 10.0),
    Param('coregistration.body_min_points', 20, 'face cells of a member seen by one observer over the window, '
          'to fit', 3, 1_000_000),
    Param('coregistration.body_max_rmse_m', 0.35, 'RMS distance of the face cells from the fitted sides, to accept, '
          'metres', 0.001, 100.0),
    Param('coregistration.body_max_std_m', 0.05, 'largest standard deviation of a body offset along its weakest '
          'estimated direction, to accept, metres', 0.0001, 100.0),
    Param('coregistration.body_max_offset_m', 1.0, 'largest body offset accepted, metres', 0.001, 100.0),
    Param('coregistration.body_min_constraint', 0.25, 'a body direction is estimated when this share of the face '
          'cells lies on sides across it (a rear face alone: along only)', 0.0001, 1.0),
    Param('coregistration.body_behind_exclusion_deg', 10.0, 'cells within this of straight behind the observer '
          'are not used (the lidar sweep\'s start and end meet there), degrees', 0.0, 179.0),
    # cross-vehicle consistency (core.fusion.consistency.ConsistencyConfig)
    Param('consistency.enabled', True,
          'down-weight evidence cells that contradict min_witnesses other vehicles; score and flag each source'),
    Param('consistency.confident_logodds', 0.4, '|evidence log-odds| from which a cell is confident free/occupied',
          0.001, 100.0),
    Param('consistency.min_witnesses', 2, 'other vehicles that must agree against a vehicle for a conflict', 1, 100),
    Param('consistency.max_age_s', 0.2, 'others\' evidence further than this from the stamp is not compared, s',
          0.0, 3600.0),
    Param('consistency.conflict_weight', 0.1, 'factor on a vehicle\'s log-odds in its conflicting cells', 0.0, 1.0),
    Param('consistency.score_smoothing', 0.3, 'weight of a new sample in the consistency score average', 0.001, 1.0),
    Param('consistency.flag_below', 0.8, 'a vehicle whose consistency score is below this is flagged (WARN)',
          0.0, 1.0),
    Param('consistency.motion_margin_m', 0.2,
          'an occupied cell this close keeps a cell out of "free" (moved or misregistered faces), metres',
          0.0, 100.0),
    Param('consistency.max_speed_mps', 30.0,
          'bound on object speed along the road: free cells within max_speed x |stamp difference| of the same '
          'vehicle\'s occupied cells are not compared (swept by what may have moved), m/s', 0.0, 1000.0),
    Param('consistency.score_min_area_m2', 2.0,
          'conflict components smaller than this are down-weighted but left out of the score (sensor clutter), '
          'square metres', 0.0, 10000.0),
    Param('consistency.min_cells', 10, 'compared cells needed for a consistency score sample', 1, 1_000_000),
    # link latency (core.link): a slow link's evidence is not dead on arrival
    Param('link.latency_allowance_max_s', 0.5,
          'a vehicle\'s evidence (fusion.max_age_s) and moving objects (dynamic.max_age_s) may be older by its '
          'measured link latency (median arrival - stamp over link.window_s) beyond link.nominal_latency_s, at '
          'most this; 0 = fixed limits, seconds', 0.0, 60.0),
    Param('link.nominal_latency_s', 0.1,
          'latency the fixed age limits already allow for (the vehicles\' own pipeline: scan end, sync); only '
          'the excess is added, seconds', 0.0, 60.0),
    Param('link.window_s', 2.0, 'arrival-time window of the per-vehicle link statistics, seconds', 0.01, 3600.0),
    Param('link.min_samples', 5, 'evidence messages in the window before a latency is measured (and added)', 1, 64),
    # edge shards (core.fusion.shards; README "Edge shards")
    Param('shard.index', -1, 'fusion shard: -1 = fuse every vehicle and publish topics.output; k >= 0 = fuse '
          'block k of shard.count of the vehicles and publish the evidence delta on /cooperative/shard<k>/delta '
          'for fusion_combiner', -1, 1000),
    Param('shard.count', 1, 'fusion shards the vehicles are split into (contiguous blocks of the vehicles list)',
          1, 1000),
    # graph, queues, diagnostics
    Param('discovery_period_s', 3.0, 'period of the scan for evidence topics of unconfigured ids, seconds',
          0.01, 3600.0),
    Param('qos.evidence_depth', 10, 'queue depth of each evidence subscription', 1, 1000),
    Param('qos.odom_depth', 10, 'queue depth of each odometry subscription (only the latest is used)', 1, 10000),
    Param('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
)
