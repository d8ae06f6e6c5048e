"""Study 3 (docs/studies.md §3; Praher et al., ISMIR 2021): auditing LIME with adversaries.

Stages (:class:`jaxaudio.runtime.pipeline.Runner`, ``out/stages``; a rerun recomputes those
whose settings or inputs changed): ``model``, ``detector``, ``songs``, ``adversaries-<domain>``
(stretch C&W), ``excerpts``, ``adversaries-<domain>-<direction>[-c<level>]``, ``lime-<set>``,
``attribution-<set>``, ``audit-<domain>[-c<level>]``, ``stability``, ``horses``, ``subset``,
``assemble``. The method is :mod:`jaxaudio.audit.protocol`, the analysis :mod:`jaxaudio.audit`;
the report (:mod:`jaxaudio.report.lime_veracity`) reads ``results.json`` and ``arrays/*.npz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time
from typing import Optional

import jax

from jaxaudio.audit import adversaries, detector, explanations, protocol, song_attacks
from jaxaudio.audit import results as audit_results
from jaxaudio.audit.protocol import ADVERSARY, DIRECTIONS, DOMAINS, SEGMENTS, TOP_K
from jaxaudio.audit.summaries import audit_groups
from jaxaudio.studies import common

NAME = "lime_veracity"
TITLE = "Study 3: auditing LIME explanations with adversaries"


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes of one preset (the method, :mod:`jaxaudio.audit.protocol`, never changes).
    ``songs``: test songs attacked (``None``: all); ``stretch_frames``: frames of the stretch
    attacked per song (``None``: the whole song); ``per_song``: adversarial excerpts drawn per
    song and direction; ``max_iterations``: the attack's iteration cap (the paper's 1000
    everywhere but in ``smoke``, whose untrained detector may never reach the sweep's top
    confidence); ``*_examples``: originals per direction for the controls; ``stability_*``:
    LIME sample counts and repeats of the top-3 check; ``train_*`` override the voice task
    preset's sizes (excerpts per epoch, epochs; ``None``: the task preset's, whose method is
    the published one)."""

    songs: Optional[int]
    stretch_frames: Optional[int]
    per_song: int
    num_samples: int
    max_iterations: int = 1000
    ig_steps: int = 32
    horse_examples: int = 2
    subset_examples: int = 2
    subset_size: int = 3
    subset_iterations: int = 200
    stability_sizes: tuple = (128, 256, 512, 1024)
    stability_repeats: int = 3
    train_examples_per_epoch: Optional[int] = None
    train_epochs: Optional[int] = None


PRESETS = {
    "smoke": StudyPreset(songs=1, stretch_frames=8, per_song=2, num_samples=128,
                         max_iterations=60, ig_steps=4,
                         horse_examples=1, subset_examples=1, subset_iterations=10,
                         stability_sizes=(32, 64, 128), stability_repeats=2),
    "demo": StudyPreset(songs=4, stretch_frames=16, per_song=2, num_samples=1024, ig_steps=16,
                        horse_examples=4, subset_examples=4),
    "paper": StudyPreset(songs=None, stretch_frames=None, per_song=10, num_samples=8192,
                         ig_steps=32, horse_examples=25, subset_examples=25,
                         subset_iterations=1000, stability_sizes=(512, 1024, 2048, 4096, 8192),
                         stability_repeats=5),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_common_arguments(
        parser, preset_help="smoke: seconds, demo: minutes, paper: the study's sizes",
        data_help="Jamendo-VAD root (audio/, labels/, filelists/); default: the embedded "
                  "synthetic songs",
        model_help="a saved singing voice detector (Classifier.save folder) to audit instead "
                   "of training one",
        seed_help="seed of the data split, training, excerpt draw and LIME sampling (default: 0)")
    parser.add_argument("--num-samples", type=int, default=None, help="LIME perturbation "
                        "samples per explanation (default: the preset's; the study used 8192)")
    parser.add_argument("--per-direction", type=int, default=None,
                        help="adversarial excerpts drawn per song and attack direction "
                        "(default: the preset's; the study drew 10)")


def run_from_args(args) -> int:
    results = run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
                  model=args.model, progress=not args.no_progress, num_samples=args.num_samples,
                  per_direction=args.per_direction)
    return common.print_outcome(results, args.out)


