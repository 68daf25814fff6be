#!/usr/bin/env python3
"""Closed-loop mode comparison (issue 16): the outcome of each follower mode, measured from truth.

For each scenario (default: the issue's highway_occlusion, truck_brakes, cut_in and platoon_speed_cycle), seed
(7) and faults variant (none and config/faults/lossy.yaml; the speed cycle without faults only) it runs ``cooperative-fusion demo --closed-loop --mode M`` for the modes
(ego, cooperative, cooperative+advisory) into ``WORK/<scenario>/<variant>/<mode>/`` (a run whose
``report.json`` is already there, of that mode and seed, is reused unless ``--force``), then writes one
Markdown table per scenario and variant: the modes as columns, the outcome keys of the report
(``min_gap_m``, ``min_ttc_s``, ``max_decel_mps2``, ``collision``, ``time_headway_s``; docs/metrics.md)
per vehicle as rows. The tables go into the ``## Outcome by mode`` section of ``--out`` (default
docs/closed_loop.md; the rest of that file, a hand-written ``## Reading`` after it included, is kept),
with every table whose reports are in WORK, so it can be made in parts; they are printed too, followed by
a short summary for the README (min gap, max deceleration per vehicle, collisions).

    .venv/bin/python scripts/closed_loop_table.py [--work DIR] [--out docs/closed_loop.md] [--seed 7]
        [--scenario NAME ...] [--modes ego,cooperative,...] [--faults none|lossy|both] [--duration S] [--force]
    .venv/bin/python scripts/closed_loop_table.py --work DIR --no-run      # tables from the reports in DIR only

Every number in the output comes from the runs' reports; nothing is typed in.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'config'
PY = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cooperative_fusion.evaluation.report import OUTCOME_LABELS, outcome_cell  # noqa: E402

SCENARIOS = ('highway_occlusion', 'truck_brakes', 'cut_in', 'platoon_speed_cycle')
#: Scenario -> the faults variants it is run with, where not all of VARIANTS (the speed cycle checks that
#: no braking comes from the twin; faults are the other scenarios' question).
SCENARIO_VARIANTS: dict[str, tuple[str, ...]] = {'platoon_speed_cycle': ('none',)}
MODES = ('ego', 'cooperative', 'cooperative+advisory')
#: Faults variant -> faults file (None: no faults).
VARIANTS: dict[str, Path | None] = {'none': None, 'lossy': CONFIG / 'faults' / 'lossy.yaml'}
DEFAULT_SEED = 7
DEFAULT_WORK = Path('/tmp/closed_loop_table')
OUTCOME_HEADING = '## Outcome by mode'
#: A hand-written section after the tables, kept when they are made again.
READING = '## Reading'


def run_dir(work: Path, scenario: str, variant: str, mode: str) -> Path:
    """``WORK/<scenario>/<variant>/<mode>``: the demo output directory of one run."""
    return work / scenario / variant / mode


def scenario_file(name: str) -> Path:
    """config/scenarios/<name>.yaml, or ``name`` itself when it is a path to a file."""
    path = Path(name)
    return path if path.suffix in ('.yaml', '.yml') and path.is_file() else CONFIG / 'scenarios' / f'{name}.yaml'


def demo_command(work: Path, scenario: str, variant: str, mode: str, seed: int, duration: float | None) -> list[str]:
    """The ``cooperative-fusion demo --closed-loop`` command of one run."""
    cmd = [PY, '-m', 'cooperative_fusion.cli', 'demo', '--closed-loop', '--mode', mode,
           '--scenario', str(scenario_file(scenario)), '--seed', str(seed),
           '--out', str(run_dir(work, scenario, variant, mode)), '--quiet']
    faults = VARIANTS[variant]
    if faults is not None:
        cmd += ['--faults', str(faults)]
    if duration is not None:
        cmd += ['--duration', str(duration)]
    return cmd


def load_report(work: Path, scenario: str, variant: str, mode: str, seed: int) -> dict[str, Any] | None:
    """The run's report.json when it is there and is a closed-loop run of ``mode`` and ``seed``, else None."""
    path = run_dir(work, scenario, variant, mode) / 'report.json'
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    demo = report.get('demo') or {}
    if demo.get('closed_loop') != mode or report.get('seed') not in (seed, None):
        return None
    return report


def run(work: Path, scenario: str, variant: str, mode: str, seed: int, duration: float | None,
        force: bool) -> dict[str, Any]:
    """The report of one run, running the demo first when needed."""
    report = None if force else load_report(work, scenario, variant, mode, seed)
    if report is None:
        cmd = demo_command(work, scenario, variant, mode, seed, duration)
        print('+', ' '.join(cmd[1:]), flush=True)
        env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(
            os.pathsep)}
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        report = load_report(work, scenario, variant, mode, seed)
        if report is None:
            raise SystemExit(f'{run_dir(work, scenario, variant, mode)}: the demo left no closed-loop report')
    return report


