"""Finding the wrong labels of a training set and retraining on it cleaned (study 2,
docs/studies.md §2).

Two detection problems share cleanlab's confident learning (:mod:`jaxaudio.labels.issues`) on
k-fold out-of-sample probabilities:

- :func:`find_corrupted_labels`: clean clips whose labels were corrupted at known rates, the
  flags scored against the known corruption masks (:func:`score_corrupted_labels`);
- :func:`find_noisy_labels`: a noisy split with kinds of label noise (wrong, missing, extra,
  out of vocabulary), flagged by a single-label model and a multi-label tagger
  (:func:`flag_noisy_split`) and, when the truth is known, scored per kind
  (:func:`score_noise_kinds`).

:func:`cleaning_training_sets` builds the training sets of the cleaning retrain (as given, with
robust losses, flagged clips relabelled or dropped), :func:`train_and_evaluate_sets` trains and
tests them, :func:`gap_recovered` and :func:`label_issues_summary` condense the outcome.

A loss is written ``(name, kwargs)`` with ``kwargs`` a mapping or ``(key, value)`` pairs (the
JSON form of a stage's settings, ``[name, {key: value}]``, works too); :func:`loss_spec` turns
it into the hashable form :func:`jaxaudio.training.many.train_many` takes.
"""

from __future__ import annotations

import time
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxaudio.labels import issues as li
from jaxaudio.training.many import evaluate_many, train_many

__all__ = ["FILTERS", "loss_spec", "score_corrupted_labels", "find_corrupted_labels",
           "flag_noisy_split", "score_noise_kinds", "find_noisy_labels", "cleaning_training_sets",
           "train_and_evaluate_sets", "gap_recovered", "label_issues_summary"]

#: The three ways a noisy clip is flagged: by the single-label filter, the multi-label filter,
#: or either.
FILTERS = ("single", "multi", "either")


def loss_spec(spec) -> tuple:
    """``(name, kwargs)`` (kwargs a mapping or pairs) as ``(name, sorted (key, value) pairs)``."""
    return (spec[0], tuple(sorted(dict(spec[1]).items())))


def score_corrupted_labels(labels, probabilities, changed) -> dict:
    """cleanlab's single-label filter on ``R`` corrupted label sets of the same clips, scored
    against the known corruption masks.

    Parameters
    ----------
    labels : np.ndarray [shape=(R, N)], int in ``[0, C)``
        The corrupted labels, one set per rate.
    probabilities : np.ndarray [shape=(R, N, C)]
        Out-of-sample class probabilities of the models trained on each label set.
    changed : np.ndarray [shape=(R, N)], bool
        Which labels the corruption changed (the truth).

    Returns
    -------
    dict
        ``per_rate`` (a list of :func:`jaxaudio.labels.issues.detection_scores`), ``flagged``
        ``(R, N)`` bool, ``quality`` ``(R, N)`` float (low = likely wrong), ``changed``.
    """
    found = [li.find_issues(labels[k], probabilities[k]) for k in range(len(labels))]
    return {"per_rate": [li.detection_scores(f["flagged"], f["quality"], changed[k])
                         for k, f in enumerate(found)],
            "flagged": np.stack([f["flagged"] for f in found]),
            "quality": np.stack([f["quality"] for f in found]), "changed": changed}


def find_corrupted_labels(classifier, config, waves: Sequence[np.ndarray], labels, changed, *,
                          folds: int, seed: int, loss, loss_set: Sequence,
                          mode: Optional[str] = None, prng_impl: Optional[str] = None,
                          progress: bool = True, desc: str = "label issues") -> dict:
    """k-fold out-of-sample probabilities of clips under ``R`` corrupted label sets (all sets
    of one fold in one stacked training), cleanlab's flags, scored per set.

    Parameters
    ----------
    classifier, config : Classifier, TrainConfig
        Fresh single-label model and its training (every fold model starts from it).
    waves : list of ``N`` np.ndarray [shape=(n_i,)], float32 in [-1, 1]
    labels, changed : np.ndarray [shape=(R, N)]
        Corrupted class indices and the corruption masks (as :func:`score_corrupted_labels`).
    folds, seed : int
        As :func:`jaxaudio.labels.issues.out_of_fold_probabilities`.
    loss : (name, kwargs)
        Loss of every model; ``loss_set`` the losses compiled into the training step.

    Returns
    -------
    dict
        :func:`score_corrupted_labels`'s fields, ``probabilities`` ``(R, N, C)``,
        ``train_seconds`` (k-fold training + scoring, s), ``cleanlab_seconds``.
    """
    num_classes = len(classifier.label_names)
    eye = np.eye(num_classes, dtype=np.float32)
    oof = li.out_of_fold_probabilities(
        classifier, waves, eye[labels], config, folds=folds, seed=seed,
        losses=[loss_spec(loss)] * len(labels), activations=["softmax"] * len(labels),
        loss_set=[loss_spec(x) for x in loss_set], mode=mode, prng_impl=prng_impl,
        progress=progress, desc=desc)
    t0 = time.perf_counter()
    scored = score_corrupted_labels(labels, oof["probabilities"], changed)
    return {"per_rate": scored["per_rate"], "probabilities": oof["probabilities"],
            "flagged": scored["flagged"], "quality": scored["quality"], "changed": changed,
            "train_seconds": oof["seconds"], "cleanlab_seconds": time.perf_counter() - t0}


