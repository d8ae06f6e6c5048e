"""Classification figures: accuracy, lwlrap, macro ROC-AUC, confusion matrices and frame accuracy."""

from __future__ import annotations

import numpy as np

__all__ = ['accuracy', 'lwlrap_per_class', 'lwlrap', 'roc_auc_macro', 'confusion_matrix', 'frame_accuracy']


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
