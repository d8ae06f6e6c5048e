"""Study 1 option (docs/studies.md §1, "Channels, robust adversaries and an ensemble defence").

Three questions about study 1's adversaries, each a few stages (:mod:`jaxaudio.pipeline`):

1. **Channels** (``survival_<attack>``): the share of successful adversaries still adversarial
   after OGG/MP3 coding, resampling to 44.1 kHz and back, ±6 dB gain, a time shift and white
   noise at 40 dB (:mod:`jaxaudio.channels`), with the clean accuracy through each channel.
2. **Robust adversaries** (``robust_<attack>``, ``survival_robust_<attack>``): the same attack
   with the same settings, made robust by expectation over transformation
   (:mod:`jaxaudio.attacks.eot`), its survival and its cost (SNR, iterations).
3. **Transfer and an ensemble defence** (``ensemble_members``, ``ensemble_fgsm_source``,
   ``ensemble_transfer``, ``ensemble_n<N>``): bootstrap members trained together
   (:mod:`jaxaudio.ensemble`), the transfer of PGD adversaries between networks, and the
   mean-logit ensemble of ``N`` members under adversaries crafted on the study's own
   classifier (transferred) and under white-box FGSM/PGD on the ensemble itself.

Study 1 calls :func:`add_stages` behind its ``--robustness`` option; ``jaxaudio robustness``
(:func:`run`) runs the same stages on their own, crafting PGD and C&W-random adversaries with
study 1's settings first.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import time
from typing import Mapping, Optional

import jax
import numpy as np

from jaxaudio import attacks, channels, ensemble, evaluation, metrics, report, tasks
from jaxaudio.attacks import eot
from jaxaudio.data import SYNTHETIC_DATA
from jaxaudio.data.audio import pcm16_to_float
from jaxaudio.pipeline import Runner, atomic_write_text
from jaxaudio.studies import instrument_attacks as study1

NAME = "attack_robustness"
TITLE = "Study 1 option: channels, robust adversaries and an ensemble defence"

#: The attacks made robust and measured through the channels (study 1's names).
ROBUST_ATTACKS = ("pgd", "cw_random")
#: EOT transformations (the same in every preset): the four differentiable ones. The codecs'
#: straight-through estimate (``eot.robust(..., transforms=(..., "mp3"))``) encodes every
#: example and draw on the host at every step, which made the robust attack more than 40 times
#: slower than the plain one on the 2-core CPU; the study leaves it out.
EOT_TRANSFORMS = eot.DIFFERENTIABLE
#: FGSM step of the ensemble table. Study 1's headline eps 0.1 (SNR about −8 dB) leaves no
#: network standing, so the defence is measured at a step that keeps the clip audible.
FGSM_EPS = 1e-3


@dataclasses.dataclass(frozen=True)
class RobustnessPreset:
    """Sizes: ``num_clips`` clips of ``clip_seconds`` (standalone runs only; inside study 1 its
    attack set is used), ``eot_draws`` random transformations per EOT step, ``members``
    bootstrap networks trained for ``member_epochs`` epochs, ensembles of ``ensemble_sizes``
    members, ``deviations`` from study 1's sizes."""

    num_clips: int
    clip_seconds: float
    eot_draws: int
    members: int
    member_epochs: int
    ensemble_sizes: tuple[int, ...] = (1, 3, 5)
    deviations: tuple[str, ...] = ()


PRESETS: dict[str, RobustnessPreset] = {
    "smoke": RobustnessPreset(6, 0.5, eot_draws=1, members=5, member_epochs=1, deviations=(
        "smoke test: 6 clips of 0.5 s, 8 iterations, 1 EOT draw, 1-epoch members; the "
        "numbers are not meaningful",)),
    "demo": RobustnessPreset(12, 2.0, eot_draws=2, members=5, member_epochs=8, deviations=(
        "12 clips of 2 s (study 1 demo: 48 of 3 s), 2 EOT draws per step, members trained "
        "for 8 epochs (the demo classifier: 20)",)),
    "paper": RobustnessPreset(200, 3.0, eot_draws=4, members=5, member_epochs=50),
}