def flag_noisy_split(labels, targets, probabilities, tag_probabilities) -> dict:
    """cleanlab's single-label filter on the clips with one given tag, its multi-label filter
    on all clips.

    Parameters
    ----------
    labels : np.ndarray [shape=(N,)], int
        Given class index, ``-1`` where a clip has several (or no) given tags.
    targets : np.ndarray [shape=(N, C)]
        Given multi-hot tags.
    probabilities : np.ndarray [shape=(N, C)]
        Out-of-sample softmax probabilities (single-label model).
    tag_probabilities : np.ndarray [shape=(N, C)]
        Out-of-sample sigmoid tag probabilities (multi-label tagger).

    Returns
    -------
    dict
        ``flags`` and ``quality``: ``{"single", "multi", "either"} -> (N,)`` (bool; float, low
        = likely wrong; clips without one given tag have single-label quality 1 and are never
        flagged by that filter; ``either`` quality is the minimum of the two).
    """
    labels = np.asarray(labels)
    single = labels >= 0
    one = li.find_issues(labels[single], np.asarray(probabilities)[single])
    flag_single = np.zeros(len(targets), bool)
    flag_single[single] = one["flagged"]
    quality_single = np.ones(len(targets))
    quality_single[single] = one["quality"]
    multi = li.find_multilabel_issues(targets, tag_probabilities)
    return {"flags": {"single": flag_single, "multi": multi["flagged"],
                      "either": flag_single | multi["flagged"]},
            "quality": {"single": quality_single, "multi": multi["quality"],
                        "either": np.minimum(quality_single, multi["quality"])}}


def score_noise_kinds(flags: Mapping[str, np.ndarray], quality: Mapping[str, np.ndarray], kind,
                      kind_names: Sequence[str]) -> dict:
    """The flags of :func:`flag_noisy_split` against the known kind of label noise.

    Parameters
    ----------
    flags, quality : mapping filter -> np.ndarray [shape=(N,)]
    kind : np.ndarray [shape=(N,)], int
        Index into ``kind_names`` of each clip's label noise; 0 = clean (the label is right).
    kind_names : sequence of str

    Returns
    -------
    dict
        ``vs_truth``: filter -> :func:`jaxaudio.labels.issues.detection_scores` against
        ``kind > 0``; ``per_kind``: kind name -> share flagged per filter (None when no clip
        has that kind) and ``num_clips``.
    """
    kind = np.asarray(kind)
    wrong = kind > 0
    return {"vs_truth": {f: li.detection_scores(flags[f], quality[f], wrong) for f in flags},
            "per_kind": {name: {f: float(flags[f][kind == k].mean()) if np.any(kind == k)
                                else None for f in flags} | {"num_clips": int(np.sum(kind == k))}
                         for k, name in enumerate(kind_names)}}


