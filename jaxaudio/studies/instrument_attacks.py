"""Study 1 (docs/studies.md §1): end-to-end waveform attacks on the instrument classifier.

Prinz & Flexer (2020) attack an average-pool CNN on FSDKaggle2019's 12 musical labels with
FGSM, PGD, C&W (towards a fixed and towards a random other instrument) and multi-scale C&W on
the raw waveform, and compare the accuracy they leave with that of white noise at the same SNR.
The study is a chain of stages (:mod:`jaxaudio.pipeline`, under ``out/stages``):

``model`` (train, resumable; skipped with ``--model``) -> ``clean`` (clip-level test accuracy)
-> ``attack_set`` (one centre excerpt per test clip, on the 16-bit grid) -> one ``attack_<name>``
stage per attack and seed (exactly that attack's settings) -> ``fgsm_sweep`` -> per attack
``noise_<name>`` (white noise at its mean SNR) and ``wav_<name>`` (success re-measured on
16-bit WAV files) and ``perceptual_<name>`` (ViSQOL MOS-LQO and the share of perturbation
energy above the masking threshold, :mod:`jaxaudio.perceptual`). The psychoacoustic attack
(``psy``, not in the paper, on unless ``--no-psychoacoustic``) starts from PGD's seed-0
adversaries. Changing one attack's settings (``--set pgd.learning_rate=2e-5``) reruns
only that attack's stages. The run ends by writing ``results.json``, the arrays the figures
are drawn from (``arrays/*.npz``), listening WAVs (``audio/``) and the report
(:mod:`jaxaudio.report.attacks`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import time
from typing import Optional, Sequence

import jax
import numpy as np

from jaxaudio import attack_files, attacks, evaluation, metrics, report, tasks
from jaxaudio.attacks import DEFAULT_FFT_SIZES
from jaxaudio.data import SYNTHETIC_DATA
from jaxaudio.models import Classifier, load_classifier
from jaxaudio.pipeline import Runner, atomic_write_text
from jaxaudio.studies import instrument_multilabel
from jaxaudio.train import train

NAME = "instrument_attacks"
TITLE = "Study 1: end-to-end waveform attacks on the instrument classifier"
MARGIN = 2048  # samples left out at each end of the SNR (docs/studies.md §1)

#: The published table (technical report, 200 validation clips, clean accuracy 0.835).
_ROW = ("accuracy_after", "snr_db_mean", "iterations_median", "settings")
_CW_ROW = ("0.18–0.23", "44.2 ± 10.8", "52", "clip 0.01, alpha 0.01, lr 1e-5")  # both variants
PUBLISHED = {"clean_accuracy": 0.835, **{name: dict(zip(_ROW, row)) for name, row in (
    ("fgsm", ("0.25", "−7.7", "1", "eps 0.1")),
    ("pgd", ("0.17", "40.1 ± 11.5", "16", "eps 0.0005, lr 1e-5")),
    ("cw", _CW_ROW), ("cw_random", _CW_ROW),
    ("mscw", ("0.16–0.19", "43.8 ± 10.4", "70", "clip 0.01, alpha 10, lr 1e-5")))},
    "noise_control": "white noise at 42 dB leaves 0.79 (clean 0.835); at −8 dB 0.11"}

ATTACKS = ("fgsm", "pgd", "cw", "cw_random", "mscw")
#: The psychoacoustic attack (not in the paper): a study option (``--psychoacoustic``).
PSY = "psy"
ALL_ATTACKS = ATTACKS + (PSY,)
STOCHASTIC = ("pgd", "cw_random", "mscw", PSY)  # seeded key (random start / target)
SEEDED_RUNS = ("pgd", "cw_random")  # run over several seeds
TARGETED = ("cw", "cw_random", "mscw")


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes and attack settings of one preset (``paper`` = docs/studies.md §1): ``num_clips`` test
    clips (None = all) cut to ``clip_seconds`` (None = the classifier's excerpt); ``seeds`` runs
    of PGD and C&W-random; the headline FGSM ``fgsm_eps`` and its sweep; the attacks' keyword
    arguments (``cw`` also for C&W-random); the fixed ``cw_target``; early-stopping ``slots``;
    ``listening_examples`` per attack; ``deviations`` from the paper, and why; the
    psychoacoustic attack's keyword arguments ``psy`` and whether it runs (``psychoacoustic``);
    ``perceptual_clips``: ViSQOL scores the first this many attacked clips (None = all)."""

    num_clips: Optional[int]
    clip_seconds: Optional[float]
    seeds: int
    fgsm_eps: float
    fgsm_epsilons: tuple[float, ...]
    pgd: dict
    cw: dict
    mscw: dict
    cw_target: str = "Accordion"
    slots: int = 32
    listening_examples: int = 3
    deviations: tuple[str, ...] = ()
    psy: dict = dataclasses.field(default_factory=lambda: dict(PSY_SETTINGS))
    psychoacoustic: bool = True
    perceptual_clips: Optional[int] = None

    def reported_settings(self) -> dict:
        """Each attack's settings as ``results.json`` reports them."""
        return {"fgsm": {"eps": self.fgsm_eps}, "pgd": dict(self.pgd, random_start=True),
                "cw": dict(self.cw, target=self.cw_target),
                "cw_random": dict(self.cw, target="random"),
                "mscw": dict(self.mscw, target="random", fft_sizes=list(DEFAULT_FFT_SIZES)),
                PSY: dict(self.psy, stage1="pgd", random_start=True)}


