"""Gazebo system that moves the exported models along the scenario's trajectories.

``export-gazebo`` copies this file into its output directory as
``scenario_motion.py``, beside ``trajectories.json``; the world loads it through
``gz::sim::systems::PythonSystemLoader`` (Gazebo Harmonic, gz-sim 8). Every
simulation step each moving model is placed (``Model.set_world_pose_cmd``) at
its pose interpolated at the sim time, so the motion follows the scenario
exactly, whatever the physics. It stands alone (no package imports): Gazebo
imports it by module name. ``gz`` is imported only inside :func:`get_system`,
so the interpolation is tested where Gazebo is not installed.
"""
from __future__ import annotations

import bisect
import json
import math
from pathlib import Path
from typing import Any

#: File the trajectories are read from, beside this module.
TRAJECTORIES_FILE = 'trajectories.json'


def pose_at(track: dict[str, list[float]], t_s: float) -> tuple[float, float, float]:
    """``(x_m, y_m, yaw_rad)`` of a sampled track at ``t_s`` seconds of sim time.

    track : ``{'t_s': [...], 'x_m': [...], 'y_m': [...], 'yaw_rad': [...]}``, t_s increasing;
    linear between samples (yaw along the shorter arc), held before the first and after the last.
    """
    ts = track['t_s']
    if t_s <= ts[0]:
        k, u = 0, 0.0
    elif t_s >= ts[-1]:
        k, u = len(ts) - 1, 0.0
    else:
        k = bisect.bisect_right(ts, t_s) - 1
        u = (t_s - ts[k]) / (ts[k + 1] - ts[k])
    if u == 0.0:
        return track['x_m'][k], track['y_m'][k], track['yaw_rad'][k]
    x = track['x_m'][k] + u * (track['x_m'][k + 1] - track['x_m'][k])
    y = track['y_m'][k] + u * (track['y_m'][k + 1] - track['y_m'][k])
    dyaw = math.remainder(track['yaw_rad'][k + 1] - track['yaw_rad'][k], 2.0 * math.pi)
    return x, y, track['yaw_rad'][k] + u * dyaw


def load_tracks(path: str | Path) -> dict[str, dict[str, list[float]]]:
    """``{model name: track}`` from a trajectories file written by ``export-gazebo``."""
    data = json.loads(Path(path).read_text())
    return data['tracks']


class ScenarioMotion:
    """PythonSystemLoader system: ``configure`` once on the world, ``pre_update`` every step."""

    def __init__(self) -> None:
        self.tracks = load_tracks(Path(__file__).with_name(TRAJECTORIES_FILE))
        self.models: dict[str, Any] = {}
        self.world: Any = None

    def configure(self, entity: Any, sdf: Any, ecm: Any, event_mgr: Any) -> None:
        from gz.sim8 import World

        self.world = World(entity)

    def pre_update(self, info: Any, ecm: Any) -> None:
        from gz.math7 import Pose3d
        from gz.sim8 import Model

        if info.paused:
            return
        t_s = info.sim_time.total_seconds()
        for name, track in self.tracks.items():
            model = self.models.get(name)
            if model is None:
                entity = self.world.model_by_name(ecm, name)
                if not entity:
                    continue          # not created yet
                model = self.models[name] = Model(entity)
            x, y, yaw = pose_at(track, t_s)
            model.set_world_pose_cmd(ecm, Pose3d(x, y, 0.0, 0.0, 0.0, yaw))


def get_system() -> ScenarioMotion:
    """Entry point PythonSystemLoader calls."""
    return ScenarioMotion()
