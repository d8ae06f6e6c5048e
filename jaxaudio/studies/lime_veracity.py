"""Study 3 (docs/studies.md §3; Praher et al., ISMIR 2021): auditing LIME with adversaries.

Stages (:class:`jaxaudio.pipeline.Runner`, ``out/stages``; a rerun recomputes exactly those
whose settings or inputs changed): ``model``, ``excerpts``, ``adversaries-<domain>-<direction>``
(C&W on the waveform or the front-end's output), ``lime-<set>`` and ``attribution-<set>``
(occlusion, integrated gradients), ``audit-<domain>``, ``stability``, the controls ``horses``
and ``subset``, ``assemble``. The analysis lives in :mod:`jaxaudio.audit`; the report
(:mod:`jaxaudio.report.lime_veracity`) is drawn from ``results.json`` and ``arrays/*.npz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time
from typing import Optional

import jax
import numpy as np

from jaxaudio.audit.detector import (detector_row, errors_stage, train_stage,  # noqa: F401
                                    training_deviations, training_settings, voice_split)

NAME = "lime_veracity"
TITLE = "Study 3: auditing LIME explanations with adversaries"
DIRECTIONS = ("nosing_to_sing", "sing_to_nosing")
DOMAINS = ("waveform", "spectrogram")
#: The published figures (docs/studies.md §3), fractions of adversaries whose label still flips.
PUBLISHED = {
    "table1": {"waveform": {"nosing_to_sing": 0.53, "sing_to_nosing": 0.21},
               "spectrogram": {"nosing_to_sing": 0.41, "sing_to_nosing": 0.32}},
    "table2": {"waveform": {"nosing_to_sing": {"lime": 0.86, "norm": 0.99},
                            "sing_to_nosing": {"lime": 0.49, "norm": 0.74}},
               "spectrogram": {"nosing_to_sing": {"lime": 0.91, "norm": 0.98},
                               "sing_to_nosing": {"lime": 0.44, "norm": 0.55}}},
}
#: The paper's sizes (``None``: every test song / the whole song).
PAPER = {"songs": None, "stretch_frames": None, "per_song": 10, "num_samples": 8192,
         "max_iterations": 1000}
#: The adversaries, the same in every preset (docs/studies.md §3): C&W with signed-gradient
#: Adam on a stretch of each song (:mod:`jaxaudio.audit.stretch`), every frame's decision
#: flipped, stopped at the decision threshold 0.51; ``levels``: the strength sweep, the first
#: the main study. Waveform settings as published (``clip_eps`` in [-1, 1] units); spectrogram
#: settings in log-mel units (nepers; measured, docs/studies.md §3).
ADVERSARY = {"threshold": 0.51, "levels": (0.51, 0.6, 0.75, 0.9),
             "waveform": {"clip_eps": 0.01, "alpha": 2.0, "learning_rate": 3e-4},
             "spectrogram": {"clip_eps": 1.0, "alpha": 2000.0, "learning_rate": 1e-2}}
#: The subset control's C&W (per excerpt, signed-gradient Adam, lowest-energy success kept).
CW = {"subset": {"confidence": 0.5, "clip_eps": 6.0, "alpha": 300.0, "learning_rate": 0.05}}


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes of one preset (the method, :data:`ADVERSARY`, never changes). ``songs``: test
    songs attacked (``None``: all); ``stretch_frames``: frames of the stretch attacked per song
    (``None``: the whole song); ``per_song``: adversarial excerpts drawn per song and
    direction; ``max_iterations``: the attack's iteration cap (the paper's 1000 everywhere but
    in ``smoke``, whose untrained detector may never reach the sweep's top confidence);
    ``*_examples``: originals per direction for the controls; ``stability_*``: LIME
    sample counts and repeats of the top-3 check; ``train_*`` override the voice task preset's
    sizes (excerpts per epoch, epochs; ``None``: the task preset's, whose method is the
    published one)."""

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

