"""``cooperative-fusion demo``: simulate a scenario, run the platoon on it, evaluate, animate.

Four stages, each the library function behind a command:

1. ``simulate`` (:class:`~.sim.world.Simulation`, :func:`~.sim.bag_writer.write_simulation`)
   -> ``DIR/scenario_bag``;
2. ``run --bag --record`` in lock-step (:func:`~..app.bringup.run_bag_lockstep`,
   ``config/platoon.yaml``, ``--faults`` passed through, ``--jobs`` as run's default) -> ``DIR/result_bag``;
3. ``evaluate`` (:func:`~.evaluate.evaluate`) -> ``DIR/report.json``, ``DIR/report.md``
   (the report tables under a header naming the scenario, seed, duration, the
   wall time of every stage and the files), ``DIR/see_through.png``, ``DIR/metrics.png``;
4. :func:`~.animation.animate_run` -> ``DIR/run.gif``.

With ``--closed-loop`` stages 1 and 2 are one: the world runs in lock-step with the nodes
and the vehicles follow the advisory followers' commands (:func:`~..app.closed_loop.run_closed_loop`,
``--mode``); ``DIR/scenario_bag`` then holds the nodes' outputs too and there is no
``result_bag`` (evaluate and the animation read the one bag as truth and result).

An existing DIR is reused only when it is empty or holds a previous demo's
output (``report.json`` or ``scenario_bag``); then only the demo's own files
are replaced. Top-level imports stay light (the CLI imports this module to
build its parser).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..app.closed_loop import DEFAULT_MODE, MODES
from ..core.errors import ConfigError, OutputError
from .run import default_jobs
from .simulate import check_closed_loop_flags

DEFAULT_OUT = Path('demo_output')
SCENARIO_BAG = 'scenario_bag'
RESULT_BAG = 'result_bag'
REPORT_JSON = 'report.json'
REPORT_MD = 'report.md'
GIF = 'run.gif'
#: Files evaluate(plots_dir=DIR) writes.
PLOTS = ('see_through.png', 'metrics.png')
#: Everything the demo writes into DIR (and so may replace).
OWN_FILES = (SCENARIO_BAG, RESULT_BAG, REPORT_JSON, REPORT_MD, GIF, *PLOTS)
#: Entries that mark a directory as a previous demo's output.
_MARKERS = (REPORT_JSON, SCENARIO_BAG)
STAGES = 4


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` or clear the demo's own files from it; returns it.

    OutputError when it is not a directory, or is not empty and holds neither
    ``report.json`` nor ``scenario_bag`` (someone else's files: nothing is deleted).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f'--out {out} exists and is not a directory')
    if out.is_dir():
        entries = sorted(p.name for p in out.iterdir())
        if entries and not any(m in entries for m in _MARKERS):
            shown = ', '.join(entries[:5]) + (f', ... ({len(entries)} entries)' if len(entries) > 5 else '')
            raise OutputError(f'--out {out} is not empty and does not look like a previous demo output '
                              f'(no {REPORT_JSON} and no {SCENARIO_BAG}; it holds {shown}); refusing to write '
                              f'into it: choose another --out or an empty directory')
        for name in OWN_FILES:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f'--out {out}: cannot create the directory: {exc}') from exc
    return out


def _stage(progress: bool, stream: TextIO, k: int, text: str) -> None:
    if progress:
        print(f'[{k}/{STAGES}] {text}', file=stream, flush=True)


def _header(info: dict[str, Any], out: Path) -> str:
    t = info['stage_wall_s']
    closed = info.get('closed_loop')
    bags = ([(SCENARIO_BAG, 'closed-loop bag (sensor inputs, ground truth, the nodes\' outputs and commands)')]
            if closed else
            [(SCENARIO_BAG, 'scenario bag (sensor inputs + ground truth)'),
             (RESULT_BAG, 'result bag (evidence, common grid, twin outputs, diagnostics)')])
    files = [*bags,
             (REPORT_JSON, 'report (JSON)'), *[(p, 'evaluation picture') for p in info['pictures']],
             (GIF, 'animation of the run')]
    lines = [f"# Demo: {info['scenario']}", '',
             '| | |', '|---|---|',
             f"| scenario | {info['scenario']} (`{_shown(info['scenario_file'])}`) |",
             f"| seed | {info['seed']} |",
             f"| simulated duration | {info['duration_s']:g} s |",
             f"| faults | {info['faults'] or 'none'} |",
             *([f"| closed loop | mode {closed} |",
                f"| simulate + run (closed loop) | {t['run']:.1f} s wall ({info['run_ratio']:.2f}x real time) |"]
               if closed else
               [f"| simulate | {t['simulate']:.1f} s wall |",
                f"| run (lock-step) | {t['run']:.1f} s wall ({info['run_ratio']:.2f}x real time) |"]),
             f"| evaluate | {t['evaluate']:.1f} s wall |",
             f"| animate | {t['animate']:.1f} s wall ({info['gif_frames']} frames) |",
             f"| total | {info['total_wall_s']:.1f} s wall |",
             '', 'Files (beside this report):', '']
    lines += [f'- [`{name}`]({name}): {what}' for name, what in files]
    lines += ['', f'![run]({GIF})', '']
    lines += [f'![{p}]({p})' for p in info['pictures']]
    return '\n'.join(lines) + '\n\n'


def _shown(path: str | Path) -> str:
    """``path`` as a report shows it: relative to the working directory when inside it, else its name
    (a report must not carry this machine's absolute paths)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def run_demo(out_dir: str | Path = DEFAULT_OUT, scenario: str | Path | None = None, faults: str | Path | None = None,
             duration_s: float | None = None, seed: int | None = None, progress: bool = True, *,
             config: str | Path | None = None, domain_id: int | None = None, strict: bool = False,
             stream: TextIO | None = None, closed_loop: bool = False, mode: str | None = None) -> dict[str, Any]:
    """Simulate, run, evaluate and animate into ``out_dir``; returns the evaluation report.

    scenario : scenario YAML (None: the default scenario); duration_s : simulated seconds (None: the
        scenario's); seed : None: the scenario's
    faults : fault injection file, passed to the bringup (its ConfigError surfaces as is)
    config : bringup config (None: config/platoon.yaml); domain_id : ROS domain of the run
    progress : stage lines and progress bars on ``stream`` (default stderr); without it the nodes log
        warnings and errors only
    strict : an unknown parameter in a params file is an error (:func:`~..app.bringup.compose_nodes`)
    closed_loop, mode : simulate and run as one closed loop (module docstring), followers in ``mode``
        (None: :data:`~..app.closed_loop.DEFAULT_MODE`; ConfigError without ``closed_loop``)
    The report gets a ``demo`` entry (scenario file, seed, duration, stage wall times, files).
    Raises ConfigError, BagError or OutputError (nothing is started when an input is bad).
    """
    stream = stream or sys.stderr
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f'--duration must be a finite number of seconds > 0, got {duration_s}')

    from ..app import bringup, closed_loop as loop
    from ..app.platoon import load_platoon_config
    from ..sim.scenario import load_scenario, scenario_platoon_config
    from .simulate import default_scenario_path

    # Validate every input before writing anything.
    scenario_path = Path(scenario) if scenario is not None else default_scenario_path()
    scn = load_scenario(scenario_path)
    if config is None:  # a scenario with its own platoon ships its bringup config
        config = scenario_platoon_config(scenario_path)
    load_platoon_config(config)
    bringup.load_faults(faults)
    if mode is not None and not closed_loop:
        raise ConfigError('--mode needs --closed-loop')
    mode = loop.check_mode(mode or loop.DEFAULT_MODE) if closed_loop else None
    out = prepare_out_dir(out_dir)
    duration = float(duration_s) if duration_s is not None else float(scn.duration_s)
    scenario_bag, result_bag = out / SCENARIO_BAG, out / RESULT_BAG
    wall: dict[str, float] = {}
    t_total = time.perf_counter()

    from ..sim.bag_writer import write_simulation
    from ..sim.world import Simulation

    sim = Simulation(scn, seed=seed)
    if closed_loop:
        result_bag = scenario_bag
        _stage(progress, stream, 1, f'(and 2) simulating {duration:.1f} s of {scn.name} (seed {sim.seed}) in closed loop '
                                    f'with vehicles + fusion + twin + advisory followers ({mode}) -> {scenario_bag} ...')
        t0 = time.perf_counter()
        with bringup.node_log_level(not progress):
            loop_summary = loop.run_closed_loop(scn, scenario_bag, mode=mode, seed=seed, duration_s=duration,
                                                config_path=config, faults=faults, progress=progress,
                                                overwrite=True, domain_id=domain_id, strict=strict,
                                                progress_stream=stream)
        summary = loop_summary.run
        wall['run'] = time.perf_counter() - t0
        if progress:
            print(loop_summary.line(), file=stream, flush=True)
    else:
        _stage(progress, stream, 1,
               f'simulating {duration:.1f} s of {scn.name} (seed {sim.seed}) -> {scenario_bag} ...')
        t0 = time.perf_counter()
        write_simulation(sim.events(duration_s=duration), scenario_bag, progress=progress, total_s=duration,
                         overwrite=True)
        wall['simulate'] = time.perf_counter() - t0

        _stage(progress, stream, 2, f'running vehicles + fusion + twin (lock-step) -> {result_bag} ...')
        t0 = time.perf_counter()
        with bringup.node_log_level(not progress):
            summary = bringup.run_bag_lockstep(config, scenario_bag, result_bag, progress=progress, faults=faults,
                                               domain_id=domain_id, overwrite=True, strict=strict,
                                               progress_stream=stream, jobs=default_jobs())
        wall['run'] = time.perf_counter() - t0
        if progress:
            print(f'run: {summary.line()}', file=stream, flush=True)

    from ..evaluation.report import evaluate, report_markdown

    _stage(progress, stream, 3, 'evaluating ...')
    t0 = time.perf_counter()
    report = evaluate(scenario_bag, result_bag, plots_dir=out)
    wall['evaluate'] = time.perf_counter() - t0

    from ..evaluation.animation import animate_run

    _stage(progress, stream, 4, f'animating -> {out / GIF} ...')
    t0 = time.perf_counter()
    gif = animate_run(scenario_bag, result_bag, out / GIF)
    wall['animate'] = time.perf_counter() - t0

    pictures = [Path(p).name for p in report.get('plots') or []]
    info: dict[str, Any] = {
        'scenario': scn.name, 'scenario_file': str(scenario_path), 'seed': sim.seed, 'duration_s': duration,
        'faults': None if faults is None else str(faults), 'closed_loop': mode, 'stage_wall_s': wall,
        'total_wall_s': time.perf_counter() - t_total, 'run_ratio': summary.ratio,
        'gif_frames': gif.frames, 'gif_period_s': gif.period_s, 'pictures': pictures,
        'files': {'scenario_bag': str(scenario_bag), 'result_bag': str(result_bag),
                  'report_json': str(out / REPORT_JSON), 'report_md': str(out / REPORT_MD),
                  'gif': str(out / GIF), 'pictures': [str(out / p) for p in pictures]},
    }
    report['demo'] = info
    try:
        (out / REPORT_JSON).write_text(json.dumps(report, indent=2, allow_nan=False) + '\n')
        (out / REPORT_MD).write_text(_header(info, out) + report_markdown(report))
    except (OSError, ValueError) as exc:
        raise OutputError(f'{out}: cannot write the report: {exc}') from exc
    return report


