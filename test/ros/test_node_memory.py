"""ros.node.keep_freed_memory (each node process, via spin_node): freed arrays are reused, no page faults."""
from __future__ import annotations

import resource

import numpy as np
import pytest

from cooperative_fusion.ros.node import keep_freed_memory

#: A cycle's worth of array sizes, float32 elements (1-8 MB).
SIZES = (1 << 18, 3 << 18, 1 << 20, 5 << 17, 1 << 21)


def test_a_cycles_freed_arrays_are_reused_without_page_faults():
    if not keep_freed_memory():
        pytest.skip('no glibc mallopt here')
    cycles = 30
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        arrays = [np.ones(n, dtype=np.float32) for n in SIZES]
        del arrays
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    pages = cycles * sum(SIZES) * 4 // resource.getpagesize()
    # glibc's defaults map most of these afresh each cycle (about half the pages fault, measured); kept: the first
    # cycle's only.
    assert faults < pages // 10
