"""Study 1 (docs/studies.md §1): end-to-end waveform attacks on the instrument classifier.

Prinz & Flexer (2020) attack an average-pool CNN on FSDKaggle2019's 12 musical labels with
FGSM, PGD, C&W (towards a fixed and towards a random other instrument) and multi-scale C&W on
the raw waveform, and compare the accuracy they leave with that of white noise at the same SNR.
The study is a chain of stages (:mod:`jaxaudio.runtime.pipeline`, under ``out/stages``):

``model`` (train, resumable; skipped with ``--model``) -> ``clean`` (clip-level test accuracy)
-> ``attack_set`` (one centre excerpt per test clip, on the 16-bit grid) -> one ``attack_<name>``
stage per attack and seed (exactly that attack's settings) -> ``fgsm_sweep`` -> per attack
``noise_<name>`` (white noise at its mean SNR) and ``wav_<name>`` (success re-measured on
16-bit WAV files) and ``perceptual_<name>`` (ViSQOL MOS-LQO and the share of perturbation
energy above the masking threshold, :mod:`jaxaudio.dsp.perceptual_scoring`). The psychoacoustic
attack (``psy``, not in the paper, on unless ``--no-psychoacoustic``) starts from PGD's seed-0
adversaries. Changing one attack's settings (``--set pgd.learning_rate=2e-5``) reruns
only that attack's stages. The run ends by writing ``results.json``
(:mod:`jaxaudio.studies.attack_evaluation`), the arrays the figures are drawn from, listening
WAVs and the report (:mod:`jaxaudio.report.attacks`). Attacks on a set and their checks are
library code (:mod:`jaxaudio.attacks.evaluation`); ``--audio``: :mod:`jaxaudio.cli.attack_command`.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time
from typing import Optional, Sequence

import jax
import numpy as np

from jaxaudio import attacks, metrics
from jaxaudio.attacks import evaluation
from jaxaudio.data import pcm16_to_float
from jaxaudio.dsp import perceptual_scoring
from jaxaudio.models import inference
from jaxaudio.studies import attack_evaluation as reporting
from jaxaudio.studies import common, instrument_multilabel
from jaxaudio.studies.attack_presets import (
    ALL_ATTACKS,
    ATTACKS,
    PSY,
    PUBLISHED,
    SEEDED_RUNS,
    STOCHASTIC,
    STUDY_PRESETS,
    TARGETED,
    StudyPreset,
    apply_overrides,
    attack_function,
    study_options,
)
from jaxaudio.training import tasks

#: The presets and attack names (:mod:`jaxaudio.studies.attack_presets`) are part of this API.
__all__ = ["NAME", "TITLE", "MARGIN", "ATTACKS", "ALL_ATTACKS", "PSY", "STUDY_PRESETS", "run",
           "StudyPreset", "apply_overrides", "study_options", "add_arguments", "run_from_args"]

NAME = "instrument_attacks"
TITLE = "Study 1: end-to-end waveform attacks on the instrument classifier"
MARGIN = 2048  # samples left out at each end of the SNR (docs/studies.md §1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's options (``experiments/instrument_attacks.py`` and ``jaxaudio attack``)."""
    common.add_common_arguments(
        parser, preset_help="clips, seeds, iterations; every preset runs the paper's attack "
                            "settings (paper = the published sizes, docs/studies.md §1)",
        data_help="FSDKaggle2019 root folder (default: the embedded synthetic data)",
        model_help="a trained classifier directory (…/model); default: train one",
        seed_help="data split, subset and attack seed (default 0)")
    add = parser.add_argument
    add("--seeds", type=int, help="runs of the stochastic attacks (default: the preset's)")
    add("--multilabel", action="store_true",
        help="also the multi-label section: train a multi-label tagger and attack its tag sets "
             "(remove, add, replace, change) on test clips with two or more tags (synthetic "
             "data; adds the tagger's training to the run)")
    add("--num-clips", type=int, help="test clips attacked (default: the preset's)")
    add("--attacks", nargs="+", choices=ALL_ATTACKS, metavar="ATTACK",
        help=f"run only these attacks, of {', '.join(ALL_ATTACKS)} (default: all; the FGSM eps "
             "sweep runs with fgsm; psy = the psychoacoustic attack)")
    add("--psychoacoustic", action=argparse.BooleanOptionalAction, default=None,
        help="run the psychoacoustic attack (psy: PGD, then the perturbation pushed under the "
             "clean clip's masking threshold) next to the paper's attacks (default: on)")
    add("--set", action="append", metavar="ATTACK.KEY=VALUE", dest="overrides",
        help="change one attack setting of the preset, e.g. pgd.learning_rate=2e-5, "
             "fgsm.eps=0.01 or psy.alpha=0.1 (repeatable; cw.* also sets cw_random); only its "
             "stages rerun")


