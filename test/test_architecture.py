"""The package's layers as the import graph shows them: no cycles, and each floor imports only downwards.

The graph holds every ``import``/``from ... import`` (also inside functions and
TYPE_CHECKING blocks) and every module named in a string that ``importlib``
loads (``cli.SUBCOMMANDS``), so cycles hidden behind ``importlib`` count too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = 'cooperative_fusion'
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split('.') if is_package else module.split('.')[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return '.'.join(base + ([name] if name else []))


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob('*.py')}
    graph: dict[str, set[str]] = {m: set() for m in modules}

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition('.')[0]
        return target or None

    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == '__init__.py'
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module) if node.level else (node.module or '')
                targets = [f'{base}.{a.name}' for a in node.names] + [base]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith(f'{PACKAGE}.') and ' ' not in node.value:
                targets = [node.value]          # a module loaded by importlib from a string
            for t in targets:
                if t.startswith(PACKAGE) and (hit := known(t)) is not None and hit != module:
                    graph[module].add(hit)
    return graph


GRAPH = _import_graph()


def _floor(module: str) -> str:
    parts = module.split('.')
    if len(parts) >= 3 and parts[1] == 'core' and parts[2] in ('vehicle', 'fusion', 'twin'):
        return f'core.{parts[2]}'
    return parts[1] if len(parts) > 1 else ''


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_importlib_modules():
    assert f'{PACKAGE}.commands.demo' in GRAPH[f'{PACKAGE}.cli']         # named in cli.SUBCOMMANDS
    assert f'{PACKAGE}.core.errors' in GRAPH[f'{PACKAGE}.core.grid']    # a relative import


def test_no_import_cycles_between_modules():
    assert _cycles(GRAPH) == []


def test_no_import_cycles_between_floors():
    floors: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        floors.setdefault(_floor(m), set()).update(_floor(t) for t in targets if _floor(t) != _floor(m))
    assert _cycles(floors) == []


#: floor -> floors it may import (besides itself). Data flows up: core < ros < nodes < app < commands < cli.
ALLOWED = {
    'core': set(),
    'core.vehicle': {'core'},
    'core.fusion': {'core'},
    'core.twin': {'core'},
    'ros': {'core', 'core.vehicle', 'core.fusion', 'core.twin'},
    'sim': {'core', 'core.vehicle', 'core.twin', 'ros'},
    'nodes': {'core', 'core.vehicle', 'core.fusion', 'core.twin', 'ros'},
    # evaluation reads the nodes' parameter tables (nodes/*_params.py) to map their files as the nodes do
    'evaluation': {'core', 'core.fusion', 'core.twin', 'ros', 'nodes'},
    'app': {'core', 'core.vehicle', 'core.fusion', 'core.twin', 'ros', 'nodes', 'sim', 'evaluation'},
    'commands': {'core', 'ros', 'sim', 'app', 'evaluation'},
    'cli': {'core', 'ros', 'commands'},
}


@pytest.mark.parametrize('floor', sorted(ALLOWED))
def test_each_floor_imports_only_downwards(floor):
    bad = sorted((m, t) for m, targets in GRAPH.items() if _floor(m) == floor for t in targets
                 if _floor(t) != floor and _floor(t) not in ALLOWED[floor])
    assert bad == []


def test_every_module_is_on_a_known_floor():
    assert {_floor(m) for m in GRAPH} - set(ALLOWED) <= {''}


def test_core_never_imports_ros():
    offenders = []
    for path in (ROOT / 'core').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [(path.name, n) for n in names if n.split('.')[0] == 'rclpy' or n.split('.')[0].endswith('_msgs')]
    assert offenders == []


def test_nothing_imports_cli():
    assert [m for m, targets in GRAPH.items() if f'{PACKAGE}.cli' in targets] == []