def _predict(clf):
    return detector.two_class_predict(clf, threshold=ADVERSARY["threshold"])


def _key(seed, stream) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), stream)


def _lime(stage_dir, examples, *, clf, progress, num_samples, seed, stream, first_position):
    """LIME of the examples for their targets; keys fold ``first_position + j`` in."""
    return explanations.lime_batch(_predict(clf), examples["explain_specs"],
                                   examples["explain_targets"], key=_key(seed, stream),
                                   num_samples=num_samples, first_position=first_position,
                                   progress=progress, **SEGMENTS)


def _attribution(stage_dir, examples, *, clf, ig_steps):
    return explanations.attribution_batch(_predict(clf), examples["explain_specs"],
                                          examples["explain_targets"], ig_steps=ig_steps,
                                          **SEGMENTS)


def _audit(stage_dir, excerpts, *, clf, top_k, explainers, **parts):
    """Flip matrices of one domain (explainers and norm), tables per direction."""
    return audit_groups(_predict(clf), excerpts["specs"], excerpts["direction"],
                        [parts[f"adv_{d}"] for d in DIRECTIONS],
                        [{**parts[f"lime_{d}"], **(parts.get(f"attr_{d}") or {})}
                         for d in DIRECTIONS], DIRECTIONS, explainers=tuple(explainers),
                        k=top_k, **SEGMENTS)


def _stability(stage_dir, *, clf, sizes, repeats, seed, **adv):
    """LIME's top-3 against the sample count, on the first audited adversary."""
    candidates = [(d, adv[f"{d}_{n}"]) for d in ("spectrogram", "waveform") for n in DIRECTIONS]
    return explanations.first_stability(_predict(clf), candidates, key=_key(seed, 400),
                                        sample_sizes=sizes, k=TOP_K, repeats=repeats)


def _horses(stage_dir, excerpts, *, clf, horse_examples, seed):
    return adversaries.horse_set(_predict(clf), excerpts["specs"], excerpts["direction"],
                                 per_class=horse_examples, key=_key(seed, 200), **SEGMENTS)


def _subset(stage_dir, excerpts, *, clf, subset_examples, seed, **settings):
    return adversaries.subset_set(clf.feature_logits_fn, _predict(clf), excerpts["specs"],
                                  excerpts["direction"], per_class=subset_examples,
                                  key=_key(seed, 300), **SEGMENTS, **settings)


def _assemble(stage_dir, *, clf, top_k, **inputs):
    """The audit's numbers (tables, curves, controls, fidelity) for results.json."""
    tables = {dom: inputs.pop(f"audit_{dom}") for dom in DOMAINS}
    return audit_results.assemble(tables, **inputs, domains=DOMAINS, directions=DIRECTIONS,
                                  k=top_k)


def _check(preset, num_samples, per_direction, model, data) -> StudyPreset:
    """The preset with the overrides applied; ``ValueError`` naming the flag on bad input."""
    sp = common.choose_preset(preset, PRESETS)
    num_samples = common.check_count(num_samples, "num_samples", least=2)
    per_direction = common.check_count(per_direction, "per_direction")
    if model is not None and not (pathlib.Path(model) / "classifier.json").is_file():
        raise ValueError(f"--model {model}: no saved classifier there (classifier.json missing)")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data {data}: not a folder")
    sp = sp if num_samples is None else dataclasses.replace(sp, num_samples=num_samples)
    return sp if per_direction is None else dataclasses.replace(sp, per_song=per_direction)


def _stager(runner, clf, s: dict):
    """``stage(name, fn, settings, inputs=None, **context)``: a stage of ``clf`` (its
    fingerprint a dependency), kept in ``s`` under its name with ``_`` for ``-``."""
    def stage(name, fn, settings, inputs=None, **context):
        s[name.replace("-", "_")] = runner.stage(
            name, fn, settings=settings, inputs=inputs, depends={"model": clf.fingerprint()},
            context={"clf": clf, **context})
        return s[name.replace("-", "_")]
    return stage