def _settings_of(preset: str) -> tuple[RobustnessPreset, dict, dict]:
    """This preset's sizes and study 1's PGD and C&W settings for the same preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (--preset); choose one of {tuple(PRESETS)}")
    sp = study1.STUDY_PRESETS[preset]
    return PRESETS[preset], dict(sp.pgd, slots=sp.slots), dict(sp.cw, slots=sp.slots,
                                                                target="random")


# --------------------------------------------------------------------------------------------
# Stage functions
# --------------------------------------------------------------------------------------------


def _clean_of(clips, run):
    mask = np.asarray(run["clip_mask"], bool)
    return np.asarray(clips["waves"])[mask], np.asarray(clips["clean_prediction"])[mask]


def survival_stage(stage_dir, *, clips, run, clf, channel_names, seed):
    """Survival per channel of ``run``'s successful adversaries on clips the model got right."""
    t0 = time.perf_counter()
    clean, clean_pred = _clean_of(clips, run)
    labels = np.asarray(run["labels"])
    adv = _adversarial(run)
    success = np.asarray(run["success"], bool) & (clean_pred == labels)
    table = channels.survival(clf.logits_fn, clean, adv, labels, rate=int(clips["rate"]),
                              targets=np.asarray(run["target"]), success=success,
                              channels=channel_names, seed=seed)
    return {"channels": table, "seconds": time.perf_counter() - t0}


def robust_stage(stage_dir, *, clips, clf, progress, attack, kwargs, key, transforms, draws,
                 eot_seed):
    """``attack`` with ``kwargs`` made robust by EOT, on the clips (a study 1 style run)."""
    fn = eot.robust(attacks.sharded(attacks.BY_NAME[attack.removesuffix("_random")]),
                    transforms=transforms, draws=draws, rate=int(clips["rate"]), seed=eot_seed)
    extra = {} if key is None else {"key": jax.random.key(key)}
    if progress:
        extra["progress"] = f"robust {attack}"
    return evaluation.run_on_set(fn, clf.logits_fn, np.asarray(clips["waves"]),
                                 np.asarray(clips["labels"]), keep_adversarial=True, **kwargs,
                                 **extra)


def members_stage(stage_dir, *, load_train, clf, progress, dataset, preset, seed, members,
                  epochs):
    """Train ``members`` bootstrap networks together; save each as ``member_<k>``."""
    task = tasks.task_of(dataset)
    train_set, p = load_train(), tasks.preset(task, preset)
    masks = ensemble.bootstrap_masks(len(train_set.waves), members, seed=seed)
    init = tasks.new_classifier(task, p, seed=seed + 1, label_names=clf.label_names)
    config = tasks.train_config(task, p, seed=seed, epochs=epochs)
    result = ensemble.train_bootstrap_members(init, train_set.waves, train_set.targets, config,
                                              masks=masks, progress=progress)
    for k, member in enumerate(result.classifiers):
        member.save(pathlib.Path(stage_dir) / f"member_{k}")
    return {"masks": masks, "resample_fraction": float(masks.mean()),
            "final_loss": [float(v) for v in result.losses[:, -1]], "seconds": result.seconds}


def _load_members(stage):
    from jaxaudio.models import Classifier

    k = len(stage["final_loss"])
    return [Classifier.load(stage.path / f"member_{i}") for i in range(k)]


def fgsm_source_stage(stage_dir, *, clips, clf, eps):
    """FGSM on the study's own classifier (the source of transferred adversaries)."""
    return evaluation.run_on_set(attacks.fgsm, clf.logits_fn, np.asarray(clips["waves"]),
                                 np.asarray(clips["labels"]), keep_adversarial=True, eps=eps)


def _adversarial(run):
    return pcm16_to_float(run["adversarial_pcm"])