def run_from_args(args) -> int:
    optional = {k: getattr(args, k, None)
                for k in ("seeds", "num_clips", "attacks", "overrides", "psychoacoustic")}
    results = run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
                  model=args.model, progress=not getattr(args, "no_progress", False),
                  multilabel=bool(getattr(args, "multilabel", False)), **optional)
    return common.print_outcome(results, args.out)


def clean_stage(stage_dir, *, clf, load_test, dataset, preset, seed):
    """Clip-level accuracy on the whole test split (the classifier's windowing)."""
    return {"accuracy": float(inference.evaluate_clips(clf, load_test())["accuracy"])}


def attack_set_stage(stage_dir, *, clf, load_test, num_clips, clip_seconds, seed, **_split):
    """The attacked excerpts (16-bit grid), labels, clip indices and clean predictions."""
    return evaluation.attack_excerpts(load_test(), clf, num_clips=num_clips,
                                      clip_seconds=clip_seconds, seed=seed)


def attack_stage(stage_dir, *, attack_set, clf, progress, attack, kwargs, key,
                 keep_adversarial, seed_index):
    """One run of one attack on the attack set (``key``: its PRNG seed, None = deterministic)."""
    fn = attack_function(attack)
    extra = {} if key is None else {"key": jax.random.key(key)}
    if progress and attack != "fgsm":  # one step: no bar
        extra["progress"] = f"{attack} seed {seed_index}"
    return evaluation.run_on_set(attacks.sharded(fn), clf.logits_fn, attack_set["waves"],
                                 attack_set["labels"], keep_adversarial=keep_adversarial,
                                 **kwargs, **extra)


def psy_stage(stage_dir, *, attack_set, clf, progress, attack, kwargs, key, stage1, stage1_run):
    """The psychoacoustic attack whose stage 1 is the study's PGD run ``stage1_run`` (seed 0,
    the same settings): only stage 2 runs here."""
    del attack, stage1  # in the settings: the stage's key
    start = pcm16_to_float(stage1_run["adversarial_pcm"]) - attack_set["waves"]
    return evaluation.run_on_set(attacks.psychoacoustic, clf.logits_fn, attack_set["waves"],
                                 attack_set["labels"], keep_adversarial=True, start=start,
                                 start_iterations=stage1_run["iterations"],
                                 key=jax.random.key(key), **kwargs,
                                 **({"progress": "psy"} if progress else {}))


def fgsm_sweep_stage(stage_dir, *, attack_set, clf, epsilons):
    """FGSM at every eps in one compiled call."""
    return evaluation.sweep_on_set(attacks.fgsm_sweep, clf.logits_fn, attack_set["waves"],
                                   attack_set["labels"], epsilons)


def noise_stage(stage_dir, *, attack_set, clf, snr_db, noise_seed, margin):
    """The white-noise control: accuracy with white noise at one attack's mean SNR."""
    return {"snr_db": snr_db, "accuracy": metrics.noise_control_accuracy(
        functools.partial(evaluation.predict, clf), attack_set["waves"], attack_set["labels"],
        snr_db=snr_db, rng=np.random.default_rng(noise_seed), margin=margin)}


def wav_stage(stage_dir, *, run, clf, rate):
    """Write every adversarial of ``run`` as a 16-bit WAV, read it back, classify it again."""
    return evaluation.wav_round_trip(run, functools.partial(evaluation.predict, clf), rate,
                                     stage_dir)


def perceptual_stage(stage_dir, *, run, attack_set, clips, listening, rate, visqol):
    """Seed 0 of one attack: per adversarial the share of perturbation energy above the clean
    clip's masking threshold (every clip) and the ViSQOL MOS-LQO (the first ``clips`` attacked
    clips, None = all, and the listening examples), :mod:`jaxaudio.dsp.perceptual_scoring`."""
    del visqol  # the package version: in the settings so that an upgrade rescores
    x = attack_set["waves"][run["clip_mask"]]
    mask = perceptual_scoring.visqol_selection(
        len(x), x.shape[1], rate, first=clips,
        also=evaluation.listening_positions(run, listening))
    return perceptual_scoring.score_adversaries(x, pcm16_to_float(run["adversarial_pcm"]),
                                                rate, visqol_mask=mask)


