"""Figures of merit for the studies: SNR, accuracy, lwlrap, ROC-AUC, confusion matrices.

Evaluation metrics work on numpy arrays (anything ``np.asarray`` accepts, including jax arrays)
and return Python floats or numpy arrays. :func:`snr_db` also accepts jax arrays and then stays
in ``jax.numpy`` (jit/vmap/grad-safe), because attacks may use it inside the graph.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "snr_db",
    "accuracy",
    "lwlrap",
    "lwlrap_per_class",
    "roc_auc_macro",
    "confusion_matrix",
    "frame_accuracy",
    "white_noise_at",
    "noise_control_accuracy",
    "finite_stats",
    "attack_summary",
]


def snr_db(clean, adversarial, *, trim: int = 2048):
    """Signal-to-noise ratio of a perturbation, per example, in dB.

    ``20 * log10(||x|| / ||x - x_adv||)`` over the samples ``[trim : n - trim]``
    (docs/studies.md §1: the first and last 2048 samples are left out). Clips with
    ``n <= 2 * trim`` samples are measured over the whole clip.

    Parameters
    ----------
    clean : np.ndarray or jax.Array [shape=(..., n)]
        Original waveforms ``x``.
    adversarial : np.ndarray or jax.Array [shape=(..., n)]
        Perturbed waveforms ``x_adv``, same shape.
    trim : int >= 0
        Samples left out at each end.

    Returns
    -------
    snr : np.ndarray or jax.Array [shape=(...)]
        dB; ``+inf`` where ``x_adv == x`` on the measured samples, ``-inf`` where ``x`` is
        silent but ``x_adv`` is not. A jax array (finite gradients wherever the SNR is finite)
        if either input is a jax array, else a float64 numpy array.

    Raises
    ------
    ValueError
        Shapes differ, inputs have no sample axis or no samples, or ``trim < 0``.
    """
    if isinstance(trim, bool) or not isinstance(trim, (int, np.integer)) or trim < 0:
        raise ValueError(f"trim must be a non-negative integer (samples), got {trim!r}")
    use_jax = isinstance(clean, jax.Array) or isinstance(adversarial, jax.Array)
    xp = jnp if use_jax else np
    clean = xp.asarray(clean) if use_jax else np.asarray(clean, dtype=np.float64)
    adversarial = xp.asarray(adversarial) if use_jax else np.asarray(adversarial, np.float64)
    if clean.shape != adversarial.shape:
        raise ValueError(
            f"clean and adversarial must have the same shape, got {clean.shape} and "
            f"{adversarial.shape}"
        )
    if clean.ndim == 0 or clean.shape[-1] == 0:
        raise ValueError(f"clean must have shape (..., n) with n > 0, got {clean.shape}")
    n = clean.shape[-1]
    if n > 2 * trim:
        clean = clean[..., trim:n - trim]
        adversarial = adversarial[..., trim:n - trim]
    signal_energy = xp.sum(clean * clean, axis=-1)
    noise = clean - adversarial
    noise_energy = xp.sum(noise * noise, axis=-1)
    # Energies instead of norms (no sqrt at 0), and logs only of positive numbers, so the
    # untaken branches of `where` stay finite and so do the gradients.
    safe_signal = xp.where(signal_energy > 0, signal_energy, 1.0)
    safe_noise = xp.where(noise_energy > 0, noise_energy, 1.0)
    ratio_db = 10.0 * (xp.log10(safe_signal) - xp.log10(safe_noise))
    ratio_db = xp.where(signal_energy > 0, ratio_db, -xp.inf)
    return xp.where(noise_energy > 0, ratio_db, xp.inf)


def accuracy(logits_or_pred, labels) -> float:
    """Fraction of examples classified correctly.

    Parameters
    ----------
    logits_or_pred : array [shape=(n, num_classes) or (n,)]
        Scores (argmax over the last axis is the prediction) or integer predictions.
    labels : array [shape=(n,)]
        Integer class indices.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        Shapes do not match or there are no examples.
    """
    scores = np.asarray(logits_or_pred)
    labels = np.asarray(labels)
    if scores.ndim == labels.ndim + 1:
        pred = np.argmax(scores, axis=-1)
    elif scores.shape == labels.shape:
        pred = scores
    else:
        raise ValueError(
            f"logits_or_pred must have shape labels.shape + (num_classes,) or labels.shape; "
            f"got {scores.shape} for labels of shape {labels.shape}"
        )
    if pred.shape != labels.shape:
        raise ValueError(
            f"logits_or_pred of shape {scores.shape} gives predictions of shape {pred.shape}, "
            f"which do not match labels of shape {labels.shape}"
        )
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined: labels has no entries")
    return float(np.mean(pred == labels))


def _check_targets_scores(targets, scores) -> tuple[np.ndarray, np.ndarray]:
    targets = np.asarray(targets)
    scores = np.asarray(scores, dtype=np.float64)
    if targets.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            "targets and scores must both have shape (num_samples, num_classes), got "
            f"{targets.shape} and {scores.shape}"
        )
    if not np.all((targets == 0) | (targets == 1)):
        raise ValueError("targets must be 0/1 (multi-hot)")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (found NaN or Inf)")
    return targets.astype(bool), scores


def _precision_at_hits(targets: np.ndarray, scores: np.ndarray, chunk: int = 256) -> np.ndarray:
    """For every positive (sample, class): precision of the ranking cut at that class.

    Ties count pessimistically, as in ``sklearn.metrics.label_ranking_average_precision_score``:
    the rank of class j is ``#{k : s_k >= s_j}`` and the hits are the positives among them.
    Returns an array of shape ``(num_samples, num_classes)``, zero where the target is 0.
    """
    out = np.zeros(scores.shape, dtype=np.float64)
    for lo in range(0, len(scores), chunk):
        s, t = scores[lo:lo + chunk], targets[lo:lo + chunk]
        at_or_above = s[:, None, :] >= s[:, :, None]  # [n, j, k]: s_k >= s_j
        rank = at_or_above.sum(-1)
        hits = (at_or_above & t[:, None, :]).sum(-1)
        out[lo:lo + chunk] = np.where(t, hits / rank, 0.0)
    return out


def lwlrap_per_class(targets, scores) -> tuple[np.ndarray, np.ndarray]:
    """Per-class label-ranking average precision and class weights (FSDKaggle2019 metric).

    Parameters
    ----------
    targets : array [shape=(num_samples, num_classes)]
        0/1 ground truth.
    scores : array [shape=(num_samples, num_classes)]
        Any real-valued scores; higher means more likely.

    Returns
    -------
    per_class : np.ndarray [shape=(num_classes,)]
        Mean precision at each positive of the class (0 for classes with no positives).
    weight : np.ndarray [shape=(num_classes,)]
        Share of all positive labels that belong to the class; ``sum(per_class * weight)`` is
        :func:`lwlrap`.
    """
    targets, scores = _check_targets_scores(targets, scores)
    total = targets.sum()
    if total == 0:
        raise ValueError("targets has no positive labels; lwlrap is undefined")
    precision = _precision_at_hits(targets, scores)
    count = targets.sum(0)
    per_class = precision.sum(0) / np.maximum(count, 1)
    return per_class, count / total


def lwlrap(targets, scores) -> float:
    """Label-weighted label-ranking average precision (the DCASE 2019 task 2 metric).

    Every positive (sample, label) pair counts equally: for each one, the precision of the
    sample's label ranking cut at that label; lwlrap is the mean over all positive pairs. Equal
    to ``sklearn.metrics.label_ranking_average_precision_score`` when every sample has exactly
    one positive label. Tied scores count pessimistically (as in sklearn).

    Parameters
    ----------
    targets : array [shape=(num_samples, num_classes)]
        0/1 ground truth; samples without positives are ignored.
    scores : array [shape=(num_samples, num_classes)]

    Returns
    -------
    float in (0, 1]

    Raises
    ------
    ValueError
        Shape mismatch, non-binary targets, non-finite scores, or no positive label at all.
    """
    targets, scores = _check_targets_scores(targets, scores)
    if not targets.any():
        raise ValueError("targets has no positive labels; lwlrap is undefined")
    precision = _precision_at_hits(targets, scores)
    return float(precision.sum() / targets.sum())


def roc_auc_macro(targets, scores) -> float:
    """Macro-averaged ROC-AUC over the classes that have both positives and negatives.

    Parameters
    ----------
    targets : array [shape=(num_samples, num_classes)] or [shape=(num_samples,)]
        0/1 multi-hot targets, or integer class indices (turned into one-hot).
    scores : array [shape=(num_samples, num_classes)]

    Returns
    -------
    float
        Mean one-vs-rest AUC over the evaluable classes; ``nan`` if no class is evaluable.
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (num_samples, num_classes), got {scores.shape}")
    if targets.ndim == 1:
        if targets.shape[0] != scores.shape[0]:
            raise ValueError(f"targets {targets.shape} and scores {scores.shape} differ in length")
        if targets.size and (targets.min() < 0 or targets.max() >= scores.shape[1]):
            raise ValueError(f"class indices in targets must lie in [0, {scores.shape[1]})")
        targets = np.eye(scores.shape[1], dtype=np.int64)[targets.astype(np.int64)]
    targets, scores = _check_targets_scores(targets, scores)
    aucs = [
        roc_auc_score(targets[:, k], scores[:, k])
        for k in range(targets.shape[1])
        if 0 < targets[:, k].sum() < len(targets)
    ]
    return float(np.mean(aucs)) if aucs else float("nan")


