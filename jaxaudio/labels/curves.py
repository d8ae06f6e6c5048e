"""Label-noise curves over seeds (study 2, docs/studies.md §2): the per-seed test metrics of
every training, their summary (:func:`jaxaudio.metrics.label_noise_summary`), the figure's
arrays and the sentences that sum the study up.

Trainings are looked up by name in a mapping ``runs``: ``"{set}_{loss}_{seed}"`` (e.g.
``"curated_gce_0"``, ``"noisy_ce_1"``; ``loss`` ``"ce"`` = cross-entropy), each holding one
value per corruption rate (``curated``) or one value (the other sets) of every metric, and
``"corruption_{seed}"`` holding the ``changed`` masks ``(R, N)`` of that seed's corruption.
"""

from __future__ import annotations

import os
import pathlib
import platform
import time
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxaudio.labels.cleaning import loss_spec
from jaxaudio.metrics import label_noise_summary
from jaxaudio.training import tasks
from jaxaudio.training.many import evaluate_many, train_many
from jaxaudio.training.train import TrainConfig

__all__ = ["METRICS", "CONDITIONS", "check_rates", "split_labels", "fresh_model",
           "train_and_test", "per_seed_metrics", "noise_curves_summary", "curve_arrays",
           "save_curve_arrays", "training_timing", "summary_sentence", "headline"]

#: Test metrics of every training.
METRICS = ("accuracy", "lwlrap", "roc_auc")
#: Training sets: the curated clips (corrupted at each rate), the noisy clips, both.
CONDITIONS = ("curated", "noisy", "curated+noisy")


def check_rates(rates: Sequence[float], issue_rates: Sequence[float] = ()) -> None:
    """ValueError unless the corruption ``rates`` start at 0 (the curated-only run) and every
    rate of ``issue_rates`` (scored for label issues) is a non-zero corruption rate."""
    if not rates or rates[0] != 0.0:
        raise ValueError("the corruption rates must start at 0 (the curated-only run)")
    if not set(issue_rates) <= set(rates) - {0.0}:
        raise ValueError(f"the label-issue rates {tuple(issue_rates)} must be non-zero "
                         f"corruption rates {tuple(rates)}")


def split_labels(splits: Mapping) -> dict:
    """Labels and targets of every split (what the curves need of the data; the clips
    themselves are loaded on demand).

    ``splits``: split name -> ClipDataset (``curated`` first carries the label names).
    Returns ``label_names``, ``num_clips`` per split and ``{split}_labels`` ``(N,)`` /
    ``{split}_targets`` ``(N, C)`` arrays.
    """
    arrays = {f"{split}_{what}": np.asarray(getattr(d, what))
              for split, d in splits.items() for what in ("labels", "targets")}
    return dict({"label_names": list(splits["curated"].label_names),
                 "num_clips": {k: len(v) for k, v in splits.items()}}, **arrays)


def fresh_model(label_names: Sequence[str], *, seed: int, width: int, excerpt_frames: int,
                epochs: int, batch_size: int, learning_rate: float, stats_excerpts: int):
    """A fresh instrument classifier (:func:`jaxaudio.training.tasks.new_instrument_classifier_rbg`:
    average-pool CNN of ``width`` channels on ``excerpt_frames``-frame excerpts, rbg keys) and
    its Adam training (``epochs``, ``batch_size`` clips, ``learning_rate``, band statistics from
    ``stats_excerpts`` excerpts), both seeded by ``seed``. Returns ``(Classifier, TrainConfig)``.
    """
    clf = tasks.new_instrument_classifier_rbg(width=width, excerpt_frames=excerpt_frames,
                                              seed=seed, label_names=label_names)
    return clf, TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                            seed=seed, stats_excerpts=stats_excerpts)


