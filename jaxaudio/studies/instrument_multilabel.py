"""Study 1's multi-label section (``jaxaudio attack --multilabel``; docs/studies.md §1).

A tagger with one sigmoid per instrument (the study's network, binary cross-entropy) is trained
on synthetic curated clips of which :data:`ML_MIXED` carry two instruments; its test clips with
two or more tags are attacked with PGD and C&W at study 1's settings towards every goal of
:data:`ML_GOALS` (:func:`jaxaudio.attacks.multilabel`): remove the strongest present tag, add
the strongest absent one, replace the tag set by another clip's, or change any tag. Stages
``ml_model`` -> ``ml_attack_set`` -> one ``ml_attack`` per goal and attack; the result is the
``multilabel`` block of study 1's ``results.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import time
from typing import Mapping, Optional

import jax
import numpy as np

from jaxaudio import attacks
from jaxaudio.data import SYNTHETIC_DATA
from jaxaudio.data.synth_instruments import make_mixed_instruments
from jaxaudio.data.windowing import centre_excerpt
from jaxaudio.models import Classifier, inference
from jaxaudio.training import tasks
from jaxaudio.training.train import train

__all__ = ["ML_GOALS", "ML_ATTACKS", "ML_MIXED", "ml_model_stage", "ml_attack_set_stage",
           "ml_attack_stage", "ml_summary", "multilabel_section"]

#: Multi-label goals and attacks of the multi-label section (``--multilabel``).
ML_GOALS = ("remove", "add", "replace", "change")
ML_ATTACKS = ("pgd", "cw")
#: Share of two-instrument clips in the tagger's training and test clips.
ML_MIXED = 0.5


def _mixed_split(split: str, preset: str, seed: int):

    p = tasks.preset("instruments", preset)
    return make_mixed_instruments(split=split, num_clips=p.num_train if split == "curated"
                                  else p.num_test, seed=seed, mixed=ML_MIXED,
                                  min_seconds=p.min_seconds, max_seconds=p.max_seconds)


def ml_model_stage(stage_dir, *, progress, train_dir, preset, seed, mixed):
    """Train the multi-label tagger (the study's network, one sigmoid per label, binary
    cross-entropy) on curated clips of which ``mixed`` carry two instruments, both tagged."""
    del mixed  # ML_MIXED, in the settings for the stage key
    p, train_set = tasks.preset("instruments", preset), _mixed_split("curated", preset, seed)
    clf = dataclasses.replace(tasks.new_classifier("instruments", p, seed=seed), task="multilabel")
    config, t0 = tasks.train_config("instruments", p, seed=seed), time.perf_counter()
    result = train(clf, tasks.example_source("instruments", train_set, p, clf.frontend), config,
                   out_dir=train_dir, resume=True, progress=progress)
    result.classifier.save(pathlib.Path(stage_dir) / "model")
    return {"epochs": config.epochs, "seconds": time.perf_counter() - t0}


def ml_attack_set_stage(stage_dir, *, clf, preset, seed, mixed, num_clips, clip_seconds):
    """The tagger's test metrics, and the attacked excerpts: test clips with two or more tags,
    their clean predicted tag sets and each goal's tag / target set (and where it applies)."""

    del mixed
    test = _mixed_split("test", preset, seed)
    scores = inference.evaluate_clips(clf, test)
    chosen = np.flatnonzero(test.targets.sum(1) >= 2)
    if num_clips is not None and num_clips < chosen.size:
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, num_clips, replace=False))
    rate = test.sample_rate
    length = clf.excerpt_samples if clip_seconds is None else int(round(clip_seconds * rate))
    waves = np.stack([centre_excerpt(test.waves[i], length) for i in chosen])
    waves = np.asarray(attacks.round_to_16bit(np.clip(waves, -1.0, 1.0)), np.float32)
    probs = np.asarray(jax.nn.sigmoid(clf.logits(waves)))
    tags = (probs > 0.5).astype(np.int32)
    true = test.targets[chosen].astype(np.int32)
    # Replace: the true tag set of the next chosen clip (another pair of instruments).
    target = np.roll(true, 1, axis=0)
    return {"waves": waves, "true_tags": true, "tags": tags, "probabilities": probs,
            "chosen": chosen, "rate": rate,
            "remove_tag": np.argmax(np.where(tags == 1, probs, -1.0), 1),
            "add_tag": np.argmax(np.where(tags == 0, probs, -1.0), 1),
            "replace_target": target,
            "valid_remove": tags.any(1), "valid_add": ~tags.all(1),
            "valid_replace": np.any(target != tags, 1), "valid_change": np.ones(len(tags), bool),
            "test_lwlrap": scores["lwlrap"], "test_roc_auc": scores["roc_auc"],
            "excerpt_tag_exact_match": float(np.mean(np.all(tags == true, 1))),
            "num_test_clips": len(test)}