# ---------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, metavar='DIR',
                        help=f'output directory (default: {DEFAULT_OUT}/); an existing one must be empty or a '
                             f'previous demo output, whose files are replaced')
    parser.add_argument('--scenario', type=Path, default=None, metavar='FILE',
                        help='scenario YAML (default: config/scenarios/highway_occlusion.yaml)')
    parser.add_argument('--faults', type=Path, default=None, metavar='FILE',
                        help='fault injection file (config/faults/*.yaml), passed to the run')
    parser.add_argument('--duration', type=float, default=None, metavar='S',
                        help="simulated seconds (default: the scenario's duration_s)")
    parser.add_argument('--seed', type=int, default=None, help="random seed (default: the scenario's seed)")
    parser.add_argument('--config', type=Path, default=None, metavar='FILE',
                        help='bringup config (default: the scenario\'s own <name>/platoon.yaml if it ships one, '
                             'else config/platoon.yaml)')
    parser.add_argument('--quiet', action='store_true',
                        help='warnings and errors only: no stage lines or progress bars, the nodes log at WARN '
                             'and above (the closing summary is still printed)')
    parser.add_argument('--strict', action='store_true',
                        help='an unknown parameter in a params file is an error, not a warning (passed to the run)')
    parser.add_argument('--closed-loop', action='store_true',
                        help='simulate and run as one closed loop: the vehicles follow the advisory followers\' '
                             'commands; one bag (scenario_bag) holds inputs, truth and outputs')
    parser.add_argument('--mode', default=None, metavar='MODE',
                        help=f'with --closed-loop: what the followers act on, one of {", ".join(MODES)} '
                             f'(default: {DEFAULT_MODE})')


