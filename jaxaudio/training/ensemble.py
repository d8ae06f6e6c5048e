"""Bootstrap ensembles of classifiers: training, the mean-logit ensemble, transfer of adversaries.

An ensemble of ``K`` classifiers, each trained on a bootstrap resample of the training split,
decides by the mean of their logits. It serves two questions of the attack study
(docs/studies.md §1, "Channels, robust adversaries and an ensemble defence"): how often an
adversary crafted on one network fools another (transfer), and whether averaging networks
defends — against adversaries transferred from another single network and against white-box
attacks on the ensemble itself.

Training uses :func:`jaxaudio.training.many.train_many` (all members in one run, the front-end
computed once per batch): every member sees the same clips, and a clip outside a member's
resample gets an all-zero target, i.e. no loss and no gradient for that member. A member's
resample is the set of distinct clips of one bootstrap draw (``N`` draws with replacement from
``N`` clips), about ``1 - 1/e ≈ 0.632`` of the split. What the members share: the initial
weights, band statistics, excerpt choice, batch order and dropout keys (``train_many``'s
protocol); they differ by their resample only.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp.batching import map_chunks
from jaxaudio.models import Classifier
from jaxaudio.training import tasks
from jaxaudio.training.many import train_many

__all__ = ["bootstrap_masks", "train_bootstrap_members", "ensemble_logits_fn", "predict",
           "fooling_rate", "save_members", "load_members", "clean_correct", "transfer_matrix",
           "transfer_summary", "transfer_table", "train_task_members"]


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
    """Train one member per row of ``masks`` with :func:`jaxaudio.training.many.train_many`.

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


def save_members(classifiers: Sequence[Classifier], folder) -> list[pathlib.Path]:
    """Save member ``k`` as ``folder/member_<k>``; returns the folders."""
    paths = [pathlib.Path(folder) / f"member_{k}" for k in range(len(classifiers))]
    for member, path in zip(classifiers, paths):
        member.save(path)
    return paths


def load_members(folder, count: int) -> list[Classifier]:
    """The ``count`` members :func:`save_members` wrote into ``folder``, in order."""
    return [Classifier.load(pathlib.Path(folder) / f"member_{k}") for k in range(int(count))]


def clean_correct(logits_fns: Sequence[Callable], waves, labels, *,
                  chunk_size: int = 16) -> list[np.ndarray]:
    """Per network, which clean clips it classifies right: ``(batch,)`` bool each."""
    labels = np.asarray(labels)
    return [predict(fn, waves, chunk_size=chunk_size) == labels for fn in logits_fns]


def transfer_matrix(logits_fns: Sequence[Callable], adversarials: Sequence, successes: Sequence,
                    labels, *, correct: Sequence, chunk_size: int = 16) -> list[list]:
    """How often adversaries crafted on one network fool another.

    Parameters
    ----------
    logits_fns : sequence of callable
        The ``P`` networks, ``(batch, n) -> (batch, num_classes)``.
    adversarials : sequence of np.ndarray [shape=(batch, n)]
        Adversaries crafted on network ``i`` (one entry per network, the same clips).
    successes : sequence of np.ndarray [shape=(batch,)], bool
        Which of network ``i``'s adversaries fool network ``i``.
    labels : np.ndarray [shape=(batch,)], int
        True classes.
    correct : sequence of np.ndarray [shape=(batch,)], bool
        :func:`clean_correct` of the same networks.

    Returns
    -------
    list of list
        ``matrix[i][j]`` (``P x P``): the share of network ``i``'s successful adversaries, on
        clips both ``i`` and ``j`` classify correctly, that also fool ``j`` (untargeted sense);
        ``None`` on the diagonal and where no such clip exists.
    """
    if not len(logits_fns) == len(adversarials) == len(successes) == len(correct):
        raise ValueError(f"one adversarial set, success mask and correct mask per network; got "
                         f"{len(logits_fns)} networks, {len(adversarials)} adversarial sets, "
                         f"{len(successes)} success masks and {len(correct)} correct masks")
    return [[None if i == j else fooling_rate(
        logits_fns[j], adversarials[i], labels,
        among=np.asarray(successes[i], bool) & correct[i] & correct[j], chunk_size=chunk_size)
        for j in range(len(logits_fns))] for i in range(len(adversarials))]