#: The psychoacoustic attack's settings (every preset): stage 1 = the study's PGD, stage 2 = 200
#: steps of hinge + alpha · class loss (docs/studies.md §1).
PSY_SETTINGS = dict(eps=5e-4, stage1_learning_rate=1e-5, stage1_iterations=500,
                    learning_rate=1e-5, max_iterations=200, alpha=0.1, check_every=20)

_PAPER_SWEEP = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)


def _settings(lr: float, *, pgd_eps: float, cw_alpha: float, clip_eps: float = 0.01,
              iterations=(500, 500, 500)) -> dict:
    """``pgd``/``cw``/``mscw`` keyword arguments sharing one learning rate."""
    return {"pgd": dict(eps=pgd_eps, learning_rate=lr, max_iterations=iterations[0]),
            "cw": dict(clip_eps=clip_eps, alpha=cw_alpha, learning_rate=lr,
                       max_iterations=iterations[1]),
            "mscw": dict(clip_eps=clip_eps, alpha=10.0, learning_rate=lr,
                         max_iterations=iterations[2])}


STUDY_PRESETS: dict[str, StudyPreset] = {
    "paper": StudyPreset(None, None, seeds=5, fgsm_eps=0.1, fgsm_epsilons=_PAPER_SWEEP,
                         **_settings(1e-5, pgd_eps=5e-4, cw_alpha=0.01)),
    "demo": StudyPreset(
        48, 3.0, seeds=2, fgsm_eps=0.1, fgsm_epsilons=_PAPER_SWEEP, slots=16, perceptual_clips=16,
        **_settings(1e-5, pgd_eps=5e-4, cw_alpha=0.01),
        deviations=("48 test clips cut to 3-s excerpts, 2 seeds (paper: 200 whole clips, "
                    "5 seeds); the classifier is the demo's (width 16, 20 epochs; paper: "
                    "width 64, up to 200 epochs)",)),
    "smoke": StudyPreset(
        8, 0.5, seeds=2, fgsm_eps=0.1, fgsm_epsilons=(1e-3, 1e-2, 0.1), slots=4,
        listening_examples=1, **_settings(1e-5, pgd_eps=5e-4, cw_alpha=0.01, iterations=(8, 8, 8)),
        psy=dict(PSY_SETTINGS, stage1_iterations=8, max_iterations=8),
        perceptual_clips=2,
        deviations=("smoke test: 8 clips of 0.5 s, 2 seeds, at most 8 iterations and a "
                    "2-epoch width-8 classifier; the numbers are not meaningful",)),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's options (``experiments/instrument_attacks.py`` and ``jaxaudio attack``)."""
    add = parser.add_argument
    add("--preset", choices=tasks.PRESETS, default="demo",
        help="sizes only: clips, seeds, iterations; every preset runs the paper's attack "
             "settings (default: demo; paper = the published sizes, docs/studies.md §1)")
    add("--data", help="FSDKaggle2019 root folder (default: the embedded synthetic data)")
    add("--model", help="a trained classifier directory (…/model); default: train one")
    add("--out", required=True, help="output folder (results, figures, audio)")
    add("--seed", type=int, default=0, help="data split, subset and attack seed")
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
    add("--no-progress", action="store_true", help="no progress bars")
    files = parser.add_argument_group(
        "your own files (with --audio: attack these files with --model instead of the study)")
    files.add_argument("--audio", nargs="+", metavar="PATH", help="audio files or folders; "
                       "each file is attacked whole with one perturbation")
    files.add_argument("--attack", choices=attack_files.ATTACKS, default="pgd",
                       help="the attack for --audio (default pgd; settings as published, "
                            "changed with --set; psy = the psychoacoustic attack)")
    files.add_argument("--label", help="the true class of every --audio file (default: the "
                       "model's clean prediction, so success = the prediction changed)")
    files.add_argument("--labels", metavar="CSV", help="true classes per file: a CSV with "
                       "columns fname,label")
    files.add_argument("--target", help="a class name or random (default: untargeted for "
                       "fgsm/pgd, random for cw/mscw)")
    files.add_argument("--max-seconds", type=float, default=60.0,
                       help="refuse longer --audio files (default 60)")


def run_on_files(args) -> int:
    """``jaxaudio attack --audio``: attack the user's files (:mod:`jaxaudio.attack_files`)."""
    from jaxaudio.predict import collect_audio

    if not args.model:
        raise ValueError("--audio needs --model (a trained classifier folder)")
    if args.label and args.labels:
        raise ValueError("give either --label or --labels, not both")
    files, skipped = collect_audio(args.audio)
    labels = attack_files.read_labels_csv(args.labels) if args.labels else {}
    clf = load_classifier(args.model)
    if clf.task != "multiclass":
        raise ValueError(f"--model: attacking files needs a multiclass classifier, got task "
                         f"{clf.task!r}")
    sp = apply_overrides(STUDY_PRESETS[args.preset], getattr(args, "overrides", None))
    settings = {"fgsm": {"eps": sp.fgsm_eps}, "pgd": sp.pgd, "cw": sp.cw, "mscw": sp.mscw,
                PSY: dict(sp.psy, sample_rate=int(clf.frontend.sample_rate))}
    out, rows = pathlib.Path(args.out), []
    for i, f in enumerate(files):
        label = args.label
        if args.labels:
            label = labels.get(f.name, labels.get(str(f)))
            if label is None:
                raise ValueError(f"--labels {args.labels}: no row for {f.name}")
        rows.append(attack_files.attack_file(
            clf, f, attack=args.attack, settings=settings[args.attack], label=label,
            target=args.target, seed=1000 * args.seed + i, out_dir=out / "audio",
            max_seconds=args.max_seconds))
        r = rows[-1]
        print(f"{f.name}: {r['label']} -> {r['prediction_after']}"
              f"{' (target ' + r['target'] + ')' if r['target'] else ''}; "
              f"{'success' if r['success'] else 'failed'}, SNR {r['snr_db']:.1f} dB, "
              f"{r['iterations']} iterations", flush=True)
    path = attack_files.write_attacks_csv(rows, out / "attacks.csv")
    note = f"; skipped {skipped} non-audio file(s)" if skipped else ""
    print(f"{sum(r['success'] for r in rows)}/{len(rows)} adversarial (re-read from the "
          f"written WAVs) -> {path}{note}")
    return 0


def run_from_args(args) -> int:
    if getattr(args, "audio", None):
        return run_on_files(args)
    stray = [f"--{k}" for k in ("label", "labels", "target") if getattr(args, k, None)]
    if stray:
        raise ValueError(f"{', '.join(stray)}: used only with --audio (the study attacks "
                         f"the test split with its own labels and targets)")
    optional = {k: getattr(args, k, None)
                for k in ("seeds", "num_clips", "attacks", "overrides", "psychoacoustic")}
    optional["multilabel"] = bool(getattr(args, "multilabel", False))
    results = run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
                  model=args.model, progress=not getattr(args, "no_progress", False), **optional)
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0 if results else 1