def _lime_stage(stage, tag, examples, stream, first, *, sp, seed, progress):
    return stage(f"lime-{tag}", _lime, {"num_samples": sp.num_samples, "seed": seed,
                                        "stream": stream, "first_position": first},
                 {"examples": examples}, progress=progress)


def _level_stages(stage, sp, li, level, inputs, *, seed, progress) -> None:
    """Strength level ``li``: per domain and direction the adversaries and LIME (level 0, the
    main study: also occlusion and IG), then the domain's audit."""
    tag = "" if li == 0 else f"-c{level:.2f}"
    for di, dom in enumerate(DOMAINS):
        p, first = {}, 0  # the domain's adversaries, LIME and attributions per direction
        for name in DIRECTIONS:
            a = p[f"adv_{name}"] = stage(
                f"adversaries-{dom}-{name}{tag}", song_attacks.adversaries_stage,
                {"domain": dom, "direction": name, "level": li, "level_value": level,
                 "threshold": ADVERSARY["threshold"]},
                {"excerpts": inputs["excerpts"], "songs": inputs["songs"],
                 "attack": inputs[f"adversaries_{dom}"]})
            p[f"lime_{name}"] = _lime_stage(stage, f"{dom}-{name}{tag}", a, 100 + di if li == 0
                                            else 500 + 10 * li + di, first, sp=sp, seed=seed,
                                            progress=progress)
            if li == 0:
                p[f"attr_{name}"] = stage(f"attribution-{dom}-{name}", _attribution,
                                          {"ig_steps": sp.ig_steps}, {"examples": a})
            first += len(a["audited"])  # LIME keys run on over the domain's audited list
        stage(f"audit-{dom}{tag}", _audit, {"top_k": TOP_K, "explainers": (
            ("lime", "occlusion", "integrated_gradients") if li == 0 else ("lime",))},
            {"excerpts": inputs["excerpts"], **p})


def _control_stages(stage, sp, s, *, seed, progress) -> None:
    """LIME's stability, the horse and subset controls and their explanations, the assembly."""
    stage("stability", _stability, {"sizes": sp.stability_sizes, "seed": seed,
                                    "repeats": sp.stability_repeats},
          {f"{d}_{n}": s[f"adversaries_{d}_{n}"] for d in DOMAINS for n in DIRECTIONS})
    stage("horses", _horses, {"horse_examples": sp.horse_examples, "seed": seed},
          {"excerpts": s["excerpts"]})
    stage("subset", _subset, {"subset_examples": sp.subset_examples,
                              "subset_size": sp.subset_size, **protocol.CW["subset"],
                              "max_iterations": sp.subset_iterations, "seed": seed},
          {"excerpts": s["excerpts"]})
    for tag, stream in (("horses", 201), ("subset", 301)):
        _lime_stage(stage, tag, s[tag], stream, 0, sp=sp, seed=seed, progress=progress)
        stage(f"attribution-{tag}", _attribution, {"ig_steps": sp.ig_steps},
              {"examples": s[tag]})
    stage("assemble", _assemble, {"top_k": TOP_K}, {k: s[k] for k in (
        "horses", "subset", "stability", "lime_horses", "attribution_horses",
        "lime_subset", "attribution_subset", "audit_waveform", "audit_spectrogram")})


