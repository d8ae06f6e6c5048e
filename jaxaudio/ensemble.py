"""Bootstrap ensembles of classifiers: training, the mean-logit ensemble, transfer of adversaries.

An ensemble of ``K`` classifiers, each trained on a bootstrap resample of the training split,
decides by the mean of their logits. It serves two questions of the attack study
(docs/studies.md §1, "Channels, robust adversaries and an ensemble defence"): how often an
adversary crafted on one network fools another (transfer), and whether averaging networks
defends — against adversaries transferred from another single network and against white-box
attacks on the ensemble itself.

Training uses :func:`jaxaudio.train_many.train_many` (all members in one run, the front-end
computed once per batch): every member sees the same clips, and a clip outside a member's
resample gets an all-zero target, i.e. no loss and no gradient for that member. A member's
resample is the set of distinct clips of one bootstrap draw (``N`` draws with replacement from
``N`` clips), about ``1 - 1/e ≈ 0.632`` of the split. What the members share: the initial
weights, band statistics, excerpt choice, batch order and dropout keys (``train_many``'s
protocol); they differ by their resample only.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["bootstrap_masks", "train_bootstrap_members", "ensemble_logits_fn", "predict",
           "fooling_rate"]


def bootstrap_masks(num_clips: int, num_models: int, *, seed: int) -> np.ndarray:
    """Which clips each member trains on: the distinct clips of one bootstrap draw each.

    Parameters
    ----------
    num_clips : int >= 1
        Clips in the training split ``N``.
    num_models : int >= 1
        Members ``K``.
    seed : int
        Seed of ``np.random.default_rng([seed, k])`` for member ``k``.

    Returns
    -------
    np.ndarray [shape=(K, N)], bool
        ``mask[k, i]``: clip ``i`` is in member ``k``'s resample (about 63.2 % of the clips).
    """
    if int(num_clips) != num_clips or num_clips < 1:
        raise ValueError(f"num_clips must be an integer >= 1, got {num_clips!r}")
    if int(num_models) != num_models or num_models < 1:
        raise ValueError(f"num_models (--members) must be an integer >= 1, got {num_models!r}")
    masks = np.zeros((int(num_models), int(num_clips)), bool)
    for k in range(int(num_models)):
        draw = np.random.default_rng([int(seed), k]).integers(0, num_clips, num_clips)
        masks[k, draw] = True
    return masks


def train_bootstrap_members(classifier, waves: Sequence[np.ndarray], targets, config, *,
                            masks, mode=None, progress: bool = True):
    """Train one member per row of ``masks`` with :func:`jaxaudio.train_many.train_many`.

    Parameters
    ----------
    classifier : Classifier
        The initial bundle (every member starts from its variables).
    waves : list of np.ndarray
        The ``N`` training clips.
    targets : np.ndarray [shape=(N, C)]
        One-hot (or multi-hot) targets of the clips.
    config : TrainConfig
        Shared hyperparameters (constant learning rate).
    masks : np.ndarray [shape=(K, N)], bool
        :func:`bootstrap_masks`.
    mode : str, optional
        ``train_many``'s mode (default by backend).

    Returns
    -------
    ManyResult
        ``classifiers`` are the ``K`` members.
    """
    from jaxaudio.train_many import train_many

    masks = np.asarray(masks, bool)
    targets = np.asarray(targets, np.float32)
    if masks.ndim != 2 or masks.shape[1] != len(waves) or targets.shape[0] != len(waves):
        raise ValueError(f"masks must have shape (K, {len(waves)}) and targets ({len(waves)}, C);"
                         f" got {masks.shape} and {targets.shape}")
    per_model = masks[:, :, None].astype(np.float32) * targets[None]
    return train_many(classifier, list(waves), per_model, config, mode=mode, progress=progress,
                      desc="ensemble members")


@functools.lru_cache(maxsize=16)
def _mean_of(fns: tuple) -> Callable:
    def logits(waves):
        return jnp.mean(jnp.stack([f(waves) for f in fns]), axis=0)

    return jax.jit(logits)


def ensemble_logits_fn(logits_fns: Sequence[Callable]) -> Callable:
    """``waves -> mean over members of logits_fn(waves)`` (jitted, differentiable).

    The same object for the same members (the attacks' compile cache is keyed on it). Members
    are evaluated one after the other in one program: on the CPU that is faster than ``vmap``
    over stacked weights, whose convolutions XLA:CPU groups. One member: its own function.
    """
    fns = tuple(logits_fns)
    if not fns:
        raise ValueError("an ensemble needs at least one member")
    # One member is its own mean: reuse its function (and its compiled attacks).
    return fns[0] if len(fns) == 1 else _mean_of(fns)


def predict(logits_fn: Callable, waves, *, chunk_size: int = 16) -> np.ndarray:
    """Class indices ``(batch,)`` int32 of ``logits_fn`` on ``waves`` ``(batch, n)``."""
    from jaxaudio.batching import map_chunks

    return np.asarray(map_chunks(lambda w: np.asarray(logits_fn(w)).argmax(-1),
                                 np.asarray(waves, np.float32), chunk_size=chunk_size),
                      np.int32)


def fooling_rate(logits_fn: Callable, adversarial, labels, *, among=None,
                 chunk_size: int = 16):
    """Share of ``adversarial`` that ``logits_fn`` misclassifies (untargeted sense), among the
    clips selected by the bool mask ``among`` (default all); ``None`` when none is selected."""
    labels = np.asarray(labels)
    among = np.ones(labels.shape, bool) if among is None else np.asarray(among, bool)
    if not among.any():
        return None
    pred = predict(logits_fn, np.asarray(adversarial)[among], chunk_size=chunk_size)
    return float(np.mean(pred != labels[among]))
