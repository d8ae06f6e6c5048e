"""Fixed-size chunked batching: pad the last chunk, compile once, strip the padding.

Every batched evaluation in jaxaudio (clip scores, predictions of attacked excerpts, flip
matrices, horse searches, LIME's perturbed batches) runs a jitted function over an array of
examples in chunks of one fixed size, so that any number of examples shares one compiled
program. :func:`map_chunks` is that loop, written once.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

__all__ = ["map_chunks", "pad_to"]


def pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` with its last row repeated until it has ``size`` rows (``a`` itself if it has)."""
    a = np.asarray(a)
    missing = size - a.shape[0]
    if missing <= 0:
        return a
    return np.concatenate([a, np.repeat(a[-1:], missing, axis=0)])


def map_chunks(fn: Callable[..., Any], *arrays, chunk_size: int,
               broadcast: tuple = (), pad_single: bool = True) -> Any:
    """Apply ``fn`` to ``arrays`` in chunks of ``chunk_size`` examples along axis 0.

    Args:
      fn: ``fn(*chunks, *broadcast) -> pytree`` of arrays with a leading example axis; usually
        jitted, so every chunk (the last one padded with copies of its last example) reuses one
        compiled program.
      *arrays: arrays with the same leading size ``n >= 1``.
      chunk_size: int >= 1, the fixed chunk size.
      broadcast: extra arguments passed unchanged to every call (not chunked).
      pad_single: if False and ``n <= chunk_size``, call ``fn`` once on the ``n`` examples
        without padding (a smaller program, for one-off calls).

    Returns:
      The pytree of numpy arrays ``fn`` returns, concatenated over chunks, with ``n`` rows.
    """
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if not arrays:
        raise ValueError("map_chunks needs at least one array to chunk")
    arrays = [np.asarray(a) for a in arrays]
    n = arrays[0].shape[0]
    if n == 0:
        raise ValueError("map_chunks needs at least one example (leading size 0)")
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(f"arrays must share their leading size, got "
                         f"{[a.shape[0] for a in arrays]}")
    size = int(chunk_size)
    if not pad_single and n <= size:
        size = n
    outs = []
    for start in range(0, n, size):
        chunks = [pad_to(a[start:start + size], size) for a in arrays]
        count = min(size, n - start)
        out = jax.device_get(fn(*chunks, *broadcast))
        outs.append(jax.tree.map(lambda o: np.asarray(o)[:count], out))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outs)