def _stages(runner, clf, sp, *, preset, seed, data, progress) -> dict:
    """Every stage after the model, in a fixed order; returns the StageResults by name."""
    s: dict = {}
    stage = _stager(runner, clf, s)
    songs = stage("songs", song_attacks.songs_stage, {
        "preset": preset, "seed": seed, "songs": sp.songs, "stretch_frames": sp.stretch_frames,
        "threshold": ADVERSARY["threshold"]}, data=data, progress=progress)
    common_settings = {"threshold": ADVERSARY["threshold"], "levels": ADVERSARY["levels"],
                       "max_iterations": sp.max_iterations}
    for dom in DOMAINS:
        stage(f"adversaries-{dom}", song_attacks.stretch_stage,
              {"domain": dom, **common_settings, **ADVERSARY[dom]}, {"songs": songs},
              progress=progress)
    stage("excerpts", song_attacks.excerpts_stage, {"seed": seed, "per_song": sp.per_song,
                                                    "threshold": ADVERSARY["threshold"]},
          {"songs": songs, **{f"attack_{d}": s[f"adversaries_{d}"] for d in DOMAINS}})
    for li, level in enumerate(ADVERSARY["levels"]):
        _level_stages(stage, sp, li, level, s, seed=seed, progress=progress)
    _control_stages(stage, sp, s, seed=seed, progress=progress)
    return s


def _results(s, sp, clf, *, preset, seed, data, model_path, runner, seconds,
             errors, trained) -> dict:
    """``results.json`` (without ``listening``): the audit's table, the stretch attacks and
    the strength sweep."""
    dev = audit_results.preset_deviations(sp, protocol.PAPER, protocol.PAPER_NAMES)
    if trained:
        dev += detector.training_deviations(detector.training_settings(preset, sp),
                                            songs=data is None)
    res = audit_results.results_table(
        s, head={"study": NAME, "title": TITLE, "preset": preset, "seed": seed,
                 "data": "jamendo" if data else "synth-voice"},
        deviations=dev + ([] if data else ["synthetic songs, not Jamendo"]),
        model={"path": model_path, "width": int(clf.model_kwargs.get("width", 0)),
               **detector.detector_row(errors)},
        segmentation={**SEGMENTS, "baseline": "mean", "top_k": TOP_K},
        attack_settings={"method": protocol.METHOD, **ADVERSARY,
                         "max_iterations": sp.max_iterations, "songs": sp.songs,
                         "stretch_frames": sp.stretch_frames, "per_song": sp.per_song,
                         "subset": {**protocol.CW["subset"],
                                    "max_iterations": sp.subset_iterations}},
        published=protocol.PUBLISHED, num_samples=sp.num_samples,
        stage_summary=runner.summary(),
        timing={"total_seconds": seconds, "device": str(jax.devices()[0].device_kind)},
        domains=DOMAINS, directions=DIRECTIONS)
    res["stretch_attacks"] = audit_results.stretch_summaries(
        s, ADVERSARY["levels"], threshold=ADVERSARY["threshold"], domains=DOMAINS)
    res["strength_sweep"] = audit_results.sweep_results(
        s, res["table1_all"], res["table2_all"], ADVERSARY["levels"], domains=DOMAINS,
        directions=DIRECTIONS, k=TOP_K)
    return res


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True, num_samples: Optional[int] = None,
        per_direction: Optional[int] = None) -> dict:
    """Run the study into ``out`` and return ``results.json``'s contents; ``data``: a
    Jamendo-VAD root (``None``: synthetic songs), ``model``: a saved detector (``None``: train
    one), ``num_samples`` / ``per_direction`` override the preset."""
    sp, out = _check(preset, num_samples, per_direction, model, data), pathlib.Path(out)
    t_start = time.perf_counter()
    runner = common.study_runner(out, progress=progress, data=None if data is None
                                 else str(pathlib.Path(data).absolute()))
    clf, model_path, errors = detector.voice_detector(
        runner, out, preset=preset, seed=seed, data=data, model=model, progress=progress,
        training=detector.training_settings(preset, sp))
    s = _stages(runner, clf, sp, preset=preset, seed=seed, data=data, progress=progress)
    results = _results(s, sp, clf, preset=preset, seed=seed, data=data, runner=runner,
                       model_path=str(model_path.absolute()), errors=errors,
                       trained=model is None, seconds=time.perf_counter() - t_start)
    audit_results.write_report_arrays(out / "arrays", s, results, domains=DOMAINS,
                                      directions=DIRECTIONS, k=TOP_K, **SEGMENTS)
    results["listening"] = audit_results.listening_clips(out, s, clf, directions=DIRECTIONS)
    return common.finish(out, results, runner=runner)