def apply_overrides(sp: StudyPreset, overrides: Optional[Sequence[str]]) -> StudyPreset:
    """``sp`` with ``--set ATTACK.KEY=VALUE`` items applied (values are numbers)."""
    for item in overrides or ():
        target, _, value = str(item).partition("=")
        attack, _, key = target.partition(".")
        field = attack if attack in ("pgd", "cw", "mscw", "fgsm", PSY) else None
        known = ("eps",) if field == "fgsm" else tuple(getattr(sp, field)) if field else ()
        if not value or field is None or key not in known:
            raise ValueError(f"--set expects ATTACK.KEY=VALUE with ATTACK in fgsm, pgd, cw, mscw, "
                             f"psy "
                             f"and KEY one of its settings {known or ''}, got {item!r}")
        try:
            number = int(value) if value.lstrip("+-").isdigit() else float(value)
        except ValueError:
            raise ValueError(f"--set {target}: value must be a number, got {value!r}") from None
        if key in ("max_iterations", "stage1_iterations", "check_every") and (
                not isinstance(number, int) or number < 1):
            raise ValueError(f"--set {target}: must be an integer >= 1, got {value!r}")
        if field == "fgsm":
            sp = dataclasses.replace(sp, fgsm_eps=float(number))
        else:
            sp = dataclasses.replace(sp, **{field: {**getattr(sp, field), key: number}})
    return sp