def _mean_or_none(values) -> float | None:
    return float(np.mean(values)) if values else None


def transfer_summary(matrix: Sequence[Sequence], num_members: int) -> dict:
    """Mean transfer rates of a :func:`transfer_matrix` whose first ``num_members`` networks
    are ensemble members and the rest sources (networks outside the ensemble).

    Returns
    -------
    dict
        ``member_to_member_mean`` (over member pairs) and ``source_to_member_mean`` (source
        rows, member columns); ``None`` where no rate exists.
    """
    k = int(num_members)
    pairs = [v for row in matrix[:k] for v in row[:k] if v is not None]
    sources = [v for row in matrix[k:] for v in row[:k] if v is not None]
    return {"member_to_member_mean": _mean_or_none(pairs),
            "source_to_member_mean": _mean_or_none(sources)}


def transfer_table(logits_fns: Sequence[Callable], adversarials: Sequence, successes: Sequence,
                   waves, labels, *, num_members: int, attack: str = "attack",
                   chunk_size: int = 16) -> dict:
    """Transfer between ``num_members`` ensemble members and the source networks after them.

    Parameters
    ----------
    logits_fns : sequence of callable
        The ``P`` networks: the members first, then the sources.
    adversarials, successes : sequence
        Per network, adversaries ``(batch, n)`` crafted on it and which of them fool it
        ``(batch,)`` bool (:func:`transfer_matrix`).
    waves : np.ndarray [shape=(batch, n)]
        The clean clips; ``labels`` ``(batch,)`` their classes.
    num_members : int
        How many of the networks are members.
    attack : str
        The attack's name in the key ``member_<attack>_success``.

    Returns
    -------
    dict
        ``matrix`` (:func:`transfer_matrix`), ``networks`` (``"member <k>"`` then ``"source"``
        / ``"source <k>"``), ``member_clean_accuracy`` and ``member_<attack>_success`` (per member,
        in [0, 1]) and :func:`transfer_summary`'s means.
    """
    k, sources = int(num_members), len(logits_fns) - int(num_members)
    correct = clean_correct(logits_fns, waves, labels, chunk_size=chunk_size)
    matrix = transfer_matrix(logits_fns, adversarials, successes, labels, correct=correct,
                             chunk_size=chunk_size)
    names = [f"member {i}" for i in range(k)] + (
        ["source"] if sources == 1 else [f"source {i}" for i in range(sources)])
    return {"matrix": matrix, "networks": names,
            "member_clean_accuracy": [float(c.mean()) for c in correct[:k]],
            f"member_{attack}_success": [float(np.mean(s)) for s in successes[:k]],
            **transfer_summary(matrix, k)}


def train_task_members(task: str, preset_name: str, train_set, *, members: int, epochs: int,
                       seed: int, label_names=None, progress: bool = True):
    """``members`` bootstrap members of a task's classifier at a preset's sizes.

    Parameters
    ----------
    task, preset_name : str
        :func:`jaxaudio.training.tasks.preset` (the network's and training's sizes).
    train_set : ClipDataset
        The training split (``waves``: ``N`` clips, ``targets`` ``(N, C)``).
    members, epochs : int
        ``K`` members, trained for ``epochs`` epochs.
    seed : int
        Seed of the resamples (:func:`bootstrap_masks`) and the training; the shared initial
        weights use ``seed + 1``.
    label_names : sequence of str, optional
        The classes' names, stored in every member.

    Returns
    -------
    masks : np.ndarray [shape=(K, N)], bool
        The resamples.
    result : ManyResult
        :func:`train_bootstrap_members`'s result (``classifiers``, ``losses``, ``seconds``).
    """
    p = tasks.preset(task, preset_name)
    masks = bootstrap_masks(len(train_set.waves), members, seed=seed)
    init = tasks.new_classifier(task, p, seed=seed + 1, label_names=label_names)
    config = tasks.train_config(task, p, seed=seed, epochs=epochs)
    return masks, train_bootstrap_members(init, train_set.waves, train_set.targets, config,
                                          masks=masks, progress=progress)