def transfer_stage(stage_dir, *, clips, members, pgd_source, clf, progress, pgd_kwargs, key):
    """PGD on every member; ``matrix[i][j]``: share of network ``i``'s successful
    adversaries (on clips both ``i`` and ``j`` classify correctly) that also fool ``j``.
    Networks: the members, then the study's own classifier (``source``)."""
    t0 = time.perf_counter()
    nets = _load_members(members)
    fns = [m.logits_fn for m in nets] + [clf.logits_fn]
    waves, labels = np.asarray(clips["waves"]), np.asarray(clips["labels"])
    correct = [ensemble.predict(f, waves) == labels for f in fns]
    runs = []
    for i, m in enumerate(nets):
        runs.append(evaluation.run_on_set(
            attacks.sharded(attacks.pgd), m.logits_fn, waves, labels, keep_adversarial=True,
            key=jax.random.key(key + i), **pgd_kwargs,
            **({"progress": f"pgd on member {i}"} if progress else {})))
    runs.append(pgd_source)
    matrix = [[None if i == j else ensemble.fooling_rate(
        fns[j], _adversarial(r), labels,
        among=np.asarray(r["success"], bool) & correct[i] & correct[j])
        for j in range(len(fns))] for i, r in enumerate(runs)]
    off = [v for i, row in enumerate(matrix) for j, v in enumerate(row)
           if v is not None and i < len(nets) and j < len(nets)]
    return {"matrix": matrix, "networks": [f"member {i}" for i in range(len(nets))] + ["source"],
            "member_clean_accuracy": [float(c.mean()) for c in correct[:-1]],
            "member_pgd_success": [float(np.mean(r["success"])) for r in runs[:-1]],
            "member_to_member_mean": float(np.mean(off)) if off else None,
            "source_to_member_mean": _mean([v for v in matrix[-1][:-1] if v is not None]),
            "seconds": time.perf_counter() - t0}


def _mean(values):
    return float(np.mean(values)) if values else None