def train_stage(stage_dir, *, load_train, train_dir, progress, dataset, preset, seed):
    """Train the instrument classifier (resumable in ``train_dir``) into ``stage_dir/model``."""
    task, train_set = tasks.task_of(dataset), load_train()
    p = tasks.preset(task, preset)
    clf = tasks.new_classifier(task, p, seed=seed,
                               label_names=getattr(train_set, "label_names", None))
    config, t0 = tasks.train_config(task, p, seed=seed), time.perf_counter()
    result = train(clf, tasks.example_source(task, train_set, p, clf.frontend), config,
                   out_dir=train_dir, resume=True, progress=progress)
    result.classifier.save(pathlib.Path(stage_dir) / "model")
    return {"epochs": config.epochs, "seconds": time.perf_counter() - t0}


def clean_stage(stage_dir, *, clf, load_test, dataset, preset, seed):
    """Clip-level accuracy on the whole test split (the classifier's windowing)."""
    return {"accuracy": float(tasks.evaluate_clips(clf, load_test())["accuracy"])}


def attack_set_stage(stage_dir, *, clf, load_test, num_clips, clip_seconds, seed, **_split):
    """The attacked excerpts (16-bit grid), labels, clip indices and clean predictions."""
    return evaluation.attack_excerpts(load_test(), clf, num_clips=num_clips,
                                      clip_seconds=clip_seconds, seed=seed)


