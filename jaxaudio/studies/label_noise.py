"""Study 2 (docs/studies.md §2): label noise in the instrument tagger.

One average-pool CNN (:mod:`jaxaudio.tasks`) is trained on **curated** clips, **noisy** clips
(shifted recording conditions *and* wrong labels, like FSDKaggle2019's), **curated + noisy**,
and **curated clips with labels corrupted** at rates ``p``, with cross-entropy and noise-robust
losses, for several seeds, and evaluated on the curated test split (accuracy, lwlrap, ROC-AUC;
mean ± sample std over seeds). "Curated only" *is* the ``p = 0`` cross-entropy run. The
noise-equivalent ``p`` (:func:`jaxaudio.metrics.label_noise_summary`) prices the noisy labels.

Finding the wrong labels (:mod:`jaxaudio.label_issues`, first seed): cleanlab's confident
learning on k-fold out-of-sample probabilities, scored against the known corruption masks of
the curated clips (per ``p`` of ``issue_rates``) and against the truth of the noisy split with
kinds of label noise (wrong, missing, extra, out of vocabulary); then the network is retrained
on the cleaned noisy split (flagged clips dropped or relabelled) next to the robust losses.

Stages (``out/stages``): ``data``, ``corruption`` per seed, ``train`` per (training set, loss,
seed: trained together, then evaluated), ``aggregate``, and ``issue_data``,
``issues_curated``, ``issues_noisy``, ``clean_train``; adding a seed or a robust loss trains
only the new models. Writes ``results.json``, ``arrays/curves.npz``, ``report.html``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import time
from typing import Optional, Sequence

import numpy as np

from jaxaudio import tasks

NAME = "label_noise"
TITLE = "Study 2: label noise in the instrument tagger"

#: Noise-robust losses by short name: (loss name in jaxaudio.losses, kwargs, label).
ROBUST_LOSSES: dict[str, tuple[str, tuple, str]] = {
    "gce": ("gce", (("q", 0.7),), "GCE (q = 0.7)"),
    "bootstrap": ("bootstrap", (("beta", 0.8),), "soft bootstrap (β = 0.8)"),
    "smoothing": ("label_smoothing", (("smoothing", 0.1),), "label smoothing (0.1)"),
}
_CE = ("cross_entropy", ())
METRICS = ("accuracy", "lwlrap", "roc_auc")
CONDITIONS = ("curated", "noisy", "curated+noisy")

#: Context figures (docs/studies.md §2), on the full 80-label FSDKaggle2019 test set: the DCASE
#: 2019 task 2 baseline (MobileNet, noisy pre-training then curated) and the best system.
PUBLISHED = {"dcase2019_task2_baseline_lwlrap": 0.546, "dcase2019_task2_best_lwlrap": 0.758,
             "source": "DCASE 2019 task 2, 80 labels of FSDKaggle2019 (context, not the "
                       "12-label protocol of this study)"}


@dataclasses.dataclass(frozen=True)
class NoisePreset:
    """Sizes of one preset (only sizes change between presets, never the method): clips per
    split (``None`` = all; with ``--data`` caps in CSV order), synthetic durations (s), Adam
    training, network width, excerpt frames, corruption rates (starting at 0), seeds, robust
    losses (keys of ``ROBUST_LOSSES``), excerpts for the band statistics."""

    num_curated: Optional[int]
    num_noisy: Optional[int]
    num_test: Optional[int]
    min_seconds: float
    max_seconds: float
    epochs: int
    width: int
    excerpt_frames: int
    rates: tuple
    seeds: int
    robust: tuple = ("gce",)
    batch_size: int = 16
    learning_rate: float = 1e-3
    stats_excerpts: int = 256
    issue_rates: tuple = (0.1, 0.3, 0.5)


PRESETS: dict[str, NoisePreset] = {
    "smoke": NoisePreset(num_curated=48, num_noisy=48, num_test=24, min_seconds=0.5,
                         max_seconds=1.5, epochs=1, width=4, excerpt_frames=24,
                         rates=(0.0, 0.5, 0.9), seeds=2, robust=("gce",), stats_excerpts=48,
                         issue_rates=(0.5,)),
    "demo": NoisePreset(num_curated=240, num_noisy=240, num_test=180, min_seconds=0.5,
                        max_seconds=4.0, epochs=14, width=8, excerpt_frames=58,
                        rates=tuple(round(0.1 * i, 1) for i in range(10)), seeds=3,
                        robust=("gce",)),
    "paper": NoisePreset(num_curated=None, num_noisy=None, num_test=None, min_seconds=0.5,
                         max_seconds=6.0, epochs=200, width=64, excerpt_frames=116,
                         rates=tuple(round(0.1 * i, 1) for i in range(10)), seeds=5,
                         robust=("gce", "bootstrap", "smoothing"), stats_excerpts=512,
                         issue_rates=tuple(round(0.1 * i, 1) for i in range(1, 10))),
}
#: Every training step is compiled for all losses (a ``lax.switch``), so a training's numbers
#: do not depend on which robust losses were selected alongside it.
LOSS_SET = (_CE,) + tuple(spec[:2] for spec in ROBUST_LOSSES.values())
#: The label-issue stages also train multi-label taggers (binary cross-entropy).
_BCE = ("binary_cross_entropy", ())
ISSUE_LOSS_SET = LOSS_SET + (_BCE,)
#: k of the k-fold training that gives cleanlab its out-of-sample probabilities (the method,
#: the same in every preset).
FOLDS = 4
#: How flagged clips are cleaned before retraining (:func:`jaxaudio.label_issues.cleaned_targets`).
CLEANINGS = ("drop", "relabel")

#: Kept under their old names here (benchmarks/label_noise_vmap.py reads them).
PAPER_SYNTH_SIZES = tasks.SYNTH_INSTRUMENT_SIZES
new_classifier = tasks.new_instrument_classifier_rbg


# ---------------------------------------------------------------------------------- stages
def _data(stage_dir, *, load, **sizes) -> dict:
    """Labels and targets of the three splits (the clips themselves are loaded on demand)."""
    splits = load()
    arrays = {f"{split}_{what}": np.asarray(getattr(d, what))
              for split, d in splits.items() for what in ("labels", "targets")}
    return dict({"label_names": list(splits["curated"].label_names),
                 "num_clips": {k: len(v) for k, v in splits.items()}}, **arrays)


def _corruption(stage_dir, *, data, seed: int, rates: list) -> dict:
    """The curated labels corrupted at every rate for one seed (shared by all losses, so the
    robust curve prices the loss, not another draw of wrong labels)."""
    labels, changed = tasks.corrupt_at_rates(data["curated_labels"], rates=rates, seed=seed,
                                             num_classes=len(data["label_names"]))
    return {"labels": labels, "changed": changed}


def _train(stage_dir, *, data, load, progress, condition: str, seed: int, loss: list,
           loss_set: list, train_mode: str, width: int, excerpt_frames: int, epochs: int,
           batch_size: int, learning_rate: float, stats_excerpts: int, rates=None,
           corruption=None) -> dict:
    """Train the models of one (training set, loss, seed) together, then evaluate them."""
    from jaxaudio.train import TrainConfig
    from jaxaudio.train_many import evaluate_many, train_many

    splits = load()
    waves, targets = tasks.noise_training_set(
        splits, condition, corrupted=None if corruption is None else corruption["labels"])
    clf = tasks.new_instrument_classifier_rbg(width=width, excerpt_frames=excerpt_frames,
                                              seed=seed, label_names=data["label_names"])
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, stats_excerpts=stats_excerpts)
    spec = lambda s: (s[0], tuple(sorted(s[1].items())))  # noqa: E731 (JSON -> loss spec)
    result = train_many(clf, waves, targets, config, losses=[spec(loss)] * len(targets),
                        mode=train_mode, loss_set=[spec(s) for s in loss_set],
                        prng_impl=tasks.RBG_PRNG_IMPL, progress=progress,
                        desc=f"{condition} seed {seed} ({len(targets)} models)")
    t0 = time.perf_counter()
    scores = evaluate_many(result.classifiers[0], result.variables, splits["test"])
    out = {m: np.array([s[m] for s in scores]) for m in METRICS}
    return dict(out, train_loss=result.losses, steps=result.steps, num_train=len(waves),
                train_seconds=result.seconds, eval_seconds=time.perf_counter() - t0)


def _per_seed(stages: dict, seeds: list, robust: list) -> tuple[dict, dict]:
    """Test metrics per seed: curves ``{loss: {m: (S, R)}}``, other sets ``{set: {m: (S,)}}``."""
    curves = {short: {m: np.array([stages[f"curated_{short}_{s}"][m] for s in seeds])
                      for m in METRICS} for short in ["ce"] + list(robust)}
    sets = {c: {m: np.array([stages[f"{c}_ce_{s}"][m] for s in seeds])[:, 0] for m in METRICS}
            for c in CONDITIONS[1:]}
    return curves, sets


def _aggregate(stage_dir, *, rates: list, seeds: list, robust: list, **stages) -> dict:
    """Curves (mean ± std over seeds), the three training sets, noise-equivalent p."""
    from jaxaudio.metrics import label_noise_summary

    curves, sets = _per_seed(stages, seeds, robust)
    info = {r: {"loss_label": ROBUST_LOSSES[r][2], "loss_function": ROBUST_LOSSES[r][0],
                "loss_kwargs": dict(ROBUST_LOSSES[r][1])} for r in robust}
    out = label_noise_summary(
        rates, curves, sets, num_train={c: stages[f"{c}_ce_{seeds[0]}"]["num_train"]
                                        for c in CONDITIONS},
        labels_changed=stages[f"corruption_{seeds[0]}"]["changed"].sum(1),
        curve_info=dict(info, ce={"loss_label": "cross-entropy"}))
    out["curated"]["note"] = "the p = 0 cross-entropy runs of the corruption curve"
    return out


# ------------------------------------------------------------------ finding the wrong labels
def _spec(s) -> tuple:
    return (s[0], tuple(sorted(dict(s[1]).items())))


def _fit(data, seed: int, width: int, excerpt_frames: int, epochs: int, batch_size: int,
         learning_rate: float, stats_excerpts: int):
    """Fresh classifier and training configuration of one seed (as :func:`_train`)."""
    from jaxaudio.train import TrainConfig

    clf = tasks.new_instrument_classifier_rbg(width=width, excerpt_frames=excerpt_frames,
                                              seed=seed, label_names=data["label_names"])
    return clf, TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                            seed=seed, stats_excerpts=stats_excerpts)


def _issue_data(stage_dir, *, data, load_issues, kinds: dict) -> dict:
    """Given labels of the noisy split scored for label issues, and the truth when known."""
    dataset, truth = load_issues()
    out = {"labels": dataset.labels, "targets": dataset.targets}
    if truth is not None:
        out.update(truth)
    return out


def _issues_curated(stage_dir, *, data, corruption, load, progress, seed: int, rates: list,
                    issue_rates: list, folds: int, train_mode: str, loss_set: list,
                    **fit) -> dict:
    """k-fold out-of-sample probabilities on the curated clips corrupted at ``issue_rates``
    (all rates of one fold in one stacked training), cleanlab's flags, scored per rate against
    the known corruption masks."""
    from jaxaudio import label_issues as li

    rows = [rates.index(r) for r in issue_rates]
    labels, changed = corruption["labels"][rows], corruption["changed"][rows]
    clf, config = _fit(data, seed, **fit)
    eye = np.eye(len(data["label_names"]), dtype=np.float32)
    oof = li.out_of_fold_probabilities(
        clf, load()["curated"].waves, eye[labels], config, folds=folds, seed=seed,
        losses=[_spec(_CE)] * len(rows), activations=["softmax"] * len(rows),
        loss_set=[_spec(x) for x in loss_set], mode=train_mode, prng_impl=tasks.RBG_PRNG_IMPL,
        progress=progress, desc=f"label issues, curated corrupted, seed {seed}")
    t0 = time.perf_counter()
    found = [li.find_issues(labels[k], oof["probabilities"][k]) for k in range(len(rows))]
    scores = [li.detection_scores(f["flagged"], f["quality"], changed[k])
              for k, f in enumerate(found)]
    return {"per_rate": scores, "probabilities": oof["probabilities"],
            "flagged": np.stack([f["flagged"] for f in found]),
            "quality": np.stack([f["quality"] for f in found]), "changed": changed,
            "train_seconds": oof["seconds"], "cleanlab_seconds": time.perf_counter() - t0}


def _issues_noisy(stage_dir, *, data, issue_data, load, load_issues, progress, seed: int,
                  folds: int, train_mode: str, loss_set: list, **fit) -> dict:
    """The noisy split: k-fold out-of-sample probabilities of a single-label model (softmax,
    cross-entropy) and a multi-label tagger (sigmoid, binary cross-entropy) trained together;
    cleanlab's single-label filter on the clips with one given tag and its multi-label filter
    on all; the share flagged, and per noise kind when the truth is known."""
    from jaxaudio import label_issues as li
    from jaxaudio.data.synth_instruments import NOISE_KINDS

    del load  # the noisy split scored here comes from load_issues
    clf, config = _fit(data, seed, **fit)
    targets = issue_data["targets"]
    oof = li.out_of_fold_probabilities(
        clf, load_issues()[0].waves, np.stack([targets, targets]), config, folds=folds,
        seed=seed, losses=[_spec(_CE), _spec(_BCE)], activations=["softmax", "sigmoid"],
        loss_set=[_spec(x) for x in loss_set], mode=train_mode, prng_impl=tasks.RBG_PRNG_IMPL,
        progress=progress, desc=f"label issues, noisy split, seed {seed}")
    soft, tag = oof["probabilities"]
    single = issue_data["labels"] >= 0
    one = li.find_issues(issue_data["labels"][single], soft[single])
    flag_single = np.zeros(len(targets), bool)
    flag_single[single] = one["flagged"]
    quality_single = np.ones(len(targets))
    quality_single[single] = one["quality"]
    multi = li.find_multilabel_issues(targets, tag)
    flags = {"single": flag_single, "multi": multi["flagged"],
             "either": flag_single | multi["flagged"]}
    out = {"probabilities": soft, "tag_probabilities": tag, "flagged_single": flag_single,
           "flagged_multi": multi["flagged"], "quality_single": quality_single,
           "quality_multi": multi["quality"], "train_seconds": oof["seconds"],
           "share_flagged": {k: float(v.mean()) for k, v in flags.items()}}
    if "kind" in issue_data:
        kind = issue_data["kind"]
        wrong = kind > 0
        quality = {"single": quality_single, "multi": multi["quality"],
                   "either": np.minimum(quality_single, multi["quality"])}
        out["vs_truth"] = {f: li.detection_scores(flags[f], quality[f], wrong) for f in flags}
        out["per_kind"] = {name: {f: float(flags[f][kind == k].mean()) if np.any(kind == k)
                                  else None for f in flags} | {"num_clips": int(np.sum(kind == k))}
                           for k, name in enumerate(NOISE_KINDS)}
    return out


def _clean_train(stage_dir, *, data, issue_data, issues, load, load_issues, progress, seed: int,
                 robust: list, folds: int, train_mode: str, loss_set: list, **fit) -> dict:
    """Retrain on the noisy split (alone and with the curated clips) as given, with the robust
    losses, and cleaned (flagged clips dropped or relabelled); evaluate on the test split."""
    from jaxaudio import label_issues as li
    from jaxaudio.train_many import evaluate_many, train_many

    del folds  # enters through the flags of ``issues``
    splits, noisy = load(), load_issues()[0]
    flagged = np.asarray(issues["flagged_single"]) | np.asarray(issues["flagged_multi"])
    given = np.asarray(issue_data["targets"], np.float32)
    _, relabelled = li.cleaned_targets(given, flagged, issues["probabilities"], how="relabel")
    keep, _ = li.cleaned_targets(given, flagged, issues["probabilities"], how="drop")
    cur_w, cur_t = list(splits["curated"].waves), np.asarray(splits["curated"].targets)
    noisy_w = list(noisy.waves)
    # One stacked training per distinct set of clips: (name, waves, [(model, targets, loss)]).
    groups = [
        ("noisy", noisy_w, [("noisy", given, _CE)]
         + [(f"noisy {r}", given, ROBUST_LOSSES[r][:2]) for r in robust]
         + [("noisy relabelled", relabelled, _CE)]),
        ("noisy dropped", [noisy_w[i] for i in keep], [("noisy dropped", given[keep], _CE)]),
        ("curated+noisy", cur_w + noisy_w,
         [("curated+noisy", np.concatenate([cur_t, given]), _CE),
          ("curated+noisy relabelled", np.concatenate([cur_t, relabelled]), _CE)]),
        ("curated+noisy dropped", cur_w + [noisy_w[i] for i in keep],
         [("curated+noisy dropped", np.concatenate([cur_t, given[keep]]), _CE)]),
    ]
    out, seconds = {}, 0.0
    for name, waves, models in groups:
        if len(waves) < fit["batch_size"]:  # cleaning flagged (almost) every clip
            out.update({m[0]: dict({k: None for k in METRICS}, num_train=len(waves),
                                   note="too few clips left to train") for m in models})
            continue
        clf, config = _fit(data, seed, **fit)
        result = train_many(clf, waves, np.stack([m[1] for m in models]), config,
                            losses=[_spec(m[2]) for m in models], mode=train_mode,
                            loss_set=[_spec(x) for x in loss_set], prng_impl=tasks.RBG_PRNG_IMPL,
                            progress=progress, desc=f"retrain {name}, seed {seed}")
        seconds += result.seconds
        scores = evaluate_many(result.classifiers[0], result.variables, splits["test"])
        for (model, *_), score in zip(models, scores):
            out[model] = dict(score, num_train=len(waves))
    return {"test": out, "num_dropped": int(flagged.sum()), "train_seconds": seconds}


def _issues_summary(curated_issues, noisy_issues, cleaned, *, issue_rates: list,
                    curated_test: dict) -> dict:
    """The ``label_issues`` block of ``results.json``."""
    from jaxaudio.data.synth_instruments import NOISE_KINDS

    test = dict(cleaned["test"], curated=curated_test)
    gap = {}
    for m in METRICS:
        lo, hi = test["noisy"][m], curated_test[m]
        gap[m] = {k: (v[m] - lo) / (hi - lo) if v[m] is not None and abs(hi - lo) > 1e-9
                  else None for k, v in test.items() if k not in ("curated", "noisy")}
    out = {"folds": FOLDS, "rates": list(issue_rates),
           "curated_corrupted": curated_issues["per_rate"],
           "noisy_share_flagged": noisy_issues["share_flagged"],
           "retrained": test, "gap_recovered": gap, "num_dropped": cleaned["num_dropped"],
           "seconds": {"curated_kfold": curated_issues["train_seconds"],
                       "noisy_kfold": noisy_issues["train_seconds"],
                       "retrain": cleaned["train_seconds"]}}
    if "per_kind" in noisy_issues.outputs:
        out["noisy_vs_truth"] = noisy_issues["vs_truth"]
        out["noisy_per_kind"] = noisy_issues["per_kind"]
        out["noise_kinds"] = list(NOISE_KINDS)
    return out


def _label_issue_stages(runner, p: NoisePreset, seed: int, data_stage, stages: dict,
                        load_issues, context: dict, mode: str) -> dict:
    """The three label-issue stages of the first seed; returns the ``label_issues`` block."""
    import jax

    from jaxaudio.data.synth_instruments import DEFAULT_NOISE_KINDS

    fit = {"width": p.width, "excerpt_frames": p.excerpt_frames, "epochs": p.epochs,
           "batch_size": p.batch_size, "learning_rate": p.learning_rate,
           "stats_excerpts": p.stats_excerpts}
    common = dict(fit, seed=seed, folds=FOLDS, train_mode=mode,
                  loss_set=[[n, dict(kw)] for n, kw in ISSUE_LOSS_SET])
    backend = {"backend": jax.default_backend()}
    issue_data = runner.stage("issue_data", _issue_data,
                              settings={"kinds": dict(DEFAULT_NOISE_KINDS)},
                              inputs={"data": data_stage}, context={"load_issues": load_issues})
    ctx = dict(context, load_issues=load_issues)
    cur = runner.stage("issues_curated", _issues_curated,
                       settings=dict(common, rates=list(p.rates), issue_rates=list(p.issue_rates)),
                       inputs={"data": data_stage, "corruption": stages[f"corruption_{seed}"]},
                       context=context, depends=backend, label=f"label issues curated seed {seed}")
    noisy = runner.stage("issues_noisy", _issues_noisy, settings=common,
                         inputs={"data": data_stage, "issue_data": issue_data},
                         context=ctx, depends=backend, label=f"label issues noisy seed {seed}")
    cleaned = runner.stage("clean_train", _clean_train,
                           settings=dict(common, robust=list(p.robust)),
                           inputs={"data": data_stage, "issue_data": issue_data, "issues": noisy},
                           context=ctx, depends=backend, label=f"retrain cleaned seed {seed}")
    curated_test = {m: float(stages[f"curated_ce_{seed}"][m][0]) for m in METRICS}
    return _issues_summary(cur, noisy, cleaned, issue_rates=list(p.issue_rates),
                           curated_test=curated_test)


# ---------------------------------------------------------------------------------- the study
def _preset(name: str, *, seeds=None, robust=None, epochs=None) -> NoisePreset:
    """The preset with the command line's overrides, validated (errors name the flag)."""
    if name not in PRESETS:
        raise ValueError(f"unknown --preset {name!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[name]
    for flag, value in (("seeds", seeds), ("epochs", epochs)):
        if value is not None and (int(value) != value or value < 1):
            raise ValueError(f"--{flag} must be an integer >= 1, got {value}")
    unknown = [r for r in robust or () if r not in ROBUST_LOSSES]
    if unknown:
        raise ValueError(f"unknown --robust loss(es) {unknown}; choose from "
                         f"{sorted(ROBUST_LOSSES)}")
    p = dataclasses.replace(p, seeds=int(seeds or p.seeds), epochs=int(epochs or p.epochs),
                            robust=p.robust if robust is None else tuple(robust))
    if not p.rates or p.rates[0] != 0.0:
        raise ValueError("the corruption rates must start at 0 (the curated-only run)")
    if not set(p.issue_rates) <= set(p.rates) - {0.0}:
        raise ValueError(f"the label-issue rates {p.issue_rates} must be non-zero corruption "
                         f"rates {p.rates}")
    return p


def _issue_split(load, p: NoisePreset, *, data: Optional[str], seed: int):
    """``(ClipDataset, truth or None)`` of the noisy split scored for label issues: on
    synthetic data the split with kinds of label noise and its truth
    (:func:`jaxaudio.data.synth_instruments.make_noisy_instruments`), as many clips as the noisy
    split; on real data FSDKaggle2019's noisy clips (no truth)."""
    if data is not None:
        return load()["noisy"], None
    from jaxaudio.data.synth_instruments import make_noisy_instruments

    return make_noisy_instruments(num_clips=len(load()["noisy"]), seed=seed,
                                  min_seconds=p.min_seconds, max_seconds=p.max_seconds)


def _deviations(p: NoisePreset, data: Optional[str]) -> list:
    paper = PRESETS["paper"]
    out = [] if data else ["synthetic instrument clips instead of FSDKaggle2019"]
    for field in ("num_curated", "num_noisy", "num_test", "epochs", "width", "excerpt_frames",
                  "rates", "seeds", "robust", "issue_rates"):
        if getattr(p, field) != getattr(paper, field):
            out.append(f"{field} {getattr(p, field)} (paper preset: {getattr(paper, field)})")
    return out


def _train_all(runner, p: NoisePreset, seeds: list, data_stage, context: dict, mode: str):
    """One training stage per (training set, loss, seed); returns {name: StageResult}."""
    import jax

    common = {"width": p.width, "excerpt_frames": p.excerpt_frames, "epochs": p.epochs,
              "batch_size": p.batch_size, "learning_rate": p.learning_rate,
              "stats_excerpts": p.stats_excerpts, "train_mode": mode,
              "loss_set": [[n, dict(kw)] for n, kw in LOSS_SET]}
    backend = {"backend": jax.default_backend()}  # rbg keys: deterministic per backend
    stages = {}
    for seed in seeds:
        corr = runner.stage("corruption", _corruption, inputs={"data": data_stage},
                            settings={"seed": seed, "rates": list(p.rates)},
                            label=f"corruption seed {seed}")
        stages[f"corruption_{seed}"] = corr
        groups = [("curated", short) for short in ["ce"] + list(p.robust)]
        for cond, short in groups + [("noisy", "ce"), ("curated+noisy", "ce")]:
            spec = _CE if short == "ce" else ROBUST_LOSSES[short][:2]
            settings = dict(common, condition=cond, seed=seed, loss=[spec[0], dict(spec[1])])
            inputs = {"data": data_stage}
            if cond == "curated":
                settings["rates"] = list(p.rates)
                inputs["corruption"] = corr
            stages[f"{cond}_{short}_{seed}"] = runner.stage(
                "train", _train, settings=settings, inputs=inputs, context=context,
                depends=backend, label=f"train {cond} {short} seed {seed}")
    return stages


def run(*, out, preset: str = "demo", seed: int = 0, data: Optional[str] = None, model=None,
        progress: bool = True, seeds: Optional[int] = None, robust: Optional[Sequence[str]] = None,
        train_mode: Optional[str] = None, epochs: Optional[int] = None,
        label_issues: bool = True) -> dict:
    """Run the label-noise study; write ``results.json``, ``arrays/`` and ``report.html``.

    ``seed`` is the first training seed (``seed, seed + 1, …``) and the synthetic data seed;
    ``seeds``, ``robust`` (keys of ``ROBUST_LOSSES``) and ``epochs`` override the preset;
    ``train_mode`` (``jaxaudio.train_many.TRAIN_MODES``) defaults by backend; ``model`` is
    ignored (this study trains its own classifiers); ``label_issues`` False skips finding the
    wrong labels (k-fold training, cleanlab, retraining on cleaned data). Finished stages under
    ``out/stages`` are reused. Returns the content of ``results.json``.
    """
    del model
    from jaxaudio import report
    from jaxaudio.pipeline import Runner, atomic_write_text
    from jaxaudio.train_many import TRAIN_MODES, default_train_mode

    p = _preset(preset, seeds=seeds, robust=robust, epochs=epochs)
    mode = default_train_mode() if train_mode is None else train_mode
    if mode not in TRAIN_MODES:
        raise ValueError(f"--train-mode must be one of {TRAIN_MODES}, got {mode!r}")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data must be the FSDKaggle2019 root folder, got {data!r}")
    t_start, out = time.perf_counter(), pathlib.Path(out)
    from jaxaudio.data import SYNTHETIC_DATA

    data_name = str(data) if data else "synthetic"
    runner = Runner(out / "stages", progress=progress,
                    depends={"data": data_name if data else SYNTHETIC_DATA})
    sizes = {k: getattr(p, k) for k in ("num_curated", "num_noisy", "num_test",
                                        "min_seconds", "max_seconds")}
    load = functools.cache(lambda: tasks.instrument_splits(**sizes, data=data, seed=seed,
                                                           progress=progress))
    data_stage = runner.stage("data", _data, settings=dict(sizes, data_seed=seed),
                              context={"load": load})
    seed_list = [seed + i for i in range(p.seeds)]
    stages = _train_all(runner, p, seed_list, data_stage, {"load": load, "progress": progress},
                        mode)
    agg = runner.stage("aggregate", _aggregate, inputs=stages, settings={
        "rates": list(p.rates), "seeds": seed_list, "robust": list(p.robust)})
    load_issues = functools.cache(lambda: _issue_split(load, p, data=data, seed=seed))
    issues = (_label_issue_stages(runner, p, seed_list[0], data_stage, stages, load_issues,
                                  {"load": load, "progress": progress}, mode)
              if label_issues else None)
    results = {"study": NAME, "title": TITLE, "preset": preset, "seed": seed, "data": data_name,
               "seeds": seed_list, "rates": list(p.rates), "robust_losses": list(p.robust),
               "epochs": p.epochs, "width": p.width, "excerpt_frames": p.excerpt_frames,
               "num_clips": data_stage["num_clips"], "label_names": data_stage["label_names"],
               **agg.outputs, "label_issues": issues,
               "published": PUBLISHED, "preset_deviations_from_paper": _deviations(p, data),
               "timing": _timing(stages, data_stage, mode, t_start)}
    results["summary"], results["headline"] = _summary(results), _headline(results)
    results["stages"] = runner.summary()
    _save_arrays(out / "arrays", results, stages, seed_list)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    report.write_report(out)
    return results


def _timing(stages: dict, data_stage, mode: str, t_start: float) -> dict:
    trains = [s for k, s in stages.items() if not k.startswith("corruption")]
    return {"runs": sum(len(s["accuracy"]) for s in trains),
            "runs_reused": sum(len(s["accuracy"]) for s in trains if not s.computed),
            "train_mode": mode, "data_seconds": data_stage.seconds,
            "train_and_eval_seconds_of_all_runs": float(sum(s.seconds for s in trains)),
            "wall_seconds_this_call": time.perf_counter() - t_start,
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{os.cpu_count()} logical CPUs"}


def _save_arrays(folder: pathlib.Path, results: dict, stages: dict, seeds: list) -> None:
    """``curves.npz``: per-seed metrics of every curve and training set (the figure's data)."""
    arrays = {"p": np.asarray(results["rates"], np.float64), "seeds": np.asarray(seeds)}
    curves, sets = _per_seed(stages, seeds, results["robust_losses"])
    for m in METRICS:
        arrays.update({f"curated_{short}_{m}": curve[m] for short, curve in curves.items()})
        for cond in CONDITIONS[1:]:
            arrays[f"{cond}_{m}"] = sets[cond][m]
            ne = results["noise_equivalent_p_detail"][m][cond]["mean"]
            arrays[f"noise_equivalent_{cond}_{m}"] = np.float64(np.nan if ne is None else ne)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / ".curves.tmp.npz", **arrays)
    os.replace(folder / ".curves.tmp.npz", folder / "curves.npz")


def _summary(results: dict) -> str:
    acc, ne = results["corruption"]["accuracy_mean"], results["noise_equivalent_p_detail"]
    cond = {c: f"{results[c]['accuracy_mean']:.3f} ± {results[c]['accuracy_std']:.3f}"
            for c in CONDITIONS[1:]}
    return (f"Test accuracy falls from {acc[0]:.3f} (clean curated labels) to {acc[-1]:.3f} at "
            f"p = {results['corruption']['p'][-1]:g}; noisy only: {cond['noisy']}, "
            f"curated + noisy: {cond['curated+noisy']}. Noise-equivalent p (accuracy): noisy "
            f"{ne['accuracy']['noisy']['note']}; curated + noisy "
            f"{ne['accuracy']['curated+noisy']['note']}.")


def _headline(results: dict) -> str:
    ne = results["noise_equivalent_p"]["noisy"]
    worth = "never reached" if ne is None else f"p = {ne:.2f}"
    return (f"accuracy curated {results['curated']['accuracy_mean']:.3f}, noisy "
            f"{results['noisy']['accuracy_mean']:.3f}, curated + noisy "
            f"{results['curated+noisy']['accuracy_mean']:.3f}; noisy labels worth curated "
            f"labels at {worth} ({len(results['seeds'])} seeds, {results['preset']} preset)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``jaxaudio noise`` / ``experiments/label_noise.py``."""
    from jaxaudio.train_many import TRAIN_MODES

    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo",
                        help="sizes (default: demo)")
    parser.add_argument("--data", default=None, metavar="FSD_ROOT",
                        help="FSDKaggle2019 root folder (default: embedded synthetic data)")
    parser.add_argument("--out", required=True, help="output folder (finished stages reused)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default: the preset's)")
    parser.add_argument("--robust", nargs="*", default=None, choices=tuple(ROBUST_LOSSES),
                        help="noise-robust losses run on the corruption curve")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--train-mode", choices=TRAIN_MODES, default=None,
                        help="how the models of one training set are trained (default: shared "
                             "on CPU, vmap on GPU/TPU)")
    parser.add_argument("--no-label-issues", action="store_true",
                        help="skip finding the wrong labels (k-fold training + cleanlab + "
                             "retraining on the cleaned noisy split)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_from_args(args) -> int:
    """:func:`run` from parsed arguments; prints where the report is."""
    run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
        progress=not getattr(args, "no_progress", False), seeds=getattr(args, "seeds", None),
        robust=getattr(args, "robust", None), train_mode=getattr(args, "train_mode", None),
        epochs=getattr(args, "epochs", None),
        label_issues=not getattr(args, "no_label_issues", False))
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0