TOP_K, SEGMENTS = 3, {"n_temporal": 5, "n_frequency": 4}  # LIME's components, top-k audited
_COMPILED: dict = {}  # id(classifier) -> (classifier, jitted front-end, predict_fn)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo",
                        help="sizes (smoke: seconds, demo: minutes, paper: the study's sizes)")
    parser.add_argument("--data", default=None, help="Jamendo-VAD root (audio/, labels/, "
                        "filelists/); default: the embedded synthetic songs")
    parser.add_argument("--model", default=None, help="a saved singing voice detector "
                        "(Classifier.save folder) to audit instead of training one")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split, training, "
                        "excerpt draw and LIME sampling (default: 0)")
    parser.add_argument("--num-samples", type=int, default=None, help="LIME perturbation "
                        "samples per explanation (default: the preset's; the study used 8192)")
    parser.add_argument("--per-direction", type=int, default=None,
                        help="adversarial excerpts drawn per song and attack direction "
                        "(default: the preset's; the study drew 10)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_from_args(args) -> int:
    run(out=args.out, preset=args.preset, seed=args.seed, data=args.data, model=args.model,
        progress=not args.no_progress, num_samples=args.num_samples,
        per_direction=args.per_direction)
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0


def _compiled(clf):
    """The jitted front-end and the two-class predict_fn of ``clf`` (compiled once per model)."""
    from jaxaudio import explain as ex

    if id(clf) not in _COMPILED:
        _COMPILED[id(clf)] = (clf, jax.jit(clf.features),
                              ex.binary_to_two_class(clf.feature_logits_fn, from_logits=True,
                                                     threshold=ADVERSARY["threshold"]))
    return _COMPILED[id(clf)][1:]


def _features(clf, waves) -> np.ndarray:
    from jaxaudio.batching import map_chunks

    return (map_chunks(_compiled(clf)[0], waves, chunk_size=16) if len(waves)
            else np.zeros((0, clf.frontend.n_mels, clf.excerpt_frames), np.float32))


def _key(seed, stream) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), stream)