def attack_stage(stage_dir, *, attack_set, clf, progress, attack, kwargs, key,
                 keep_adversarial, seed_index):
    """One run of one attack on the attack set (``key``: its PRNG seed, None = deterministic)."""
    fn = attacks.BY_NAME[attack.removesuffix("_random")]
    extra = {} if key is None else {"key": jax.random.key(key)}
    if progress and attack != "fgsm":  # one step: no bar
        extra["progress"] = f"{attack} seed {seed_index}"
    return evaluation.run_on_set(attacks.sharded(fn), clf.logits_fn, attack_set["waves"],
                                 attack_set["labels"], keep_adversarial=keep_adversarial,
                                 **kwargs, **extra)


def psy_stage(stage_dir, *, attack_set, clf, progress, attack, kwargs, key, stage1, stage1_run):
    """The psychoacoustic attack whose stage 1 is the study's PGD run ``stage1_run`` (seed 0,
    the same settings): only stage 2 runs here."""
    from jaxaudio.data import pcm16_to_float

    del attack, stage1  # in the settings: the stage's key

    start = pcm16_to_float(stage1_run["adversarial_pcm"]) - attack_set["waves"]
    return evaluation.run_on_set(attacks.psychoacoustic, clf.logits_fn, attack_set["waves"],
                                 attack_set["labels"], keep_adversarial=True, start=start,
                                 start_iterations=stage1_run["iterations"],
                                 key=jax.random.key(key), **kwargs,
                                 **({"progress": "psy"} if progress else {}))


def _psy_reuses_pgd(sp: StudyPreset, selected) -> bool:
    """Whether the psychoacoustic attack's stage 1 is exactly the study's PGD (seed 0)."""
    return "pgd" in selected and (sp.psy["eps"], sp.psy["stage1_learning_rate"],
                                  sp.psy["stage1_iterations"]) == (
        sp.pgd["eps"], sp.pgd["learning_rate"], sp.pgd["max_iterations"])


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


def _classifier(runner, out: pathlib.Path, *, dataset, preset, seed, data, model, progress):
    """Load ``model``, or train one in the ``model`` stage (resumable)."""
    if model is not None:
        clf, info = load_classifier(model), {"source": "loaded", "path": str(model)}
    else:
        trained = runner.stage(
            "model", train_stage, settings={"dataset": dataset, "preset": preset, "seed": seed},
            context={"progress": progress, "train_dir": out / "train" / (
                         f"{preset}-seed{seed}" + ("" if data else f"-{SYNTHETIC_DATA}")),
                     "load_train": lambda: tasks.load_split(dataset, "train", preset_name=preset,
                                                            seed=seed, data=data,
                                                            progress=progress)})
        clf, info = Classifier.load(trained.path / "model"), {
            "source": "trained" if trained.computed else "trained earlier",
            "path": str(trained.path / "model"), "epochs": trained["epochs"],
            "seconds": trained["seconds"]}
    if clf.task != "multiclass":
        raise ValueError(f"--model: the instrument study needs a multiclass classifier, got task "
                         f"{clf.task!r} ({info['path']})")
    return clf, info


def _options(preset, seeds, num_clips, overrides, attacks,
             psychoacoustic=None) -> tuple[StudyPreset, tuple]:
    """The preset with ``seeds``/``num_clips``/``--set`` applied, and the attacks selected
    (``psy`` by default when ``psychoacoustic``, None = the preset's choice)."""
    if preset not in STUDY_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(STUDY_PRESETS)}")
    sp = STUDY_PRESETS[preset]
    for name, value in (("seeds", seeds), ("num_clips", num_clips)):
        if value is not None:
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            sp = dataclasses.replace(sp, **{name: int(value)})
    if psychoacoustic is not None:
        sp = dataclasses.replace(sp, psychoacoustic=bool(psychoacoustic))
    default = ALL_ATTACKS if sp.psychoacoustic else ATTACKS
    selected = default if attacks is None else [attacks] if isinstance(attacks, str) else [*attacks]
    if not selected or any(a not in ALL_ATTACKS for a in selected):
        raise ValueError(f"attacks must be a non-empty selection of {ALL_ATTACKS}, got "
                         f"{attacks!r}")
    if psychoacoustic is False:
        selected = [a for a in selected if a != PSY]
        if not selected:
            raise ValueError("--attacks psy with --no-psychoacoustic leaves no attack to run")
    return apply_overrides(sp, overrides), tuple(a for a in ALL_ATTACKS if a in selected)