def train_and_test(classifier, config, waves: Sequence[np.ndarray], targets, test, *, loss,
                   loss_set: Sequence, mode: Optional[str] = None,
                   prng_impl: Optional[str] = None, progress: bool = True,
                   desc: str = "train") -> dict:
    """Train ``K`` models on the same clips (one label set each, one stacked training) and
    score them on ``test``.

    Parameters
    ----------
    classifier, config : Classifier, TrainConfig
        Every model starts from ``classifier``.
    waves : list of ``N`` np.ndarray [shape=(n_i,)], float32 in [-1, 1]
    targets : np.ndarray [shape=(K, N, C)]
    test : ClipDataset
    loss : (name, kwargs)
        Loss of every model (:func:`jaxaudio.labels.cleaning.loss_spec`); ``loss_set`` the
        losses compiled into the training step.

    Returns
    -------
    dict
        ``{metric}`` ``(K,)`` for every metric of :data:`METRICS`, ``train_loss`` ``(K,
        epochs)``, ``steps``, ``num_train`` (= N), ``train_seconds``, ``eval_seconds``.
    """
    result = train_many(classifier, waves, targets, config,
                        losses=[loss_spec(loss)] * len(targets), mode=mode,
                        loss_set=[loss_spec(s) for s in loss_set], prng_impl=prng_impl,
                        progress=progress, desc=desc)
    t0 = time.perf_counter()
    scores = evaluate_many(result.classifiers[0], result.variables, test)
    out = {m: np.array([s[m] for s in scores]) for m in METRICS}
    return dict(out, train_loss=result.losses, steps=result.steps, num_train=len(waves),
                train_seconds=result.seconds, eval_seconds=time.perf_counter() - t0)


def per_seed_metrics(runs: Mapping, seeds: Sequence[int], losses: Sequence[str], *,
                     metrics: Sequence[str] = METRICS,
                     sets: Sequence[str] = CONDITIONS[1:]) -> tuple[dict, dict]:
    """Test metrics per seed.

    Parameters
    ----------
    runs : mapping ``"{set}_{loss}_{seed}"`` -> mapping metric -> array
        The trainings (module docstring).
    seeds : sequence of S ints
    losses : sequence of str
        Short loss names of the curated curves (``"ce"`` first).

    Returns
    -------
    curves : dict loss -> metric -> np.ndarray [shape=(S, R)]
        The curated trainings at every corruption rate.
    sets : dict set -> metric -> np.ndarray [shape=(S,)]
        The cross-entropy trainings of the other training sets.
    """
    curves = {short: {m: np.array([runs[f"curated_{short}_{s}"][m] for s in seeds])
                      for m in metrics} for short in losses}
    other = {c: {m: np.array([runs[f"{c}_ce_{s}"][m] for s in seeds])[:, 0] for m in metrics}
             for c in sets}
    return curves, other


def noise_curves_summary(runs: Mapping, *, rates: Sequence[float], seeds: Sequence[int],
                         robust: Mapping[str, dict]) -> dict:
    """Curves (mean ± std over seeds), the three training sets and the noise-equivalent p.

    Parameters
    ----------
    runs : mapping
        The trainings and corruptions (module docstring); every training records
        ``num_train``.
    rates : sequence of R floats, starting at 0
    seeds : sequence of S ints
    robust : mapping short loss name -> dict
        The robust losses of the curated curves and the fields describing each
        (``loss_label``, ...).

    Returns
    -------
    dict
        :func:`jaxaudio.metrics.label_noise_summary` of the curves (reference ``"ce"``),
        ``curated`` noted as the ``p = 0`` cross-entropy runs.
    """
    curves, sets = per_seed_metrics(runs, seeds, ["ce"] + list(robust))
    out = label_noise_summary(
        rates, curves, sets, num_train={c: runs[f"{c}_ce_{seeds[0]}"]["num_train"]
                                        for c in CONDITIONS},
        labels_changed=runs[f"corruption_{seeds[0]}"]["changed"].sum(1),
        curve_info=dict(robust, ce={"loss_label": "cross-entropy"}))
    out["curated"]["note"] = "the p = 0 cross-entropy runs of the corruption curve"
    return out


