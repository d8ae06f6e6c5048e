"""Adversaries of a binary detector for the audit: C&W label flips, the audited subset of them,
and the subset-confined control (docs/studies.md §3).

Class ``0`` / ``1`` are the detector's two labels (``sigmoid(logit) > 0.5`` is ``1``); an
adversary of a class-``source`` input must reach the other class with ``confidence``.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from jaxaudio import attacks
from jaxaudio.audit.controls import find_horses, random_subsets, subset_logits_fn
from jaxaudio.audit.veracity import predict_labels
from jaxaudio.explain.segmentation import component_masks

__all__ = ["flip_binary", "audited_indices", "flip_set", "subset_adversaries", "first_per_class",
           "horse_set", "subset_set"]

#: Horse edit amplitudes in units of the spectrograms' standard deviation.
HORSE_AMPLITUDES = (0.5, 1, 1.5, 2, 3, 4, 6, 8)


def flip_binary(logits_fn: Callable, x, source: int, *, domain: str, confidence: float,
                **settings) -> tuple[np.ndarray, np.ndarray]:
    """C&W (:func:`jaxaudio.attacks.carlini_wagner`) from class ``source`` to the other one,
    with the sigmoid threshold at ``confidence`` of the new class. Every step runs (C&W's L2
    term keeps shrinking delta; the lowest-energy successful iterate is returned).

    Returns ``(adversarial float32, success bool)``; ``settings``: ``clip_eps``, ``alpha``,
    ``learning_rate``, ``max_iterations``, ...
    """

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


def flip_set(logits_fn: Callable, inputs, specs, classes, source: int, *, predict_fn: Callable,
             to_features: Optional[Callable] = None, domain: str, **attack) -> dict:
    """:func:`flip_binary` of the ``inputs`` of class ``source`` (``classes == source``) and
    what the explainers must find in the audited ones (:func:`audited_indices`).

    ``specs``: the originals' spectrograms; ``to_features`` maps adversarial ``inputs`` to
    spectrograms (``None``: they are spectrograms). Returns ``index`` (the attacked
    positions), ``adversarial``, ``success``, ``features``, ``audited`` (positions),
    ``deltas``, ``explain_specs`` (= original + delta) and ``explain_targets``.
    """
    inputs = np.asarray(inputs)
    index = np.flatnonzero(np.asarray(classes) == source)
    adv, success = np.zeros((0,) + inputs.shape[1:], np.float32), np.zeros(0, bool)
    if len(index):
        adv, success = flip_binary(logits_fn, inputs[index], source, domain=domain, **attack)
    feats, specs = adv if to_features is None else to_features(adv), np.asarray(specs)[index]
    ok = audited_indices(predict_fn, feats, success, source)
    deltas = feats[ok] - specs[ok]
    return {"index": index, "adversarial": adv, "success": success, "features": feats,
            "audited": index[ok], "deltas": deltas, "explain_specs": specs[ok] + deltas,
            "explain_targets": np.full(len(ok), 1 - source, np.int64)}


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


def first_per_class(classes, num: int) -> np.ndarray:
    """Positions of the first ``num`` entries of class 0, then of class 1."""
    classes = np.asarray(classes)
    return np.concatenate([np.flatnonzero(classes == c)[:num] for c in (0, 1)])


def horse_set(predict_fn: Callable, specs, classes, *, per_class: int, key, n_temporal: int = 5,
              n_frequency: int = 4) -> dict:
    """Horses (:func:`~jaxaudio.audit.find_horses`, amplitudes :data:`HORSE_AMPLITUDES` times
    the spectrograms' std ``spread``) of the first ``per_class`` spectrograms of each class,
    and what to explain: ``explain_specs`` (the found horses) for ``explain_targets``."""

    specs, pick = np.asarray(specs), first_per_class(classes, per_class)
    source = np.asarray(classes)[pick].astype(np.int32)
    spread = float(specs.std())
    h = find_horses(predict_fn, specs[pick], source,
                    component_masks(specs.shape[1:], n_temporal=n_temporal,
                                    n_frequency=n_frequency),
                    amplitudes=spread * np.array(HORSE_AMPLITUDES), key=key)
    return {"pick": pick, "spread": spread, **h, "explain_specs": h["spec"][h["found"]],
            "explain_targets": (1 - source)[h["found"]].astype(np.int64)}


def subset_set(feature_logits_fn: Callable, predict_fn: Callable, specs, classes, *,
               per_class: int, subset_size: int, key, n_temporal: int = 5,
               n_frequency: int = 4, **attack) -> dict:
    """Subset adversaries (:func:`subset_adversaries`, random subsets of ``subset_size``
    components drawn with ``key``) of the first ``per_class`` spectrograms of each class, and
    what to explain: the successful ones for their new labels."""

    specs, pick = np.asarray(specs), first_per_class(classes, per_class)
    masks = component_masks(specs.shape[1:], n_temporal=n_temporal, n_frequency=n_frequency)
    subsets = random_subsets(key, len(pick), masks.shape[0], subset_size)
    r = subset_adversaries(feature_logits_fn, predict_fn, specs[pick], np.asarray(classes)[pick],
                           subsets, masks, **attack)
    ok = r["success"]
    return {"pick": pick, "subsets": subsets, "success": ok, "spec": r["spec"],
            "explain_specs": r["spec"][ok], "explain_targets": r["targets"][ok].astype(np.int64)}
