"""Finding the wrong labels (study 2, docs/studies.md §2) with cleanlab's confident learning.

Confident learning ranks training clips by how likely their given label is wrong, from
*out-of-sample* predicted probabilities. :func:`out_of_fold_probabilities` gets them from the
project's own model by k-fold training: the clips are split into ``folds`` parts; for each part
the models are trained (:func:`jaxaudio.training.many.train_many`, all label sets of one fold
stacked in one run) on the other parts and score the held-out part
(:func:`jaxaudio.training.many.predict_many`). :func:`find_issues` and
:func:`find_multilabel_issues` call cleanlab's single- and multi-label filters;
:func:`detection_scores` compares the flags with known corruption masks; :func:`cleaned_targets`
drops or relabels the flagged clips.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from jaxaudio.runtime.extras import require
from jaxaudio.training.many import predict_many, train_many

__all__ = ["fold_assignment", "out_of_fold_probabilities", "find_issues",
           "find_multilabel_issues", "detection_scores", "cleaned_targets"]

#: What needs cleanlab, for the missing-extra message.
_FEATURE = "cleanlab in jaxaudio.labels.issues"


def fold_assignment(num_clips: int, *, folds: int, seed: int) -> np.ndarray:
    """``(num_clips,)`` int fold index in ``[0, folds)``: a seeded permutation dealt
    round-robin, so fold sizes differ by at most one."""
    if int(folds) != folds or folds < 2:
        raise ValueError(f"--folds must be an integer >= 2, got {folds}")
    if num_clips < folds:
        raise ValueError(f"need at least {folds} clips for {folds} folds, got {num_clips}")
    out = np.empty(num_clips, np.int64)
    out[np.random.default_rng([int(seed), 7]).permutation(num_clips)] = (
        np.arange(num_clips) % int(folds))
    return out


def out_of_fold_probabilities(classifier, waves: Sequence[np.ndarray], targets, config, *,
                              folds: int, seed: int, losses: Sequence, activations: Sequence[str],
                              loss_set: Optional[Sequence] = None, mode: Optional[str] = None,
                              prng_impl: Optional[str] = None, progress: bool = True,
                              desc: str = "k-fold") -> dict:
    """Out-of-sample scores of every clip under ``M`` label sets, by ``folds``-fold training.

    Parameters
    ----------
    classifier : Classifier
        Initial bundle; every fold model starts from its variables.
    waves : list of np.ndarray [shape=(n_i,)]
        The ``N`` clips, float32 in [-1, 1].
    targets : np.ndarray [shape=(M, N, C)]
        ``M`` label sets (e.g. one per corruption rate), one-hot or multi-hot.
    config : TrainConfig
        Training of each fold model (as :func:`jaxaudio.training.many.train_many`).
    folds : int >= 2
    seed : int
        Seeds the fold assignment.
    losses : sequence of (name, kwargs), length M
        Loss of each label set's models (``binary_cross_entropy`` for multi-label taggers).
    activations : sequence of {"softmax", "sigmoid"}, length M
        How each label set's models turn logits into scores.

    Returns
    -------
    dict
        ``probabilities`` ``(M, N, C)`` float64 (clip ``i`` scored by the model that did not
        see it), ``fold`` ``(N,)``, ``seconds`` (training + scoring, s).
    """
    import jax

    targets = np.asarray(targets, np.float32)
    if targets.ndim != 3 or targets.shape[1] != len(waves):
        raise ValueError(f"targets must have shape (M, {len(waves)}, C), got {targets.shape}")
    if len(losses) != targets.shape[0] or len(activations) != targets.shape[0]:
        raise ValueError("losses and activations need one entry per label set")
    fold = fold_assignment(len(waves), folds=folds, seed=seed)
    out = np.zeros(targets.shape, np.float64)
    seconds = 0.0
    for f in range(int(folds)):
        train_idx, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        result = train_many(classifier, [waves[i] for i in train_idx], targets[:, train_idx],
                            config, losses=list(losses), mode=mode, loss_set=loss_set,
                            prng_impl=prng_impl, progress=progress,
                            desc=f"{desc} fold {f + 1}/{folds}")
        seconds += result.seconds
        clf = result.classifiers[0]
        for act in sorted(set(activations)):
            rows = [m for m, a in enumerate(activations) if a == act]
            picked = jax.tree_util.tree_map(lambda x: x[np.asarray(rows)], result.variables)
            scores = predict_many(clf, picked, [waves[i] for i in held], activation=act)
            for j, m in enumerate(rows):
                out[m, held] = scores[j]
    return {"probabilities": out, "fold": fold, "seconds": seconds}


def find_issues(labels, pred_probs) -> dict:
    """cleanlab's confident-learning filter on single-label clips.

    Parameters
    ----------
    labels : np.ndarray [shape=(N,)], int in ``[0, C)``
        Given labels.
    pred_probs : np.ndarray [shape=(N, C)]
        Out-of-sample class probabilities (rows sum to 1).

    Returns
    -------
    dict
        ``flagged`` ``(N,)`` bool (``cleanlab.filter.find_label_issues``, prune by noise rate);
        ``quality`` ``(N,)`` float in [0, 1], cleanlab's label quality score (self-confidence;
        low = likely wrong).
    """
    find_label_issues = require("cleanlab.filter", "labels", feature=_FEATURE).find_label_issues
    get_label_quality_scores = require("cleanlab.rank", "labels",
                                       feature=_FEATURE).get_label_quality_scores

    labels = np.asarray(labels, np.int64)
    probs = _normalised(pred_probs)
    return {"flagged": np.asarray(find_label_issues(labels, probs), bool),
            "quality": np.asarray(get_label_quality_scores(labels, probs), np.float64)}


def find_multilabel_issues(targets, pred_probs) -> dict:
    """cleanlab's multi-label filter: clips whose tag set is likely missing or extra tags.

    Parameters
    ----------
    targets : np.ndarray [shape=(N, C)]
        Given multi-hot tags (every clip at least one).
    pred_probs : np.ndarray [shape=(N, C)]
        Out-of-sample *independent* tag probabilities (sigmoid outputs).

    Returns
    -------
    dict
        ``flagged`` ``(N,)`` bool and ``quality`` ``(N,)`` (low = likely wrong tag set), from
        ``cleanlab.multilabel_classification``.
    """
    find_label_issues = require("cleanlab.multilabel_classification.filter", "labels",
                                feature=_FEATURE).find_label_issues
    get_label_quality_scores = require("cleanlab.multilabel_classification.rank", "labels",
                                       feature=_FEATURE).get_label_quality_scores

    targets = np.asarray(targets)
    labels = [list(np.flatnonzero(row > 0.5)) for row in targets]
    probs = np.clip(np.asarray(pred_probs, np.float64), 1e-6, 1 - 1e-6)
    return {"flagged": np.asarray(find_label_issues(labels, probs), bool),
            "quality": np.asarray(get_label_quality_scores(labels, probs), np.float64)}


def _normalised(pred_probs) -> np.ndarray:
    probs = np.clip(np.asarray(pred_probs, np.float64), 1e-9, None)
    return probs / probs.sum(-1, keepdims=True)


def detection_scores(flagged, quality, truth) -> dict:
    """How well the flags find the clips whose label is known to be wrong.

    Parameters
    ----------
    flagged : np.ndarray [shape=(N,)], bool
    quality : np.ndarray [shape=(N,)], float (low = likely wrong)
    truth : np.ndarray [shape=(N,)], bool (``True`` = the label is wrong)

    Returns
    -------
    dict
        ``precision`` (share of flagged clips that are wrong), ``recall`` (share of wrong clips
        flagged), ``roc_auc`` (of ``-quality`` against ``truth``; None when one class is empty),
        ``num_flagged``, ``num_wrong``, ``num_clips``, ``share_flagged``.
    """
    from sklearn.metrics import roc_auc_score

    flagged, truth = np.asarray(flagged, bool), np.asarray(truth, bool)
    quality = np.asarray(quality, np.float64)
    if not (flagged.shape == truth.shape == quality.shape) or flagged.ndim != 1:
        raise ValueError("flagged, quality and truth must be 1-D arrays of one length")
    hits = int(np.sum(flagged & truth))
    both = truth.any() and not truth.all()
    return {"precision": float(hits / flagged.sum()) if flagged.any() else None,
            "recall": float(hits / truth.sum()) if truth.any() else None,
            "roc_auc": float(roc_auc_score(truth, -quality)) if both else None,
            "num_flagged": int(flagged.sum()), "num_wrong": int(truth.sum()),
            "num_clips": int(truth.size),
            "share_flagged": float(flagged.mean()) if truth.size else 0.0}


def cleaned_targets(targets, flagged, pred_probs, *, how: str) -> tuple[np.ndarray, np.ndarray]:
    """The training set after cleaning: the flagged clips dropped or relabelled.

    Parameters
    ----------
    targets : np.ndarray [shape=(N, C)]
        Given targets.
    flagged : np.ndarray [shape=(N,)], bool
    pred_probs : np.ndarray [shape=(N, C)]
        Out-of-sample class probabilities.
    how : {"drop", "relabel"}
        ``"drop"``: keep the unflagged clips; ``"relabel"``: keep every clip, a flagged clip
        gets the one-hot label of its most probable class.

    Returns
    -------
    keep : np.ndarray [shape=(N',)], int, the clips kept
    targets : np.ndarray [shape=(N', C)], float32
    """
    targets = np.asarray(targets, np.float32)
    flagged = np.asarray(flagged, bool)
    if how == "drop":
        keep = np.flatnonzero(~flagged)
        return keep, targets[keep]
    if how == "relabel":
        new = targets.copy()
        eye = np.eye(targets.shape[1], dtype=np.float32)
        new[flagged] = eye[np.argmax(np.asarray(pred_probs)[flagged], -1)]
        return np.arange(len(targets)), new
    raise ValueError(f"how must be 'drop' or 'relabel', got {how!r}")
