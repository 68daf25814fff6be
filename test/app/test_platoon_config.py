"""The platoon config (app/platoon.py): loading, validation, the derived fusion / twin parameters, node specs."""
from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node

from cooperative_fusion.app import platoon
from cooperative_fusion.app.platoon import NodeKind, NodeSpec, format_parameter, load_platoon_config
from cooperative_fusion.core.config_files import ros_parameters
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.platoon_config import lidar_mount_xy
from platoon_files import CONFIG, domain, vehicle_entry, write_config

FUSION_PLATOON = {'vehicles', 'vehicle_weights', 'footprints.vehicles', 'footprints.length_m', 'footprints.width_m',
                  'footprints.rear_overhang_m', 'footprints.lidar_x_m', 'footprints.lidar_y_m',
                  'dynamic.moved_radius_m', 'dynamic.moved_min_speed_mps'}
TWIN_PLATOON = {'vehicles', 'vehicle_lengths_m', 'vehicle_widths_m', 'vehicle_rear_overhangs_m'}


def test_default_platoon_config_matches_the_params_files():
    cfg = load_platoon_config(None)
    assert cfg.path == (CONFIG / 'platoon.yaml').resolve()
    assert cfg.vehicles == ('v1', 'v2', 'v3', 'v4')
    assert (cfg.run_vehicles, cfg.run_fusion, cfg.run_twin) == (True, True, True)
    assert cfg.vehicle_params['v2'] == ((CONFIG / 'vehicle.yaml').resolve(), (CONFIG / 'vehicles/v2.yaml').resolve())
    assert cfg.fusion_params == ((CONFIG / 'fusion.yaml').resolve(),)
    assert cfg.twin_params == ((CONFIG / 'twin.yaml').resolve(),)
    assert [v.body for v in cfg.platoon] == [platoon.VehicleBody(4.5, 1.8, 1.0), platoon.VehicleBody(12.0, 2.5, 2.5),
                                             platoon.VehicleBody(4.5, 1.8, 1.0), platoon.VehicleBody(4.5, 1.8, 1.0)]
    assert [v.weight for v in cfg.platoon] == [1.0] * 4
    expected = [f'/{v}/evidence_grid' for v in cfg.vehicles] + [f'/{v}/radar/targets' for v in cfg.vehicles] + [
        '/cooperative/grid', '/twin/predicted_grid', '/twin/warnings'] + [
        f'/{v}/twin/advisory' for v in cfg.vehicles] + ['/twin/markers', '/diagnostics']
    assert list(cfg.record_topics) == expected
    specs = cfg.node_specs()
    assert [s.kind for s in specs] == [NodeKind.VEHICLE] * 4 + [NodeKind.FUSION, NodeKind.TWIN]
    assert specs[1].ros_args(use_sim_time=True) == [
        '--ros-args', '--params-file', str((CONFIG / 'vehicle.yaml').resolve()),
        '--params-file', str((CONFIG / 'vehicles/v2.yaml').resolve()),
        '-r', '__ns:=/v2', '-p', "vehicle_id:='v2'", '-p', 'use_sim_time:=true']
    assert specs[4].command('py') == [
        'py', '-m', 'cooperative_fusion.nodes.fusion_node', '--ros-args',
        '--params-file', str((CONFIG / 'fusion.yaml').resolve()),
        '-p', "vehicles:=['v1', 'v2', 'v3', 'v4']", '-p', 'vehicle_weights:=[1.0, 1.0, 1.0, 1.0]',
        '-p', "footprints.vehicles:=['v1', 'v2', 'v3', 'v4']", '-p', 'footprints.length_m:=[4.5, 12.0, 4.5, 4.5]',
        '-p', 'footprints.width_m:=[1.8, 2.5, 1.8, 1.8]', '-p', 'footprints.rear_overhang_m:=[1.0, 2.5, 1.0, 1.0]',
        '-p', 'footprints.lidar_x_m:=[1.2, 9.6, 1.2, 1.2]', '-p', 'footprints.lidar_y_m:=[0.0, 0.0, 0.0, 0.0]',
        '-p', 'dynamic.moved_radius_m:=2.5', '-p', 'dynamic.moved_min_speed_mps:=1.0']
    assert dict(specs[5].parameters) == {
        'vehicles': ('v1', 'v2', 'v3', 'v4'), 'vehicle_lengths_m': (4.5, 12.0, 4.5, 4.5),
        'vehicle_widths_m': (1.8, 2.5, 1.8, 1.8), 'vehicle_rear_overhangs_m': (1.0, 2.5, 1.0, 1.0)}
    # the platoon is declared once: fusion.yaml and twin.yaml do not list it
    assert not FUSION_PLATOON & set(ros_parameters(CONFIG / 'fusion.yaml'))
    assert not TWIN_PLATOON & set(ros_parameters(CONFIG / 'twin.yaml'))


