#!/usr/bin/env python3
"""Quality across the scenario set (issue 13): every scenario × seed, one Markdown table.

Each run is ``cooperative-fusion simulate`` -> ``run --bag`` (deterministic lock-step, the whole
platoon with fusion and twin) -> ``evaluate``, in ``--jobs`` parallel processes. A scenario whose
platoon is not the default one ships its bringup config as ``config/scenarios/<name>/platoon.yaml``
(``cooperative_fusion.sim.scenario.scenario_platoon_config``). A finished run in ``--work`` is reused when its inputs match
(scenario file, platoon config and the params files it names, seed, duration, the package's code).

    .venv/bin/python scripts/scenario_table.py [--scenarios NAME ...] [--seeds 1 3 7] [--duration S]
        [--jobs N] [--work DIR] [--out docs/scenario_quality.md] [--keep-bags] [--finished-only]

The table has one row per scenario with the worst seed's value in each column (the targets are about
the worst seed), then one row per scenario and seed. Every number comes from the reports of the runs.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'config'
SCENARIO_DIR = CONFIG / 'scenarios'
DEFAULT_PLATOON = CONFIG / 'platoon.yaml'
PY = sys.executable

#: The scenario set (config/scenarios/<name>.yaml); the landmark, bias and ideal-clock variants of
#: highway_occlusion belong to scripts/quality_table.py.
SCENARIO_SET = ('highway_occlusion', 'highway_clear', 'cut_in', 'cut_in_close', 'truck_brakes',
                'platoon_speed_cycle', 'highway_occlusion_heading', 'highway_occlusion_curve', 'platoon_mixed',
                'dense_traffic')
SEEDS = (1, 3, 7)


@dataclass(frozen=True)
class Targets:
    """Issue 13's targets, on every scenario and seed."""

    see_through_min: float = 0.90        # see_through_object_recall of the last vehicle
    precision_away_min: float = 0.85     # occupied_precision_away_from_platoon
    moving_error_max_m: float = 0.5      # moving_position_error_m
    lead_min_s: float = 3.0              # warning lead of every vehicle behind the leader that would reach a hazard
    false_max: int = 0
    missed_max: int = 0


TARGETS = Targets()


# ---------------------------------------------------------------------------------------- inputs --

def scenario_path(name: str) -> Path:
    """config/scenarios/<name>.yaml, or ``name`` itself when it is a path to a file."""
    path = Path(name)
    if path.suffix == '.yaml' and path.is_file():
        return path.resolve()
    path = SCENARIO_DIR / f'{name}.yaml'
    if not path.is_file():
        raise SystemExit(f'scenario {name!r}: no file {path}')
    return path


def platoon_config_for(scenario: Path) -> Path:
    """The bringup config of a scenario: the one it ships (``config/scenarios/<name>/platoon.yaml``: its own
    ids, bodies, extrinsics), else config/platoon.yaml."""
    from cooperative_fusion.sim.scenario import scenario_platoon_config

    return scenario_platoon_config(scenario) or DEFAULT_PLATOON


def _config_files(platoon: Path) -> list[Path]:
    """The platoon config and every params file it names (vehicles, fusion, twin)."""
    import yaml

    raw = yaml.safe_load(platoon.read_text()) or {}
    names: list[str] = []
    for v in raw.get('vehicles') or []:
        names += [v['params']] if isinstance(v.get('params'), str) else list(v.get('params') or [])
    for node in ('fusion', 'twin'):
        params = (raw.get(node) or {}).get('params') or []
        names += [params] if isinstance(params, str) else list(params)
    return [platoon] + sorted({(platoon.parent / n).resolve() for n in names})


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def code_digest() -> str:
    """sha256 over the package's Python sources: a code change invalidates every finished run."""
    files = sorted((ROOT / 'cooperative_fusion').rglob('*.py'))
    return _digest(str(f.relative_to(ROOT)).encode() + b'\0' + f.read_bytes() for f in files)


