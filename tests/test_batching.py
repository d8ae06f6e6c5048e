"""map_chunks: chunked == whole, one compiled shape, padding stripped."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio.dsp.batching import map_chunks


def test_chunked_equals_whole_and_compiles_once():
    shapes = []

    @jax.jit
    def f(x, y, scale):
        shapes.append(x.shape)  # traced once per distinct shape
        return {"s": (x * scale).sum(-1) + y, "x2": x * 2}

    x = np.random.default_rng(0).standard_normal((11, 3)).astype(np.float32)
    y = np.arange(11, dtype=np.float32)
    out = map_chunks(f, x, y, chunk_size=4, broadcast=(jnp.float32(2.0),))
    np.testing.assert_allclose(out["s"], (x * 2).sum(-1) + y, rtol=1e-6)
    np.testing.assert_allclose(out["x2"], x * 2)
    assert out["s"].shape == (11,) and shapes == [(4, 3)]


def test_pad_single_false_uses_exact_shape():
    out = map_chunks(lambda a: a + 1, np.zeros((3, 2)), chunk_size=8, pad_single=False)
    assert out.shape == (3, 2)


@pytest.mark.parametrize("bad", [dict(chunk_size=0), dict(chunk_size=2.5)])
def test_bad_chunk_size(bad):
    with pytest.raises(ValueError, match="chunk_size"):
        map_chunks(lambda a: a, np.zeros((2, 1)), **bad)


def test_mismatched_and_empty():
    with pytest.raises(ValueError, match="leading size"):
        map_chunks(lambda a, b: a, np.zeros((2, 1)), np.zeros((3, 1)), chunk_size=2)
    with pytest.raises(ValueError, match="at least one example"):
        map_chunks(lambda a: a, np.zeros((0, 1)), chunk_size=2)
