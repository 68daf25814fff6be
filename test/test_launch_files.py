"""The launch files, checked without the `launch` package (not installable here).

Static checks (ast): each file compiles, every ``executable=`` is a console
script of setup.py, every config file named exists, every LaunchConfiguration
has its DeclareLaunchArgument. Then each file is executed against small stand-ins
of launch / launch_ros / ament_index_python, and the nodes it would start are
compared with the in-process bringup's (config/platoon.yaml): same executables,
namespaces, params files in the same order, same parameters (the platoon
parameters of fusion and twin derived from the platoon config included).
"""
from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from cooperative_fusion.app import platoon
from cooperative_fusion.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch'
CONFIG = REPO / 'config'
FILES = ('vehicle.launch.py', 'edge_twin.launch.py', 'platoon_replay.launch.py')
ARGUMENTS = {
    'vehicle.launch.py': {'vehicle_id', 'params_file', 'vehicle_params_file', 'use_sim_time', 'advisory_follower',
                          'follower_mode', 'platoon_file'},
    'edge_twin.launch.py': {'platoon_file', 'fusion_params_file', 'twin_params_file', 'use_sim_time', 'shards'},
    'platoon_replay.launch.py': {'bag', 'platoon_file', 'vehicles', 'rate', 'delay'},
}


def _tree(name: str) -> ast.Module:
    return ast.parse((LAUNCH / name).read_text(), filename=name)


def _calls(tree: ast.AST, func: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, 'id', None) == func or getattr(n.func, 'attr', None) == func)]


