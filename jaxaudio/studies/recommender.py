"""Study 4 (docs/studies.md §4): adversarial hubs in a music recommender, and Mutual Proximity.

A timbre-only recommender (20 MFCCs -> one full-covariance Gaussian per song -> KL divergence,
5 nearest neighbours) is built on a song collection; a small waveform perturbation is optimised
until an ordinary song becomes a *hub* (recommended next to ``hub_size`` or more songs). The
defence rescales the distances with Mutual Proximity; the same attacks, and attacks that know
about it (objective and decision through MP), are run against it.

Stages (``out/stages``): ``collection`` (the embedded synthetic songs, or ``--audio DIR``) ->
``recommender`` (Gaussians, distance matrices, hubness with and without MP) -> one
``attack_<name>`` stage per attack -> ``noise_control`` (white noise at 40 dB SNR). The run
writes ``results.json``, ``arrays/hubness.npz``, listening WAVs (``audio/``) and the report
(:mod:`jaxaudio.report.recommender`).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time
from typing import Optional

from jaxaudio.recommender import collection as songs_lib
from jaxaudio.recommender import evaluation
from jaxaudio.runtime.pipeline import Runner
from jaxaudio.studies import common

NAME = "recommender"
TITLE = "Study 4: adversarial hubs in a music recommender, and Mutual Proximity"

#: The published figures (TISMIR 2021 journal extension; SMC 2022 defence paper).
PUBLISHED = {
    "examples_k_occurrence": "1 -> 44 (23.8 dB SNR), 4 -> 202 (37.0 dB), 19 -> 64 (50.1 dB)",
    "snr_db_of_successes": "24-50 dB",
    "noise_control": "white noise at 40 dB SNR creates no hubs",
    "mutual_proximity": "attack success about 44 % without, under 6 % with Mutual Proximity; "
                        "the adversaries that still succeed have lower SNR",
    "collection": "15,750 songs, the middle 2 minutes of each",
}

#: The method (every preset): recommender, hub threshold and attack settings.
METHOD = {"k": 5, "hub_size": 25, "mode": "published", "mp": "empirical", "alpha": 25.0,
          "learning_rate": 1e-3, "clip_eps": 0.1, "max_iterations": 500, "check_every": 10,
          "noise_snr_db": 40.0}
#: The order of the KL term (results.json's ``method.kl_term``).
KL_TERM = "KL(G(x + delta) || G(hub)); kl_reverse: KL(G(hub) || G(x + delta))"

#: attack name -> (objective, target strategy, recommender attacked: None or "mp"); the KL
#: term is in the published order (:data:`KL_TERM`) except for ``kl_reverse_closest``.
ATTACKS = {
    "kl_closest": ("kl", "closest", None),
    "kl_reverse_closest": ("kl_reverse", "closest", None),
    "kl_biggest": ("kl", "biggest", None),
    "kl_random": ("kl", "random", None),
    "multiscale_closest": ("multiscale", "closest", None),
    "mp_kl_closest": ("kl", "closest", "mp"),
    "mp_aware_closest": ("mp", "closest", "mp"),
}


@dataclasses.dataclass(frozen=True)
class RecommenderPreset:
    """Sizes only: ``num_songs`` synthetic songs of ``song_seconds`` (also the middle kept of
    ``--audio`` files), ``num_attacked`` non-hub songs per attack, ``listening_examples``;
    ``max_iterations`` is the published 500 except in the smoke test."""

    num_songs: int
    song_seconds: float
    num_attacked: int
    listening_examples: int = 2
    max_iterations: int = METHOD["max_iterations"]
    deviations: tuple[str, ...] = ()


PRESETS = {
    "paper": RecommenderPreset(15750, 120.0, 100, deviations=(
        "the embedded collection is synthetic (the published one is FM4 Soundpark songs); "
        "100 attacked songs per attack",)),
    "demo": RecommenderPreset(120, 3.0, 6, deviations=(
        "120 synthetic songs of 3 s each and 6 attacked songs per attack (published: 15,750 "
        "songs, the middle 2 minutes of each) so the study runs in minutes on 2 CPU cores",)),
    "smoke": RecommenderPreset(40, 1.5, 2, listening_examples=1, max_iterations=20, deviations=(
        "smoke test: 40 songs of 1.5 s, 2 attacked songs, at most 20 iterations; the numbers "
        "are not meaningful",)),
}


def collection_stage(stage_dir, *, source, num_songs, song_seconds, seed, progress, version):
    """The songs: synthetic (``source`` None) or every audio file of the folder ``source``
    (``version``: of the synthesiser, so a change of it makes a new stage)."""
    del version
    return songs_lib.load_collection(source, num_songs=num_songs, seconds=song_seconds,
                                     seed=seed, progress=progress)


def recommender_stage(stage_dir, *, collection, k, hub_size, mode):
    """Gaussians of every song, the KL distances and hubness without / with Mutual Proximity."""
    return evaluation.collection_recommender(collection, k=k, hub_size=hub_size, mode=mode)


def attack_stage(stage_dir, *, collection, recommender, attack, num_attacked, seed, progress,
                 **method):
    """One attack on ``num_attacked`` non-hub songs (seeded choice among the songs of the most
    common length), with the adversaries' k-occurrence in both recommenders."""
    objective, strategy, system = ATTACKS[attack]
    return evaluation.attack_record(
        collection, recommender, objective=objective.removesuffix("_reverse"),
        direction="reverse" if objective == "kl_reverse" else "forward", strategy=strategy,
        defended=system == "mp", count=num_attacked, seed=seed,
        progress=f"attack {attack}" if progress else None,
        **{key: v for key, v in method.items() if key != "noise_snr_db"})


