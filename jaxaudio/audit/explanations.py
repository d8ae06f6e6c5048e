"""Explanations of a batch of spectrograms, each for its own target label, on LIME's
``n_temporal x n_frequency`` components: LIME (:func:`lime_batch`) and occlusion + integrated
gradients (:func:`attribution_batch`); LIME's top-k stability on one of them
(:func:`first_stability`)."""

from __future__ import annotations

import time
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxaudio import explain as ex
from jaxaudio.explain import attribution as at

__all__ = ["lime_batch", "attribution_batch", "first_stability"]


def lime_batch(predict_fn: Callable, specs, targets, *, key: jax.Array, num_samples: int,
               first_position: int = 0, progress: bool = False, n_temporal: int = 5,
               n_frequency: int = 4) -> dict:
    """LIME (:func:`jaxaudio.explain.explain`) of every ``specs[j]`` for ``targets[j]``, with
    key ``fold_in(key, first_position + j)``.

    Returns ``{"lime_weights": (n, C), "lime_score": (n,), "lime_seconds": (n,)}`` (seconds:
    wall time of each explanation).
    """
    n = len(specs)
    out = {"lime_weights": np.zeros((n, n_temporal * n_frequency)), "lime_score": np.zeros(n),
           "lime_seconds": np.zeros(n)}
    for j in tqdm(range(n), disable=not progress, leave=False, desc="LIME"):
        t0 = time.perf_counter()
        e = ex.explain(predict_fn, specs[j], key=jax.random.fold_in(key, first_position + j),
                       num_samples=num_samples, labels=(int(targets[j]),),
                       keep_predictions=False, n_temporal=n_temporal, n_frequency=n_frequency)
        out["lime_seconds"][j] = time.perf_counter() - t0
        out["lime_weights"][j], out["lime_score"][j] = e.weights_for(int(targets[j])), e.score[0]
    return out


def attribution_batch(predict_fn: Callable, specs, targets, *, ig_steps: int,
                      n_temporal: int = 5, n_frequency: int = 4) -> dict:
    """``{"occlusion_weights", "integrated_gradients_weights"}``, each ``(n, C)``
    (:mod:`jaxaudio.explain.attribution`; ``ig_steps`` integration intervals)."""

    seg = {"n_temporal": n_temporal, "n_frequency": n_frequency}
    if len(specs) == 0:
        empty = np.zeros((0, n_temporal * n_frequency))
        return {"occlusion_weights": empty, "integrated_gradients_weights": empty}
    return {"occlusion_weights": at.occlusion_batch(predict_fn, specs, targets, **seg),
            "integrated_gradients_weights": at.integrated_gradients_batch(
                predict_fn, specs, targets, steps=ig_steps, **seg)}


def first_stability(predict_fn: Callable, candidates, *, key: jax.Array, sample_sizes,
                    k: int = 3, repeats: int = 3) -> dict:
    """:func:`jaxaudio.explain.topk_stability` of the first audited adversary.

    ``candidates``: ``(domain, adversaries)`` pairs in order of preference, ``adversaries``
    with ``index``, ``audited``, ``features`` and ``explain_targets``. Returns ``{"domain",
    "example", ...stability lists}``, ``{}`` when nothing was audited.
    """

    for domain, a in candidates:
        if len(a["audited"]):
            i = int(a["audited"][0])
            r = ex.topk_stability(predict_fn, a["features"][a["index"] == i][0], key=key,
                                  sample_sizes=sample_sizes, k=k, repeats=repeats,
                                  label=int(a["explain_targets"][0]))
            return {"domain": domain, "example": i,
                    **{name: np.asarray(v).tolist() for name, v in r.items()}}
    return {}
