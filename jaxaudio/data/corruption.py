"""Controlled label corruption for the label-noise study (docs/studies.md §2).

Every function changes an *exact* number of labels, ``round(rate * N)``, chosen with a seeded
``np.random.default_rng(seed)``, so a corruption curve over ``rate`` is reproducible and the
realised noise rate equals the requested one (up to rounding) instead of fluctuating around it.
All functions return the new labels together with a boolean mask of what changed; inputs are
never modified in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["corrupt_labels", "corrupt_multilabel", "pair_flip"]


def _check_rate(rate: float, *, name: str) -> float:
    rate = float(rate)
    if not (0.0 <= rate <= 1.0) or not np.isfinite(rate):
        raise ValueError(f"{name} must be in [0, 1], got {rate}")
    return rate


def _check_labels(labels, *, num_classes: int) -> np.ndarray:
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("labels must be integer class indices")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, num_classes={num_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels


def _choose_exact(rng: np.random.Generator, num_items: int, rate: float) -> np.ndarray:
    """Indices of exactly ``round(rate * num_items)`` distinct items, drawn at random."""
    count = int(round(rate * num_items))
    return rng.choice(num_items, size=count, replace=False)


def corrupt_labels(labels, *, rate: float, num_classes: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Replace a fraction of single labels by a uniformly drawn *other* label.

    Parameters
    ----------
    labels : np.ndarray [shape=(N,)], int
        Class indices in ``[0, num_classes)``.
    rate : float in [0, 1]
        Fraction of clips whose label is replaced; exactly ``round(rate * N)`` clips change.
    num_classes : int >= 2
    seed : int
        Seed of ``np.random.default_rng``; the same seed gives the same corruption.

    Returns
    -------
    new_labels : np.ndarray [shape=(N,)], int32
    changed_mask : np.ndarray [shape=(N,)], bool
        ``True`` where ``new_labels != labels`` (every chosen clip really changes).
    """
    rate = _check_rate(rate, name="rate")
    labels = _check_labels(labels, num_classes=num_classes)
    rng = np.random.default_rng(seed)
    chosen = _choose_exact(rng, labels.size, rate)
    # An offset in [1, num_classes) added modulo num_classes is uniform over the other labels
    # and can never give back the original one.
    offsets = rng.integers(1, num_classes, size=chosen.size)
    new_labels = labels.copy()
    new_labels[chosen] = (labels[chosen] + offsets) % num_classes
    changed = np.zeros(labels.size, dtype=bool)
    changed[chosen] = True
    return new_labels.astype(np.int32), changed


def corrupt_multilabel(targets, *, drop_rate: float, add_rate: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop present tags and add absent ones in a multi-hot target matrix.

    Exactly ``round(drop_rate * P)`` of the ``P`` present entries are switched off and exactly
    ``round(add_rate * A)`` of the ``A`` absent entries are switched on (entries chosen at random
    over the whole matrix).

    Parameters
    ----------
    targets : np.ndarray [shape=(N, C)]
        Multi-hot targets with values in {0, 1}.
    drop_rate, add_rate : float in [0, 1]
    seed : int

    Returns
    -------
    new_targets : np.ndarray [shape=(N, C)], same dtype as ``targets`` (float32 if not float)
    changed_mask : np.ndarray [shape=(N, C)], bool
    """
    drop_rate = _check_rate(drop_rate, name="drop_rate")
    add_rate = _check_rate(add_rate, name="add_rate")
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"targets must have shape (N, C), got {targets.shape}")
    if not np.all((targets == 0) | (targets == 1)):
        raise ValueError("targets must be multi-hot (values 0 or 1)")
    dtype = targets.dtype if np.issubdtype(targets.dtype, np.floating) else np.float32
    flat = targets.reshape(-1).astype(bool)
    present = np.flatnonzero(flat)
    absent = np.flatnonzero(~flat)
    rng = np.random.default_rng(seed)
    dropped = present[_choose_exact(rng, present.size, drop_rate)]
    added = absent[_choose_exact(rng, absent.size, add_rate)]
    changed = np.zeros(flat.size, dtype=bool)
    changed[dropped] = True
    changed[added] = True
    new_flat = flat ^ changed
    return (new_flat.reshape(targets.shape).astype(dtype),
            changed.reshape(targets.shape))


def pair_flip(labels, *, rate: float, num_classes: int, seed: int,
              mapping: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Systematic confusion: a fraction of clips gets the label ``mapping[label]``.

    Parameters
    ----------
    labels : np.ndarray [shape=(N,)], int in ``[0, num_classes)``
    rate : float in [0, 1]
        Exactly ``round(rate * N)`` clips change.
    num_classes : int >= 2
    seed : int
    mapping : np.ndarray [shape=(num_classes,)], int, optional
        Confusion target of each class; default ``(k + 1) % num_classes``. Must map into
        ``[0, num_classes)`` and have no fixed point (``mapping[k] != k``), so every chosen
        clip really changes.

    Returns
    -------
    new_labels : np.ndarray [shape=(N,)], int32
    changed_mask : np.ndarray [shape=(N,)], bool
    """
    rate = _check_rate(rate, name="rate")
    labels = _check_labels(labels, num_classes=num_classes)
    if mapping is None:
        mapping = (np.arange(num_classes) + 1) % num_classes
    mapping = np.asarray(mapping)
    if mapping.shape != (num_classes,):
        raise ValueError(f"mapping must have shape ({num_classes},), got {mapping.shape}")
    mapping = mapping.astype(np.int64)
    if mapping.min() < 0 or mapping.max() >= num_classes:
        raise ValueError(f"mapping values must lie in [0, {num_classes})")
    fixed = np.flatnonzero(mapping == np.arange(num_classes))
    if fixed.size:
        raise ValueError(f"mapping must have no fixed point, but maps classes {fixed.tolist()} "
                         "to themselves")
    rng = np.random.default_rng(seed)
    chosen = _choose_exact(rng, labels.size, rate)
    new_labels = labels.copy()
    new_labels[chosen] = mapping[labels[chosen]]
    changed = np.zeros(labels.size, dtype=bool)
    changed[chosen] = True
    return new_labels.astype(np.int32), changed