def _attack_runs(stage, sp: StudyPreset, clf, selected, aset, kwargs, *, seed: int,
                 progress) -> dict:
    """One ``attack_<name>`` stage per attack and seed: ``{name: [run per seed]}``."""
    runs = {name: [] for name in selected}
    context = {"clf": clf, "progress": progress}
    for name in selected:
        for k in range(sp.seeds if name in SEEDED_RUNS else 1):
            key = 1000 * seed + 17 * k + ALL_ATTACKS.index(name) if name in STOCHASTIC else None
            label = f"attack {name} seed {k}"
            if name == PSY and sp.psy_reuses_pgd(selected):
                runs[name].append(stage(f"attack_{name}", psy_stage, inputs={
                    "attack_set": aset, "stage1_run": runs["pgd"][0]}, context=context, settings={
                    "attack": name, "kwargs": kwargs[name], "key": key, "stage1": "pgd seed 0"},
                    label=label))
                continue
            runs[name].append(stage(f"attack_{name}", attack_stage, inputs={"attack_set": aset},
                                    context=context, label=label, settings={
                "attack": name, "seed_index": k, "kwargs": kwargs[name], "key": key,
                "keep_adversarial": k == 0}))
    return runs


def _controls(stage, sp: StudyPreset, runs: dict, aset, clf, *, seed: int):
    """Per attack: its summary, the white-noise control at its mean SNR and the WAV check
    (stages of their own, so an attack's rerun redoes only its own controls)."""
    summary, noise_control, ctx = {}, {}, {"context": {"clf": clf}}
    for name, rs in runs.items():
        e = summary[name] = metrics.attack_summary(rs, targeted=name in TARGETED,
                                                   max_iterations=sp.max_iterations(name))
        noise = {"snr_db": None, "accuracy": None}
        if e["snr_db_mean"] is not None:
            noise = stage(f"noise_{name}", noise_stage, inputs={"attack_set": aset}, **ctx,
                          settings={"snr_db": e["snr_db_mean"], "margin": MARGIN,
                                    "noise_seed": [seed, 12345, ALL_ATTACKS.index(name)]})
            e["noise_control_accuracy"] = noise["accuracy"]
        wav = stage(f"wav_{name}", wav_stage, inputs={"run": rs[0]}, **ctx,
                    settings={"rate": int(aset["rate"])})
        e.update({k: wav[k] for k in wav.keys()}, success_rate_seed0=float(rs[0]["success"].mean()))
        noise_control[name] = {"snr_db": noise["snr_db"], "accuracy": noise["accuracy"]}
    return summary, noise_control


def _perceptual(stage, sp: StudyPreset, runs: dict, aset, summary: dict) -> dict:
    """One ``perceptual_<name>`` stage per attack; its means (over the successful adversaries)
    go into ``summary``."""
    scores = {}
    for name, rs in runs.items():
        scores[name] = stage(f"perceptual_{name}", perceptual_stage,
                             inputs={"run": rs[0], "attack_set": aset}, settings={
            "clips": sp.perceptual_clips, "listening": sp.listening_examples,
            "rate": int(aset["rate"]), "visqol": perceptual_scoring.visqol_version()})
        summary[name].update(perceptual_scoring.perceptual_means(
            scores[name], rs[0]["success"], first=sp.perceptual_clips))
    return scores


