"""LIME explanations spread over the processes of a :mod:`jax.distributed` job."""

from __future__ import annotations

import jax
import numpy as np

from jaxaudio.explain import lime_bridge
from jaxaudio.runtime.distributed import gather, share

__all__ = ["explain"]


def explain(predict_fn, specs, *, key, **explain_kwargs):
    """LIME explanations (:func:`jaxaudio.explain.explain`) of ``specs (N, bins, frames)``,
    shared out over the processes; excerpt ``i`` uses ``fold_in(key, i)`` wherever it runs.
    Returns the component weights ``(N, num_outputs, num_components)`` and the surrogate
    scores ``(N, num_outputs)`` on every process."""
    total = int(np.shape(specs)[0])
    part = share(total)
    weights, scores = [], []
    for i in range(part.start, part.stop):
        e = lime_bridge.explain(predict_fn, specs[i], key=jax.random.fold_in(key, i), **explain_kwargs)
        weights.append(np.asarray(e.weights))
        scores.append(np.asarray(e.score))
    return gather({"weights": np.stack(weights), "score": np.stack(scores)}, total)