def _controls(stage, sp: StudyPreset, runs: dict, aset, clf, *, seed: int):
    """Per attack: its summary, the white-noise control at its mean SNR and the WAV check
    (stages of their own, so an attack's rerun redoes only its own controls)."""
    summary, noise_control, ctx = {}, {}, {"context": {"clf": clf}}
    for name, rs in runs.items():
        its = (1 if name == "fgsm" else sp.psy["stage1_iterations"] if name == PSY
               else getattr(sp, name.replace("_random", ""))["max_iterations"])
        e = summary[name] = metrics.attack_summary(rs, targeted=name in TARGETED,
                                                   max_iterations=its)
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


# ---------------------------------------------------------------------------------------------
# Perceptual quality next to the SNR (ViSQOL MOS-LQO and the share above the masking threshold)
# ---------------------------------------------------------------------------------------------


def listening_positions(run, count: int) -> list:
    """Positions in ``run`` of its listening examples: the first ``count`` successes that
    needed at least one step (as :func:`jaxaudio.evaluation.listening_examples` picks them)."""
    return [int(i) for i in np.flatnonzero(run["success"]) if run["iterations"][i] > 0][:count]


def perceptual_stage(stage_dir, *, run, attack_set, clips, listening, rate, visqol):
    """Seed 0 of one attack: per adversarial the share of perturbation energy above the
    clean clip's masking threshold (every clip) and the ViSQOL MOS-LQO (the first ``clips``
    attacked clips, None = all, and the listening examples; NaN elsewhere, and everywhere for
    clips shorter than :data:`jaxaudio.perceptual.VISQOL_MIN_SECONDS`)."""
    from jaxaudio import perceptual
    from jaxaudio.data import pcm16_to_float

    del visqol  # the package version: in the settings so that an upgrade rescores
    x = attack_set["waves"][run["clip_mask"]]
    adv = pcm16_to_float(run["adversarial_pcm"])
    t0 = time.perf_counter()
    share = perceptual.share_above_threshold(x, adv, rate)
    t1 = time.perf_counter()
    scored = np.zeros(len(x), bool)
    scored[:len(x) if clips is None else clips] = True
    scored[listening_positions(run, listening)] = True
    scored &= x.shape[1] >= perceptual.VISQOL_MIN_SECONDS * rate
    mos = np.full(len(x), np.nan)
    if scored.any():
        mos[scored] = perceptual.visqol_scores(x[scored], adv[scored], rate)
    return {"share_above_threshold": share, "visqol_mos": mos, "visqol_scored": scored,
            "share_seconds": np.asarray(t1 - t0),
            "visqol_seconds_per_clip": np.asarray((time.perf_counter() - t1) /
                                                  max(int(scored.sum()), 1))}


def _perceptual(stage, sp: StudyPreset, runs: dict, aset, summary: dict) -> dict:
    """One ``perceptual_<name>`` stage per attack; its means (over the successful adversaries)
    go into ``summary``."""
    from importlib.metadata import version

    out = {}
    for name, rs in runs.items():
        p = out[name] = stage(f"perceptual_{name}", perceptual_stage,
                              inputs={"run": rs[0], "attack_set": aset}, settings={
            "clips": sp.perceptual_clips, "listening": sp.listening_examples,
            "rate": int(aset["rate"]), "visqol": version("visqol-python")})
        ok = np.asarray(rs[0]["success"], bool)
        scored = ok & p["visqol_scored"]  # the fixed subset: the first perceptual_clips clips
        if sp.perceptual_clips is not None:
            scored[sp.perceptual_clips:] = False
        summary[name].update(
            visqol_mos_mean=float(p["visqol_mos"][scored].mean()) if scored.any() else None,
            visqol_n=int(scored.sum()),
            share_above_threshold_mean=(float(p["share_above_threshold"][ok].mean())
                                        if ok.any() else None),
            visqol_seconds_per_clip=float(p["visqol_seconds_per_clip"]),
            share_seconds=float(p["share_seconds"]))
    return out


