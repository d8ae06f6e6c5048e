"""Study 2's label-issue section (docs/studies.md §2): finding the wrong labels.

cleanlab's confident learning on k-fold out-of-sample probabilities
(:mod:`jaxaudio.labels.cleaning`), for the first seed of :mod:`jaxaudio.studies.label_noise`:
scored against the known corruption masks of the curated clips (per ``p`` of ``issue_rates``)
and against the truth of a noisy split with kinds of label noise (wrong, missing, extra, out of
vocabulary); then the network is retrained on the cleaned noisy split (flagged clips dropped or
relabelled) next to the robust losses. Stages ``issue_data`` -> ``issues_curated``,
``issues_noisy`` -> ``clean_train``; the result is the ``label_issues`` block of study 2's
``results.json``.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import jax

from jaxaudio.data.synth_instruments import DEFAULT_NOISE_KINDS, NOISE_KINDS, make_noisy_instruments
from jaxaudio.labels import cleaning
from jaxaudio.labels import curves as noise_curves
from jaxaudio.labels.curves import METRICS
from jaxaudio.training import tasks

__all__ = ["CE", "BCE", "FOLDS", "issue_split", "label_issue_stages"]

#: The single-label models' loss and the multi-label taggers' loss.
CE, BCE = ("cross_entropy", ()), ("binary_cross_entropy", ())
#: k of the k-fold training that gives cleanlab its out-of-sample probabilities (the method,
#: the same in every preset).
FOLDS = 4


def _fresh(data, seed: int, fit: dict):
    return noise_curves.fresh_model(data["label_names"], seed=seed, **fit)


def _issue_data(stage_dir, *, data, load_issues, kinds: dict) -> dict:
    """Given labels of the noisy split scored for label issues, and the truth when known."""
    dataset, truth = load_issues()
    return dict({"labels": dataset.labels, "targets": dataset.targets}, **(truth or {}))


def _issues_curated(stage_dir, *, data, corruption, load, progress, seed: int, rates: list,
                    issue_rates: list, folds: int, train_mode: str, loss_set: list,
                    **fit) -> dict:
    """cleanlab on the curated clips corrupted at ``issue_rates``, scored per rate against the
    corruption masks (:func:`jaxaudio.labels.cleaning.find_corrupted_labels`)."""
    rows = [rates.index(r) for r in issue_rates]
    return cleaning.find_corrupted_labels(
        *_fresh(data, seed, fit), load()["curated"].waves, corruption["labels"][rows],
        corruption["changed"][rows], folds=folds, seed=seed, loss=CE, loss_set=loss_set,
        mode=train_mode, prng_impl=tasks.RBG_PRNG_IMPL, progress=progress,
        desc=f"label issues, curated corrupted, seed {seed}")


def _issues_noisy(stage_dir, *, data, issue_data, load, load_issues, progress, seed: int,
                  folds: int, train_mode: str, loss_set: list, **fit) -> dict:
    """cleanlab's single- and multi-label filters on the noisy split, scored per noise kind
    when the truth is known (:func:`jaxaudio.labels.cleaning.find_noisy_labels`)."""
    del load  # the noisy split scored here comes from load_issues
    return cleaning.find_noisy_labels(
        *_fresh(data, seed, fit), load_issues()[0].waves, issue_data["labels"],
        issue_data["targets"], folds=folds, seed=seed, single_loss=CE, multi_loss=BCE,
        loss_set=loss_set, kind=issue_data.outputs.get("kind"), kind_names=NOISE_KINDS,
        mode=train_mode, prng_impl=tasks.RBG_PRNG_IMPL, progress=progress,
        desc=f"label issues, noisy split, seed {seed}")


def _clean_train(stage_dir, *, data, issue_data, issues, load, load_issues, robust_losses,
                 progress, seed: int, robust: list, folds: int, train_mode: str, loss_set: list,
                 **fit) -> dict:
    """Retrain on the noisy split (alone and with the curated clips) as given, with the robust
    losses, and cleaned (flagged clips dropped or relabelled); evaluate on the test split."""
    del folds  # enters through the flags of ``issues``
    splits, flagged = load(), issues["flagged_single"] | issues["flagged_multi"]
    sets = cleaning.cleaning_training_sets(
        splits["curated"].waves, splits["curated"].targets, load_issues()[0].waves,
        issue_data["targets"], flagged, issues["probabilities"], loss=CE,
        robust={r: robust_losses[r] for r in robust})
    out = cleaning.train_and_evaluate_sets(
        *_fresh(data, seed, fit), sets, splits["test"], metrics=METRICS, loss_set=loss_set,
        mode=train_mode, prng_impl=tasks.RBG_PRNG_IMPL, progress=progress,
        desc=f"retrain, seed {seed}:")
    return dict(out, num_dropped=int(flagged.sum()))


def issue_split(load, *, data: Optional[str], seed: int, min_seconds: float,
                max_seconds: float):
    """``(ClipDataset, truth or None)`` of the noisy split scored for label issues: on
    synthetic data one with kinds of label noise and its truth
    (:func:`jaxaudio.data.synth_instruments.make_noisy_instruments`, as many clips as the noisy
    split of ``load()``); on real data FSDKaggle2019's noisy clips (no truth)."""
    if data is not None:
        return load()["noisy"], None
    return make_noisy_instruments(num_clips=len(load()["noisy"]), seed=seed,
                                  min_seconds=min_seconds, max_seconds=max_seconds)


