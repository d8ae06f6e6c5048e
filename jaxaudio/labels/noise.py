"""Training sets of the label-noise study: curated labels corrupted at set rates, the noisy
split, or both."""

from __future__ import annotations

import numpy as np

from jaxaudio.data.corruption import corrupt_labels

__all__ = ["corrupt_at_rates", "noise_training_set"]



def corrupt_at_rates(labels, *, rates, num_classes: int, seed: int):
    """``labels`` corrupted at every rate (label-noise study), one derived seed per rate.

    Returns ``(labels, changed)``, both ``(len(rates), len(labels))``: the corrupted class
    indices and which of them :func:`~jaxaudio.data.corruption.corrupt_labels` changed.
    """
    out, changed = [], []
    for p in rates:
        rate_seed = int(np.random.default_rng([seed, int(round(p * 1000)), 2020]).integers(2 ** 31))
        lab, ch = corrupt_labels(labels, rate=p, num_classes=num_classes, seed=rate_seed)
        out.append(lab)
        changed.append(ch)
    return np.stack(out), np.stack(changed)


def noise_training_set(splits: dict, condition: str, *, corrupted=None):
    """Waves and stacked targets ``(K, N, C)`` of one label-noise training set.

    ``condition``: ``"curated"`` (then ``corrupted`` holds the ``(K, N)`` corrupted curated
    labels, one set per model), ``"noisy"`` or ``"curated+noisy"`` (one model, given labels).
    """
    if condition == "curated":
        num_classes = len(splits["curated"].label_names)
        return (list(splits["curated"].waves),
                np.eye(num_classes, dtype=np.float32)[np.asarray(corrupted)])
    parts = {"noisy": ["noisy"], "curated+noisy": ["curated", "noisy"]}.get(condition)
    if parts is None:
        raise ValueError(f"unknown training set {condition!r}; use curated, noisy or "
                         f"curated+noisy")
    return ([w for s in parts for w in splits[s].waves],
            np.concatenate([np.asarray(splits[s].targets) for s in parts])[None])