def find_noisy_labels(classifier, config, waves: Sequence[np.ndarray], labels, targets, *,
                      folds: int, seed: int, single_loss, multi_loss, loss_set: Sequence,
                      kind=None, kind_names: Sequence[str] = (), mode: Optional[str] = None,
                      prng_impl: Optional[str] = None, progress: bool = True,
                      desc: str = "label issues") -> dict:
    """k-fold out-of-sample probabilities of a single-label model (softmax, ``single_loss``)
    and a multi-label tagger (sigmoid, ``multi_loss``) trained together on the given tags,
    :func:`flag_noisy_split`, and :func:`score_noise_kinds` when ``kind`` (the truth) is given.

    Parameters
    ----------
    classifier, config : Classifier, TrainConfig
    waves : list of ``N`` np.ndarray [shape=(n_i,)], float32 in [-1, 1]
    labels, targets : np.ndarray [shape=(N,)], [shape=(N, C)]
        As :func:`flag_noisy_split`.
    kind : np.ndarray [shape=(N,)], int, optional
        Known kind of label noise per clip (index into ``kind_names``).

    Returns
    -------
    dict
        ``probabilities``/``tag_probabilities`` ``(N, C)``, ``flagged_single``/``_multi``
        ``(N,)``, ``quality_single``/``_multi`` ``(N,)``, ``train_seconds``,
        ``share_flagged`` per filter, and with ``kind`` ``vs_truth`` and ``per_kind``.
    """
    oof = li.out_of_fold_probabilities(
        classifier, waves, np.stack([targets, targets]), config, folds=folds, seed=seed,
        losses=[loss_spec(single_loss), loss_spec(multi_loss)],
        activations=["softmax", "sigmoid"], loss_set=[loss_spec(x) for x in loss_set],
        mode=mode, prng_impl=prng_impl, progress=progress, desc=desc)
    soft, tag = oof["probabilities"]
    found = flag_noisy_split(labels, targets, soft, tag)
    flags, quality = found["flags"], found["quality"]
    out = {"probabilities": soft, "tag_probabilities": tag, "flagged_single": flags["single"],
           "flagged_multi": flags["multi"], "quality_single": quality["single"],
           "quality_multi": quality["multi"], "train_seconds": oof["seconds"],
           "share_flagged": {k: float(v.mean()) for k, v in flags.items()}}
    if kind is not None:
        out.update(score_noise_kinds(flags, quality, kind, kind_names))
    return out


def cleaning_training_sets(curated_waves: Sequence[np.ndarray], curated_targets,
                           noisy_waves: Sequence[np.ndarray], given, flagged, probabilities, *,
                           loss, robust: Mapping[str, tuple]) -> list:
    """The training sets of the cleaning retrain, one entry per distinct set of clips.

    Parameters
    ----------
    curated_waves, curated_targets : list of np.ndarray, np.ndarray [shape=(Nc, C)]
        The curated clips and their targets.
    noisy_waves, given : list of np.ndarray, np.ndarray [shape=(N, C)]
        The noisy clips and their given targets.
    flagged : np.ndarray [shape=(N,)], bool
        The noisy clips flagged as wrongly labelled.
    probabilities : np.ndarray [shape=(N, C)]
        Out-of-sample class probabilities (the relabelling, as
        :func:`jaxaudio.labels.issues.cleaned_targets`).
    loss : (name, kwargs)
        Loss of the plain models; ``robust`` maps a short name to the ``(name, kwargs)`` of a
        robust loss trained on the noisy clips as given (model ``"noisy <short name>"``).

    Returns
    -------
    list of (str, list of np.ndarray, list of (str, np.ndarray [shape=(N', C)], loss))
        ``(set name, waves, models)``: the models of one set train together. Models:
        ``noisy`` (+ robust losses, ``noisy relabelled``), ``noisy dropped``,
        ``curated+noisy`` (+ ``relabelled``), ``curated+noisy dropped``.
    """
    given = np.asarray(given, np.float32)
    _, relabelled = li.cleaned_targets(given, flagged, probabilities, how="relabel")
    keep, _ = li.cleaned_targets(given, flagged, probabilities, how="drop")
    cur_w, cur_t, noisy_w = list(curated_waves), np.asarray(curated_targets), list(noisy_waves)
    kept = [noisy_w[i] for i in keep]
    return [
        ("noisy", noisy_w, [("noisy", given, loss)]
         + [(f"noisy {r}", given, spec) for r, spec in robust.items()]
         + [("noisy relabelled", relabelled, loss)]),
        ("noisy dropped", kept, [("noisy dropped", given[keep], loss)]),
        ("curated+noisy", cur_w + noisy_w,
         [("curated+noisy", np.concatenate([cur_t, given]), loss),
          ("curated+noisy relabelled", np.concatenate([cur_t, relabelled]), loss)]),
        ("curated+noisy dropped", cur_w + kept,
         [("curated+noisy dropped", np.concatenate([cur_t, given[keep]]), loss)]),
    ]