def curve_arrays(runs: Mapping, *, rates: Sequence[float], seeds: Sequence[int],
                 robust: Sequence[str], noise_equivalent: Mapping) -> dict:
    """The figure's data: per-seed metrics of every curve and training set.

    ``noise_equivalent``: the ``noise_equivalent_p_detail`` block of
    :func:`noise_curves_summary` (metric -> set -> ``mean``, None when never reached).

    Returns
    -------
    dict of np.ndarray
        ``p`` ``(R,)`` float64, ``seeds`` ``(S,)``, ``curated_{loss}_{metric}`` ``(S, R)``,
        ``{set}_{metric}`` ``(S,)``, ``noise_equivalent_{set}_{metric}`` (float64 scalar,
        NaN = never reached).
    """
    arrays = {"p": np.asarray(rates, np.float64), "seeds": np.asarray(seeds)}
    curves, sets = per_seed_metrics(runs, seeds, ["ce"] + list(robust))
    for m in METRICS:
        arrays.update({f"curated_{short}_{m}": curve[m] for short, curve in curves.items()})
        for cond in CONDITIONS[1:]:
            arrays[f"{cond}_{m}"] = sets[cond][m]
            ne = noise_equivalent[m][cond]["mean"]
            arrays[f"noise_equivalent_{cond}_{m}"] = np.float64(np.nan if ne is None else ne)
    return arrays


def save_curve_arrays(folder, arrays: Mapping[str, np.ndarray],
                      name: str = "curves.npz") -> pathlib.Path:
    """``arrays`` into ``folder/name`` (``.npz``), atomically; returns the path."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{pathlib.Path(name).stem}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, folder / name)
    return folder / name


def training_timing(trainings: Sequence, *, mode: str, data_seconds: float,
                    t_start: float) -> dict:
    """The ``timing`` block: models trained and reused, seconds, the machine.

    ``trainings``: the training stages (:class:`jaxaudio.runtime.pipeline.StageResult`, each
    with one ``accuracy`` per model); ``t_start``: ``time.perf_counter()`` at the start.
    """
    return {"runs": sum(len(s["accuracy"]) for s in trainings),
            "runs_reused": sum(len(s["accuracy"]) for s in trainings if not s.computed),
            "train_mode": mode, "data_seconds": data_seconds,
            "train_and_eval_seconds_of_all_runs": float(sum(s.seconds for s in trainings)),
            "wall_seconds_this_call": time.perf_counter() - t_start,
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{os.cpu_count()} logical CPUs"}


def summary_sentence(results: Mapping) -> str:
    """What the curves show, in one paragraph (from the study's ``results.json`` fields)."""
    acc, ne = results["corruption"]["accuracy_mean"], results["noise_equivalent_p_detail"]
    cond = {c: f"{results[c]['accuracy_mean']:.3f} ± {results[c]['accuracy_std']:.3f}"
            for c in CONDITIONS[1:]}
    return (f"Test accuracy falls from {acc[0]:.3f} (clean curated labels) to {acc[-1]:.3f} at "
            f"p = {results['corruption']['p'][-1]:g}; noisy only: {cond['noisy']}, "
            f"curated + noisy: {cond['curated+noisy']}. Noise-equivalent p (accuracy): noisy "
            f"{ne['accuracy']['noisy']['note']}; curated + noisy "
            f"{ne['accuracy']['curated+noisy']['note']}.")


def headline(results: Mapping) -> str:
    """The study's one-line outcome (from its ``results.json`` fields)."""
    ne = results["noise_equivalent_p"]["noisy"]
    worth = "never reached" if ne is None else f"p = {ne:.2f}"
    return (f"accuracy curated {results['curated']['accuracy_mean']:.3f}, noisy "
            f"{results['noisy']['accuracy_mean']:.3f}, curated + noisy "
            f"{results['curated+noisy']['accuracy_mean']:.3f}; noisy labels worth curated "
            f"labels at {worth} ({len(results['seeds'])} seeds, {results['preset']} preset)")
