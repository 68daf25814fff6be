"""``cooperative-fusion evaluate``: score a result bag against a simulated bag's ground truth (``evaluation.report``)."""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from ..core.errors import ConfigError
from ..evaluation.report import DEFAULT_PLOT_VEHICLE, evaluate, summary_table


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f'{text!r} must be a finite number >= 0')
    return value


def _check_writable(path: Path, flag: str, *, directory: bool) -> None:
    """ConfigError unless ``path`` (a file, or a directory when ``directory``) can be written or created."""
    if path.exists():
        if directory and not path.is_dir():
            raise ConfigError(f'{path}: exists and is not a directory ({flag})')
        if not directory and path.is_dir():
            raise ConfigError(f'{path}: is a directory ({flag})')
        if not os.access(path, os.W_OK | (os.X_OK if directory else 0)):
            raise ConfigError(f'{path}: not writable ({flag})')
        return
    # the nearest existing ancestor must be a directory we may create entries in
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f'{path}: cannot be created, {parent} is not a directory ({flag})')
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f'{path}: cannot be created, {parent} is not writable ({flag})')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--truth', type=Path, required=True, metavar='BAG',
                        help='bag written by `cooperative-fusion simulate` (ground truth)')
    parser.add_argument('--result', type=Path, required=True, metavar='OUT_BAG',
                        help='bag written by `cooperative-fusion run --record`')
    parser.add_argument('--report', type=Path, required=True, metavar='REPORT.json', help='JSON report to write')
    parser.add_argument('--plots', type=Path, default=None, metavar='DIR',
                        help='write see_through.png and metrics.png into DIR')
    parser.add_argument('--plot-vehicle', default=DEFAULT_PLOT_VEHICLE, metavar='ID',
                        help=f'vehicle of the see-through picture (default {DEFAULT_PLOT_VEHICLE})')
    parser.add_argument('--fusion-config', type=Path, default=None, metavar='FILE',
                        help='fusion parameters for the ego-only baselines (default config/fusion.yaml if present)')
    parser.add_argument('--twin-config', type=Path, default=None, metavar='FILE',
                        help='twin parameters with output_horizons_s (default config/twin.yaml if present)')
    parser.add_argument('--roi-behind', type=_nonneg_float, default=20.0, metavar='M',
                        help='ROI starts this far behind the last vehicle (default 20 m)')
    parser.add_argument('--roi-ahead', type=_nonneg_float, default=100.0, metavar='M',
                        help='ROI ends this far ahead of the leader (default 100 m)')
    parser.add_argument('--roi-half-width', type=_nonneg_float, default=10.5, metavar='M',
                        help="ROI half width about the platoon's line (default 10.5 m)")
    parser.add_argument('--quiet', action='store_true', help='no summary table on stdout')


def run(args: argparse.Namespace) -> int:
    from ..core.evaluation import RoiConfig

    for name in ('fusion_config', 'twin_config'):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f'{path}: no such file (--{name.replace("_", "-")})')
    # outputs are checked before the work, not found unwritable after it
    _check_writable(Path(args.report), '--report', directory=False)
    if args.plots is not None:
        _check_writable(Path(args.plots), '--plots', directory=True)
        for name in ('see_through.png', 'metrics.png'):
            if (Path(args.plots) / name).is_dir():
                raise ConfigError(f'{Path(args.plots) / name}: is a directory (--plots)')
    try:
        report = evaluate(args.truth, args.result,
                          roi=RoiConfig(args.roi_behind, args.roi_ahead, args.roi_half_width),
                          fusion_config=args.fusion_config, twin_config=args.twin_config, plots_dir=args.plots,
                          plot_vehicle=args.plot_vehicle)
    except OSError as exc:      # e.g. the plots directory went read-only while we worked
        raise ConfigError(f'cannot write the plots: {exc}') from exc
    out = Path(args.report)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + '\n')
    except OSError as exc:
        raise ConfigError(f'{out}: cannot write the report: {exc}') from exc
    if not args.quiet:
        print(summary_table(report))
        print(f'wrote {out}' + (f" and {', '.join(report.get('plots', []))}" if args.plots is not None else ''))
    return 0