def test_three_vehicle_platoon_derives_fusion_and_twin_parameters(tmp_path):
    path = write_config(tmp_path / 'three.yaml', vehicles=[
        vehicle_entry('lead'),
        vehicle_entry('truck_7', body={'length_m': 16.5, 'width_m': 2.55, 'rear_overhang_m': 4}, weight=0.8),
        vehicle_entry('tail', body={'length_m': 6.0, 'width_m': 2.0, 'rear_overhang_m': 1.2})])
    cfg = load_platoon_config(path)
    assert cfg.vehicles == ('lead', 'truck_7', 'tail')
    assert cfg.record_topics[:3] == ('/lead/evidence_grid', '/truck_7/evidence_grid', '/tail/evidence_grid')
    derived = cfg.node_parameters()
    assert derived == {
        NodeKind.FUSION: {'vehicles': ['lead', 'truck_7', 'tail'], 'vehicle_weights': [1.0, 0.8, 1.0],
                          'footprints.vehicles': ['lead', 'truck_7', 'tail'],
                          'footprints.length_m': [4.5, 16.5, 6.0], 'footprints.width_m': [1.8, 2.55, 2.0],
                          'footprints.rear_overhang_m': [1.0, 4.0, 1.2],
                          'footprints.lidar_x_m': [1.2, 1.2, 1.2], 'footprints.lidar_y_m': [0.0, 0.0, 0.0],
                          'dynamic.moved_radius_m': 2.5, 'dynamic.moved_min_speed_mps': 1.0},
        NodeKind.TWIN: {'vehicles': ['lead', 'truck_7', 'tail'], 'vehicle_lengths_m': [4.5, 16.5, 6.0],
                        'vehicle_widths_m': [1.8, 2.55, 2.0], 'vehicle_rear_overhangs_m': [1.0, 4.0, 1.2]}}
    assert set(derived[NodeKind.FUSION]) == FUSION_PLATOON and set(derived[NodeKind.TWIN]) == TWIN_PLATOON
    # an integer in the file (rear_overhang_m: 4) is still a double for ROS
    assert all(isinstance(x, float) for x in derived[NodeKind.FUSION]['footprints.rear_overhang_m'])
    specs = {s.namespace or s.kind.executable: s for s in cfg.node_specs()}
    assert set(specs) == {'/lead', '/truck_7', '/tail', 'fusion_node', 'twin_node'}
    assert dict(specs['/truck_7'].parameters) == {'vehicle_id': 'truck_7'}
    assert dict(specs['twin_node'].parameters)['vehicle_lengths_m'] == (4.5, 16.5, 6.0)