# ------------------------------------------------------------------------------------- tables

def outcome_table(reports: Mapping[str, Mapping[str, Any]], modes: Sequence[str] = MODES) -> list[str]:
    """Markdown lines: one column per mode (those without a report say n/a), one row per outcome key and
    vehicle (vehicles of the first report, in its order)."""
    present = [m for m in modes if m in reports]
    if not present:
        return []
    vids = list(reports[present[0]].get('vehicles') or [])
    lines = ['| outcome | ' + ' | '.join(f'`{m}`' for m in modes) + ' |', '|---|' + '---|' * len(modes)]
    for key, label in OUTCOME_LABELS.items():
        for vid in vids:
            cells = []
            for m in modes:
                values = (reports.get(m) or {}).get(key)
                cells.append(outcome_cell(key, values.get(vid)) if isinstance(values, Mapping) else 'n/a')
            lines.append(f'| {label}, {vid} | ' + ' | '.join(cells) + ' |')
    warned = [m for m in modes if isinstance((reports.get(m) or {}).get('false_warnings'), Mapping)]
    if warned:
        lines.append('| false warning episodes (all vehicles) | ' + ' | '.join(
            str((reports.get(m) or {}).get('false_warnings', {}).get('total', 'n/a')) if m in warned else 'n/a'
            for m in modes) + ' |')
    return lines


def section(scenario: str, variant: str, seed: int, reports: Mapping[str, Mapping[str, Any]],
            modes: Sequence[str] = MODES) -> list[str]:
    """A scenario's table under its heading (scenario, seed, faults), or nothing without reports."""
    table = outcome_table(reports, modes)
    if not table:
        return []
    faults = 'no faults' if VARIANTS.get(variant) is None else f'faults `config/faults/{VARIANTS[variant].name}`'
    durations = sorted({r.get('duration_s') for r in reports.values() if r.get('duration_s') is not None})
    span = f', {durations[0]:.0f} s' if len(durations) == 1 else ''
    return [f'### {scenario}, seed {seed}, {faults}{span}', '', *table, '']


def document(sections: Sequence[list[str]], command: str) -> str:
    """The ``## Outcome by mode`` section: a short header and the tables."""
    head = [OUTCOME_HEADING, '',
            f'Made by `{command}` on {_dt.date.today().isoformat()}: each column is one '
            '`cooperative-fusion demo --closed-loop --mode M` run (same scenario and seed); every number is '
            'measured from truth by `cooperative-fusion evaluate` (the outcome keys of [metrics.md](metrics.md): gaps '
            'bumper to bumper in the vehicle\'s lane corridor, deceleration over 0.2 s, collision = any box '
            'overlap; the modes: [What runs](#what-runs)).', '']
    body = [line for s in sections for line in s]
    return '\n'.join(head + (body or ['No closed-loop reports yet.', ''])).rstrip('\n') + '\n'


def splice(old: str, section: str) -> str:
    """The document ``old`` with its ``## Outcome by mode`` section (up to ``## Reading`` or the end) replaced
    by ``section``; without one, ``section`` goes before ``## Reading`` or at the end (a new file gets a title)."""
    if not old.strip():
        return '# Closed loop\n\n' + section
    start = old.find('\n' + OUTCOME_HEADING + '\n')
    reading = old.find('\n' + READING + '\n', max(start, 0))
    before = old[:start] if start >= 0 else (old[:reading] if reading >= 0 else old)
    after = old[reading:] if reading >= 0 else ''
    return before.rstrip('\n') + '\n\n' + section.rstrip('\n') + '\n' + after.rstrip('\n') + ('\n' if after else '')


def collect(work: Path, scenarios: Sequence[str], variants: Sequence[str], modes: Sequence[str], seed: int
            ) -> list[list[str]]:
    """The sections of every (scenario, variant) with at least one report in ``work``."""
    out = []
    for scenario in scenarios:
        for variant in variants:
            reports = {m: r for m in modes if (r := load_report(work, scenario, variant, m, seed)) is not None}
            out.append(section(scenario, variant, seed, reports, modes))
    return [s for s in out if s]


def variants_of(scenario: str, variants: Sequence[str]) -> list[str]:
    """The faults variants of ``variants`` that ``scenario`` is run with (:data:`SCENARIO_VARIANTS`)."""
    allowed = SCENARIO_VARIANTS.get(Path(scenario).stem if scenario.endswith(('.yaml', '.yml')) else scenario)
    return [v for v in variants if allowed is None or v in allowed]