def _songs(stage_dir, *, clf, data, progress, preset, seed, songs, stretch_frames, threshold):
    """Frame accuracy on the test split; the stretch of each attacked song, its clean
    decisions (threshold ``threshold``) and true labels (:mod:`jaxaudio.audit.stretch`)."""
    from jaxaudio import tasks
    from jaxaudio.audit import excerpts, stretch

    test = voice_split(data, "test", preset, seed, progress=progress)
    hop, step = clf.frontend.hop_length, tasks.preset("voice", preset).eval_frame_step
    table = excerpts.frame_table(clf, test.waves, lambda i: test.frame_labels(i, hop_length=hop),
                                 frame_step=step, progress=progress)
    out = {k: [] for k in ("segments", "masks", "p", "labels")}
    chosen = list(range(len(test.waves)))[:songs]
    starts, lengths = [], []
    for i in chosen:
        rows = table[table[:, 0] == i]
        n = 1 + len(test.waves[i]) // hop
        if stretch_frames is None or stretch_frames >= n:
            start, length = 0, n
        else:  # the most balanced window of evaluated frames (>= 2, so it can hold a
            # change of decision), the stretch centred in it, then every frame of it
            window = max(2, -(-stretch_frames // step))
            s0, _ = stretch.balanced_stretch(rows[:, 3] > threshold, window)
            start = int(rows[s0, 1]) + (window * step) // 2 - stretch_frames // 2
            start, length = int(np.clip(start, 0, n - stretch_frames)), stretch_frames
        seg, mask = stretch.stretch_segment(test.waves[i], start, length,
                                            excerpt_frames=clf.excerpt_frames, hop_length=hop,
                                            excerpt_samples=clf.excerpt_samples)
        waves = np.asarray(stretch.windows(seg, length, hop, clf.excerpt_samples))
        logits = clf.logits(waves) if len(waves) <= 64 else np.concatenate(
            [clf.logits(waves[j:j + 64]) for j in range(0, len(waves), 64)])
        out["p"].append(1.0 / (1.0 + np.exp(-np.asarray(logits)[:, 0])))
        out["labels"].append(test.frame_labels(i, hop_length=hop)[start:start + length])
        out["segments"].append(seg)
        out["masks"].append(mask)
        starts.append(start)
        lengths.append(length)
    offsets = {k: np.cumsum([0] + [len(v) for v in out[k]]) for k in ("segments", "p")}
    return {**{k: np.concatenate(v) for k, v in out.items()},
            "segment_offsets": offsets["segments"], "frame_offsets": offsets["p"],
            "song": np.asarray(chosen, np.int64), "start": np.asarray(starts, np.int64),
            "frames": np.asarray(lengths, np.int64),
            "accuracy": float((((table[:, 3] > 0.5) == table[:, 2])).mean()),
            "num_frames": len(table), "frame_step": step,
            "sing_fraction": float(table[:, 2].mean())}


def _stretch_specs(clf, songs, i):
    """Clean excerpt spectrograms ``(T, M, E)`` of stretch ``i``."""
    from jaxaudio.audit import stretch

    o, f = songs["segment_offsets"], songs["frame_offsets"]
    waves = np.asarray(stretch.windows(songs["segments"][o[i]:o[i + 1]], int(f[i + 1] - f[i]),
                                       clf.frontend.hop_length, clf.excerpt_samples))
    return _features(clf, waves)


def _stretch_adversaries(stage_dir, songs, *, clf, progress, domain, threshold, levels,
                         max_iterations, **settings):
    """The stretch attack of every song (:func:`jaxaudio.audit.stretch.stretch_attack`):
    per level the perturbation (flat over the songs), iterations, success, frame
    probabilities and (waveform) the SNR over the stretch's song samples."""
    from tqdm.auto import tqdm

    from jaxaudio.audit import stretch

    wave = domain == "waveform"
    o, f = songs["segment_offsets"], songs["frame_offsets"]
    res = []
    for i in tqdm(range(len(songs["song"])), disable=not progress, leave=False,
                  desc=f"stretch C&W {domain}"):
        targets = 1 - (songs["p"][f[i]:f[i + 1]] > threshold).astype(np.int64)
        seg, mask = songs["segments"][o[i]:o[i + 1]], songs["masks"][o[i]:o[i + 1]]
        base = seg if wave else _stretch_specs(clf, songs, i)
        r = stretch.stretch_attack(clf.logits_fn if wave else clf.feature_logits_fn, base,
                                   targets, domain=domain, levels=levels, threshold=threshold,
                                   max_iterations=max_iterations, mask=mask if wave else None,
                                   hop_length=clf.frontend.hop_length,
                                   excerpt_size=clf.excerpt_samples, **settings)
        if wave:
            clean = float(np.sum((seg * mask) ** 2))
            r["snr_db"] = 10 * np.log10(clean / np.maximum((r["delta"] ** 2).sum(axis=1), 1e-30))
        res.append(r)
    out = {"delta": np.concatenate([r["delta"] for r in res], axis=-1),
           "delta_offsets": np.cumsum([0] + [r["delta"].shape[-1] for r in res]),
           "iterations": np.stack([r["iterations"] for r in res]),
           "success": np.stack([r["success"] for r in res]),
           "p": np.concatenate([r["p"] for r in res], axis=1),
           "steps": np.asarray([r["steps"] for r in res], np.int64)}
    if wave:
        out["snr_db"] = np.stack([r["snr_db"] for r in res])
    return out


def _excerpts(stage_dir, songs, *, clf, seed, per_song, threshold, **attacks):
    """The adversarial excerpts: ``per_song`` frames per song and direction, drawn with a
    fixed seed, frames that flipped (at the main level) in every domain first."""
    from jaxaudio.audit import stretch

    f = songs["frame_offsets"]
    decisions, preferred = [], []
    for i in range(len(songs["song"])):
        clean = (songs["p"][f[i]:f[i + 1]] > threshold).astype(np.int64)
        ok = np.ones(len(clean), bool)
        for a in attacks.values():
            ok &= stretch.flipped(a["p"][0][f[i]:f[i + 1]], 1 - clean, threshold, threshold)
        decisions.append(clean)
        preferred.append(ok)
    d = stretch.draw_frames(decisions, preferred, per_song=per_song,
                            rng=np.random.default_rng([seed, 2021]))
    if len(d["song"]) == 0:
        raise ValueError("no frame of the attacked stretches to draw from (check --model / "
                         "--data)")
    pos = f[d["song"]] + d["frame"]
    o = songs["segment_offsets"]
    waves = np.stack([songs["segments"][o[s] + t * clf.frontend.hop_length:][
        :clf.excerpt_samples] for s, t in zip(d["song"], d["frame"])])
    true = songs["labels"][pos].astype(np.int64)
    return {**d, "waves": waves, "specs": _features(clf, waves), "true_label": true,
            "probability": songs["p"][pos], "correct": true == d["direction"],
            "test_song": songs["song"][d["song"]],
            "song_frame": songs["start"][d["song"]] + d["frame"],
            **{k: songs[k] for k in ("accuracy", "num_frames", "frame_step", "sing_fraction")}}


def _adversaries(stage_dir, excerpts, songs, attack, *, clf, domain, direction, level,
                 level_value, threshold):
    """One (domain, direction, level) of drawn adversarial excerpts and the audited ones."""
    from jaxaudio.audit import stretch

    return stretch.excerpt_flip_set(
        excerpts, songs, attack, level=level, source=DIRECTIONS.index(direction), domain=domain,
        predict_fn=_compiled(clf)[1], to_features=(lambda x: _features(clf, x)),
        hop_length=clf.frontend.hop_length, excerpt_samples=clf.excerpt_samples,
        threshold=threshold, level_value=level_value)


def _lime(stage_dir, examples, *, clf, progress, num_samples, seed, stream, first_position):
    """LIME of the examples for their targets; keys fold ``first_position + j`` in."""
    from jaxaudio.audit import explanations

    return explanations.lime_batch(_compiled(clf)[1], examples["explain_specs"],
                                   examples["explain_targets"], key=_key(seed, stream),
                                   num_samples=num_samples, first_position=first_position,
                                   progress=progress, **SEGMENTS)


def _attribution(stage_dir, examples, *, clf, ig_steps):
    from jaxaudio.audit import explanations

    return explanations.attribution_batch(_compiled(clf)[1], examples["explain_specs"],
                                          examples["explain_targets"], ig_steps=ig_steps,
                                          **SEGMENTS)


def _audit(stage_dir, excerpts, *, clf, top_k, explainers, **parts):
    """Flip matrices of one domain (explainers and norm), tables per direction."""
    from jaxaudio import audit

    return audit.audit_groups(_compiled(clf)[1], excerpts["specs"], excerpts["direction"],
                              [parts[f"adv_{d}"] for d in DIRECTIONS],
                              [{**parts[f"lime_{d}"], **(parts.get(f"attr_{d}") or {})}
                               for d in DIRECTIONS], DIRECTIONS, explainers=tuple(explainers),
                              k=top_k, **SEGMENTS)


def _stability(stage_dir, *, clf, sizes, repeats, seed, **adv):
    """LIME's top-3 against the sample count, on the first audited adversary."""
    from jaxaudio.audit import explanations

    candidates = [(d, adv[f"{d}_{n}"]) for d in ("spectrogram", "waveform") for n in DIRECTIONS]
    return explanations.first_stability(_compiled(clf)[1], candidates, key=_key(seed, 400),
                                        sample_sizes=sizes, k=TOP_K, repeats=repeats)


def _horses(stage_dir, excerpts, *, clf, horse_examples, seed):
    from jaxaudio.audit import adversaries

    return adversaries.horse_set(_compiled(clf)[1], excerpts["specs"], excerpts["direction"],
                                 per_class=horse_examples, key=_key(seed, 200), **SEGMENTS)


def _subset(stage_dir, excerpts, *, clf, subset_examples, seed, **settings):
    from jaxaudio.audit import adversaries

    return adversaries.subset_set(clf.feature_logits_fn, _compiled(clf)[1], excerpts["specs"],
                                  excerpts["direction"], per_class=subset_examples,
                                  key=_key(seed, 300), **SEGMENTS, **settings)


def _assemble(stage_dir, *, clf, top_k, **inputs):
    """The audit's numbers (tables, curves, controls, fidelity) for results.json."""
    from jaxaudio.audit import results

    tables = {dom: inputs.pop(f"audit_{dom}") for dom in DOMAINS}
    return results.assemble(tables, **inputs, domains=DOMAINS, directions=DIRECTIONS, k=top_k)


def _check(preset, num_samples, per_direction, model, data) -> StudyPreset:
    """The preset with the overrides applied; ``ValueError`` naming the flag on bad input."""
    if preset not in PRESETS:
        raise ValueError(f"--preset: unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
    for flag, value, low in (("--num-samples", num_samples, 2),
                             ("--per-direction", per_direction, 1)):
        if value is not None and (int(value) != value or value < low):
            raise ValueError(f"{flag}: {flag[2:].replace('-', '_')} must be an integer >= {low}, "
                             f"got {value!r}")
    if model is not None and not (pathlib.Path(model) / "classifier.json").is_file():
        raise ValueError(f"--model {model}: no saved classifier there (classifier.json missing)")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data {data}: not a folder")
    sp = PRESETS[preset]
    sp = sp if num_samples is None else dataclasses.replace(sp, num_samples=int(num_samples))
    if per_direction is None:
        return sp
    return dataclasses.replace(sp, per_song=int(per_direction))


def _stages(runner, clf, sp, *, preset, seed, data, progress) -> dict:
    """Every stage after the model, in a fixed order; returns the StageResults by name."""
    s, dep = {}, {"model": clf.fingerprint()}

    def stage(name, fn, settings, inputs=None, **context):
        s[name.replace("-", "_")] = runner.stage(name, fn, settings=settings, inputs=inputs,
                                                 depends=dep, context={"clf": clf, **context})
        return s[name.replace("-", "_")]

    def explain(tag, examples, stream, first_position):  # LIME, then occlusion + IG
        return (stage(f"lime-{tag}", _lime, {"num_samples": sp.num_samples, "seed": seed,
                                             "stream": stream, "first_position": first_position},
                      {"examples": examples}, progress=progress),
                stage(f"attribution-{tag}", _attribution, {"ig_steps": sp.ig_steps},
                      {"examples": examples}))

    songs = stage("songs", _songs, {"preset": preset, "seed": seed, "songs": sp.songs,
                                    "stretch_frames": sp.stretch_frames,
                                    "threshold": ADVERSARY["threshold"]}, data=data,
                  progress=progress)
    common = {"threshold": ADVERSARY["threshold"], "levels": ADVERSARY["levels"],
              "max_iterations": sp.max_iterations}
    attacks = {dom: stage(f"adversaries-{dom}", _stretch_adversaries,
                          {"domain": dom, **common, **ADVERSARY[dom]}, {"songs": songs},
                          progress=progress) for dom in DOMAINS}
    exc = stage("excerpts", _excerpts, {"seed": seed, "per_song": sp.per_song,
                                        "threshold": ADVERSARY["threshold"]},
                {"songs": songs, **{f"attack_{d}": attacks[d] for d in DOMAINS}})
    for li, level in enumerate(ADVERSARY["levels"]):
        tag = "" if li == 0 else f"-c{level:.2f}"  # level 0: the main study
        for di, dom in enumerate(DOMAINS):
            p, first = {}, 0  # the domain's adversaries, LIME and attributions per direction
            for name in DIRECTIONS:
                a = p[f"adv_{name}"] = stage(f"adversaries-{dom}-{name}{tag}", _adversaries, {
                    "domain": dom, "direction": name, "level": li, "level_value": level,
                    "threshold": ADVERSARY["threshold"]},
                    {"excerpts": exc, "songs": songs, "attack": attacks[dom]})
                if li == 0:
                    p[f"lime_{name}"], p[f"attr_{name}"] = explain(f"{dom}-{name}", a, 100 + di,
                                                                   first)
                else:
                    p[f"lime_{name}"] = stage(f"lime-{dom}-{name}{tag}", _lime, {
                        "num_samples": sp.num_samples, "seed": seed,
                        "stream": 500 + 10 * li + di, "first_position": first},
                        {"examples": a}, progress=progress)
                first += len(a["audited"])  # LIME keys run on over the domain's audited list
            stage(f"audit-{dom}{tag}", _audit, {"top_k": TOP_K, "explainers": (
                ("lime", "occlusion", "integrated_gradients") if li == 0 else ("lime",))},
                {"excerpts": exc, **p})
    stage("stability", _stability, {"sizes": sp.stability_sizes, "seed": seed,
                                    "repeats": sp.stability_repeats},
          {f"{d}_{n}": s[f"adversaries_{d}_{n}"] for d in DOMAINS for n in DIRECTIONS})
    stage("horses", _horses, {"horse_examples": sp.horse_examples, "seed": seed}, {"excerpts": exc})
    stage("subset", _subset, {"subset_examples": sp.subset_examples, "subset_size": sp.subset_size,
                              **CW["subset"], "max_iterations": sp.subset_iterations,
                              "seed": seed}, {"excerpts": exc})
    explain("horses", s["horses"], 201, 0)
    explain("subset", s["subset"], 301, 0)
    stage("assemble", _assemble, {"top_k": TOP_K}, {k: s[k] for k in (
        "horses", "subset", "stability", "lime_horses", "attribution_horses",
        "lime_subset", "attribution_subset", "audit_waveform", "audit_spectrogram")})
    return s


def _sizes(sp) -> list:
    """The preset's sizes that differ from the paper's."""
    names = {"songs": "all test songs", "stretch_frames": "the whole song"}
    return [f"{k} {getattr(sp, k)} (paper: {names.get(k, v) if v is None else v})"
            for k, v in PAPER.items() if getattr(sp, k) != v]


def _results(s, sp, clf, *, preset, seed, data, model_path, runner, seconds,
             detector, trained) -> dict:
    from jaxaudio.audit import results, stretch

    songs = s["songs"]
    levels = ADVERSARY["levels"]
    dev = _sizes(sp)
    if trained:
        dev += training_deviations(training_settings(preset, sp), songs=data is None)
    res = results.results_table(
        s, head={"study": NAME, "title": TITLE, "preset": preset, "seed": seed,
                 "data": "jamendo" if data else "synth-voice"},
        deviations=dev + ([] if data else ["synthetic songs, not Jamendo"]),
        model={"path": model_path, "width": int(clf.model_kwargs.get("width", 0)),
               **detector_row(detector)},
        segmentation={**SEGMENTS, "baseline": "mean", "top_k": TOP_K},
        attack_settings={"method": "stretch C&W (signed-gradient Adam, binary cross-entropy "
                                   "over every frame of the stretch; stops when every decision "
                                   "has flipped)", **ADVERSARY,
                         "max_iterations": sp.max_iterations,
                         "songs": sp.songs, "stretch_frames": sp.stretch_frames,
                         "per_song": sp.per_song,
                         "subset": {**CW["subset"], "max_iterations": sp.subset_iterations}},
        published=PUBLISHED, num_samples=sp.num_samples, stage_summary=runner.summary(),
        timing={"total_seconds": seconds, "device": str(jax.devices()[0].device_kind)},
        domains=DOMAINS, directions=DIRECTIONS)
    res["stretch_attacks"] = {dom: stretch.attack_summary(
        s[f"adversaries_{dom}"], songs["p"], songs["frame_offsets"], levels,
        threshold=ADVERSARY["threshold"]) for dom in DOMAINS}
    tables = [res["table1_all"]] + [
        {dom: {n: s[_sweep_key(dom, lv)][n]["table1"] for n in DIRECTIONS} for dom in DOMAINS}
        for lv in levels[1:]]
    res["strength_sweep"] = results.strength_sweep(levels, tables, domains=DOMAINS,
                                                   directions=DIRECTIONS, k=TOP_K)
    res["strength_sweep"]["lime_mean_components"] = {
        dom: {n: [res["table2_all"][dom][n].get("lime_mean_components")] + [
            s[_sweep_key(dom, lv)][n]["table2"].get("lime_mean_components")
            for lv in levels[1:]] for n in DIRECTIONS} for dom in DOMAINS}
    return res


def _sweep_key(dom, level) -> str:
    return f"audit-{dom}-c{level:.2f}".replace("-", "_")


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True, num_samples: Optional[int] = None,
        per_direction: Optional[int] = None) -> dict:
    """Run the study into ``out`` and return ``results.json``'s contents; ``data``: a
    Jamendo-VAD root (``None``: synthetic songs), ``model``: a saved detector (``None``: train
    one), ``num_samples`` / ``per_direction`` override the preset."""
    from jaxaudio import report, tasks
    from jaxaudio.audit import results as audit_results
    from jaxaudio.data import SYNTHETIC_DATA
    from jaxaudio.models import load_classifier
    from jaxaudio.pipeline import Runner, atomic_write_text

    sp, out = _check(preset, num_samples, per_direction, model, data), pathlib.Path(out)
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out / "stages", progress=progress,
                    depends={"data": SYNTHETIC_DATA if data is None
                             else str(pathlib.Path(data).absolute())})
    trained = model is None
    if model is None:
        model = runner.stage("model", train_stage, settings={
            "preset": preset, "seed": seed, "training": training_settings(preset, sp)},
            context={"train_dir": out / "train", "progress": progress,
                     "data": data}).path / "classifier"
    clf = load_classifier(model)
    if clf.task != "binary":
        raise ValueError(f"--model: the audit needs a binary singing voice detector, got task "
                         f"{clf.task!r}")
    detector = runner.stage("detector", errors_stage, settings={
        "preset": preset, "seed": seed, "frame_step": tasks.preset("voice", preset).eval_frame_step,
        "threshold": tasks.VOICE_THRESHOLD, "median_seconds": tasks.VOICE_MEDIAN_SECONDS,
        "linear_baseline": True}, depends={"model": clf.fingerprint()},
        context={"clf": clf, "data": data})
    s = _stages(runner, clf, sp, preset=preset, seed=seed, data=data, progress=progress)
    results = _results(s, sp, clf, preset=preset, seed=seed, data=data, runner=runner,
                       model_path=str(pathlib.Path(model).absolute()), detector=detector,
                       trained=trained, seconds=time.perf_counter() - t_start)
    audit_results.write_report_arrays(out / "arrays", s, results, domains=DOMAINS,
                                      directions=DIRECTIONS, k=TOP_K, **SEGMENTS)
    np.savez(out / "arrays" / "strength_sweep.npz", **audit_results.sweep_arrays(
        results["strength_sweep"], domains=DOMAINS, directions=DIRECTIONS))
    results["listening"] = audit_results.listening_clips(out, s, clf, directions=DIRECTIONS)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, allow_nan=False))
    report.write_report(out)
    return results
