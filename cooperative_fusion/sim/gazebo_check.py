"""Checks of an exported Gazebo world that need no Gazebo: element names, published topics, ``ign sdf -k``.

Element names are checked against the SDF description files that sdformat
ships (Debian ``sdformat-sdf``: ``/usr/share/sdformat12/<version>/*.sdf``):
``ign sdf -k`` accepts unknown element names, so this is the check that does
not. Published topics follow the rules of gz-sensors 8 and gz-sim 8 (Harmonic).
"""
from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError

#: Where Debian's sdformat-sdf puts the description files of each SDF version.
SPEC_ROOTS = (Path('/usr/share/sdformat12'), Path('/usr/share/sdformat13'), Path('/usr/share/sdformat14'))

#: Elements Gazebo reads that the SDF 1.9 description does not list: (parent, child) -> source.
GAZEBO_EXTENSIONS: dict[tuple[str, str], str] = {
    ('sensor', 'gz_frame_id'): 'gz-sensors 8 (Harmonic) src/Sensor.cc: the frame_id of the sensor messages',
}


def spec_dir(version: str) -> Path:
    """The directory of the SDF ``version`` description files; ConfigError naming the package if none."""
    for root in SPEC_ROOTS:
        if (root / version / 'root.sdf').is_file():
            return root / version
    raise ConfigError(f'no SDF {version} description files in {", ".join(map(str, SPEC_ROOTS))}; '
                      f'install the Debian package sdformat-sdf (comes with libsdformat-dev)')


@dataclass
class _Definition:
    """Allowed children of one element: name -> definition; ``any_child`` for plugin contents."""

    children: dict[str, '_Definition'] = field(default_factory=dict)
    any_child: bool = False


class SdfSpec:
    """The element tree of one SDF version, read from its description files."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._files: dict[str, tuple[str, _Definition] | None] = {}
        self.root = self._file('root.sdf')
        if self.root is None:
            raise ConfigError(f'{self.directory}: no root.sdf')

    def _file(self, filename: str) -> tuple[str, _Definition] | None:
        if filename not in self._files:
            path = self.directory / filename
            self._files[filename] = None
            if path.is_file():
                top = ET.parse(path).getroot()
                definition = _Definition()
                self._files[filename] = (top.get('name', ''), definition)
                self._fill(top, definition)
        return self._files[filename]

    def _fill(self, node: ET.Element, definition: _Definition) -> None:
        for child in node:
            if child.tag == 'element':
                if child.get('copy_data') == 'true':
                    definition.any_child = True
                    continue
                ref = child.get('ref')
                sub = _Definition()
                definition.children[child.get('name', '')] = sub
                if ref:                  # a nested <model> etc.: the referenced file's children
                    found = self._file(f'{ref}.sdf')
                    if found is not None:
                        sub.children, sub.any_child = found[1].children, found[1].any_child
                self._fill(child, sub)
            elif child.tag == 'include':
                found = self._file(child.get('filename', ''))
                if found is not None:
                    definition.children[found[0]] = found[1]

    def unknown_elements(self, sdf_root: ET.Element) -> list[str]:
        """Paths (``sdf/world/model[v1]/link/...``) of elements the description does not list,
        less :data:`GAZEBO_EXTENSIONS`."""
        out: list[str] = []
        name, definition = self.root
        if sdf_root.tag != name:
            return [sdf_root.tag]
        self._walk(sdf_root, definition, sdf_root.tag, out)
        return out

    def _walk(self, node: ET.Element, definition: _Definition, path: str, out: list[str]) -> None:
        if definition.any_child:
            return
        for child in node:
            here = f'{path}/{child.tag}' + (f'[{child.get("name")}]' if child.get('name') else '')
            sub = definition.children.get(child.tag)
            if sub is None:
                if (node.tag, child.tag) not in GAZEBO_EXTENSIONS:
                    out.append(here)
                continue
            self._walk(child, sub, here, out)


def published_topics(sdf_root: ET.Element) -> dict[str, str]:
    """Gazebo topic -> Gazebo message type of what the world's sensors and systems publish.

    gpu_lidar: ``<topic>`` (LaserScan) and ``<topic>/points`` (PointCloudPacked); depth_camera:
    ``<topic>`` (Image), the sibling ``camera_info`` (CameraInfo) and ``<topic>/points``;
    OdometryPublisher: ``<odom_topic>`` (Odometry); PosePublisher: ``<topic>`` (Pose, or Pose_V with
    use_pose_vector_msg); the world: ``/clock`` (Clock). Sensors without ``<topic>`` are not listed.
    """
    out = {'/clock': 'gz.msgs.Clock'}
    for sensor in sdf_root.iter('sensor'):
        topic = (sensor.findtext('topic') or '').strip()
        if not topic:
            continue
        kind = sensor.get('type')
        if kind in ('gpu_lidar', 'gpu_ray'):
            out[topic] = 'gz.msgs.LaserScan'
            out[f'{topic}/points'] = 'gz.msgs.PointCloudPacked'
        elif kind in ('depth_camera', 'depth'):
            out[topic] = 'gz.msgs.Image'
            out[topic.rsplit('/', 1)[0] + '/camera_info'] = 'gz.msgs.CameraInfo'
            out[f'{topic}/points'] = 'gz.msgs.PointCloudPacked'
    for plugin in sdf_root.iter('plugin'):
        name = plugin.get('name', '')
        if name == 'gz::sim::systems::OdometryPublisher':
            topic = (plugin.findtext('odom_topic') or '').strip()
            if topic:
                out[topic] = 'gz.msgs.Odometry'
        elif name == 'gz::sim::systems::PosePublisher':
            topic = (plugin.findtext('topic') or '').strip()
            if topic:
                vector = (plugin.findtext('use_pose_vector_msg') or 'false').strip() in ('true', '1')
                out[topic] = 'gz.msgs.Pose_V' if vector else 'gz.msgs.Pose'
    return out


def ign_sdf_check(path: str | Path, timeout_s: float = 120.0) -> tuple[int, str]:
    """``ign sdf -k PATH``: (exit code, output). 0 for a valid world; ConfigError if ``ign`` is missing."""
    ign = shutil.which('ign')
    if ign is None:
        raise ConfigError('ign not found; install the Debian packages ignition-tools and libsdformat-dev')
    done = subprocess.run([ign, 'sdf', '-k', str(path)], capture_output=True, text=True, timeout=timeout_s)
    return done.returncode, done.stdout + done.stderr