def ml_attack_stage(stage_dir, *, attack_set, clf, goal, attack, kwargs, key):
    """One multi-label goal by one attack on the clips where the goal applies."""
    idx = np.flatnonzero(attack_set[f"valid_{goal}"])
    if idx.size == 0:
        return {"clip_index": idx, "success": np.zeros(0, bool), "snr_db": np.zeros(0),
                "iterations": np.zeros(0, np.int32)}
    extra = {"tag": attack_set[f"{goal}_tag"][idx]} if goal in ("remove", "add") else {}
    if goal == "replace":
        extra["target_tags"] = attack_set["replace_target"][idx]
    res = attacks.multilabel(clf.logits_fn, attack_set["waves"][idx], attack_set["tags"][idx],
                             goal=goal, attack=attack, key=jax.random.key(key),
                             quantize_16bit=True, **extra, **kwargs)
    return {"clip_index": idx, "success": np.asarray(res.success),
            "snr_db": np.asarray(res.snr_db, np.float64),
            "iterations": np.asarray(res.iterations)}


def ml_summary(run_stage, *, max_iterations: int) -> dict:
    """One goal's figures: success rate, SNR (dB, over the finite successes) and iterations
    (over the successes) of an ``ml_attack`` stage's run; None where nothing counts."""
    ok = np.asarray(run_stage["success"], bool)
    snr, its = np.asarray(run_stage["snr_db"]), np.asarray(run_stage["iterations"])
    good = ok & np.isfinite(snr)
    return {"num_clips": int(ok.size), "success_rate": float(ok.mean()) if ok.size else None,
            "snr_db_mean": float(snr[good].mean()) if good.any() else None,
            "snr_db_std": float(snr[good].std(ddof=1)) if good.sum() > 1 else None,
            "iterations_median": float(np.median(its[ok])) if ok.any() else None,
            "iterations_mean": float(its[ok].mean()) if ok.any() else None,
            "max_iterations": int(max_iterations)}


def multilabel_section(runner, out: pathlib.Path, *, preset: str, seed: int, progress: bool,
                       num_clips: Optional[int], clip_seconds: Optional[float],
                       kwargs: Mapping[str, dict]) -> dict:
    """The multi-label section (``--multilabel``): train the tagger (stage ``ml_model``), cut
    ``num_clips`` test clips with two or more tags to ``clip_seconds`` (``ml_attack_set``; None
    = all / the tagger's excerpt), run every goal of :data:`ML_GOALS` with each attack of
    :data:`ML_ATTACKS` at its keyword arguments ``kwargs[attack]`` (``ml_attack``); the
    ``multilabel`` block of ``results.json``."""
    settings = {"preset": preset, "seed": seed, "mixed": ML_MIXED}
    trained = runner.stage("ml_model", ml_model_stage, settings=settings, context={
        "progress": progress, "train_dir": out / "train" / f"tagger-{preset}-seed{seed}-"
                                                           f"{SYNTHETIC_DATA}"})
    clf = Classifier.load(trained.path / "model")
    stage = functools.partial(runner.stage, depends={"model": clf.fingerprint()})
    aset = stage("ml_attack_set", ml_attack_set_stage, context={"clf": clf}, settings=dict(
        settings, num_clips=num_clips, clip_seconds=clip_seconds))
    kwargs = {attack: dict(kwargs[attack]) for attack in ML_ATTACKS}
    table = {}
    for goal in ML_GOALS:
        for attack in ML_ATTACKS:
            key = 1000 * seed + 31 * ML_GOALS.index(goal) + ML_ATTACKS.index(attack)
            r = stage("ml_attack", ml_attack_stage, inputs={"attack_set": aset},
                      context={"clf": clf}, label=f"multilabel {goal} {attack}", settings={
                          "goal": goal, "attack": attack, "kwargs": kwargs[attack], "key": key})
            table[f"{goal}/{attack}"] = dict(
                ml_summary(r, max_iterations=kwargs[attack]["max_iterations"]),
                goal=goal, attack=attack)
    return {"goals": table, "settings": kwargs, "num_clips": int(len(aset["chosen"])),
            "tagger": {"test_lwlrap": aset["test_lwlrap"], "test_roc_auc": aset["test_roc_auc"],
                       "num_test_clips": aset["num_test_clips"],
                       "excerpt_tag_exact_match": aset["excerpt_tag_exact_match"],
                       "train_seconds": trained["seconds"], "epochs": trained["epochs"]},
            "mixed_share": ML_MIXED}