def test_platoon_parameters_survive_the_command_line():
    """rcl reads the -p values back as the platoon: string arrays (also an id like ``on``), double arrays, doubles."""
    body = platoon.VehicleBody(12.0, 2.5, 2.5)
    vehicles = (platoon.PlatoonVehicle('on', (), body), platoon.PlatoonVehicle('truck_7', (), body, 0.5))
    params = platoon.platoon_parameters(vehicles)[NodeKind.FUSION]
    spec = NodeSpec(NodeKind.FUSION, (), parameters=tuple((k, tuple(v) if isinstance(v, list) else v)
                                                          for k, v in params.items()))
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain())
    try:
        node = Node('probe', context=ctx, cli_args=spec.ros_args(use_sim_time=False),
                    automatically_declare_parameters_from_overrides=True)
        got = {name: node.get_parameter(name).value for name in params}
        assert node.get_parameter('use_sim_time').value is False
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
    assert {k: list(v) if isinstance(params[k], list) else v for k, v in got.items()} == params
    assert isinstance(got['dynamic.moved_radius_m'], float)
    assert format_parameter("it's") == "'it''s'" and format_parameter(3) == '3' and format_parameter(True) == 'true'
    with pytest.raises(ConfigError, match='empty list'):
        format_parameter([])


def _bad(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((CONFIG / 'platoon.yaml').read_text())
    for section in raw['vehicles']:
        section['params'] = [str(CONFIG / p) for p in section['params']]
    raw['fusion']['params'] = [str(CONFIG / 'fusion.yaml')]
    raw['twin']['params'] = [str(CONFIG / 'twin.yaml')]
    mutate(raw)
    path = tmp_path / 'platoon.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize('mutate, match', [
    (lambda r: r['vehicles'][1].update(id='v1'), r"vehicles\[1\]\.id: vehicle id 'v1' appears twice"),
    (lambda r: r['vehicles'][0].update(id='1v'), r"vehicles\[0\]\.id: expected a vehicle id like v1"),
    (lambda r: r['vehicles'][2].pop('params'), r"vehicles\[2\]\.params: missing"),
    (lambda r: r['vehicles'][2].pop('body'), r"vehicles\[2\]\.body: missing; give the body as"),
    (lambda r: r['vehicles'][1]['body'].pop('width_m'), r"vehicles\[1\]\.body\.width_m: missing \(metres\)"),
    (lambda r: r['vehicles'][1]['body'].update(height_m=3.0), r"vehicles\[1\]\.body\.height_m: unknown key"),
    (lambda r: r['vehicles'][0]['body'].update(length_m=0), r"vehicles\[0\]\.body\.length_m: expected metres > 0"),
    (lambda r: r['vehicles'][0]['body'].update(width_m='wide'),
     r"vehicles\[0\]\.body\.width_m: expected a finite number, got 'wide'"),
    (lambda r: r['vehicles'][1]['body'].update(rear_overhang_m=12.0),
     r"vehicles\[1\]\.body\.rear_overhang_m: expected metres in \[0, length_m 12\), got 12\.0"),
    (lambda r: r['vehicles'][3].update(weight=1.5), r"vehicles\[3\]\.weight: expected a fusion weight in \(0, 1\]"),
    (lambda r: r['vehicles'][3].update(weight=0), r"vehicles\[3\]\.weight: expected a fusion weight in \(0, 1\]"),
    (lambda r: r['vehicles'][3].update(wieght=0.5), r"vehicles\[3\]\.wieght: unknown key"),
    (lambda r: r['run'].update(fusion='yes'), r"run\.fusion: expected true or false, got 'yes'"),
    (lambda r: r['run'].update(radar=True), r"run\.radar: unknown key"),
    (lambda r: r.update(vehicles=[]), r"vehicles: expected a non-empty list"),
    (lambda r: r['record'].update(topics=['cooperative/grid']), r"record\.topics\[0\]: expected an absolute topic"),
    (lambda r: r.update(drain_s=-1), r"drain_s: expected seconds in \[0, 3600\), got -1"),
    (lambda r: r.update(recrod={}), r"recrod: unknown key"),
])
def test_bad_config_names_file_and_key(tmp_path, mutate, match):
    path = _bad(tmp_path, mutate)
    with pytest.raises(ConfigError, match=rf'{path.resolve()}: {match}'):
        load_platoon_config(path)


