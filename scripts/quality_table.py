#!/usr/bin/env python3
"""Measured quality table of the README (issue 4, item 4) on highway_occlusion.

Simulates the scenario and its variants (reusing bags already in --work),
runs each through the vehicle nodes and the fusion node (deterministic
lock-step, ``cooperative-fusion run``; the twin is off: it does not change the
common grid), evaluates the result against the truth and writes the table:

* cooperative vs ego-only for each grid metric (default scenario);
* clocks: perfect clocks (highway_occlusion_ideal_clocks.yaml) / default
  clocks (+-200 ms, up to 50 ppm) corrected by the vehicles' timebase /
  the same uncorrected (vehicle param ``timebase.enabled: false``);
* pose bias and co-registration (fusion param ``coregistration.enabled`` set
  explicitly in every row): highway_occlusion on / off, and the landmark pair
  (guard-rail posts beside the road: static structure to register on):
  unbiased (highway_occlusion_landmarks.yaml) on / off, 0.5 m lateral and 1 deg
  on v1 (highway_occlusion_landmarks_v1_bias.yaml) on / off; every vehicle's
  co-registration correction at the end of each run (from ``/diagnostics``)
  against the inverse of its bias in the scenario file;
* bandwidth per vehicle and fusion latency.

    .venv/bin/python scripts/quality_table.py [--work DIR] [--out docs/quality.md] [--duration S] [--seed N]
    .venv/bin/python scripts/quality_table.py --work DIR --pose-bias-section   # only that section of --out

Every number in the output comes from the runs it makes; nothing is typed in.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'config'
PY = sys.executable

SCENARIOS = {
    'default': CONFIG / 'scenarios' / 'highway_occlusion.yaml',
    'ideal_clocks': CONFIG / 'scenarios' / 'highway_occlusion_ideal_clocks.yaml',
    'landmarks': CONFIG / 'scenarios' / 'highway_occlusion_landmarks.yaml',
    'landmarks_v1_bias': CONFIG / 'scenarios' / 'highway_occlusion_landmarks_v1_bias.yaml',
}
# run name -> (scenario, extra vehicle params, extra fusion params)
RUNS = {
    'default': ('default', {}, {}),
    'ideal_clocks': ('ideal_clocks', {}, {}),
    'clocks_uncorrected': ('default', {'timebase': {'enabled': False}}, {}),
    'default_coreg': ('default', {}, {'coregistration': {'enabled': True}}),
    'default_no_coreg': ('default', {}, {'coregistration': {'enabled': False}}),
    'landmarks': ('landmarks', {}, {'coregistration': {'enabled': False}}),
    'landmarks_coreg': ('landmarks', {}, {'coregistration': {'enabled': True}}),
    'bias_coreg': ('landmarks_v1_bias', {}, {'coregistration': {'enabled': True}}),
    'bias_no_coreg': ('landmarks_v1_bias', {}, {'coregistration': {'enabled': False}}),
}
VEHICLES = ('v1', 'v2', 'v3', 'v4')
# Pose-bias section: its runs, and the inverse of each vehicle's localisation bias in the landmark
# scenarios (bias_x_m, bias_y_m, bias_yaw_deg of highway_occlusion_landmarks*.yaml, negated): the
# correction about the odometry position that would undo it.
POSE_BIAS_RUNS = ('default_coreg', 'default_no_coreg', 'landmarks', 'landmarks_coreg', 'bias_coreg', 'bias_no_coreg')
METRICS = ('object_recall', 'see_through_recall', 'occupied_precision', 'free_accuracy', 'occupancy_iou')


def _params_file(path: Path, node: str, values: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': values}}, sort_keys=False))
    return path


def platoon_config(work: Path, name: str, vehicle_extra: dict, fusion_extra: dict) -> Path:
    """A bringup config like config/platoon.yaml, twin off, with the run's parameter overrides."""
    import yaml

    base = yaml.safe_load((CONFIG / 'platoon.yaml').read_text())
    vparams = [str(CONFIG / 'vehicle.yaml')]
    fparams = [str(CONFIG / 'fusion.yaml')]
    if vehicle_extra:
        vparams.append(str(_params_file(work / f'{name}_vehicle.yaml', 'vehicle_node', vehicle_extra)))
    if fusion_extra:
        fparams.append(str(_params_file(work / f'{name}_fusion.yaml', 'fusion_node', fusion_extra)))
    cfg = {
        'run': {'vehicles': True, 'fusion': True, 'twin': False},
        # the platoon as declared (ids, bodies, weights), each vehicle's params with the run's overrides
        'vehicles': [{**v, 'params': vparams[:1] + [str(CONFIG / p) for p in v['params'][1:]] + vparams[1:]}
                     for v in base['vehicles']],
        'fusion': {'params': fparams},
        'twin': {'params': [str(CONFIG / p) for p in base['twin']['params']]},
        'record': {'topics': ['/<v>/evidence_grid', '/<v>/radar/targets', '/cooperative/grid', '/diagnostics']},
        'drain_s': base.get('drain_s', 0.5),
    }
    path = work / f'{name}_platoon.yaml'
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def simulate(work: Path, scenario: str, duration: float | None, seed: int | None) -> Path:
    bag = work / f'{scenario}.bag'
    if bag.exists():
        return bag
    cmd = [PY, '-m', 'cooperative_fusion.cli', 'simulate', '--scenario', str(SCENARIOS[scenario]), '--out', str(bag)]
    if duration is not None:
        cmd += ['--duration', str(duration)]
    if seed is not None:
        cmd += ['--seed', str(seed)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return bag


def run_and_evaluate(work: Path, name: str, bag: Path, vehicle_extra: dict, fusion_extra: dict) -> dict[str, Any]:
    from cooperative_fusion.evaluation.report import evaluate

    report_path = work / f'{name}_report.json'
    result = work / f'{name}_result.bag'
    if not report_path.exists():
        cfg = platoon_config(work, name, vehicle_extra, fusion_extra)
        subprocess.run([PY, '-m', 'cooperative_fusion.cli', 'run', '--config', str(cfg), '--bag', str(bag),
                        '--record', str(result), '--overwrite', '--quiet'], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        report = evaluate(bag, result)
        report['coreg'] = {v: final_coreg(result, v) for v in VEHICLES}
        report_path.write_text(json.dumps(report, default=str))
    report = json.loads(report_path.read_text())
    if 'coreg' not in report and result.exists():   # a report made before the readout existed
        report['coreg'] = {v: final_coreg(result, v) for v in VEHICLES}
        report_path.write_text(json.dumps(report, default=str))
    return report


def final_coreg(result: Path, vid: str) -> dict[str, Any]:
    """The fusion node's last coreg.* values of ``vid`` in the result bag's /diagnostics."""
    from cooperative_fusion.ros.bag import BagReader

    last: dict[str, Any] = {}
    with BagReader(result) as reader:
        for _topic, msgtype, _t, raw in reader.messages(topics=['/diagnostics']):
            for st in reader.deserialize(msgtype, raw).status:
                if st.name == f'fusion_node: {vid}':
                    last = {kv.key: kv.value for kv in st.values if kv.key.startswith('coreg.')}
    return last


def _f(v: Any) -> str:
    return 'n/a' if v is None else f'{v:.3f}' if isinstance(v, float) else str(v)


def table(reports: dict[str, dict[str, Any]], command: str) -> str:
    d = reports['default']
    vids = sorted(k for k in (d.get('ego_only_object_recall') or {}) if k != 'mean')
    out = ['# Measured quality on highway_occlusion', '',
           f'Made by `{command}` on {_dt.date.today().isoformat()} (deterministic lock-step runs; '
           f'every number below is measured by `cooperative-fusion evaluate`).', '',
           '## Cooperative vs ego-only (default scenario)', '',
           '| metric | cooperative | ' + ' | '.join(f'ego-only {v}' for v in vids) + ' |',
           '|---|---|' + '---|' * len(vids)]
    for key in METRICS:
        coop = d.get(key)
        coop = coop.get('mean') if isinstance(coop, dict) else coop
        ego = d.get(f'ego_only_{key}') or {}
        out.append(f'| {key} | {_f(coop)} | ' + ' | '.join(_f(ego.get(v)) for v in vids) + ' |')
    see, ego_see = d.get('see_through_recall') or {}, d.get('ego_only_see_through_recall') or {}
    out += ['', '| see_through_recall | ' + ' | '.join(vids) + ' | mean |', '|---|' + '---|' * (len(vids) + 1),
            '| cooperative | ' + ' | '.join(_f(see.get(v)) for v in vids) + f' | {_f(see.get("mean"))} |',
            '| ego-only | ' + ' | '.join(_f(ego_see.get(v)) for v in vids) + f' | {_f(ego_see.get("mean"))} |']
    out += ['', '## Clocks (offsets up to +-200 ms, drift up to 50 ppm)', '',
            '| run | object_recall | see_through mean | occupied_precision |', '|---|---|---|---|']
    for name, label in (('ideal_clocks', 'perfect clocks'), ('default', 'default clocks, corrected (timebase on)'),
                        ('clocks_uncorrected', 'default clocks, uncorrected (timebase.enabled false)')):
        r = reports[name]
        out.append(f'| {label} | {_f(r.get("object_recall"))} | {_f((r.get("see_through_recall") or {}).get("mean"))}'
                   f' | {_f(r.get("occupied_precision"))} |')
    out += pose_bias_section(reports, None)
    bw = d.get('bandwidth_bytes_per_s') or {}
    lat = d.get('fusion_latency_ms') or {}
    out += ['', '## Bandwidth and latency (default scenario)', '',
            '| | ' + ' | '.join(vids) + ' |', '|---|' + '---|' * len(vids),
            '| bandwidth kB/s (evidence + radar targets) | '
            + ' | '.join(_f(None if bw.get(v) is None else bw[v] / 1e3) for v in vids) + ' |', '',
            f'fusion_latency_ms: p50 {_f(lat.get("p50"))}, p95 {_f(lat.get("p95"))}', '']
    return '\n'.join(out)


def _inverse_biases(scenario: str) -> dict[str, tuple[float, float, float]]:
    """{vehicle: (-bias_x_m, -bias_y_m, -bias_yaw_deg)} of a scenario file: the correction that undoes it."""
    import yaml

    doc = yaml.safe_load(SCENARIOS[scenario].read_text())
    out = {}
    for v in doc['platoon']['vehicles']:
        loc = v.get('localization') or {}
        out[v['id']] = tuple(0.0 - float(loc.get(k, 0.0)) for k in ('bias_x_m', 'bias_y_m', 'bias_yaw_deg'))
    return out


def _corr(c: dict[str, Any]) -> str:
    if not c or c.get('coreg.updates') in (None, '0'):
        return 'none'
    return (f'{float(c["coreg.dx"]):+.2f}, {float(c["coreg.dy"]):+.2f} / {float(c["coreg.dyaw_deg"]):+.2f} '
            f'({c.get("coreg.updates")})')


def pose_bias_section(reports: dict[str, dict[str, Any]], command: str | None) -> list[str]:
    """The '## Pose bias' section: quality with co-registration on / off, and every vehicle's final correction."""
    out = ['', '## Pose bias and co-registration (v1 0.5 m lateral and 1 deg; highway_occlusion_landmarks pair)', '']
    if command:
        out += [f'Made by `{command}` on {_dt.date.today().isoformat()}.', '']
    out += ['Guard-rail posts every 12 m beside the road (static structure to register on); object_recall and '
            'see-through count the posts as objects, so they are lower than on highway_occlusion. '
            'highway_occlusion has no static roadside structure (the stopped car is the only static object): '
            'there hardly any estimate is accepted.', '',
            '| run | occupied_precision | object_recall | see_through mean | v1 correction dx, dy m / dyaw deg '
            '(updates) |', '|---|---|---|---|---|']
    for name, label in (('default_coreg', 'highway_occlusion, co-registration on'),
                        ('default_no_coreg', 'highway_occlusion, co-registration off'),
                        ('landmarks', 'landmarks unbiased, co-registration off'),
                        ('landmarks_coreg', 'landmarks unbiased, co-registration on'),
                        ('bias_coreg', 'landmarks v1 biased, co-registration on'),
                        ('bias_no_coreg', 'landmarks v1 biased, co-registration off')):
        r = reports.get(name)
        if r is None:
            continue
        c = (r.get('coreg') or {}).get('v1') or r.get('coreg_v1') or {}
        out.append(f'| {label} | {_f(r.get("occupied_precision"))} | {_f(r.get("object_recall"))} | '
                   f'{_f((r.get("see_through_recall") or {}).get("mean"))} | {_corr(c)} |')
    rows = [(name, scen) for name, scen in (('landmarks_coreg', 'landmarks'), ('bias_coreg', 'landmarks_v1_bias'))
            if name in reports]
    if rows:
        out += ['', 'Final correction of every vehicle (from `/diagnostics`, about its odometry position) against '
                'the inverse of its localisation bias in the scenario file (target):', '',
                '| run | ' + ' | '.join(f'{v} correction | {v} target' for v in VEHICLES) + ' |',
                '|---|' + '---|---|' * len(VEHICLES)]
        for name, scen in rows:
            target = _inverse_biases(scen)
            cells = []
            for v in VEHICLES:
                tx, ty, tyaw = target.get(v, (0.0, 0.0, 0.0))
                cells += [_corr((reports[name].get('coreg') or {}).get(v) or {}), f'{tx:+.2f}, {ty:+.2f} / {tyaw:+.2f}']
            out.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return out


def replace_section(text: str, heading: str, new: list[str]) -> str:
    """``text`` with the section starting at the line ``heading...`` (up to the next '## ') replaced."""
    lines = text.split('\n')
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        raise SystemExit(f'no section starting with {heading!r} to replace')
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith('## ')), len(lines))
    body = new[1:] if new and new[0] == '' else new
    return '\n'.join(lines[:start] + body + [''] + lines[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, default=Path('/tmp/quality_table'), help='bags and reports (reused)')
    parser.add_argument('--out', type=Path, default=ROOT / 'docs' / 'quality.md', help='markdown table to write')
    parser.add_argument('--duration', type=float, default=None, help='simulated seconds (default: the scenario)')
    parser.add_argument('--seed', type=int, default=None, help='simulation seed (default: the scenario)')
    parser.add_argument('--only', nargs='*', default=None, help='run names (default: all)')
    parser.add_argument('--pose-bias-section', action='store_true',
                        help=f'run only the pose-bias rows ({", ".join(POSE_BIAS_RUNS)}) and replace that '
                             f'section of --out, keeping the rest of the file')
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.pose_bias_section:
        args.only = list(POSE_BIAS_RUNS)
    reports = {}
    for name, (scenario, vextra, fextra) in RUNS.items():
        if args.only and name not in args.only:
            continue
        bag = simulate(args.work, scenario, args.duration, args.seed)
        reports[name] = run_and_evaluate(args.work, name, bag, vextra, fextra)
        r = reports[name]
        print(f'{name}: object_recall {_f(r.get("object_recall"))} see_through {r.get("see_through_recall")} '
              f'occupied_precision {_f(r.get("occupied_precision"))}', flush=True)
    command = 'python scripts/quality_table.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    if args.pose_bias_section:
        text = replace_section(args.out.read_text(), '## Pose bias', pose_bias_section(reports, command.strip()))
        args.out.write_text(text)
        print(text)
    elif set(RUNS) <= set(reports):
        text = table(reports, command.strip())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