def noise_stage(stage_dir, *, collection, recommender, songs, snr_db, k, hub_size, mode, seed):
    """White noise at ``snr_db`` on the attacked songs: their exact k-occurrence afterwards."""
    return evaluation.noise_control(collection, recommender, songs, snr_db=snr_db, seed=seed,
                                    k=k, hub_size=hub_size, mode=mode)


def _options(preset, num_songs, song_seconds, attacks):
    """The preset with ``--num-songs`` / ``--song-seconds`` applied, and the attacks to run."""
    p = common.choose_preset(preset, PRESETS)  # --num-songs >= 8: 5-NN and hubs need them
    sizes = {"num_songs": common.check_count(num_songs, "num_songs", least=8),
             "song_seconds": common.check_positive(song_seconds, "song_seconds")}
    p = dataclasses.replace(p, **{key: v for key, v in sizes.items() if v is not None})
    selected = list(ATTACKS) if attacks is None else list(attacks)
    if not selected or any(a not in ATTACKS for a in selected):
        raise ValueError(f"--attacks must name some of {list(ATTACKS)}, got {attacks!r}")
    return p, selected


def _deviations(p, audio, num_songs):
    return list(p.deviations) if not audio else [
        f"--audio {audio}: {num_songs} songs, the middle {p.song_seconds:g} s of each, "
        f"{p.num_attacked} attacked songs per attack (published: 15,750 songs, the middle 2 "
        f"minutes of each)"]