def test_weight_defaults_to_one(tmp_path):
    path = _bad(tmp_path, lambda r: r['vehicles'][1].pop('weight'))
    assert load_platoon_config(path).node_parameters()[NodeKind.FUSION]['vehicle_weights'] == [1.0] * 4


def test_missing_or_malformed_params_files(tmp_path):
    path = write_config(tmp_path / 'a.yaml')
    raw = yaml.safe_load(path.read_text())
    raw['vehicles'][1]['params'][1] = 'nowhere.yaml'
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"vehicles\[1\]\.params\[1\]: params file .*nowhere\.yaml does not exist"):
        load_platoon_config(path)
    (tmp_path / 'nowhere.yaml').write_text('vehicle_id: v2\n')    # not a ROS params file
    with pytest.raises(ConfigError, match=r"node 'vehicle_id' has no ros__parameters mapping"):
        load_platoon_config(path)
    # a node that is switched off needs no params file
    raw['vehicles'][1]['params'][1] = str(CONFIG / 'vehicles' / 'v2.yaml')
    raw['run']['fusion'] = False
    raw['fusion']['params'] = ['missing-fusion.yaml']
    path.write_text(yaml.safe_dump(raw))
    assert load_platoon_config(path).run_fusion is False


# ------------------------------------------- platoon_file: fusion and twin started by hand (issue 14) --

def _three(tmp_path: Path) -> Path:
    path = write_config(tmp_path / 'three.yaml', vehicles=[
        vehicle_entry('lead'),
        vehicle_entry('truck_7', body={'length_m': 16.5, 'width_m': 2.55, 'rear_overhang_m': 4.0}, weight=0.8),
        vehicle_entry('tail')])
    raw = yaml.safe_load(path.read_text())
    raw['run']['vehicles'] = False
    path.write_text(yaml.safe_dump(raw))
    return path


def test_fusion_and_twin_load_the_platoon_from_platoon_file(tmp_path):
    from rclpy.parameter import Parameter

    from cooperative_fusion.nodes.fusion_node import FusionNode
    from cooperative_fusion.nodes.twin_node import TwinNode

    path = _three(tmp_path)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain())
    try:
        fusion = FusionNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(path))])
        twin = TwinNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(path))])
        try:
            value = lambda node, name: list(node.get_parameter(name).value)     # noqa: E731
            assert value(fusion, 'vehicles') == value(fusion, 'footprints.vehicles') == ['lead', 'truck_7', 'tail']
            assert value(fusion, 'vehicle_weights') == [1.0, 0.8, 1.0]
            assert fusion.cfg.vehicles == ('lead', 'truck_7', 'tail')
            assert value(twin, 'vehicles') == ['lead', 'truck_7', 'tail']
            assert value(twin, 'vehicle_lengths_m') == [4.5, 16.5, 4.5]
        finally:
            fusion.destroy_node()
            twin.destroy_node()
        # an explicit list that agrees is fine (ints for floats too); one that disagrees names both
        FusionNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(path)),
                                                     Parameter('vehicles', value=['lead', 'truck_7', 'tail'])]
                   ).destroy_node()
        TwinNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(path)),
                                                   Parameter('vehicle_widths_m', value=[1.8, 2.55, 1.8])]
                 ).destroy_node()
        with pytest.raises(ConfigError, match=r"parameter 'vehicles' = \['v1', 'v2'\] disagrees with platoon_file "
                                              r".*three\.yaml, which gives \['lead', 'truck_7', 'tail'\]"):
            FusionNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(path)),
                                                         Parameter('vehicles', value=['v1', 'v2'])])
        # a platoon-wide value too: the vehicles' radar.moving_radius_m (vehicle.yaml: 2.5)
        with pytest.raises(ConfigError, match=r"parameter 'dynamic\.moved_radius_m' = 3\.0 disagrees with platoon_file "
                                              r".*three\.yaml, which gives 2\.5"):
            FusionNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(path)),
                                                         Parameter('dynamic.moved_radius_m', value=3.0)])
        with pytest.raises(ConfigError, match=r"nope\.yaml: bringup config does not exist"):
            TwinNode(context=ctx, parameter_overrides=[Parameter('platoon_file', value=str(tmp_path / 'nope.yaml'))])
        # without platoon_file: the node's own platoon parameters, whose defaults are the shipped platoon
        fusion = FusionNode(context=ctx)
        try:
            assert fusion.cfg.vehicles == load_platoon_config(None).vehicles
            assert fusion.get_parameter('platoon_file').value == ''
        finally:
            fusion.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


