"""Run every benchmarks/bench_*.py and record their result lines in benchmarks/results.md.

Each benchmark prints a reference measured in the same run and ends with one
``key=value ...`` line; this script keeps that line, the machine and the date.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


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


def main() -> int:
    rows = []
    failed = 0
    for bench in sorted(HERE.glob('bench_*.py')):
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
           '- command: `make bench` (runs `python benchmarks/run_all.py`)', '',
           '| benchmark | result line |', '|---|---|']
    out += [f'| `{name}` | `{line}` |' for name, line in rows]
    (HERE / 'results.md').write_text('\n'.join(out) + '\n')
    print(f'wrote {HERE / "results.md"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
