"""Label-noise curves: the noise-equivalent corruption rate of a training set, and curves over seeds."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = ['noise_equivalent_p', 'summarize_noise_equivalent', 'seed_mean_std', 'seed_curves', 'label_noise_summary']


# ----------------------------------------------------------------------------------------------
# Noise-equivalent corruption rate (label-noise study)
# ----------------------------------------------------------------------------------------------
def noise_equivalent_p(rates: Sequence[float], curve: Sequence[float],
                       reference: float) -> tuple[Optional[float], str]:
    """Where a metric-vs-corruption curve first falls to ``reference``.

    Parameters
    ----------
    rates : sequence of float [shape=(R,)], strictly increasing, in [0, 1]
        Corruption rates p at which the curve was measured.
    curve : sequence of float [shape=(R,)]
        The metric (higher is better) at each rate.
    reference : float
        The figure of the training set being priced (e.g. noisy-only accuracy).

    Returns
    -------
    p : float or None
        The first p (linear interpolation between measured rates) with ``curve(p) <=
        reference``; ``rates[0]`` if the curve already starts at or below it; ``None`` if it
        never falls that low within ``[rates[0], rates[-1]]`` (no extrapolation).
    status : str
        ``"crossed"``, ``"at_or_above_clean"`` (the reference is at least as good as the
        uncorrupted run) or ``"never_below"`` (worse than even the most corrupted run).
    """
    rates = np.asarray(rates, np.float64)
    curve = np.asarray(curve, np.float64)
    if rates.ndim != 1 or rates.shape != curve.shape or rates.size < 1:
        raise ValueError(f"rates and curve must be 1-D of the same length >= 1, got "
                         f"{rates.shape} and {curve.shape}")
    if np.any(np.diff(rates) <= 0):
        raise ValueError(f"rates must be strictly increasing, got {rates.tolist()}")
    if not (np.all(np.isfinite(curve)) and np.isfinite(reference)):
        raise ValueError("curve and reference must be finite")
    if curve[0] <= reference:
        return float(rates[0]), "at_or_above_clean"
    for i in range(rates.size - 1):
        if curve[i + 1] <= reference:
            # curve[i] > reference >= curve[i + 1]: interpolate on this segment.
            frac = (curve[i] - reference) / (curve[i] - curve[i + 1])
            return float(rates[i] + frac * (rates[i + 1] - rates[i])), "crossed"
    return None, "never_below"


def summarize_noise_equivalent(rates, curves: np.ndarray, references: np.ndarray) -> dict:
    """Per-seed noise-equivalent p and its summary.

    Parameters
    ----------
    rates : [shape=(R,)] corruption rates.
    curves : [shape=(S, R)] the metric of seed ``s`` at each rate.
    references : [shape=(S,)] the priced training set's metric for each seed.

    Returns
    -------
    dict with ``per_seed`` (float or None), ``status`` per seed, ``mean``/``std`` (sample std,
    over the seeds where p exists; None if none or, for std, fewer than two), ``defined``
    (count), ``seeds``, ``from_mean_curve`` (p where the seed-mean curve meets the seed-mean
    reference) and a human-readable ``note``.
    """
    curves = np.asarray(curves, np.float64)
    references = np.asarray(references, np.float64)
    per_seed, status = [], []
    for curve, ref in zip(curves, references):
        p, s = noise_equivalent_p(rates, curve, float(ref))
        per_seed.append(p)
        status.append(s)
    defined = [p for p in per_seed if p is not None]
    mean = float(np.mean(defined)) if defined else None
    std = float(np.std(defined, ddof=1)) if len(defined) > 1 else None
    p_mean, s_mean = noise_equivalent_p(rates, curves.mean(0), float(references.mean()))
    never = status.count("never_below")
    above = status.count("at_or_above_clean")
    if not defined:
        note = (f"the corruption curve never falls to this figure up to p = {rates[-1]:g} in "
                f"any of {len(status)} seeds: these labels are worth less than curated labels "
                f"with {rates[-1]:.0%} of them wrong")
    else:
        note = f"p = {mean:.3f}" + (f" ± {std:.3f}" if std is not None else "") + \
            f" over {len(defined)} of {len(status)} seeds"
        if never:
            note += (f"; in {never} seed(s) the curve never falls this low up to "
                     f"p = {rates[-1]:g} (left out of the mean)")
        if above:
            note += (f"; in {above} seed(s) this set is at least as good as clean curated "
                     f"labels (counted as p = {rates[0]:g})")
    return {"per_seed": per_seed, "status": status, "mean": mean, "std": std,
            "defined": len(defined), "seeds": len(status), "from_mean_curve": p_mean,
            "from_mean_curve_status": s_mean, "note": note}


def seed_mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value) of per-seed figures."""
    values = np.asarray(values, np.float64)
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return float(np.mean(values)), std