def _stages(runner, sp: StudyPreset, clf, selected, *, split: dict, load_test) -> dict:
    """The stages after the model: clean accuracy, attack set, one stage per attack and seed
    (exactly that attack's settings and seed), the FGSM sweep and the controls."""
    kwargs = sp.attack_kwargs(clf.label_names, clf.frontend.sample_rate)  # checks cw_target
    ctx = {"clf": clf, "load_test": load_test}
    stage = functools.partial(runner.stage, depends={"model": clf.fingerprint()})
    clean = stage("clean", clean_stage, settings=split, context=ctx)
    aset = stage("attack_set", attack_set_stage, context=ctx, settings=dict(
        split, num_clips=sp.num_clips, clip_seconds=sp.clip_seconds))
    runs = _attack_runs(stage, sp, clf, selected, aset, kwargs, seed=split["seed"],
                        progress=runner.progress)
    sweep = None if "fgsm" not in selected else stage(
        "fgsm_sweep", fgsm_sweep_stage, settings={"epsilons": list(sp.fgsm_epsilons)},
        inputs={"attack_set": aset}, context={"clf": clf})
    summary, noise_control = _controls(stage, sp, runs, aset, clf, seed=split["seed"])
    perceptual = _perceptual(stage, sp, runs, aset, summary)
    return {"perceptual": perceptual, "clean": clean, "attack_set": aset, "runs": runs,
            "sweep": sweep, "summary": summary, "noise_control": noise_control}


def _results(out: pathlib.Path, s: dict, sp: StudyPreset, clf, split: dict,
             model_info: dict, selected) -> dict:
    """``results.json`` (but the stage summary and the time) from the stages' outputs; writes
    the report arrays and the listening WAVs."""
    aset, names = s["attack_set"], list(clf.label_names)
    reporting.write_report_arrays(out / "arrays", aset, s["runs"], s["sweep"])
    listening = {name: evaluation.listening_examples(
        out / "audio" / name, aset["waves"], s["runs"][name][0], names, int(aset["rate"]),
        sp.listening_examples) for name in selected}
    results = reporting.results_table(
        {"study": NAME, "title": TITLE, "preset": split["preset"], "seed": split["seed"],
         "dataset": split["dataset"]}, summary=s["summary"],
        noise_control=s["noise_control"], attack_set=aset, sweep=s["sweep"],
        epsilons=sp.fgsm_epsilons, clean_accuracy=s["clean"]["accuracy"], label_names=names,
        model=model_info, settings=sp.reported_settings(), published={**PUBLISHED, PSY: {}},
        method=reporting.method_notes(slots=sp.slots, margin=MARGIN, cw_target=sp.cw_target),
        deviations=sp.deviations, listening=listening)
    reporting.add_listening_scores(results["listening_examples"], s["perceptual"], s["runs"],
                                   sp.listening_examples)
    results["method"]["perceptual"] = reporting.perceptual_note(sp.perceptual_clips)
    return results


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True, seeds: Optional[int] = None, num_clips: Optional[int] = None,
        attacks=None, overrides: Optional[Sequence[str]] = None,
        psychoacoustic: Optional[bool] = None, multilabel: bool = False) -> dict:
    """Run the study into ``out`` (stages under ``out/stages``); returns the results dict.
    ``seed``: data split / subset seed and base of the attack seeds; ``data``: an FSDKaggle2019
    root (None = synthetic); ``model``: a saved classifier (None = train one); the options as
    :func:`study_options` takes them; ``multilabel``: also the multi-label section
    (:mod:`jaxaudio.studies.instrument_multilabel`, synthetic data only)."""
    sp, selected = study_options(preset, seeds, num_clips, overrides, attacks, psychoacoustic)
    if multilabel and data is not None:
        raise ValueError("--multilabel runs on the synthetic data (its mixed clips); drop --data")
    out, t_start = pathlib.Path(out), time.perf_counter()
    dataset = "synth-instruments" if data is None else "fsdkaggle2019"
    runner = common.study_runner(out, progress=progress, data=data)
    split = {"dataset": dataset, "preset": preset, "seed": seed}
    clf, model_info = common.instrument_classifier(runner, out, **split, data=data, model=model,
                                                   progress=progress)
    s = _stages(runner, sp, clf, selected, split=split, load_test=functools.cache(
        lambda: tasks.load_split(dataset, "test", preset_name=preset, seed=seed, data=data,
                                 progress=progress)))
    results = _results(out, s, sp, clf, split, model_info, selected)
    if multilabel:
        t_ml = time.perf_counter()
        results["multilabel"] = instrument_multilabel.multilabel_section(
            runner, out, preset=preset, seed=seed, progress=progress, num_clips=sp.num_clips,
            clip_seconds=sp.clip_seconds, kwargs={"pgd": dict(sp.pgd, slots=sp.slots),
                                                  "cw": dict(sp.cw, slots=sp.slots)})
        results["multilabel"]["seconds"] = time.perf_counter() - t_ml
    return common.finish(out, results, runner=runner, t_start=t_start)