def confusion_matrix(true, pred, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    true, pred : array [shape=(n,)]
        Integer class indices in ``[0, num_classes)``.
    num_classes : int > 0

    Returns
    -------
    counts : np.ndarray [shape=(num_classes, num_classes), dtype=int64]
        ``counts[i, j]`` = number of examples of class ``i`` predicted as ``j``; rows sum to the
        class sizes, the total is ``n``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes <= 0:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    true = np.asarray(true)
    pred = np.asarray(pred)
    if true.ndim != 1 or true.shape != pred.shape:
        raise ValueError(f"true and pred must be 1-D of equal length, got {true.shape}, "
                         f"{pred.shape}")
    for name, arr in (("true", true), ("pred", pred)):
        if arr.size and (not np.issubdtype(arr.dtype, np.integer)
                         or arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} must hold integer class indices in [0, {num_classes})")
    flat = true.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def frame_accuracy(probs, labels, *, threshold: float = 0.5) -> float:
    """Fraction of frames whose thresholded probability matches the 0/1 label.

    Parameters
    ----------
    probs : array [shape=(...)] or sequence of arrays
        Singing probabilities per frame (a sequence, e.g. one array per song, is concatenated).
    labels : same structure as ``probs``
        0/1 frame labels.
    threshold : float
        A frame is predicted "sing" when ``prob > threshold``.

    Returns
    -------
    float in [0, 1]
    """
    if isinstance(probs, (list, tuple)):
        probs = np.concatenate([np.ravel(p) for p in probs]) if probs else np.zeros(0)
    if isinstance(labels, (list, tuple)):
        labels = np.concatenate([np.ravel(l) for l in labels]) if labels else np.zeros(0)
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.shape != labels.shape:
        raise ValueError(f"probs and labels must have the same shape, got {probs.shape} and "
                         f"{labels.shape}")
    if probs.size == 0:
        raise ValueError("frame accuracy of no frames is undefined: probs is empty")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0/1 per frame")
    return float(np.mean((probs > threshold) == (labels == 1)))


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


# ----------------------------------------------------------------------------- noise control

_measured_snr_db = snr_db  # the functions below take an argument of that name


def white_noise_at(waves, snr_db: float, rng: np.random.Generator, *,
                   margin: int = 2048) -> np.ndarray:
    """``waves`` plus Gaussian white noise scaled per clip to ``snr_db``, clipped to [-1, 1].

    The noise's level is measured as :func:`snr_db` measures a perturbation (over the samples
    ``[margin : n - margin]``), so the control and the attacks it is compared with share one
    SNR. A silent clip gets no noise.

    Parameters
    ----------
    waves : np.ndarray [shape=(batch, n)]
        Clean clips in [-1, 1].
    snr_db : float
        Target SNR (dB) of every clip (before clipping to [-1, 1]).
    rng : np.random.Generator
        Source of the noise (seeded by the caller).
    margin : int >= 0
        Samples left out at each end when measuring, as ``trim`` in :func:`snr_db`.

    Returns
    -------
    noisy : np.ndarray [shape=(batch, n)], float32
    """
    waves = np.asarray(waves, np.float32)
    if waves.ndim != 2 or waves.shape[1] == 0:
        raise ValueError(f"waves must have shape (batch, n) with n > 0, got {waves.shape}")
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number (dB), got {snr_db!r}")
    noise = rng.standard_normal(waves.shape).astype(np.float32)
    # SNR of the unit-variance noise, then the gain that moves it to snr_db (0 for silence).
    clean = waves.astype(np.float64)
    unit = _measured_snr_db(clean, clean - noise, trim=margin)
    gain = np.where(np.isfinite(unit), 10.0 ** ((unit - float(snr_db)) / 20.0), 0.0)
    return np.clip(waves + noise * gain.astype(np.float32)[:, None], -1.0, 1.0).astype(
        np.float32)


def noise_control_accuracy(predict, waves, labels, *, snr_db: float,
                           rng: np.random.Generator, margin: int = 2048) -> float:
    """Accuracy of ``predict`` on ``waves`` with white noise at ``snr_db`` (the noise control).

    If an attack at mean SNR ``s`` worked by its energy alone, white noise at ``s``
    (:func:`white_noise_at`) would hurt the classifier as much.

    Parameters
    ----------
    predict : callable
        ``predict(waves) -> class indices [shape=(batch,)]``.
    waves : np.ndarray [shape=(batch, n)]
    labels : np.ndarray [shape=(batch,)]
        True class indices.
    snr_db, rng, margin
        As in :func:`white_noise_at`.

    Returns
    -------
    float in [0, 1]
    """
    noisy = white_noise_at(waves, snr_db, rng, margin=margin)
    return accuracy(np.asarray(predict(noisy)), labels)


# ----------------------------------------------------------------------------- attack runs


def finite_stats(values) -> dict:
    """``{"mean", "std", "median"}`` of the finite values (all ``None`` when there are none)."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "std": None, "median": None}
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v))}


def attack_summary(runs, *, targeted: bool, max_iterations: int) -> dict:
    """Figures of merit of one attack over its seeds' runs.

    Parameters
    ----------
    runs : sequence of mappings, one per seed, each with arrays [shape=(n,)]
        ``success`` (bool), ``iterations`` (first successful step), ``snr_db``, ``labels``,
        ``original_prediction``, ``adversarial_prediction``, and ``seconds`` (scalar).
    targeted : bool
        Whether success means hitting a target (then ``target_hit_rate`` is added).
    max_iterations : int >= 1
        The attack's step budget (for ``steps_run_mean``, the steps early stopping ran).

    Returns
    -------
    dict
        ``success_rate`` / ``accuracy_after`` (mean and ``_std`` over seeds),
        ``success_rate_on_clean_correct`` (over clips the model got right before the attack),
        ``success_at_0_iterations_rate`` (successes that needed no step), SNR and iterations
        statistics over the successful adversaries of all seeds, sizes and timing.
    """
    from jaxaudio.attacks import core

    if not runs:
        raise ValueError("runs is empty: need at least one attack run")
    cat = lambda f: np.concatenate([np.asarray(f(r)) for r in runs])  # noqa: E731
    succ = [float(np.mean(r["success"])) for r in runs]
    acc = [float(np.mean(r["adversarial_prediction"] == r["labels"])) for r in runs]
    its = cat(lambda r: r["iterations"][r["success"]])
    per_seed_snr = [s for s in (finite_stats(r["snr_db"][r["success"]])["mean"] for r in runs)
                    if s is not None]
    clean_correct = cat(lambda r: r["original_prediction"] == r["labels"])
    success_all = cat(lambda r: r["success"])
    snr = finite_stats(cat(lambda r: r["snr_db"][r["success"]]))
    seconds = float(sum(float(r["seconds"]) for r in runs))
    entry = {
        "success_rate": float(np.mean(succ)), "success_rate_std": float(np.std(succ)),
        "success_rate_on_clean_correct": (float(success_all[clean_correct].mean())
                                          if clean_correct.any() else None),
        "accuracy_after": float(np.mean(acc)), "accuracy_after_std": float(np.std(acc)),
        "snr_db_mean": snr["mean"], "snr_db_std": snr["std"], "snr_db_median": snr["median"],
        "snr_db_mean_std_over_seeds": float(np.std(per_seed_snr)) if per_seed_snr else None,
        "iterations_mean": float(its.mean()) if its.size else None,
        "iterations_median": float(np.median(its)) if its.size else None,
        "steps_run_mean": float(cat(lambda r: core.useful_steps(r["iterations"],
                                                                max_iterations)).mean()),
        "success_at_0_iterations_rate": float(np.mean(success_all
                                                      & (cat(lambda r: r["iterations"]) == 0))),
        "n": int(len(runs[0]["labels"])), "targeted": bool(targeted), "seeds": len(runs),
        "seconds": seconds,
        "examples_per_second": float(sum(len(r["labels"]) for r in runs) / max(seconds, 1e-9)),
    }
    if targeted:
        entry["target_hit_rate"] = entry["success_rate"]
    return entry
