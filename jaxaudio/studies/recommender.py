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
import json
import pathlib
import time
from typing import Optional

import jax
import numpy as np

from jaxaudio import metrics, report, tasks
from jaxaudio.pipeline import Runner, atomic_write_text
from jaxaudio.recommender import attack as hub_attacks
from jaxaudio.recommender import collection as songs_lib
from jaxaudio.recommender import features, hubness

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

#: attack name -> (objective, target strategy, recommender attacked: None or "mp"); the KL
#: term is the published KL(G(x + delta) || G(hub)) except for ``kl_reverse_closest``
#: (:mod:`jaxaudio.recommender.attack`).
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


def _pack(waves):
    lengths = np.array([w.shape[0] for w in waves], np.int64)
    return np.concatenate(waves).astype(np.float32), lengths


def _unpack(audio, lengths):
    ends = np.cumsum(lengths)
    return [audio[e - n:e] for e, n in zip(ends, lengths)]


def collection_stage(stage_dir, *, source, num_songs, song_seconds, seed, progress, version):
    """The songs: synthetic (``source`` None) or every audio file of the folder ``source``
    (``version``: of the synthesiser, so a change of it makes a new stage)."""
    del version
    if source is None:
        c = songs_lib.synth_collection(num_songs=num_songs, seconds=song_seconds, seed=seed,
                                       progress=progress)
    else:
        c = songs_lib.load_folder(source, seconds=song_seconds)
    audio, lengths = _pack(c.waves)
    return {"audio": audio, "lengths": lengths, "names": list(c.names),
            "genres": list(c.genres), "sample_rate": c.sample_rate}


def recommender_stage(stage_dir, *, collection, k, hub_size, mode):
    """Gaussians of every song, the KL distances and hubness without / with Mutual Proximity."""
    waves = _unpack(collection["audio"], collection["lengths"])
    fn = jax.jit(features.gaussian_of_wave)
    gs = [fn(w) for w in waves]
    g = features.stack_gaussians(gs)
    kl = features.kl_matrix(g)
    out = {f"gaussian_{f}": np.asarray(getattr(g, f)) for f in features.Gaussian._fields}
    out["kl"] = kl
    d = hubness.distance_matrix(kl, mode=mode)
    for name, m in (("kl", d), ("mp_gaussian", hubness.mutual_proximity(d, method="gaussian")),
                    ("mp_empirical", hubness.mutual_proximity(d, method="empirical"))):
        s = hubness.hubness_summary(m, k=k, hub_size=hub_size)
        out[f"k_occurrence_{name}"] = s["k_occurrence"]
        out[f"hubness_{name}"] = {key: s[key] for key in ("num_hubs", "skewness",
                                                           "num_anti_hubs", "max_k_occurrence")}
    out["symmetric_hubness"] = {key: v for key, v in hubness.hubness_summary(
        hubness.distance_matrix(kl, mode="symmetric"), k=k, hub_size=hub_size).items()
        if key not in ("k_occurrence", "hubs")}
    return out


def _gaussians(rec_stage):
    return features.Gaussian(*(np.asarray(rec_stage[f"gaussian_{f}"])
                               for f in features.Gaussian._fields))