def run(args: argparse.Namespace) -> int:
    check_closed_loop_flags(args, ('mode',))
    report = run_demo(args.out, args.scenario, args.faults, args.duration, args.seed, progress=not args.quiet,
                      config=args.config, strict=getattr(args, 'strict', False), closed_loop=args.closed_loop,
                      mode=args.mode)
    from ..evaluation.report import summary_table

    info = report['demo']
    t = info['stage_wall_s']
    stages = (f"closed loop ({info['closed_loop']}) {t['run']:.1f} s" if info['closed_loop'] else
              f"simulate {t['simulate']:.1f} s, run {t['run']:.1f} s")
    print(f"demo: done in {info['total_wall_s']:.1f} s ({stages}, evaluate {t['evaluate']:.1f} s, "
          f"animate {t['animate']:.1f} s); results in {Path(args.out)}/:")
    files = info['files']
    bags = [('scenario bag', files['scenario_bag'])]
    if files['result_bag'] != files['scenario_bag']:
        bags.append(('result bag', files['result_bag']))
    for label, path in (*bags,
                        ('report', files['report_json']), ('report (Markdown)', files['report_md']),
                        ('animation', files['gif']), *[('picture', p) for p in files['pictures']]):
        print(f'  {label:<18} {path}')
    print()
    print(summary_table(report))
    return 0