def _per_vehicle(key: str, report: Mapping[str, Any] | None, vids: Sequence[str]) -> str:
    """``a/b/c/d``: the report's ``key`` for each vehicle (``–`` where it has none), or n/a without a report."""
    values = (report or {}).get(key)
    if not isinstance(values, Mapping):
        return 'n/a'
    return '/'.join('–' if values.get(v) is None else outcome_cell(key, values.get(v)) for v in vids)


def summary_table(work: Path, scenarios: Sequence[str], seed: int, modes: Sequence[str] = MODES) -> list[str]:
    """The README's short table: one row each of ``min_gap_m``, ``max_decel_mps2`` (per vehicle, a/b/c/d) and
    the vehicles in a collision, per scenario and faults variant with reports in ``work``; modes as columns."""
    lines = ['| scenario | outcome | ' + ' | '.join(f'`{m}`' for m in modes) + ' |', '|---|---|' + '---|' * len(modes)]
    for scenario in scenarios:
        for variant in VARIANTS:
            reports = {m: load_report(work, scenario, variant, m, seed) for m in modes}
            present = [r for r in reports.values() if r is not None]
            if not present:
                continue
            vids = list(present[0].get('vehicles') or [])
            name = scenario + ('' if variant == 'none' else f', `{variant}.yaml`')
            lines.append(f'| {name} | `min_gap_m` {"/".join(vids)} | '
                         + ' | '.join(_per_vehicle('min_gap_m', reports[m], vids) for m in modes) + ' |')
            lines.append('| | `max_decel_mps2` | '
                         + ' | '.join(_per_vehicle('max_decel_mps2', reports[m], vids) for m in modes) + ' |')
            cells = []
            for m in modes:
                hit = (reports[m] or {}).get('collision')
                cells.append('n/a' if not isinstance(hit, Mapping)
                             else ', '.join(v for v in vids if hit.get(v)) or 'none')
            lines.append('| | collision | ' + ' | '.join(cells) + ' |')
    return lines if len(lines) > 2 else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work', type=Path, default=DEFAULT_WORK, metavar='DIR',
                        help=f'runs go to DIR/<scenario>/<faults>/<mode> (default {DEFAULT_WORK})')
    parser.add_argument('--out', type=Path, default=ROOT / 'docs' / 'closed_loop.md', metavar='FILE',
                        help='Markdown file written (default docs/closed_loop.md; "-" to only print)')
    parser.add_argument('--scenario', action='append', default=None, metavar='NAME',
                        help=f'scenario to run (repeatable; default: {", ".join(SCENARIOS)})')
    parser.add_argument('--modes', default=','.join(MODES), help='comma-separated modes (default: all three)')
    parser.add_argument('--faults', choices=('none', 'lossy', 'both'), default='both',
                        help='faults variants to run (default both)')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help=f'random seed (default {DEFAULT_SEED})')
    parser.add_argument('--duration', type=float, default=None, metavar='S',
                        help="simulated seconds (default: the scenario's)")
    parser.add_argument('--force', action='store_true', help='run again even when a report is there')
    parser.add_argument('--no-run', action='store_true', help='only make the tables from the reports in --work')
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(',') if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(f'--modes: unknown {", ".join(unknown) or "(none given)"}; expected some of {", ".join(MODES)}')
    scenarios = args.scenario or list(SCENARIOS)
    missing = [s for s in scenarios if not scenario_file(s).is_file()]
    if missing:
        parser.error(f'--scenario: no scenario file for {", ".join(missing)}')
    variants = ['none', 'lossy'] if args.faults == 'both' else [args.faults]
    if not args.no_run:
        for scenario in scenarios:
            for variant in variants_of(scenario, variants):
                for mode in modes:
                    run(args.work, scenario, variant, mode, args.seed, args.duration, args.force)
    # The document holds every table whose reports are in WORK (earlier parts too), in a fixed order.
    known = list(SCENARIOS) + [s for s in scenarios if s not in SCENARIOS]
    sections = collect(args.work, known, list(VARIANTS), list(MODES), args.seed)
    command = 'python scripts/closed_loop_table.py' + (f' --seed {args.seed}' if args.seed != DEFAULT_SEED else '')
    text = document(sections, command)
    print(text)
    summary = summary_table(args.work, known, args.seed)
    if summary:
        print('README summary (min gap m, max deceleration m/s², per vehicle):\n\n' + '\n'.join(summary) + '\n')
    if str(args.out) != '-':
        old = args.out.read_text() if args.out.is_file() else ''
        args.out.write_text(splice(old, text))
        print(f'wrote {args.out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
