"""Run every benchmarks/bench_*.py and record their result lines in a results file.

Each benchmark prints a reference measured in the same run and ends with one
``key=value ...`` line; this script keeps that line, the machine and the date.
The file goes to ``build/benchmarks/results.md`` (outside the tracked tree) or
``--out FILE``; ``--update`` writes the tracked ``benchmarks/results.md``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRACKED = HERE / 'results.md'
DEFAULT_OUT = HERE.parent / 'build' / 'benchmarks' / 'results.md'


def machine() -> str:
    cpu = 'unknown CPU'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return f'{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}'


def results_path(update: bool, out: Path | None) -> Path:
    """Where the results go: ``--out``, else the tracked file with ``--update``, else ``build/``."""
    if out is not None:
        return out
    return TRACKED if update else DEFAULT_OUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument('--update', action='store_true',
                        help=f'write the tracked {TRACKED.relative_to(HERE.parent)}')
    target.add_argument('--out', type=Path, default=None, metavar='FILE',
                        help=f'write FILE (default: {DEFAULT_OUT.relative_to(HERE.parent)})')
    parser.add_argument('--only', nargs='+', default=None, metavar='NAME',
                        help='run only these benchmarks (bench_live or bench_live.py)')
    args = parser.parse_args(argv)
    argv_used = sys.argv[1:] if argv is None else list(argv)
    benches = sorted(HERE.glob('bench_*.py'))
    if args.only is not None:
        wanted = {n if n.endswith('.py') else f'{n}.py' for n in args.only}
        unknown = sorted(wanted - {b.name for b in benches})
        if unknown:
            parser.error(f'no such benchmark: {", ".join(unknown)}; have {", ".join(b.name for b in benches)}')
        benches = [b for b in benches if b.name in wanted]
    rows = []
    failed = 0
    for bench in benches:
        print(f'== {bench.name}', flush=True)
        proc = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:])
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else ''
        if proc.returncode != 0:
            failed += 1
            last = f'FAILED (exit {proc.returncode})'
        rows.append((bench.name, last))
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    out = ['# Benchmark results', '', f'- date: {now}', f'- machine: {machine()}',
           f'- command: `python benchmarks/run_all.py{"".join(" " + a for a in argv_used)}` (`make bench`; '
           '`make bench BENCH_FLAGS=--update` writes the tracked benchmarks/results.md)', '',
           '| benchmark | result line |', '|---|---|']
    out += [f'| `{name}` | `{line}` |' for name, line in rows]
    path = results_path(args.update, args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(out) + '\n')
    print(f'wrote {path}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
