"""Reading a node's ROS parameter file (config/*.yaml) for the tests that check it against the node's table."""
from __future__ import annotations

from pathlib import Path

import yaml


def load_yaml_params(path: Path) -> dict[str, object]:
    """Dotted parameter name -> value, from a `/**: ros__parameters:` file."""
    doc = yaml.safe_load(path.read_text())
    assert list(doc) == ['/**'], f'{path}: expected one /** section, got {list(doc)}'
    flat: dict[str, object] = {}

    def walk(prefix: str, node: dict) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(f'{prefix}{k}.', v)
            else:
                flat[f'{prefix}{k}'] = v
    walk('', doc['/**']['ros__parameters'])
    return flat


def yaml_lines(path: Path) -> dict[str, str]:
    """Dotted parameter name -> its line in the file (by indentation under ros__parameters)."""
    stack: list[tuple[int, str]] = []
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        body = line.split('#', 1)[0].rstrip()
        if not body.strip() or ':' not in body:
            continue
        indent = len(body) - len(body.lstrip())
        key, value = body.strip().split(':', 1)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if value.strip():
            names = [k for _, k in stack if k not in ('/**', 'ros__parameters')]
            out['.'.join([*names, key])] = line
        else:
            stack.append((indent, key))
    return out