def _measure(runner, out, p, *, preset, seed, audio, progress, selected) -> dict:
    """Run every stage; returns results.json's content (and writes ``arrays/hubness.npz`` and
    the listening WAVs)."""
    coll = runner.stage("collection", collection_stage, context={"progress": progress},
                        settings={"source": audio, "num_songs": p.num_songs,
                                  "song_seconds": p.song_seconds, "seed": seed, "version": 1})
    rec_settings = {key: METHOD[key] for key in ("k", "hub_size", "mode")}
    rec = runner.stage("recommender", recommender_stage, inputs={"collection": coll},
                       settings=rec_settings)
    both = {"collection": coll, "recommender": rec}
    runs = {name: runner.stage(f"attack_{name}", attack_stage, inputs=both,
                               context={"progress": progress}, label=f"attack {name}",
                               settings=dict(METHOD, attack=name, num_attacked=p.num_attacked,
                                             seed=seed, max_iterations=p.max_iterations))
            for name in selected}
    noise = runner.stage("noise_control", noise_stage, inputs=both, settings=dict(
        rec_settings, songs=[int(s) for s in runs[selected[0]]["songs"]],
        snr_db=METHOD["noise_snr_db"], seed=seed))
    evaluation.save_k_occurrences(out / "arrays" / "hubness.npz", rec)
    summary = {n: evaluation.attack_summary(r, METHOD["hub_size"]) for n, r in runs.items()}
    results = {
        "study": NAME, "title": TITLE, "preset": preset, "seed": seed,
        "collection": evaluation.collection_record(coll, audio),
        "method": dict(METHOD, max_iterations=p.max_iterations, kl_term=KL_TERM),
        "attacks": {n: {"objective": ATTACKS[n][0], "target": ATTACKS[n][1],
                        "system": "mp" if ATTACKS[n][2] else "kl"} for n in selected},
        "hubness": evaluation.hubness_record(rec), "summary": summary,
        "noise_control": evaluation.noise_record(noise), "published": PUBLISHED,
        "preset_deviations_from_paper": _deviations(p, audio, int(coll["lengths"].size)),
        "listening": evaluation.listening_examples(out / "audio", runs, coll,
                                                   p.listening_examples)}
    results["headline"] = evaluation.headline(
        results["collection"]["num_songs"], rec["hubness_kl"],
        *(summary.get(n, {}).get("conversion_rate") for n in ("kl_closest", "mp_kl_closest")))
    return results


def run(*, out, preset: str = "demo", seed: int = 0, audio: Optional[str] = None, model=None,
        progress: bool = True, num_songs: Optional[int] = None,
        song_seconds: Optional[float] = None, attacks=None) -> dict:
    """Run the study into ``out``; returns the results dict. ``audio``: a folder of audio files
    (default: the synthetic collection); ``model`` is unused (no foundation model)."""
    del model
    p, selected = _options(preset, num_songs, song_seconds, attacks)
    out, t0 = pathlib.Path(out), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    audio = None if audio is None else str(pathlib.Path(audio).resolve())
    # No ``depends`` (common.study_runner adds the data root): the stage keys stay as they were.
    runner = Runner(out / "stages", progress=progress)
    results = _measure(runner, out, p, preset=preset, seed=seed, audio=audio, progress=progress,
                       selected=selected)
    return common.finish(out, results, runner=runner, t_start=t0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's options (``experiments/recommender.py`` and ``jaxaudio recommend``)."""
    common.add_common_arguments(
        parser, preset_help="songs, seconds per song, attacked songs (paper = the published "
                            "collection size, docs/studies.md §4)",
        seed_help="collection, attacked songs and random targets (default 0)")
    add = parser.add_argument
    add("--audio", metavar="DIR", help="a folder of your audio files (any format soundfile "
        "reads; 22.05 kHz mono, the middle --song-seconds of each); default: synthetic songs")
    add("--num-songs", type=int, help="synthetic songs, at least 8 (default: the preset's)")
    add("--song-seconds", type=float, help="seconds per song (default: the preset's)")
    add("--attacks", nargs="+", choices=list(ATTACKS), metavar="ATTACK",
        help=f"run only these attacks, of {', '.join(ATTACKS)} (default: all)")


def run_from_args(args) -> int:
    results = run(out=args.out, preset=args.preset, seed=args.seed, audio=args.audio,
                  progress=not args.no_progress, num_songs=args.num_songs,
                  song_seconds=args.song_seconds, attacks=args.attacks)
    return common.print_outcome(results, args.out)