def train_and_evaluate_sets(classifier, config, sets: Sequence, test, *, metrics: Sequence[str],
                            loss_set: Sequence, mode: Optional[str] = None,
                            prng_impl: Optional[str] = None, progress: bool = True,
                            desc: str = "retrain") -> dict:
    """Train the models of every set of :func:`cleaning_training_sets` (one stacked training
    per set, each from ``classifier``) and evaluate them on ``test``.

    A set with fewer clips than ``config.batch_size`` (cleaning flagged almost every clip) is
    not trained: its models get None metrics and a note.

    Returns
    -------
    dict
        ``test``: model name -> test scores (:func:`jaxaudio.training.many.evaluate_many`) and
        ``num_train``; ``train_seconds`` (s, all trainings).
    """
    out, seconds = {}, 0.0
    for name, waves, models in sets:
        if len(waves) < config.batch_size:
            out.update({m[0]: dict({k: None for k in metrics}, num_train=len(waves),
                                   note="too few clips left to train") for m in models})
            continue
        result = train_many(classifier, waves, np.stack([m[1] for m in models]), config,
                            losses=[loss_spec(m[2]) for m in models], mode=mode,
                            loss_set=[loss_spec(x) for x in loss_set], prng_impl=prng_impl,
                            progress=progress, desc=f"{desc} {name}")
        seconds += result.seconds
        scores = evaluate_many(result.classifiers[0], result.variables, test)
        for (model, *_), score in zip(models, scores):
            out[model] = dict(score, num_train=len(waves))
    return {"test": out, "train_seconds": seconds}


def gap_recovered(test: Mapping[str, Mapping], *, metrics: Sequence[str], low: str = "noisy",
                  high: str = "curated") -> dict:
    """Share of the gap between two models that each other model closes, per metric.

    ``test``: model name -> metric -> value (None = not trained). Returns metric -> model ->
    ``(v - test[low]) / (test[high] - test[low])`` for every model but ``low`` and ``high``
    (None where the value is None or the gap is below 1e-9).
    """
    gap = {}
    for m in metrics:
        lo, hi = test[low][m], test[high][m]
        gap[m] = {k: (v[m] - lo) / (hi - lo) if v[m] is not None and abs(hi - lo) > 1e-9
                  else None for k, v in test.items() if k not in (high, low)}
    return gap


def label_issues_summary(curated: Mapping, noisy: Mapping, cleaned: Mapping, *, folds: int,
                         issue_rates: Sequence[float], curated_test: Mapping, num_dropped: int,
                         metrics: Sequence[str], kind_names: Sequence[str]) -> dict:
    """The ``label_issues`` block of the label-noise study's ``results.json``.

    Parameters
    ----------
    curated : mapping
        :func:`find_corrupted_labels`'s output.
    noisy : mapping
        :func:`find_noisy_labels`'s output (``vs_truth``/``per_kind`` when the truth is known).
    cleaned : mapping
        :func:`train_and_evaluate_sets`'s output.
    curated_test : mapping metric -> float
        Test scores of the model trained on the curated clips (the upper end of the gap).
    num_dropped : int
        Noisy clips flagged (dropped by the ``dropped`` sets).

    Returns
    -------
    dict
        ``folds``, ``rates``, ``curated_corrupted``, ``noisy_share_flagged``, ``retrained``
        (model -> test scores, ``curated`` included), ``gap_recovered``, ``num_dropped``,
        ``seconds``; with the truth ``noisy_vs_truth``, ``noisy_per_kind``, ``noise_kinds``.
    """
    test = dict(cleaned["test"], curated=dict(curated_test))
    out = {"folds": folds, "rates": list(issue_rates),
           "curated_corrupted": curated["per_rate"],
           "noisy_share_flagged": noisy["share_flagged"],
           "retrained": test, "gap_recovered": gap_recovered(test, metrics=metrics),
           "num_dropped": num_dropped,
           "seconds": {"curated_kfold": curated["train_seconds"],
                       "noisy_kfold": noisy["train_seconds"],
                       "retrain": cleaned["train_seconds"]}}
    if "per_kind" in noisy:
        out["noisy_vs_truth"] = noisy["vs_truth"]
        out["noisy_per_kind"] = noisy["per_kind"]
        out["noise_kinds"] = list(kind_names)
    return out
