"""prediction._phi (one buffer, in place) against the one-line tanh expression it replaces, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.twin.prediction import _phi


def _plain_phi(z):
    f = np.float32
    return f(0.5) * (f(1.0) + np.tanh(f(0.7978845608) * (z + f(0.044715) * z * z * z)))


@pytest.mark.parametrize('shape', [(1,), (7,), (3, 17, 29), (2, 64, 65)])
def test_phi_is_bit_identical_to_the_expression(shape):
    rng = np.random.default_rng(sum(shape))
    z = (rng.normal(0.0, 3.0, shape) * rng.choice([1.0, 10.0, 100.0], shape)).astype(np.float32)
    got, want = _phi(z), _plain_phi(z)
    assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
    assert np.all((got >= 0.0) & (got <= 1.0))