def test_loader_lives_in_core_and_the_bringup_adds_node_specs():
    from cooperative_fusion.core import platoon_config as core

    cfg = load_platoon_config(None)
    assert isinstance(cfg, core.PlatoonConfig) and cfg == platoon.PlatoonConfig(
        **{k: getattr(core.load_platoon_config(None), k) for k in core.PlatoonConfig.__dataclass_fields__})
    assert platoon.platoon_parameters is core.platoon_parameters and platoon.NodeKind is core.NodeKind
    assert not hasattr(core.load_platoon_config(None), 'node_specs')


def test_platoon_file_from_the_command_line_as_the_readme_gives_it(tmp_path, monkeypatch):
    """Relative to the working directory, with an agreeing ``-p`` list (rcl's own types) and a disagreeing one."""
    from cooperative_fusion.nodes.twin_node import TwinNode

    _three(tmp_path)
    monkeypatch.chdir(tmp_path)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain())
    try:
        twin = TwinNode(context=ctx, cli_args=['--ros-args', '-p', 'platoon_file:=three.yaml',
                                               '-p', 'vehicle_lengths_m:=[4.5, 16.5, 4.5]'])
        try:
            assert twin.cfg.vehicles == ('lead', 'truck_7', 'tail')
        finally:
            twin.destroy_node()
        with pytest.raises(ConfigError, match=r"'vehicle_lengths_m' = \[4\.5, 12\.0, 4\.5\] disagrees with "
                                              r"platoon_file three\.yaml, which gives \[4\.5, 16\.5, 4\.5\]"):
            TwinNode(context=ctx, cli_args=['--ros-args', '-p', 'platoon_file:=three.yaml',
                                            '-p', 'vehicle_lengths_m:=[4.5, 12.0, 4.5]'])
    finally:
        rclpy.try_shutdown(context=ctx)


def test_lidar_mount_comes_from_the_vehicles_extrinsics(tmp_path):
    """footprints.lidar_x_m / lidar_y_m: extrinsics.lidar of the params files, a later file winning; the vehicle
    node's default where none gives it (or a file cannot be read), as the vehicle node takes it."""
    own = tmp_path / 'own.yaml'
    own.write_text(yaml.safe_dump({'/truck/vehicle_node': {'ros__parameters': {
        'extrinsics': {'lidar': [12.1, -0.3, 2.6, 0.0, 0.0, 0.0]}}}}))
    bare = tmp_path / 'bare.yaml'
    bare.write_text(yaml.safe_dump({'/x/vehicle_node': {'ros__parameters': {'vehicle_id': 'x'}}}))
    assert lidar_mount_xy((CONFIG / 'vehicle.yaml', own)) == (12.1, -0.3)
    assert lidar_mount_xy((own, CONFIG / 'vehicle.yaml')) == (1.2, 0.0)
    assert lidar_mount_xy((own, bare)) == (12.1, -0.3)
    assert lidar_mount_xy((bare, tmp_path / 'missing.yaml')) == (1.2, 0.0)
    assert VehicleNode_default('extrinsics.lidar')[:2] == [1.2, 0.0]
    short = tmp_path / 'short.yaml'
    short.write_text(yaml.safe_dump({'/x/vehicle_node': {'ros__parameters': {'extrinsics': {'lidar': [12.1, 0.0]}}}}))
    with pytest.raises(ConfigError, match=r"vehicle x: extrinsics.lidar \[12.1, 0.0\] in its params files: expected "
                                          r"\[x, y, z, roll, pitch, yaw\]"):
        lidar_mount_xy((own, short), 'x')
    mixed = load_platoon_config(CONFIG / 'scenarios/platoon_mixed/platoon.yaml').node_parameters()[NodeKind.FUSION]
    assert mixed['footprints.lidar_x_m'] == [1.4, 4.6, 1.0, 1.3, 12.1, 1.1]
    assert mixed['footprints.lidar_y_m'] == [0.0, 0.0, 0.0, 0.2, 0.0, 0.0]