def seed_curves(per_seed: Mapping[str, np.ndarray]) -> dict:
    """Mean ± sample std over seeds of metric-vs-rate curves.

    Parameters
    ----------
    per_seed : mapping metric -> array [shape=(S, R)]
        Each metric at every rate (columns) for every seed (rows).

    Returns
    -------
    dict
        Per metric ``m``: ``{m}_mean`` and ``{m}_std`` (lists of ``R``; std ``ddof=1``, zeros
        for one seed) and ``{m}_per_seed`` (``S`` lists of ``R``).
    """
    out = {}
    for m, values in per_seed.items():
        values = np.asarray(values)
        out[f"{m}_mean"] = values.mean(0).tolist()
        out[f"{m}_std"] = ([float(x) for x in values.std(0, ddof=1)]
                           if len(values) > 1 else [0.0] * values.shape[1])
        out[f"{m}_per_seed"] = values.tolist()
    return out


def label_noise_summary(rates, curves: Mapping[str, Mapping[str, np.ndarray]],
                        sets: Mapping[str, Mapping[str, np.ndarray]], *, num_train: Mapping,
                        labels_changed, curve_info: Mapping[str, dict], reference: str = "ce",
                        headline_metric: str = "accuracy") -> dict:
    """The label-noise study's results: corruption curves, training sets, noise-equivalent p.

    Parameters
    ----------
    rates : [shape=(R,)] corruption rates, starting at 0.
    curves : mapping loss -> metric -> array [shape=(S, R)]
        Per-seed test metrics of the models trained on curated labels corrupted at each rate,
        one curve per loss; ``curves[reference]`` (cross-entropy) is the corruption curve and
        its ``p = 0`` column is the curated-only training set.
    sets : mapping training set -> metric -> array [shape=(S,)]
        Per-seed test metrics of the other training sets (e.g. ``noisy``, ``curated+noisy``).
    num_train : mapping training set -> int
        Training clips of ``curated`` and of every set in ``sets``.
    labels_changed : [shape=(R,)] labels changed at each rate.
    curve_info : mapping loss -> dict
        Descriptive fields appended to each curve (label, loss function, ...).

    Returns
    -------
    dict
        ``corruption`` (the reference curve), ``robust`` (the other curves), ``curated`` and
        one entry per set (``num_train``, ``{m}_mean``/``_std``/``_per_seed``),
        ``noise_equivalent_p``/``_std`` of ``headline_metric`` per set,
        ``noise_equivalent_p_detail`` (:func:`summarize_noise_equivalent` per metric and set)
        and ``robust_gain_accuracy`` (each robust curve minus the reference, in accuracy).
    """
    rates = list(rates)
    changed = [int(c) for c in labels_changed]
    curve = {loss: dict({"p": rates, "loss": loss}, **seed_curves(per_metric),
                        labels_changed=changed, **curve_info[loss])
             for loss, per_metric in curves.items()}
    out = {"corruption": curve[reference],
           "robust": {loss: c for loss, c in curve.items() if loss != reference}}
    clean = {m: np.asarray(v)[:, 0] for m, v in curves[reference].items()}
    for name, per_metric in dict({"curated": clean}, **sets).items():
        entry = {"num_train": int(num_train[name])}
        for m, values in per_metric.items():
            values = np.asarray(values).tolist()
            entry[f"{m}_mean"], entry[f"{m}_std"] = seed_mean_std(values)
            entry[f"{m}_per_seed"] = values
        out[name] = entry
    detail = {m: {name: summarize_noise_equivalent(rates, np.asarray(curves[reference][m]),
                                                   np.array(out[name][f"{m}_per_seed"]))
                  for name in sets} for m in curves[reference]}
    out["noise_equivalent_p"] = {c: detail[headline_metric][c]["mean"] for c in sets}
    out["noise_equivalent_p_std"] = {c: detail[headline_metric][c]["std"] for c in sets}
    out["noise_equivalent_p_detail"] = detail
    ce_acc = np.array(curve[reference]["accuracy_mean"])
    out["robust_gain_accuracy"] = {loss: (np.array(c["accuracy_mean"]) - ce_acc).tolist()
                                   for loss, c in out["robust"].items()}
    return out