def attack_stage(stage_dir, *, collection, recommender, attack, num_attacked, seed, progress,
                 **method):
    """One attack on ``num_attacked`` non-hub songs (seeded choice among the songs of the most
    common length), with the adversaries' k-occurrence in both recommenders."""
    objective, strategy, system = ATTACKS[attack]
    direction = "reverse" if objective == "kl_reverse" else "forward"
    objective = objective.removesuffix("_reverse")
    mp = method["mp"] if system == "mp" else None
    k, hub_size, mode = method["k"], method["hub_size"], method["mode"]
    waves = _unpack(collection["audio"], collection["lengths"])
    g = _gaussians(recommender)
    recs = {None: hub_attacks.make_recommender(g, mode=mode, k=k),
            "mp": hub_attacks.make_recommender(g, mode=mode, mp=method["mp"], k=k)}
    rec = recs[system]
    k_occ = recommender["k_occurrence_kl"]
    k_occ_attacked = recommender["k_occurrence_kl" if mp is None else f"k_occurrence_mp_{mp}"]
    lengths = collection["lengths"]
    common = np.bincount(lengths).argmax()
    candidates = np.flatnonzero((k_occ_attacked < hub_size) & (lengths == common))
    rng = np.random.default_rng([int(seed), 99])
    songs = np.sort(rng.choice(candidates, size=min(num_attacked, candidates.size),
                               replace=False))
    # The attacker targets a hub of the undefended recommender (MP may leave none).
    targets = hub_attacks.choose_targets(songs, np.asarray(recs[None].metric), k_occ,
                                         hubness.hubs(k_occ, hub_size), strategy, seed=seed)
    x = np.stack([waves[i] for i in songs])
    res = hub_attacks.hub_attack(
        x, songs, targets, rec, mode=mode, mp=mp, k=k, hub_size=hub_size, objective=objective,
        direction=direction, alpha=method["alpha"], learning_rate=method["learning_rate"],
        clip_eps=method["clip_eps"], max_iterations=method["max_iterations"],
        check_every=method["check_every"], progress=f"attack {attack}" if progress else None)
    other = recs["mp" if system is None else None]
    other_mp = method["mp"] if system is None else None
    other_k = np.array([int(hub_attacks._counts(other, a, s, mode=mode, mp=other_mp, k=k)[1])
                        for a, s in zip(res.adversarial, songs)])
    return {"songs": songs, "targets": targets, "success": res.success,
            "iterations": res.iterations, "snr_db": res.snr_db,
            "k_occurrence_before": k_occ_attacked[songs], "k_occurrence_after": res.k_occurrence,
            "approx_k_occurrence_after": res.approx_k_occurrence,
            "k_occurrence_other_system": other_k, "adversarial": res.adversarial,
            "system": "kl" if system is None else f"mp_{mp}",
            "objective": objective + ("_reverse" if direction == "reverse" else ""),
            "target_strategy": strategy}


def noise_stage(stage_dir, *, collection, recommender, songs, snr_db, k, hub_size, mode, seed):
    """White noise at ``snr_db`` on the attacked songs: their exact k-occurrence afterwards."""
    waves = _unpack(collection["audio"], collection["lengths"])
    g = _gaussians(recommender)
    rec = hub_attacks.make_recommender(g, mode=mode, k=k)
    x = np.stack([waves[i] for i in songs])
    noisy = metrics.white_noise_at(x, snr_db, np.random.default_rng([int(seed), 40]), margin=0)
    after = np.array([int(hub_attacks._counts(rec, a, s, mode=mode, mp=None, k=k)[1])
                      for a, s in zip(noisy, songs)])
    return {"songs": np.asarray(songs), "k_occurrence_before":
            recommender["k_occurrence_kl"][np.asarray(songs)], "k_occurrence_after": after,
            "hubs_created": int(np.sum(after >= hub_size)), "snr_db": snr_db}


def _summary(r, hub_size) -> dict:
    ok = np.asarray(r["success"], bool)
    snr = np.asarray(r["snr_db"], np.float64)[ok]
    before, after = np.asarray(r["k_occurrence_before"]), np.asarray(r["k_occurrence_after"])

    def med_range(a):
        return None if a.size == 0 else {"median": float(np.median(a)), "min": int(a.min()),
                                         "max": int(a.max())}

    return {"system": r["system"], "objective": r["objective"],
            "target_strategy": r["target_strategy"], "attacked": int(ok.size),
            "conversion_rate": float(ok.mean()) if ok.size else None,
            "k_occurrence_before": med_range(before), "k_occurrence_after": med_range(after),
            "k_occurrence_after_successes": med_range(after[ok]),
            "snr_db_mean": float(snr.mean()) if snr.size else None,
            "snr_db_std": float(snr.std(ddof=1)) if snr.size > 1 else None,
            "iterations_median": float(np.median(np.asarray(r["iterations"])[ok]))
            if ok.any() else None,
            "hubs_in_other_system": int(np.sum(np.asarray(r["k_occurrence_other_system"])
                                               >= hub_size)),
            "examples": [{"song": int(s), "k_occurrence": f"{int(b)} -> {int(a)}",
                          "snr_db": float(q), "success": bool(o)} for s, b, a, q, o in zip(
                r["songs"], before, after, r["snr_db"], ok)]}