def _perceptual_results(results: dict, perceptual: dict, runs: dict, sp: StudyPreset) -> None:
    """ViSQOL MOS and share above threshold under each listening example; the method note."""
    for name, examples in results["listening_examples"].items():
        positions = listening_positions(runs[name][0], sp.listening_examples)
        for ex, i in zip(examples, positions):
            mos = float(perceptual[name]["visqol_mos"][i])
            ex.update(visqol_mos=None if np.isnan(mos) else mos,
                      share_above_threshold=float(perceptual[name]["share_above_threshold"][i]))
    results["method"]["perceptual"] = (
        "ViSQOL v3 audio mode (visqol-python; original and adversarial resampled to 48 kHz "
        "with soxr): MOS-LQO 1-5, mean over the successful adversaries of seed 0 among "
        + ("all attacked clips" if sp.perceptual_clips is None else
           f"the first {sp.perceptual_clips} attacked clips")
        + " (none for excerpts shorter than 1 s, which ViSQOL refuses). Share above threshold: "
        "the share of the perturbation's PSD energy above the clean "
        "clip's masking threshold (MPEG-1 psychoacoustic model 1, 2048/512 frames), mean over "
        "the successful adversaries of seed 0.")


def _stages(runner, sp: StudyPreset, clf, selected, *, split: dict, load_test):
    """The stages after the model: clean accuracy, attack set, one stage per attack and seed
    (exactly that attack's settings and seed), the FGSM sweep and the controls."""
    names = list(clf.label_names)
    if sp.cw_target not in names:
        raise ValueError(f"C&W target {sp.cw_target!r} is not a class of the model {names}")
    ctx = {"clf": clf, "load_test": load_test}
    stage = functools.partial(runner.stage, depends={"model": clf.fingerprint()})
    clean = stage("clean", clean_stage, settings=split, context=ctx)
    aset = stage("attack_set", attack_set_stage, context=ctx, settings=dict(
        split, num_clips=sp.num_clips, clip_seconds=sp.clip_seconds))
    on_set = {"inputs": {"attack_set": aset}, "context": {"clf": clf}}
    kwargs = {"fgsm": {"eps": sp.fgsm_eps}, "pgd": dict(sp.pgd, slots=sp.slots),
              "cw": dict(sp.cw, slots=sp.slots, target=names.index(sp.cw_target)),
              "cw_random": dict(sp.cw, slots=sp.slots, target="random"),
              "mscw": dict(sp.mscw, slots=sp.slots, target="random"),
              PSY: dict(sp.psy, slots=sp.slots, sample_rate=int(clf.frontend.sample_rate))}
    runs, seed = {name: [] for name in selected}, split["seed"]
    for name in selected:
        for k in range(sp.seeds if name in SEEDED_RUNS else 1):
            key = 1000 * seed + 17 * k + ALL_ATTACKS.index(name) if name in STOCHASTIC else None
            if name == PSY and _psy_reuses_pgd(sp, selected):
                runs[name].append(stage(f"attack_{name}", psy_stage, inputs={
                    "attack_set": aset, "stage1_run": runs["pgd"][0]}, context={
                    "clf": clf, "progress": runner.progress}, settings={
                    "attack": name, "kwargs": kwargs[name], "key": key, "stage1": "pgd seed 0"},
                    label=f"attack {name} seed {k}"))
                continue
            runs[name].append(stage(f"attack_{name}", attack_stage, inputs=on_set["inputs"],
                                    context={"clf": clf, "progress": runner.progress}, settings={
                "attack": name, "seed_index": k, "kwargs": kwargs[name], "key": key,
                "keep_adversarial": k == 0}, label=f"attack {name} seed {k}"))
    sweep = None if "fgsm" not in selected else stage(
        "fgsm_sweep", fgsm_sweep_stage, settings={"epsilons": list(sp.fgsm_epsilons)}, **on_set)
    summary, noise_control = _controls(stage, sp, runs, aset, clf, seed=seed)
    perceptual = _perceptual(stage, sp, runs, aset, summary)
    return {"perceptual": perceptual, "clean": clean, "attack_set": aset, "runs": runs,
            "sweep": sweep, "summary": summary, "noise_control": noise_control}


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True, seeds: Optional[int] = None, num_clips: Optional[int] = None,
        attacks=None, overrides: Optional[Sequence[str]] = None,
        psychoacoustic: Optional[bool] = None, multilabel: bool = False) -> dict:
    """Run the study into ``out`` (stages under ``out/stages``); returns the results dict.
    ``seed``: data split / subset seed and base of the attack seeds; ``data``: an FSDKaggle2019
    root (None = synthetic); ``model``: a saved classifier (None = train one); ``attacks``: a
    selection of :data:`ATTACKS` (the FGSM sweep runs with ``"fgsm"``); ``overrides``: the
    ``--set ATTACK.KEY=VALUE`` items (:func:`apply_overrides`); ``psychoacoustic``: run the
    psychoacoustic attack (None = the preset's choice, on); ``multilabel``: also the
    multi-label section (:mod:`jaxaudio.studies.instrument_multilabel`, synthetic data only)."""
    sp, selected = _options(preset, seeds, num_clips, overrides, attacks, psychoacoustic)
    if multilabel and data is not None:
        raise ValueError("--multilabel runs on the synthetic data (its mixed clips); drop --data")
    out, t_start = pathlib.Path(out), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    dataset = "synth-instruments" if data is None else "fsdkaggle2019"
    runner = Runner(out / "stages", progress=progress,
                    depends={"data": SYNTHETIC_DATA if data is None else str(data)})
    split = {"dataset": dataset, "preset": preset, "seed": seed}
    clf, model_info = _classifier(runner, out, **split, data=data, model=model,
                                  progress=progress)
    s = _stages(runner, sp, clf, selected, split=split, load_test=functools.cache(
        lambda: tasks.load_split(dataset, "test", preset_name=preset, seed=seed, data=data,
                                 progress=progress)))
    aset, names = s["attack_set"], list(clf.label_names)
    evaluation.write_report_arrays(out / "arrays", aset, s["runs"], s["sweep"])
    listening = {name: evaluation.listening_examples(
        out / "audio" / name, aset["waves"], s["runs"][name][0], names, int(aset["rate"]),
        sp.listening_examples) for name in selected}
    results = evaluation.results_table(
        {"study": NAME, "title": TITLE, "preset": preset, "seed": seed, "dataset": dataset},
        summary=s["summary"], noise_control=s["noise_control"], attack_set=aset, sweep=s["sweep"],
        epsilons=sp.fgsm_epsilons, clean_accuracy=s["clean"]["accuracy"], label_names=names,
        model=model_info, settings=sp.reported_settings(), published={**PUBLISHED, PSY: {}},
        method=evaluation.method_notes(slots=sp.slots, margin=MARGIN, cw_target=sp.cw_target),
        deviations=sp.deviations, listening=listening)
    _perceptual_results(results, s["perceptual"], s["runs"], sp)
    if multilabel:
        t_ml = time.perf_counter()
        results["multilabel"] = instrument_multilabel.multilabel_section(
            runner, sp, out, preset=preset, seed=seed, progress=progress)
        results["multilabel"]["seconds"] = time.perf_counter() - t_ml
    results.update(stages=runner.summary(), seconds=time.perf_counter() - t_start)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    report.write_report(out)
    return results
