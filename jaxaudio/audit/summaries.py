"""The veracity audit's tables and control summaries, from flip matrices and explanations.

- :func:`flip_matrices`: one :func:`~jaxaudio.audit.flip_matrix` per explainer ranking and the
  norm ranking, for a batch of adversaries;
- :func:`direction_tables`: Table 1 (top-k), Table 2 (all positive components vs the same
  number by norm) and the flip curves of one group of adversaries;
- :func:`grouped_tables`: :func:`direction_tables` of every group of one batch of adversaries;
- :func:`audit_groups`: flip matrices and grouped tables of adversaries kept per group;
- :func:`horse_summary`, :func:`subset_summary`: detection rates of the two controls.

Values are JSON-ready (floats, ints, lists; NaN where a group is empty).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from jaxaudio.audit.controls import HORSE_KINDS, detection_rate, subset_recall
from jaxaudio.audit.veracity import (
    flip_curve,
    flip_matrix,
    norm_rankings,
    positive_counts,
    rankings_from_weights,
    table_at_k,
    table_positive,
)
from jaxaudio.explain.segmentation import component_masks

__all__ = ["flip_matrices", "direction_tables", "grouped_tables", "audit_groups", "horse_summary",
           "subset_summary"]


def flip_matrices(predict_fn, specs, deltas, weights: Mapping[str, np.ndarray], targets, *,
                  n_temporal: int = 5, n_frequency: int = 4) -> dict:
    """``{explainer: flips, ..., "norm": flips}``, each ``(num_examples, num_components + 1)``
    bool (:func:`flip_matrix` with :func:`rankings_from_weights` / :func:`norm_rankings`);
    zero rows when there are no examples."""
    specs = np.asarray(specs)
    num_components = n_temporal * n_frequency
    if len(specs) == 0:
        return {sel: np.zeros((0, num_components + 1), bool) for sel in (*weights, "norm")}
    masks = component_masks(specs.shape[1:], n_temporal=n_temporal, n_frequency=n_frequency)
    ranks = {e: rankings_from_weights(w) for e, w in weights.items()}
    ranks["norm"] = norm_rankings(deltas, masks)
    targets = np.asarray(targets).astype(np.int64)
    return {sel: flip_matrix(predict_fn, specs, deltas, r, masks, targets)
            for sel, r in ranks.items()}


def direction_tables(flips: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], *,
                     k: int = 3) -> dict:
    """``{"table1", "table2", "curves"}`` of one group (e.g. one direction) of adversaries.

    ``table1[sel]``: fraction still flipped with delta in the top ``k`` of ``sel``;
    ``table2[e]`` / ``table2["norm_for_<e>"]``: all components with positive weight of ``e``
    vs the same number by norm, ``<e>_mean_components`` their mean count, ``norm`` = the norm
    column for LIME; ``curves[sel]``: fraction flipped per ``k = 0..C``.
    """
    n = len(next(iter(flips.values())))
    t1 = {sel: table_at_k(f, k) if len(f) else float("nan") for sel, f in flips.items()}
    t1["num_examples"] = int(n)
    t2: dict = {}
    for e, w in weights.items():
        counts = positive_counts(w) if n else np.zeros(0, int)
        row = table_positive(flips[e], flips["norm"], counts)
        t2[e], t2[f"norm_for_{e}"] = row["explainer"], row["norm"]
        t2[f"{e}_mean_components"] = row["mean_components"]
    t2["norm"] = t2.get("norm_for_lime", float("nan"))
    t2["num_examples"] = int(n)
    return {"table1": t1, "table2": t2,
            "curves": {sel: flip_curve(f).tolist() for sel, f in flips.items()}}


def grouped_tables(flips: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], groups,
                   names, *, k: int = 3) -> dict:
    """:func:`direction_tables` per group: ``{name: tables, "flips_<name>_<sel>": flips}``
    where group ``g`` (``groups == g``, one entry per adversary) is called ``names[g]``."""
    groups, out = np.asarray(groups), {}
    for g, name in enumerate(names):
        f = {sel: flips[sel][groups == g] for sel in flips}
        out[name] = direction_tables(f, {e: w[groups == g] for e, w in weights.items()}, k=k)
        out.update({f"flips_{name}_{sel}": f[sel] for sel in f})
    return out


def audit_groups(predict_fn, specs, classes, adversaries, explanations, names, *,
                 explainers=("lime", "occlusion", "integrated_gradients"), k: int = 3,
                 n_temporal: int = 5, n_frequency: int = 4) -> dict:
    """Flip matrices (:func:`flip_matrices`) and :func:`grouped_tables` of the audited
    adversaries of several groups (one per name, e.g. attack direction) taken together.

    ``adversaries[g]``: ``audited`` (positions into ``specs`` / ``classes``) and ``deltas``;
    ``explanations[g]``: ``<explainer>_weights`` and ``lime_score`` per audited adversary;
    the target of an adversary of class ``c`` is ``1 - c``. Returns ``{"score", "group",
    **grouped_tables}`` (``score``: LIME's, ``group``: the class of each).
    """
    def cat(parts, key):
        return np.concatenate([p[key] for p in parts])

    idx = cat(adversaries, "audited")
    groups = np.asarray(classes)[idx]
    weights = {e: cat(explanations, f"{e}_weights") for e in explainers}
    flips = flip_matrices(predict_fn, np.asarray(specs)[idx], cat(adversaries, "deltas"),
                          weights, 1 - groups, n_temporal=n_temporal, n_frequency=n_frequency)
    return {"score": cat(explanations, "lime_score"), "group": groups,
            **grouped_tables(flips, weights, groups, names, k=k)}


def horse_summary(found, component, amplitude, weights: Mapping[str, np.ndarray], lime_score,
                  *, k: int = 3) -> dict:
    """Horses found and how often each explainer ranks the edited component first / top ``k``.

    ``weights[e]`` and ``lime_score`` hold one row per *found* horse. ``"_hit"``: whether
    LIME ranked the edit first, per found horse (for fidelity).
    """
    found = np.flatnonzero(np.asarray(found, bool))
    comp = np.asarray(component)[found]
    out = {"num_examples": int(len(np.asarray(component))), "num_found": int(len(found)),
           "kinds": list(HORSE_KINDS), "amplitudes": np.asarray(amplitude)[found].tolist(),
           "lime_mean_score": float(np.mean(lime_score)) if len(found) else None}
    for e, w in weights.items():
        rank = rankings_from_weights(w) if len(found) else None
        for kk in (1, k):
            out[f"{e}_top{kk}"] = detection_rate(rank, comp, kk) if len(found) else None
    hit = ((rankings_from_weights(weights["lime"])[:, 0] == comp) if len(found)
           else np.zeros(0, bool))
    out["_hit"] = hit
    return out


def subset_summary(success, subsets, weights: Mapping[str, np.ndarray], lime_score) -> dict:
    """Subset adversaries found and the share of their subset in each explainer's top ``|S|``
    (``weights[e]``, ``lime_score``: one row per successful adversary)."""
    good = np.flatnonzero(np.asarray(success, bool))
    subsets = np.asarray(subsets)
    size = int(subsets.sum(axis=1).max()) if len(subsets) else 0
    out = {"num_examples": int(len(subsets)), "num_adversaries": int(len(good)),
           "subset_size": size, "chance": size / subsets.shape[1] if subsets.ndim == 2 else None,
           "lime_mean_score": float(np.mean(lime_score)) if len(good) else None}
    for e, w in weights.items():
        out[f"{e}_recall"] = (float(subset_recall(rankings_from_weights(w), subsets[good]).mean())
                              if len(good) else None)
    return out