def label_issue_stages(runner, *, seed: int, data_stage, corruption, curated_test: Mapping,
                       settings: Mapping, rates: Sequence[float], issue_rates: Sequence[float],
                       robust: Sequence[str], robust_losses: Mapping[str, tuple],
                       context: Mapping, load_issues) -> dict:
    """The four label-issue stages of one seed; returns the ``label_issues`` block.

    ``settings``: the training settings every stage hashes (network, Adam, ``train_mode``,
    ``loss_set``); ``corruption``: the seed's ``corruption`` stage; ``curated_test``: metric ->
    test score of the model trained on the clean curated labels; ``robust``: short names of the
    robust losses also retrained on the noisy clips (``robust_losses``: short name -> loss);
    ``context``: ``load`` (the splits) and ``progress``; ``load_issues``: :func:`issue_split`.
    """
    settings = dict(settings, seed=seed, folds=FOLDS)
    backend, ctx = {"backend": jax.default_backend()}, dict(context, load_issues=load_issues)
    issue_data = runner.stage("issue_data", _issue_data,
                              settings={"kinds": dict(DEFAULT_NOISE_KINDS)},
                              inputs={"data": data_stage}, context={"load_issues": load_issues})
    cur = runner.stage("issues_curated", _issues_curated,
                       settings=dict(settings, rates=list(rates), issue_rates=list(issue_rates)),
                       inputs={"data": data_stage, "corruption": corruption},
                       context=context, depends=backend, label=f"label issues curated seed {seed}")
    noisy = runner.stage("issues_noisy", _issues_noisy, settings=settings,
                         inputs={"data": data_stage, "issue_data": issue_data},
                         context=ctx, depends=backend, label=f"label issues noisy seed {seed}")
    cleaned = runner.stage("clean_train", _clean_train,
                           settings=dict(settings, robust=list(robust)),
                           inputs={"data": data_stage, "issue_data": issue_data, "issues": noisy},
                           context=dict(ctx, robust_losses=robust_losses), depends=backend,
                           label=f"retrain cleaned seed {seed}")
    return cleaning.label_issues_summary(
        cur.outputs, noisy.outputs, cleaned.outputs, folds=FOLDS, issue_rates=list(issue_rates),
        curated_test=curated_test, num_dropped=cleaned["num_dropped"], metrics=METRICS,
        kind_names=NOISE_KINDS)
