"""Multi-process jobs with :mod:`jax.distributed`: joining a job, each process's share of the
examples, and gathering every share back.

Every example's attack, and every excerpt's explanation, is independent of the others, so a
job spreads over ``P`` processes without any communication inside the loop: process ``p``
takes a contiguous share of the examples (:func:`share`), runs the usual jitted, batched
computation on its own devices, and the shares are gathered at the end over JAX's own
multi-host runtime (:func:`gather`, :func:`jax.experimental.multihost_utils.process_allgather`).
The jobs themselves are :func:`jaxaudio.attacks.distributed.attack` and
:func:`jaxaudio.explain.distributed.explain`; ``python -m jaxaudio.cli.distributed`` runs a
small one as one process of a multi-process job.
"""

from __future__ import annotations

from typing import Optional

import jax
import numpy as np

__all__ = ["initialize", "share", "gather"]


def initialize(coordinator_address: str, *, num_processes: int, process_id: int) -> None:
    """Join a multi-process JAX job (:func:`jax.distributed.initialize`); on the CPU backend
    with gloo collectives so that CPU processes can gather results.

    ``coordinator_address``: ``host:port`` of process 0; ``num_processes`` >= 1;
    ``process_id`` in ``[0, num_processes)``.
    """
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):  # older or newer JAX: its default then
        pass
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def share(total: int, *, process_index: Optional[int] = None,
          process_count: Optional[int] = None) -> slice:
    """This process's contiguous share of ``total`` examples: ``ceil(total / P)`` each, the
    last share shorter (possibly empty)."""
    p = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    size = -(-total // count)
    return slice(min(p * size, total), min((p + 1) * size, total))


def gather(tree, total: int):
    """Concatenate every process's share of ``tree`` (leading axis) into the whole job's
    ``(total, ...)`` arrays, on every process. Shares are padded to equal size for the
    exchange (multi-host all-gather needs equal shapes) and the padding dropped."""
    from jax.experimental import multihost_utils

    count = jax.process_count()
    if count == 1:
        return jax.tree.map(np.asarray, tree)
    size = -(-total // count)

    def pad(a):
        a = np.asarray(a)
        if a.shape[0] == size:
            return a
        filler = np.zeros((size - a.shape[0],) + a.shape[1:], a.dtype)
        return np.concatenate([a, filler], axis=0)

    padded = jax.tree.map(pad, tree)
    gathered = multihost_utils.process_allgather(padded, tiled=False)  # (count, size, ...)
    return jax.tree.map(lambda a: np.asarray(a).reshape((-1,) + a.shape[2:])[:total],
                        gathered)