def ensemble_stage(stage_dir, *, clips, members, pgd_source, fgsm_source, progress, size,
                   pgd_kwargs, fgsm_eps, key):
    """The mean-logit ensemble of the first ``size`` members: clean accuracy, accuracy on the
    transferred FGSM/PGD adversaries, and white-box FGSM/PGD on the ensemble itself."""
    t0 = time.perf_counter()
    fn = ensemble.ensemble_logits_fn([m.logits_fn for m in _load_members(members)[:size]])
    waves, labels = np.asarray(clips["waves"]), np.asarray(clips["labels"])

    def accuracy(x):
        return float(np.mean(ensemble.predict(fn, x) == labels))

    fgsm = evaluation.run_on_set(attacks.fgsm, fn, waves, labels, keep_adversarial=False,
                                 eps=fgsm_eps)
    pgd = evaluation.run_on_set(attacks.sharded(attacks.pgd), fn, waves, labels,
                                keep_adversarial=False, key=jax.random.key(key), **pgd_kwargs,
                                **({"progress": f"pgd on ensemble of {size}"} if progress
                                   else {}))
    pgd_summary = metrics.attack_summary([pgd], targeted=False,
                                         max_iterations=pgd_kwargs["max_iterations"])
    return {"size": size, "clean_accuracy": accuracy(waves),
            "transferred_fgsm_accuracy": accuracy(_adversarial(fgsm_source)),
            "transferred_pgd_accuracy": accuracy(_adversarial(pgd_source)),
            "whitebox_fgsm_accuracy": float(np.mean(fgsm["adversarial_prediction"] == labels)),
            "whitebox_pgd_accuracy": float(np.mean(pgd["adversarial_prediction"] == labels)),
            "whitebox_pgd_snr_db_mean": pgd_summary["snr_db_mean"],
            "whitebox_pgd_iterations_median": pgd_summary.get("iterations_median"),
            "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# The stages, for study 1 or standalone
# --------------------------------------------------------------------------------------------


def _cost(plain, robust, max_iterations):
    p = metrics.attack_summary([plain], targeted=bool(np.any(plain["target"] >= 0)),
                               max_iterations=max_iterations)
    r = metrics.attack_summary([robust], targeted=bool(np.any(robust["target"] >= 0)),
                               max_iterations=max_iterations)
    keys = ("success_rate", "snr_db_mean", "snr_db_median", "iterations_median")
    out = {f"plain_{k}": p.get(k) for k in keys}
    out.update({f"robust_{k}": r.get(k) for k in keys})
    if p.get("snr_db_mean") is not None and r.get("snr_db_mean") is not None:
        out["snr_cost_db"] = p["snr_db_mean"] - r["snr_db_mean"]
    return out


def add_stages(runner: Runner, *, classifier, clips, adversaries: Mapping[str, Mapping],
               preset: str, seed: int, dataset: str, load_train, progress: bool = False,
               channel_names=channels.DEFAULT_CHANNELS) -> dict:
    """Add the robustness stages to ``runner`` and return their results (JSON-able).

    Parameters
    ----------
    runner : Runner
        Study 1's stage runner.
    classifier : Classifier
        The attacked classifier (also the source network of the transferred adversaries).
    clips : StageResult or mapping
        Study 1's attack set (``waves``, ``labels``, ``rate``, ``clean_prediction``).
    adversaries : mapping
        Attack name (``"pgd"``, ``"cw_random"``; others are skipped) -> ``{"run": its run
        with ``adversarial_pcm`` (study 1's seed-0 stage), "kwargs": the attack's keyword
        arguments, "key": its seed or None}``. ``"pgd"`` is required (the transferred PGD).
    preset : str
        Sizes of :data:`PRESETS` (EOT draws, members, epochs).
    seed : int
        Data / bootstrap / attack seed.
    dataset : str
        Training data of the members (``"synth-instruments"`` or ``"fsdkaggle2019"``).
    load_train : callable
        ``() -> ClipDataset``, the training split (called only when the members train).

    Returns
    -------
    dict
        ``channels``, ``cost``, ``transfer``, ``ensemble``, ``settings`` and ``seconds`` per part.
    """
    if "pgd" not in adversaries:
        raise ValueError("add_stages needs study 1's pgd adversaries (adversaries['pgd'])")
    rp = _settings_of(preset)[0]
    stage = functools.partial(runner.stage, depends={"model": classifier.fingerprint()})
    on_clips = {"context": {"clf": classifier}}
    seconds = {"channels": 0.0, "eot": 0.0, "ensemble_training": 0.0, "transfer": 0.0,
               "ensemble": 0.0}
    pgd_kwargs = dict(adversaries["pgd"]["kwargs"])
    members = stage("ensemble_members", members_stage,
                    context={"load_train": load_train, "clf": classifier, "progress": progress},
                    settings={"dataset": dataset, "preset": preset, "seed": seed,
                              "members": rp.members, "epochs": rp.member_epochs})
    seconds["ensemble_training"] = members["seconds"]
    fgsm_source = stage("ensemble_fgsm_source", fgsm_source_stage, **on_clips,
                        inputs={"clips": clips}, settings={"eps": FGSM_EPS})
    ens_inputs = {"clips": clips, "members": members, "pgd_source": adversaries["pgd"]["run"]}
    transfer = stage("ensemble_transfer", transfer_stage, inputs=ens_inputs,
                     context={"clf": classifier, "progress": progress},
                     settings={"pgd_kwargs": pgd_kwargs, "key": 1000 * seed + 500})
    seconds["transfer"] = transfer["seconds"]
    rows = []
    for size in rp.ensemble_sizes:
        if size > rp.members:
            continue
        row = stage(f"ensemble_n{size}", ensemble_stage,
                    inputs=dict(ens_inputs, fgsm_source=fgsm_source),
                    context={"progress": progress},
                    settings={"size": size, "pgd_kwargs": pgd_kwargs, "fgsm_eps": FGSM_EPS,
                              "key": 1000 * seed + 600 + size})
        rows.append({k: row[k] for k in row.keys()})
        seconds["ensemble"] += row["seconds"]
    table, cost = {}, {}
    channel_names = list(channel_names)
    for name in [a for a in ROBUST_ATTACKS if a in adversaries]:
        adv = adversaries[name]
        plain = stage(f"survival_{name}", survival_stage, **on_clips,
                      inputs={"clips": clips, "run": adv["run"]},
                      settings={"channel_names": channel_names, "seed": seed})
        robust = stage(f"robust_{name}", robust_stage, inputs={"clips": clips},
                       context={"clf": classifier, "progress": progress},
                       settings={"attack": name, "kwargs": dict(adv["kwargs"]),
                                 "key": adv["key"], "transforms": list(EOT_TRANSFORMS),
                                 "draws": rp.eot_draws, "eot_seed": seed})
        robust_table = stage(f"survival_robust_{name}", survival_stage, **on_clips,
                             inputs={"clips": clips, "run": robust},
                             settings={"channel_names": channel_names, "seed": seed})
        table[name] = {"plain": plain["channels"], "robust": robust_table["channels"]}
        cost[name] = _cost(adv["run"], robust, adv["kwargs"]["max_iterations"])
        seconds["channels"] += plain["seconds"] + robust_table["seconds"]
        seconds["eot"] += float(robust["seconds"])

    source_accuracy = float(np.mean(np.asarray(clips["clean_prediction"]) ==
                                    np.asarray(clips["labels"])))
    return {
        "channels": table, "cost": cost,
        "channel_descriptions": {n: channels.CHANNELS[n].description for n in channel_names},
        "transfer": {k: transfer[k] for k in transfer.keys()},
        "ensemble": rows,
        "source": {"clean_accuracy": source_accuracy,
                   "fgsm_accuracy": float(np.mean(fgsm_source["adversarial_prediction"] ==
                                                  fgsm_source["labels"])),
                   "pgd_accuracy": float(np.mean(adversaries["pgd"]["run"]
                                                 ["adversarial_prediction"] ==
                                                 adversaries["pgd"]["run"]["labels"]))},
        "members": {"resample_fraction": members["resample_fraction"],
                    "final_loss": members["final_loss"], "epochs": rp.member_epochs},
        "settings": {"eot_transforms": list(EOT_TRANSFORMS), "eot_draws": rp.eot_draws,
                     "members": rp.members, "ensemble_sizes": list(rp.ensemble_sizes),
                     "fgsm_eps": FGSM_EPS, "pgd": pgd_kwargs,
                     **{name: dict(adversaries[name]["kwargs"]) for name in table}},
        "seconds": seconds,
    }


# --------------------------------------------------------------------------------------------
# Standalone: `jaxaudio robustness`
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``jaxaudio robustness``."""
    add = parser.add_argument
    add("--preset", choices=tuple(PRESETS), default="demo",
        help="sizes only: clips, EOT draws, ensemble members and their epochs (default: demo)")
    add("--data", help="FSDKaggle2019 root folder (default: the embedded synthetic data)")
    add("--model", help="a trained classifier directory (…/model); default: train one")
    add("--out", required=True, help="output folder (results, report)")
    add("--seed", type=int, default=0, help="data split, subset, bootstrap and attack seed")
    add("--no-progress", action="store_true", help="no progress bars")


def run_from_args(args) -> int:
    results = run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
                  model=args.model, progress=not getattr(args, "no_progress", False))
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0 if results else 1


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True) -> dict:
    """Craft study 1's PGD and C&W-random adversaries on the classifier (``model``; None =
    train one), then run :func:`add_stages`; writes ``results.json`` and ``report.html``."""
    rp, pgd_kwargs, cw_kwargs = _settings_of(preset)
    out, t_start = pathlib.Path(out), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    dataset = "synth-instruments" if data is None else "fsdkaggle2019"
    runner = Runner(out / "stages", progress=progress,
                    depends={"data": SYNTHETIC_DATA if data is None else str(data)})
    clf, model_info = study1._classifier(runner, out, dataset=dataset, preset=preset, seed=seed,
                                         data=data, model=model, progress=progress)
    split = {"dataset": dataset, "preset": preset, "seed": seed}
    load = functools.cache(lambda split_name: tasks.load_split(
        dataset, split_name, preset_name=preset, seed=seed, data=data, progress=progress))
    stage = functools.partial(runner.stage, depends={"model": clf.fingerprint()})
    clips = stage("attack_set", study1.attack_set_stage,
                  context={"clf": clf, "load_test": lambda: load("test")},
                  settings=dict(split, num_clips=rp.num_clips, clip_seconds=rp.clip_seconds))
    adversaries = {}
    crafted = {"pgd": pgd_kwargs, "cw_random": cw_kwargs}
    for name in ("pgd",) + tuple(a for a in ROBUST_ATTACKS if a != "pgd"):
        kwargs = crafted[name]
        key = 1000 * seed + study1.ATTACKS.index(name)
        run_ = stage(f"attack_{name}", study1.attack_stage, inputs={"attack_set": clips},
                     context={"clf": clf, "progress": progress},
                     settings={"attack": name, "seed_index": 0, "kwargs": kwargs, "key": key,
                               "keep_adversarial": True}, label=f"attack {name}")
        adversaries[name] = {"run": run_, "kwargs": kwargs, "key": key}
    part = add_stages(runner, classifier=clf, clips=clips, adversaries=adversaries,
                      preset=preset, seed=seed, dataset=dataset,
                      load_train=lambda: load("train"), progress=progress)
    results = {"study": NAME, "title": TITLE, "preset": preset, "seed": seed,
               "dataset": dataset, "model": model_info, "num_clips": int(len(clips["labels"])),
               "clip_seconds": rp.clip_seconds, "deviations": list(rp.deviations),
               "robustness": part, "stages": runner.summary(),
               "seconds": time.perf_counter() - t_start}
    atomic_write_text(out / "results.json", json.dumps(_finite(results), indent=2))
    report.write_report(out)
    return results


def _finite(value):
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value