def VehicleNode_default(name: str):
    """The vehicle node's declared default of parameter ``name``."""
    from cooperative_fusion.nodes.vehicle_node import PARAMS

    return next(p.default for p in PARAMS if p.name == name)


def test_dynamic_moved_parameters_come_from_the_vehicles_radar_parameters(tmp_path):
    """dynamic.moved_radius_m / moved_min_speed_mps: the vehicles' radar.moving_radius_m / moving_min_speed_mps
    (params files, else the vehicle node's default); vehicles that differ are an error naming them."""
    def vehicle_file(name: str, radar: dict) -> str:
        path = tmp_path / f'{name}.yaml'
        path.write_text(yaml.safe_dump({f'/{name}/vehicle_node': {'ros__parameters': {'radar': radar}}}))
        return str(path)

    base = str(CONFIG / 'vehicle.yaml')
    fast = vehicle_file('fast', {'moving_radius_m': 3.0, 'moving_min_speed_mps': 2})
    path = write_config(tmp_path / 'p.yaml', vehicles=[vehicle_entry('a', params=[base, fast]),
                                                       vehicle_entry('b', params=[fast])])
    fusion = load_platoon_config(path).node_parameters()[NodeKind.FUSION]
    assert (fusion['dynamic.moved_radius_m'], fusion['dynamic.moved_min_speed_mps']) == (3.0, 2.0)
    assert isinstance(fusion['dynamic.moved_min_speed_mps'], float)       # 2 in the file: a double for ROS
    # the vehicle node's defaults where no file gives them
    bare = vehicle_file('bare', {'p_hit': 0.7})
    fusion = load_platoon_config(write_config(tmp_path / 'q.yaml', vehicles=[vehicle_entry('a', params=[bare])])
                                 ).node_parameters()[NodeKind.FUSION]
    assert fusion['dynamic.moved_radius_m'] == VehicleNode_default('radar.moving_radius_m') == 2.5
    assert fusion['dynamic.moved_min_speed_mps'] == VehicleNode_default('radar.moving_min_speed_mps') == 1.0
    # vehicles that differ: one fusion value cannot hold both
    path = write_config(tmp_path / 'r.yaml', vehicles=[vehicle_entry('a', params=[base]),
                                                       vehicle_entry('b', params=[base, fast])])
    with pytest.raises(ConfigError, match=r"r\.yaml: the vehicles' radar\.moving_radius_m differ \(a 2\.5, b 3\): "
                                          r"the fusion takes one value for the platoon"):
        load_platoon_config(path).node_parameters()
    bad = vehicle_file('bad', {'moving_radius_m': 'far'})
    path = write_config(tmp_path / 's.yaml', vehicles=[vehicle_entry('a', params=[base, bad])])
    with pytest.raises(ConfigError, match=r"vehicle a: radar\.moving_radius_m 'far' in its params files: expected "
                                          r"a number >= 0"):
        load_platoon_config(path).node_parameters()
