"""Load a file of scripts/ or benchmarks/ as a module (neither is a package), for their tests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _load(folder: str, name: str) -> ModuleType:
    """<folder>/<name>.py as module ``name``; the folder goes on sys.path for the file's own imports."""
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as module ``name``."""
    return _load('scripts', name)


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py as module ``name``."""
    return _load('benchmarks', name)
