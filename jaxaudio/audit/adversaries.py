"""Adversaries of a binary detector for the audit: C&W label flips, the audited subset of them,
and the subset-confined control (REFERENCE.md §3).

Class ``0`` / ``1`` are the detector's two labels (``sigmoid(logit) > 0.5`` is ``1``); an
adversary of a class-``source`` input must reach the other class with ``confidence``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxaudio.audit.controls import subset_logits_fn
from jaxaudio.audit.veracity import predict_labels

__all__ = ["flip_binary", "audited_indices", "subset_adversaries"]


def flip_binary(logits_fn: Callable, x, source: int, *, domain: str, confidence: float,
                **settings) -> tuple[np.ndarray, np.ndarray]:
    """C&W (:func:`jaxaudio.attacks.carlini_wagner`) from class ``source`` to the other one,
    with the sigmoid threshold at ``confidence`` of the new class. Every step runs (C&W's L2
    term keeps shrinking delta; the lowest-energy successful iterate is returned).

    Returns ``(adversarial float32, success bool)``; ``settings``: ``clip_eps``, ``alpha``,
    ``learning_rate``, ``max_iterations``, ...
    """
    from jaxaudio import attacks

    threshold = confidence if source == 0 else 1.0 - confidence
    res = attacks.carlini_wagner(logits_fn, x, np.full(len(x), source, np.int32),
                                 decision="sigmoid", threshold=threshold, domain=domain,
                                 early_stop=False, **settings)
    return np.asarray(res.adversarial, np.float32), np.asarray(res.success, bool)


def audited_indices(predict_fn: Callable, features, success, source: int) -> np.ndarray:
    """Positions of the successful adversaries whose ``features`` the two-class ``predict_fn``
    labels with the new class ``1 - source`` (the ones whose delta an explainer must find)."""
    ok = np.flatnonzero(success)
    if len(ok):
        ok = ok[predict_labels(predict_fn, np.asarray(features)[ok]) == 1 - source]
    return ok


def subset_adversaries(feature_logits_fn: Callable, predict_fn: Callable, specs, sources,
                       subsets, masks, *, confidence: float, **settings) -> dict:
    """Adversaries whose delta is confined to the components in ``subsets`` (``(n, C)``
    0/1): the attack sees ``[spec, cells]`` (:func:`subset_logits_fn`) and never moves the
    mask channel.

    Returns ``{"success", "spec", "targets"}``: success = the attack succeeded and
    ``predict_fn`` labels the confined adversary ``spec`` with ``targets = 1 - sources``.
    """
    specs, sources = np.asarray(specs), np.asarray(sources)
    cells = np.einsum("nc,cft->nft", subsets, masks).astype(np.float32)
    x = np.stack([specs, cells], axis=1)
    adv_x, ok = x.copy(), np.zeros(len(specs), bool)
    for source in (0, 1):
        i = np.flatnonzero(sources == source)
        if len(i):
            adv_x[i], ok[i] = flip_binary(subset_logits_fn(feature_logits_fn), x[i], source,
                                          domain="spectrogram", confidence=confidence,
                                          **settings)
    if not np.array_equal(adv_x[:, 1], cells):
        raise RuntimeError("the subset attack moved its mask channel")
    adv_spec = specs + (adv_x[:, 0] - specs) * cells
    targets = np.where(sources == 0, 1, 0)
    ok &= predict_labels(predict_fn, adv_spec) == targets
    return {"success": ok, "spec": adv_spec, "targets": targets}