def _constants(tree: ast.Module) -> dict[str, object]:
    """Module-level ``NAME = <literal>`` assignments."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _console_scripts() -> set[str]:
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    entries = ast.literal_eval(value)
                    return {re.split(r'\s*=\s*', e, maxsplit=1)[0].strip() for e in entries}
    raise AssertionError('setup.py declares no console_scripts')


@pytest.mark.parametrize('name', FILES)
def test_launch_file_compiles_and_names_real_things(name):
    src = (LAUNCH / name).read_text()
    compile(src, str(LAUNCH / name), 'exec')
    tree = _tree(name)
    consts = _constants(tree)

    def literal(node: ast.expr) -> object:
        return consts[node.id] if isinstance(node, ast.Name) else ast.literal_eval(node)

    scripts = _console_scripts()
    executables = [literal(kw.value) for call in _calls(tree, 'Node') for kw in call.keywords
                   if kw.arg == 'executable']
    assert executables, 'no launch_ros Node'
    assert set(executables) <= scripts, f'not console scripts of setup.py: {set(executables) - scripts}'
    packages = [literal(kw.value) for call in _calls(tree, 'Node') for kw in call.keywords if kw.arg == 'package']
    assert packages and set(packages) == {'cooperative_fusion'}
    assert [literal(c.args[0]) for c in _calls(tree, 'get_package_share_directory')] == ['cooperative_fusion']
    # every params file the launch file names exists in config/
    named = [v for v in consts.values() if isinstance(v, str) and v.endswith('.yaml')]
    assert named
    for file in named:
        assert (CONFIG / file).is_file(), file
    if 'VEHICLE_OVERRIDE_DIR' in consts:
        assert (CONFIG / consts['VEHICLE_OVERRIDE_DIR']).is_dir()
    # arguments: exactly the documented ones, each used, and nothing used undeclared
    declared = {call.args[0].value for call in _calls(tree, 'DeclareLaunchArgument')}
    used = {call.args[0].value for call in _calls(tree, 'LaunchConfiguration')}
    assert declared == ARGUMENTS[name]
    assert used == declared


@pytest.mark.parametrize('name', FILES)
def test_launch_files_point_fastdds_at_the_profiles(name):
    """config/fastdds_live.xml (test_fastdds_profiles.py) is what each launch file exports, installed by setup.py."""
    tree = _tree(name)
    consts = _constants(tree)
    assert consts['FASTDDS_ENV'] == 'FASTDDS_DEFAULT_PROFILES_FILE'
    assert CONFIG / consts['FASTDDS_PROFILES'] == CONFIG / 'fastdds_live.xml'
    assert _calls(tree, 'SetEnvironmentVariable')
    # installed next to the params files the launch files find through the share directory
    assert "glob('config/*.xml')" in (REPO / 'setup.py').read_text()


def test_launch_defaults_match_the_bringup_config():
    cfg = platoon.load_platoon_config(None)
    replay = _constants(_tree('platoon_replay.launch.py'))
    edge = _constants(_tree('edge_twin.launch.py'))
    vehicle = _constants(_tree('vehicle.launch.py'))
    assert replay['PLATOON_CONFIG'] == edge['PLATOON_CONFIG'] == platoon.DEFAULT_CONFIG
    assert cfg.fusion_params == ((CONFIG / edge['FUSION_PARAMS']).resolve(),)
    assert cfg.twin_params == ((CONFIG / edge['TWIN_PARAMS']).resolve(),)
    for v in cfg.vehicles:
        assert cfg.vehicle_params[v] == ((CONFIG / vehicle['VEHICLE_PARAMS']).resolve(),
                                         (CONFIG / vehicle['VEHICLE_OVERRIDE_DIR'] / f'{v}.yaml').resolve())


# ------------------------------------------------------- executing the files --

class _Action:
    def __init__(self, *args, **kwargs) -> None:
        self.args = args
        self.kwargs = kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: '_Context') -> str:
        return context.launch_configurations[self.name]


class _Context:
    def __init__(self, configurations: dict[str, str]) -> None:
        self.launch_configurations = configurations


def _stub_modules(monkeypatch) -> None:
    def module(name: str, **attrs) -> None:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)

    names = ('DeclareLaunchArgument', 'OpaqueFunction', 'ExecuteProcess', 'EmitEvent', 'RegisterEventHandler',
             'SetEnvironmentVariable')
    module('launch', LaunchDescription=lambda actions: list(actions))
    module('launch.actions', **{n: type(n, (_Action,), {}) for n in names})
    module('launch.substitutions', LaunchConfiguration=_LaunchConfiguration)
    module('launch.event_handlers', OnProcessExit=type('OnProcessExit', (_Action,), {}))
    module('launch.events', Shutdown=type('Shutdown', (_Action,), {}))
    module('launch_ros')
    module('launch_ros.actions', Node=type('Node', (_Action,), {}))
    module('ament_index_python')
    # the "installed" share dir is the source checkout: same config/ tree as setup.py installs
    module('ament_index_python.packages', get_package_share_directory=lambda pkg: str(REPO))


def _expand(name: str, monkeypatch, **arguments: str) -> list[_Action]:
    """The actions of ``name`` with the given launch arguments (others: their defaults)."""
    _stub_modules(monkeypatch)
    namespace: dict[str, object] = {'__file__': str(LAUNCH / name), '__name__': 'launch_file'}
    exec(compile((LAUNCH / name).read_text(), str(LAUNCH / name), 'exec'), namespace)
    description = namespace['generate_launch_description']()
    configurations = {}
    for action in description:
        if type(action).__name__ == 'DeclareLaunchArgument':
            arg = action.args[0]
            if arg in arguments:
                configurations[arg] = arguments[arg]
            else:
                assert 'default_value' in action.kwargs, f'{name}: argument {arg} has no default; pass it'
                configurations[arg] = action.kwargs['default_value']
    context = _Context(configurations)
    actions = []
    for action in description:
        if type(action).__name__ == 'OpaqueFunction':
            actions += action.kwargs['function'](context)
        else:
            actions.append(action)
    return actions


def _nodes(name: str, monkeypatch, **arguments: str) -> list[_Action]:
    return [a for a in _expand(name, monkeypatch, **arguments) if type(a).__name__ == 'Node']


def _node_view(action: _Action) -> tuple[str, str, list[str], dict[str, object]]:
    """(executable, namespace, params files, inline parameters) of a launch_ros Node."""
    kw = action.kwargs
    files = [str(Path(p).resolve()) for p in kw['parameters'] if isinstance(p, str)]
    inline: dict[str, object] = {}
    for p in kw['parameters']:
        if isinstance(p, dict):
            inline.update(p)
    return kw['executable'], kw.get('namespace', ''), files, inline


def _spec_view(spec: platoon.NodeSpec, use_sim_time: bool) -> tuple[str, str, list[str], dict[str, object]]:
    inline = {name: list(value) if isinstance(value, tuple) else value for name, value in spec.parameters}
    return (spec.kind.executable, spec.namespace.strip('/'), [str(p) for p in spec.params_files],
            {**inline, 'use_sim_time': use_sim_time})


def _three_vehicle_platoon(tmp_path: Path) -> Path:
    """lead (car), truck_7 (truck, weight 0.8), tail (van): vehicle.yaml only, absolute paths."""
    vehicle = str(CONFIG / 'vehicle.yaml')
    raw = {'vehicles': [
        {'id': 'lead', 'params': [vehicle], 'body': {'length_m': 4.5, 'width_m': 1.8, 'rear_overhang_m': 1.0}},
        {'id': 'truck_7', 'params': [vehicle], 'body': {'length_m': 16.5, 'width_m': 2.55, 'rear_overhang_m': 4.0},
         'weight': 0.8},
        {'id': 'tail', 'params': [vehicle], 'body': {'length_m': 6.0, 'width_m': 2.0, 'rear_overhang_m': 1.2}}],
        'fusion': {'params': [str(CONFIG / 'fusion.yaml')]}, 'twin': {'params': [str(CONFIG / 'twin.yaml')]}}
    path = tmp_path / 'three.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


THREE_FUSION = {'vehicles': ['lead', 'truck_7', 'tail'], 'vehicle_weights': [1.0, 0.8, 1.0],
                'footprints.vehicles': ['lead', 'truck_7', 'tail'], 'footprints.length_m': [4.5, 16.5, 6.0],
                'footprints.width_m': [1.8, 2.55, 2.0], 'footprints.rear_overhang_m': [1.0, 4.0, 1.2],
                'footprints.lidar_x_m': [1.2, 1.2, 1.2], 'footprints.lidar_y_m': [0.0, 0.0, 0.0],
                'dynamic.moved_radius_m': 2.5, 'dynamic.moved_min_speed_mps': 1.0}
THREE_TWIN = {'vehicles': ['lead', 'truck_7', 'tail'], 'vehicle_lengths_m': [4.5, 16.5, 6.0],
              'vehicle_widths_m': [1.8, 2.55, 2.0], 'vehicle_rear_overhangs_m': [1.0, 4.0, 1.2]}


def test_platoon_replay_starts_what_the_bringup_composes(monkeypatch):
    actions = _expand('platoon_replay.launch.py', monkeypatch, bag='/data/scenario')
    nodes = [_node_view(a) for a in actions if type(a).__name__ == 'Node']
    cfg = platoon.load_platoon_config(None)
    assert nodes == [_spec_view(s, True) for s in cfg.node_specs()]
    # fusion and twin get the default platoon's ids, weights and bodies
    assert nodes[4][3]['vehicles'] == nodes[5][3]['vehicles'] == ['v1', 'v2', 'v3', 'v4']
    assert nodes[4][3]['footprints.length_m'] == nodes[5][3]['vehicle_lengths_m'] == [4.5, 12.0, 4.5, 4.5]
    assert nodes[4][3]['vehicle_weights'] == [1.0] * 4
    (play,) = [a for a in actions if type(a).__name__ == 'ExecuteProcess']
    assert play.kwargs['cmd'] == ['ros2', 'bag', 'play', '/data/scenario', '--clock', '100', '--rate', '1.0',
                                  '--delay', '2.0']
    (handler,) = [a for a in actions if type(a).__name__ == 'RegisterEventHandler']
    assert handler.args[0].kwargs['target_action'] is play
    # a subset of the vehicle nodes (platoon order); fusion and twin still take the whole platoon
    actions = _expand('platoon_replay.launch.py', monkeypatch, bag='b', vehicles='v3, v1')
    nodes = [_node_view(a) for a in actions if type(a).__name__ == 'Node']
    assert [n[1] for n in nodes] == ['v1', 'v3', '', '']
    assert nodes[2][3]['vehicles'] == ['v1', 'v2', 'v3', 'v4']
    with pytest.raises(ConfigError, match=r"vehicles:=v1,v9: \['v9'\] not in the platoon"):
        _expand('platoon_replay.launch.py', monkeypatch, bag='b', vehicles='v1,v9')


def test_launch_files_take_the_platoon_from_the_platoon_file(monkeypatch, tmp_path):
    path = _three_vehicle_platoon(tmp_path)
    cfg = platoon.load_platoon_config(path)
    nodes = [_node_view(a) for a in _nodes('platoon_replay.launch.py', monkeypatch, bag='b',
                                           platoon_file=str(path))]
    assert nodes == [_spec_view(s, True) for s in cfg.node_specs()]
    assert [n[1] for n in nodes] == ['lead', 'truck_7', 'tail', '', '']
    assert nodes[3][3] == {**THREE_FUSION, 'use_sim_time': True}
    assert nodes[4][3] == {**THREE_TWIN, 'use_sim_time': True}
    edge = [_node_view(a) for a in _nodes('edge_twin.launch.py', monkeypatch, platoon_file=str(path))]
    assert edge == [_spec_view(s, False) for s in cfg.node_specs() if s.kind != platoon.NodeKind.VEHICLE]
    assert edge[0][3] == {**THREE_FUSION, 'use_sim_time': False}
    assert edge[1][3] == {**THREE_TWIN, 'use_sim_time': False}


def test_edge_launch_with_shards_starts_the_shards_and_the_combiner(monkeypatch):
    actions = _nodes('edge_twin.launch.py', monkeypatch, shards='2')
    assert [(a.kwargs['executable'], a.kwargs['name']) for a in actions] == [
        ('fusion_node', 'fusion_shard_0'), ('fusion_node', 'fusion_shard_1'), ('fusion_combiner', 'fusion_combiner'),
        ('twin_node', 'twin_node')]
    views = [_node_view(a) for a in actions]
    single = _node_view(_nodes('edge_twin.launch.py', monkeypatch)[0])
    for k in range(2):
        assert views[k][2] == single[2]          # the same params files
        assert views[k][3] == {**single[3], 'shard.index': k, 'shard.count': 2}
    assert views[2][3] == {**single[3], 'shard.count': 2}


def test_vehicle_launch_matches_the_bringup_vehicle(monkeypatch):
    cfg = platoon.load_platoon_config(None)
    spec = next(s for s in cfg.node_specs() if s.namespace == '/v2')
    (node,) = _nodes('vehicle.launch.py', monkeypatch, vehicle_id='v2')
    assert _node_view(node) == _spec_view(spec, False)
    # a vehicle without its own file gets the shared file only
    (node,) = _nodes('vehicle.launch.py', monkeypatch, vehicle_id='v9', use_sim_time='true')
    assert _node_view(node) == ('vehicle_node', 'v9', [str(CONFIG / 'vehicle.yaml')],
                                {'vehicle_id': 'v9', 'use_sim_time': True})


def test_vehicle_launch_starts_the_advisory_follower_on_request(monkeypatch):
    vehicle, follower = _nodes('vehicle.launch.py', monkeypatch, vehicle_id='v3', advisory_follower='true',
                               follower_mode='ego')
    assert _node_view(vehicle)[0] == 'vehicle_node'
    assert _node_view(follower) == ('advisory_follower', 'v3', [str(CONFIG / 'advisory_follower.yaml')],
                                    {'vehicle_id': 'v3', 'platoon_file': str(CONFIG / 'platoon.yaml'),
                                     'use_sim_time': False, 'follower.mode': 'ego'})


def test_edge_twin_launch_matches_the_bringup(monkeypatch, tmp_path):
    cfg = platoon.load_platoon_config(None)
    nodes = [_node_view(a) for a in _nodes('edge_twin.launch.py', monkeypatch, use_sim_time='true')]
    assert nodes == [_spec_view(s, True) for s in cfg.node_specs() if s.kind != platoon.NodeKind.VEHICLE]
    # explicit params files replace the platoon config's; the platoon parameters stay
    own = tmp_path / 'my_fusion.yaml'
    own.write_text('/**:\n  ros__parameters:\n    publish_rate_hz: 5.0\n')
    fusion, twin = _nodes('edge_twin.launch.py', monkeypatch, fusion_params_file=str(own))
    assert _node_view(fusion)[2] == [str(own)] and _node_view(twin)[2] == [str(CONFIG / 'twin.yaml')]
    assert _node_view(fusion)[3]['vehicles'] == ['v1', 'v2', 'v3', 'v4']


# ------------------------------------------------------ per-vehicle params --

def test_vehicle_override_files_match_the_scenario_mounts():
    """config/vehicles/<v>.yaml holds each vehicle's extrinsics: the simulator's mounts in every scenario."""
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import sensor_extrinsics

    cfg = platoon.load_platoon_config(None)
    for v in cfg.vehicles:
        (key, body), = yaml.safe_load((CONFIG / 'vehicles' / f'{v}.yaml').read_text()).items()
        assert key == f'/{v}/vehicle_node'
        params = body['ros__parameters']
        assert params['vehicle_id'] == v
        for scenario_file in sorted((CONFIG / 'scenarios').glob('*.yaml')):
            scenario = load_scenario(scenario_file)
            if v not in scenario.vehicle_ids:
                continue
            for sensor, six in sensor_extrinsics(scenario, v).items():
                np.testing.assert_allclose(params['extrinsics'][sensor], six, atol=1e-9,
                                           err_msg=f'{v} {sensor} vs {scenario_file.name}')


# ------------------------------------------ gazebo_platoon.launch.py (issue 15) --
# Kept apart from FILES: this file also starts ros_gz_bridge, gz sim and ros2 bag.

GAZEBO_LAUNCH = 'gazebo_platoon.launch.py'


def test_gazebo_launch_names_real_things():
    tree = _tree(GAZEBO_LAUNCH)
    consts = _constants(tree)
    declared = {call.args[0].value for call in _calls(tree, 'DeclareLaunchArgument')}
    used = {call.args[0].value for call in _calls(tree, 'LaunchConfiguration')}
    assert declared == used == {'world_dir', 'platoon_file', 'vehicles', 'duration', 'headless', 'record'}
    assert (CONFIG / consts['PLATOON_CONFIG']).is_file()
    from cooperative_fusion.sim import gazebo

    assert (consts['WORLD_FILE'], consts['BRIDGE_FILE'], consts['GAZEBO_PARAMS']) == (
        gazebo.WORLD_FILE, gazebo.BRIDGE_FILE, gazebo.PARAMS_FILE)


@pytest.fixture(scope='module')
def gazebo_world(tmp_path_factory):
    from cooperative_fusion.sim.gazebo import export_gazebo
    from cooperative_fusion.sim.scenario import load_scenario

    scenario = load_scenario(CONFIG / 'scenarios' / 'highway_occlusion.yaml')
    return scenario, export_gazebo(scenario, tmp_path_factory.mktemp('gz'), CONFIG / 'platoon.yaml')


def test_gazebo_launch_starts_gazebo_bridge_platoon_and_recorder(monkeypatch, gazebo_world, tmp_path):
    scenario, export = gazebo_world
    actions = _expand(GAZEBO_LAUNCH, monkeypatch, world_dir=str(export.out_dir), record=str(tmp_path / 'run'))
    processes = [a for a in actions if type(a).__name__ == 'ExecuteProcess']
    gz, record = processes
    cmd = gz.kwargs['cmd']
    assert cmd[:3] == ['gz', 'sim', '-r'] and '-s' in cmd
    assert cmd[cmd.index('--iterations') + 1] == str(int(scenario.duration_s / 0.001))
    assert Path(cmd[-1]) == export.world and export.world.is_file()
    assert gz.kwargs['additional_env']['GZ_SIM_SYSTEM_PLUGIN_PATH'].split(':')[0] == str(export.out_dir)
    assert (export.out_dir / 'scenario_motion.py').is_file()       # PythonSystemLoader's module_name
    nodes = [a for a in actions if type(a).__name__ == 'Node']
    bridge = nodes[0]
    assert (bridge.kwargs['package'], bridge.kwargs['executable']) == ('ros_gz_bridge', 'parameter_bridge')
    (params,) = bridge.kwargs['parameters']
    assert Path(params['config_file']) == export.bridge and params['use_sim_time'] is True
    cfg = platoon.load_platoon_config(None)
    scripts = _console_scripts()
    views = [_node_view(n) for n in nodes[1:]]
    assert {v[0] for v in views} <= scripts
    want = []
    for s in cfg.node_specs():
        exe, ns, files, inline = _spec_view(s, True)
        if s.kind == platoon.NodeKind.VEHICLE:
            files = files + [str(export.params)]
        want.append((exe, ns, files, inline))
    assert views == want
    rec = record.kwargs['cmd']
    assert rec[:4] == ['ros2', 'bag', 'record', '-s'] and rec[4] == 'mcap' and '--use-sim-time' in rec
    assert Path(rec[rec.index('-o') + 1]) == tmp_path / 'run'
    topics = set(rec[rec.index('-o') + 2:])
    bridged = {e['ros_topic_name'] for e in yaml.safe_load(export.bridge.read_text())}
    outputs = {t.replace('<v>', v) for t in cfg.record_topics for v in cfg.vehicles}
    assert topics == bridged | outputs
    assert {'/clock', '/v1/lidar/points', '/truth/odom/v4', '/truth/pose/t2', '/cooperative/grid'} <= topics


def test_gazebo_launch_without_record_records_nothing(monkeypatch, gazebo_world):
    _, export = gazebo_world
    actions = _expand(GAZEBO_LAUNCH, monkeypatch, world_dir=str(export.out_dir), headless='false')
    (gz,) = [a for a in actions if type(a).__name__ == 'ExecuteProcess']
    assert '-s' not in gz.kwargs['cmd']