def simulation_inputs(scenario: Path, seed: int, duration: float | None, code: str) -> dict[str, Any]:
    """What a truth bag depends on; a kept truth bag is reused only when these match."""
    return {'scenario': scenario.stem, 'seed': seed, 'duration_s': duration, 'code': code,
            'scenario_file': _digest([scenario.read_bytes()])}


def run_inputs(scenario: Path, seed: int, duration: float | None, code: str) -> dict[str, Any]:
    """What a run's report depends on; a finished run is reused only when these match."""
    platoon = platoon_config_for(scenario)
    return {**simulation_inputs(scenario, seed, duration, code),
            'platoon_config': str(platoon.relative_to(ROOT)) if platoon.is_relative_to(ROOT) else str(platoon),
            'config_files': _digest(str(f.name).encode() + f.read_bytes() for f in _config_files(platoon))}


# ------------------------------------------------------------------------------------------ runs --

def run_dir(work: Path, scenario: str, seed: int) -> Path:
    return work / f'{scenario}_seed{seed}'


def finished_report(directory: Path, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report of a finished run in ``directory`` whose inputs are ``inputs``, else None."""
    report, recorded = directory / 'report.json', directory / 'inputs.json'
    if not (report.is_file() and recorded.is_file()):
        return None
    if json.loads(recorded.read_text()) != dict(inputs):
        return None
    return json.loads(report.read_text())


def _cli(*args: str, log: Path) -> None:
    with log.open('a') as out:
        out.write('$ cooperative-fusion ' + ' '.join(args) + '\n')
        out.flush()
        done = subprocess.run([PY, '-m', 'cooperative_fusion.cli', *args], cwd=ROOT, stdout=out,
                              stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    if done.returncode:
        raise RuntimeError(f'cooperative-fusion {args[0]} failed (exit {done.returncode}); see {log}')


def run_one(work: Path, scenario: Path, seed: int, duration: float | None, code: str,
            keep_bags: bool = False) -> dict[str, Any]:
    """simulate -> run --bag -> evaluate for one scenario and seed (or the finished run's report)."""
    inputs = run_inputs(scenario, seed, duration, code)
    directory = run_dir(work, scenario.stem, seed)
    report = finished_report(directory, inputs)
    if report is not None:
        return report
    truth, result, report_path = directory / 'truth.bag', directory / 'result.bag', directory / 'report.json'
    sim_inputs, sim_record = simulation_inputs(scenario, seed, duration, code), directory / 'simulation.json'
    # a truth bag left by --keep-bags or by a failed run is kept when it was simulated from the same inputs
    keep_truth = truth.is_dir() and sim_record.is_file() and json.loads(sim_record.read_text()) == sim_inputs
    for stale in (directory.iterdir() if directory.is_dir() else ()):
        if not (keep_truth and stale.name in (truth.name, sim_record.name)):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / 'log.txt'
    if not keep_truth:
        sim = ['simulate', '--scenario', str(scenario), '--out', str(truth), '--seed', str(seed)]
        _cli(*sim, *(['--duration', str(duration)] if duration is not None else []), log=log)
        sim_record.write_text(json.dumps(sim_inputs, indent=1))
    _cli('run', '--config', str(platoon_config_for(scenario)), '--bag', str(truth), '--record', str(result),
         '--overwrite', '--quiet', log=log)
    _cli('evaluate', '--truth', str(truth), '--result', str(result), '--report', str(report_path), log=log)
    if not keep_bags:
        shutil.rmtree(truth, ignore_errors=True)
        shutil.rmtree(result, ignore_errors=True)
        sim_record.unlink()
    (directory / 'inputs.json').write_text(json.dumps(inputs, indent=1))
    return json.loads(report_path.read_text())


# ----------------------------------------------------------------------------------------- table --

def _vehicles(report: Mapping[str, Any]) -> list[str]:
    return [str(v) for v in report.get('vehicles') or []]


def _total(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get('total')
    return None if value is None else int(value)


@dataclass(frozen=True)
class RunRow:
    """The table's quantities of one report, and the targets it misses."""

    scenario: str
    seed: int
    last_vehicle: str | None
    see_through: float | None
    precision_away: float | None
    moving_error_m: float | None
    leads_s: tuple[tuple[str, float | None], ...]     # vehicles that would reach a hazard, platoon order
    false_warnings: int | None
    missed_warnings: int | None
    missed_targets: tuple[str, ...]


def row_of(scenario: str, seed: int, report: Mapping[str, Any], targets: Targets = TARGETS) -> RunRow:
    """The quantities of ``report`` and the targets missed.

    The lead target applies to every vehicle but the leader that would reach a hazard (a vehicle with a
    ``warning_lead_time_s`` entry): on the shipped scenarios the leader is the first to see the hazard.
    A value the report does not have (None: nothing hidden, nothing moving, no hazard) misses no target.
    """
    vids = _vehicles(report)
    last = vids[-1] if vids else None
    see = (report.get('see_through_object_recall') or {}).get(last) if last else None
    precision = report.get('occupied_precision_away_from_platoon')
    moving = report.get('moving_position_error_m')
    lead_map = report.get('warning_lead_time_s') or {}
    leads = tuple((v, lead_map[v]) for v in vids if v in lead_map)
    false, missed = _total(report.get('false_warnings')), _total(report.get('missed_warnings'))
    miss: list[str] = []
    if see is not None and see < targets.see_through_min:
        miss.append(f'see-through {last} {_f(see, 3, targets.see_through_min)} < {targets.see_through_min:.2f}')
    if precision is not None and precision < targets.precision_away_min:
        miss.append(f'precision away {_f(precision, 3, targets.precision_away_min)} < {targets.precision_away_min:.2f}')
    if moving is not None and moving > targets.moving_error_max_m:
        miss.append(f'moving error {moving:.2f} m > {targets.moving_error_max_m:.1f} m')
    for v, lead in leads:
        if vids and v == vids[0]:
            continue
        if lead is None:
            miss.append(f'lead {v}: no true warning')
        elif lead < targets.lead_min_s:
            miss.append(f'lead {v} {lead:.2f} s < {targets.lead_min_s:.1f} s')
    if false is not None and false > targets.false_max:
        miss.append(f'{false} false')
    if missed is not None and missed > targets.missed_max:
        miss.append(f'{missed} missed')
    return RunRow(scenario, seed, last, see, precision, moving, leads, false, missed, tuple(miss))


def _f(value: float | None, digits: int = 3, limit: float | None = None) -> str:
    """``value`` to ``digits`` decimals; with ``limit``, more decimals where rounding would hide which side of
    the limit it is on (0.8497 against 0.85 is 0.8497, not 0.850)."""
    if value is None:
        return 'n/a'
    if limit is not None and value != limit:
        while digits < 6 and round(value, digits) == round(limit, digits):
            digits += 1
    return f'{value:.{digits}f}'


def _mark(text: str, bad: bool) -> str:
    return f'{text} ✗' if bad else text


def _worst(rows: Sequence[RunRow], key: str, higher_is_better: bool) -> tuple[float | None, int | None]:
    """(worst value over the rows, its seed); None when no row has a value."""
    values = [(getattr(r, key), r.seed) for r in rows if getattr(r, key) is not None]
    if not values:
        return None, None
    return (min if higher_is_better else max)(values, key=lambda vs: vs[0])


def _cells(row_values: Mapping[str, Any], targets: Targets, vids_order: Sequence[str]) -> list[str]:
    """The value cells of a row: see-through, precision, moving error (each ``(value, seed note)``), the leads
    ``{vehicle: s}``, false and missed warnings; a missed target marked ✗."""
    see, prec, mov = row_values['see'], row_values['precision'], row_values['moving']
    leads: Mapping[str, float | None] = row_values['leads']
    lead_txt = ' / '.join(
        f'{v} ' + _mark(_f(leads[v], 2) if leads[v] is not None else 'none',
                        v != vids_order[0] and (leads[v] is None or leads[v] < targets.lead_min_s))
        for v in vids_order if v in leads) or 'n/a'
    false, missed = row_values['false'], row_values['missed']
    cells = [
        _mark(_f(see[0], 3, targets.see_through_min), see[0] is not None and see[0] < targets.see_through_min) + see[1],
        _mark(_f(prec[0], 3, targets.precision_away_min), prec[0] is not None and prec[0] < targets.precision_away_min) + prec[1],
        _mark(_f(mov[0], 2), mov[0] is not None and mov[0] > targets.moving_error_max_m) + mov[1],
        lead_txt,
        _mark('n/a' if false is None else str(false), false is not None and false > targets.false_max),
        _mark('n/a' if missed is None else str(missed), missed is not None and missed > targets.missed_max),
    ]
    return cells


def _seed_note(seed: int | None, n_seeds: int) -> str:
    return f' (s{seed})' if seed is not None and n_seeds > 1 else ''


def table(reports: Mapping[tuple[str, int], Mapping[str, Any]], command: str, targets: Targets = TARGETS,
          date: str | None = None) -> str:
    """The Markdown of docs/scenario_quality.md from ``{(scenario, seed): report}``."""
    scenarios = list(dict.fromkeys(s for s, _ in reports))
    rows = {key: row_of(key[0], key[1], rep, targets) for key, rep in reports.items()}
    head = ('| scenario | seeds | see-through object recall (last vehicle) | occupied precision away from platoon '
            '| moving position error (m) | warning lead per vehicle (s) | false warnings | missed warnings '
            '| targets |')
    out = ['# Quality across the scenario set', '',
           f'Made by `{command}` on {date or _dt.date.today().isoformat()}: every scenario of '
           '`config/scenarios/` in the set, simulated per seed, run through the whole platoon in deterministic '
           'lock-step (`cooperative-fusion run --bag`, fusion and twin) and scored by `cooperative-fusion '
           'evaluate`. Every number below comes from those reports.', '',
           f'Targets (issue 13): see-through ≥ {targets.see_through_min:.2f}, precision away from the platoon ≥ '
           f'{targets.precision_away_min:.2f}, moving position error ≤ {targets.moving_error_max_m:.1f} m, '
           f'warning lead ≥ {targets.lead_min_s:.1f} s for every vehicle behind the leader that would reach a '
           f'hazard, {targets.false_max} false and {targets.missed_max} missed warnings. ✗ marks a miss; n/a: the '
           'run has no such quantity (nothing hidden from the last vehicle, no hazard ahead).', '',
           '## Worst seed per scenario', '',
           'Each cell is the worst value over the seeds, with that seed; warnings are summed over the seeds.', '',
           head, '|---|---|---|---|---|---|---|---|---|']
    for scenario in scenarios:
        mine = [rows[k] for k in reports if k[0] == scenario]
        seeds = sorted(r.seed for r in mine)
        vids = _vehicles(reports[(scenario, seeds[0])])
        see, see_seed = _worst(mine, 'see_through', True)
        prec, prec_seed = _worst(mine, 'precision_away', True)
        mov, mov_seed = _worst(mine, 'moving_error_m', False)
        leads: dict[str, float | None] = {}
        for r in mine:
            for v, lead in r.leads_s:
                if v not in leads or leads[v] is not None and (lead is None or lead < leads[v]):
                    leads[v] = lead
        false = None if all(r.false_warnings is None for r in mine) else sum(r.false_warnings or 0 for r in mine)
        missed = None if all(r.missed_warnings is None for r in mine) else sum(r.missed_warnings or 0 for r in mine)
        n = len(mine)
        values = {'see': (see, _seed_note(see_seed, n)), 'precision': (prec, _seed_note(prec_seed, n)),
                  'moving': (mov, _seed_note(mov_seed, n)), 'leads': leads, 'false': false, 'missed': missed}
        missed_runs = [r for r in mine if r.missed_targets]
        verdict = 'met' if not missed_runs else f'missed on seed {", ".join(str(r.seed) for r in missed_runs)}'
        out.append(f'| `{scenario}` | {", ".join(map(str, seeds))} | '
                   + ' | '.join(_cells(values, targets, vids)) + f' | {verdict} |')
    out += ['', '## Every run', '',
            '| scenario | seed | see-through object recall (last vehicle) | occupied precision away from platoon '
            '| moving position error (m) | warning lead per vehicle (s) | false warnings | missed warnings '
            '| targets missed |', '|---|---|---|---|---|---|---|---|---|']
    for key in sorted(reports, key=lambda k: (scenarios.index(k[0]), k[1])):
        r = rows[key]
        values = {'see': (r.see_through, ''), 'precision': (r.precision_away, ''), 'moving': (r.moving_error_m, ''),
                  'leads': dict(r.leads_s), 'false': r.false_warnings, 'missed': r.missed_warnings}
        out.append(f'| `{r.scenario}` | {r.seed} | ' + ' | '.join(_cells(values, targets, _vehicles(reports[key])))
                   + f' | {"; ".join(r.missed_targets) or "none"} |')
    return '\n'.join(out) + '\n'


# ------------------------------------------------------------------------------------------ main --

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenarios', nargs='+', default=list(SCENARIO_SET), metavar='NAME',
                        help='scenario names in config/scenarios/ or paths to scenario files (default: the set)')
    parser.add_argument('--seeds', nargs='+', type=int, default=list(SEEDS), metavar='N', help='simulation seeds')
    parser.add_argument('--duration', type=float, default=None, metavar='S',
                        help='simulated seconds (default: each scenario\'s own)')
    parser.add_argument('--jobs', type=int, default=1, metavar='N', help='runs in parallel (processes)')
    parser.add_argument('--work', type=Path, default=Path('/tmp/scenario_table'), metavar='DIR',
                        help='one directory per run (report, inputs, log); finished runs with the same inputs '
                             'are reused')
    parser.add_argument('--out', type=Path, default=ROOT / 'docs' / 'scenario_quality.md', metavar='FILE',
                        help='Markdown table to write')
    parser.add_argument('--keep-bags', action='store_true',
                        help='keep each run\'s truth and result bags (default: removed after evaluation)')
    parser.add_argument('--finished-only', action='store_true',
                        help='run nothing: the table of the runs in --work that are finished with matching inputs')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.duration is not None and not args.duration > 0:
        parser.error(f'--duration must be > 0 s, got {args.duration}')
    paths = {scenario_path(name).stem: scenario_path(name) for name in args.scenarios}
    args.work.mkdir(parents=True, exist_ok=True)
    code = code_digest()
    keys = [(name, seed) for name in paths for seed in args.seeds]

    def one(key: tuple[str, int]) -> dict[str, Any] | None:
        if args.finished_only:
            path = paths[key[0]]
            return finished_report(run_dir(args.work, key[0], key[1]), run_inputs(path, key[1], args.duration, code))
        try:
            report = run_one(args.work, paths[key[0]], key[1], args.duration, code, args.keep_bags)
        except RuntimeError as exc:
            print(f'{key[0]} seed {key[1]}: FAILED: {exc}', flush=True)
            return None
        r = row_of(key[0], key[1], report)
        print(f'{key[0]} seed {key[1]}: see-through {_f(r.see_through)} precision away {_f(r.precision_away)} '
              f'moving {_f(r.moving_error_m, 2)} m leads {dict(r.leads_s)} false {r.false_warnings} '
              f'missed {r.missed_warnings}', flush=True)
        return report

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(keys, pool.map(one, keys)))
    reports = {k: r for k, r in results.items() if r is not None}
    if not reports:
        print('no finished runs', file=sys.stderr)
        return 1
    command = 'python scripts/scenario_table.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    text = table(reports, command.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0 if len(reports) == len(keys) or args.finished_only else 1


if __name__ == '__main__':
    sys.exit(main())