def _listening(out: pathlib.Path, runs, collection, count) -> dict:
    from jaxaudio.data.listening import write_listening_example

    waves = _unpack(collection["audio"], collection["lengths"])
    examples = {}
    for name, r in runs.items():
        rows = []
        for i in np.flatnonzero(np.asarray(r["success"]))[:count]:
            song = int(r["songs"][i])
            info = write_listening_example(out / "audio" / name, f"song{song:04d}", waves[song],
                                           r["adversarial"][i], int(collection["sample_rate"]))
            rows.append({"song": song, "name": collection["names"][song],
                         "k_occurrence": f"{int(r['k_occurrence_before'][i])} -> "
                                         f"{int(r['k_occurrence_after'][i])}",
                         "snr_db": float(r["snr_db"][i]), "files": info["files"],
                         "perturbation_gain": info["perturbation_gain"]})
        examples[name] = rows
    return examples


def run(*, out, preset: str = "demo", seed: int = 0, audio: Optional[str] = None, model=None,
        progress: bool = True, num_songs: Optional[int] = None,
        song_seconds: Optional[float] = None, attacks=None) -> dict:
    """Run the study into ``out``; returns the results dict. ``audio``: a folder of audio files
    (default: the synthetic collection); ``model`` is unused (no foundation model)."""
    del model
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
    p = PRESETS[preset]
    for name, v in (("num_songs", num_songs), ("song_seconds", song_seconds)):
        if v is not None:
            if not v > 0 or (name == "num_songs" and int(v) != v):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive "
                                 f"{'integer' if name == 'num_songs' else 'number'}, got {v!r}")
            if name == "num_songs" and v < 8:  # the collection's own floor (5-NN and hubs)
                raise ValueError(f"--num-songs must be at least 8, got {v!r}")
            p = dataclasses.replace(p, **{name: type(getattr(p, name))(v)})
    selected = list(ATTACKS) if attacks is None else list(attacks)
    if not selected or any(a not in ATTACKS for a in selected):
        raise ValueError(f"--attacks must name some of {list(ATTACKS)}, got {attacks!r}")
    out, t0 = pathlib.Path(out), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if audio is not None:
        audio = str(pathlib.Path(audio).resolve())
    runner = Runner(out / "stages", progress=progress)
    coll = runner.stage("collection", collection_stage, context={"progress": progress},
                        settings={"source": audio, "num_songs": p.num_songs,
                                  "song_seconds": p.song_seconds, "seed": seed,
                                  "version": 1})
    rec_settings = {key: METHOD[key] for key in ("k", "hub_size", "mode")}
    rec = runner.stage("recommender", recommender_stage, inputs={"collection": coll},
                       settings=rec_settings)
    runs = {}
    for name in selected:
        runs[name] = runner.stage(f"attack_{name}", attack_stage,
                                  inputs={"collection": coll, "recommender": rec},
                                  context={"progress": progress},
                                  settings=dict(METHOD, attack=name, num_attacked=p.num_attacked,
                                                seed=seed, max_iterations=p.max_iterations),
                                  label=f"attack {name}")
    first = runs[selected[0]]
    noise = runner.stage("noise_control", noise_stage, inputs={"collection": coll,
                                                                "recommender": rec},
                         settings=dict(rec_settings, songs=[int(s) for s in first["songs"]],
                                       snr_db=METHOD["noise_snr_db"], seed=seed))
    hub_size = METHOD["hub_size"]
    summary = {name: _summary(r, hub_size) for name, r in runs.items()}
    arrays = out / "arrays"
    arrays.mkdir(exist_ok=True)
    np.savez(arrays / "hubness.npz", **{f"k_occurrence_{s}": np.asarray(rec[f"k_occurrence_{s}"])
                                        for s in ("kl", "mp_gaussian", "mp_empirical")})
    hub_kl = rec["hubness_kl"]
    results = {
        "study": NAME, "title": TITLE, "preset": preset, "seed": seed,
        "collection": {"source": audio or "synthetic", "num_songs": int(coll["lengths"].size),
                       "seconds_per_song": float(np.median(coll["lengths"]))
                       / coll["sample_rate"], "genres": sorted(set(coll["genres"]) - {""})},
        "method": dict(METHOD, max_iterations=p.max_iterations, kl_term="KL(G(x + delta) || "
                       "G(hub)); kl_reverse: KL(G(hub) || G(x + delta))"),
        "attacks": {n: {"objective": ATTACKS[n][0], "target": ATTACKS[n][1],
                        "system": "mp" if ATTACKS[n][2] else "kl"} for n in selected},
        "hubness": {"kl": hub_kl, "mp_gaussian": rec["hubness_mp_gaussian"],
                    "mp_empirical": rec["hubness_mp_empirical"],
                    "kl_symmetric": rec["symmetric_hubness"]},
        "summary": summary,
        "noise_control": {"snr_db": noise["snr_db"], "hubs_created": noise["hubs_created"],
                          "k_occurrence_before": [int(v) for v in noise["k_occurrence_before"]],
                          "k_occurrence_after": [int(v) for v in noise["k_occurrence_after"]]},
        "published": PUBLISHED, "preset_deviations_from_paper": list(p.deviations) if not audio
        else [f"--audio {audio}: {int(coll['lengths'].size)} songs, the middle "
              f"{p.song_seconds:g} s of each, {p.num_attacked} attacked songs per attack "
              f"(published: 15,750 songs, the middle 2 minutes of each)"],
        "listening": _listening(out, runs, coll, p.listening_examples),
    }
    conv = summary.get("kl_closest", {}).get("conversion_rate")
    conv_mp = summary.get("mp_kl_closest", {}).get("conversion_rate")
    results["headline"] = (
        f"{results['collection']['num_songs']} songs: {hub_kl['num_hubs']} hubs, k-occurrence "
        f"skewness {hub_kl['skewness']:.2f}" + (f"; attack conversion {conv:.0%}" if conv
                                                is not None else "")
        + (f", with Mutual Proximity {conv_mp:.0%}" if conv_mp is not None else ""))
    results.update(stages=runner.summary(), seconds=time.perf_counter() - t0)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    report.write_report(out)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's options (``experiments/recommender.py`` and ``jaxaudio recommend``)."""
    add = parser.add_argument
    add("--preset", choices=tasks.PRESETS, default="demo",
        help="sizes only: songs, seconds per song, attacked songs (default: demo; paper = the "
             "published collection size, docs/studies.md §4)")
    add("--audio", metavar="DIR", help="a folder of your audio files (any format soundfile "
        "reads; resampled to 22.05 kHz mono, the middle --song-seconds of each); default: the "
        "embedded synthetic collection")
    add("--out", required=True, help="output folder (results, figures, audio)")
    add("--seed", type=int, default=0, help="collection, attacked songs and random targets")
    add("--num-songs", type=int, help="synthetic songs (default: the preset's)")
    add("--song-seconds", type=float, help="seconds per song (default: the preset's)")
    add("--attacks", nargs="+", choices=list(ATTACKS), metavar="ATTACK",
        help=f"run only these attacks, of {', '.join(ATTACKS)} (default: all)")
    add("--no-progress", action="store_true", help="no progress bars")


def run_from_args(args) -> int:
    results = run(out=args.out, preset=args.preset, seed=args.seed, audio=args.audio,
                  progress=not args.no_progress, num_songs=args.num_songs,
                  song_seconds=args.song_seconds, attacks=args.attacks)
    print(results["headline"])
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0
