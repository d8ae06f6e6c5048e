"""The measurements of study 4 (docs/studies.md §4) on a song collection: the recommender's
hubness, hub attacks, the white-noise control, attack summaries and listening examples.

Each works on the stored form of a collection (``collection``: the mapping of
:func:`jaxaudio.recommender.collection.collection_arrays`, songs packed with their ``lengths``,
``names``, ``sample_rate``) and of a recommender (:func:`collection_recommender`: Gaussians as
named arrays, k-occurrences), so a pipeline stage is one call:

* :func:`collection_recommender`: every song's Gaussian, the KL matrix and the hubness without
  and with Mutual Proximity.
* :func:`attack_record`: non-hub songs attacked towards a hub, with their k-occurrence
  afterwards in the attacked and in the other recommender.
* :func:`noise_control`: the k-occurrence after white noise at a given SNR instead.
* :func:`attack_summary`: conversion rate, k-occurrence before / after, SNR of the successes.
* :func:`listening_examples`: original, adversary and perturbation WAVs of the first
  successes of every attack.

And the JSON records of a study's results: :func:`collection_record`, :func:`hubness_record`,
:func:`noise_record`, :func:`headline`; :func:`save_k_occurrences` writes the k-occurrences.
"""

from __future__ import annotations

import pathlib
from typing import Mapping, Optional

import numpy as np

from jaxaudio import metrics
from jaxaudio.data.listening import write_listening_example
from jaxaudio.recommender import attack, features, hubness, scoring
from jaxaudio.recommender import collection as songs_lib

__all__ = ["collection_recommender", "attack_record", "noise_control", "median_range",
           "attack_summary", "listening_examples", "collection_record", "hubness_record",
           "noise_record", "save_k_occurrences", "headline"]


def collection_recommender(collection: Mapping, *, k: int = 5, hub_size: int = 25,
                           mode: str = "published") -> dict:
    """The recommender of a collection, as arrays.

    Parameters
    ----------
    collection : mapping
        :func:`~jaxaudio.recommender.collection.collection_arrays` of the songs (mono at
        :data:`jaxaudio.recommender.features.SAMPLE_RATE`).
    k, hub_size, mode
        Neighbours, hub threshold and distance mode
        (:func:`jaxaudio.recommender.hubness.collection_hubness`).

    Returns
    -------
    dict
        ``gaussian_<field>`` (:func:`jaxaudio.recommender.features.gaussian_arrays`, leading
        axis ``n``), ``kl`` ``(n, n)`` float64 (nats), and every entry of
        :func:`~jaxaudio.recommender.hubness.collection_hubness`.
    """
    g = features.gaussians_of_waves(songs_lib.waves_of(collection))
    kl = features.kl_matrix(g)
    return {**features.gaussian_arrays(g), "kl": kl,
            **hubness.collection_hubness(kl, k=k, hub_size=hub_size, mode=mode)}


def _plan(recommender, lengths, *, defended, mp, strategy, count, seed, k, hub_size, mode):
    """The plain and the defended recommender, the attacked songs (non-hubs of the attacked
    one), their targets (hubs of the plain one) and their k-occurrence before."""
    g = features.gaussian_from_arrays(recommender)
    recs = {False: attack.make_recommender(g, mode=mode, k=k),
            True: attack.make_recommender(g, mode=mode, mp=mp, k=k)}
    k_occ = recommender["k_occurrence_kl"]
    k_occ_attacked = recommender[f"k_occurrence_mp_{mp}" if defended else "k_occurrence_kl"]
    songs = hubness.choose_attacked_songs(k_occ_attacked, lengths, hub_size=hub_size,
                                          count=count, seed=seed)
    targets = attack.choose_targets(songs, np.asarray(recs[False].metric), k_occ,
                                    hubness.hubs(k_occ, hub_size), strategy, seed=seed)
    return recs, songs, targets, k_occ_attacked[songs]


def attack_record(collection: Mapping, recommender: Mapping, *, objective: str = "kl",
                  direction: str = "forward", strategy: str = "closest", defended: bool = False,
                  mp: str = "empirical", count: int, seed: int, k: int = 5, hub_size: int = 25,
                  mode: str = "published", progress: Optional[str] = None,
                  **attack_options) -> dict:
    """One hub attack on ``count`` non-hub songs of a collection.

    Parameters
    ----------
    collection, recommender : mappings
        :func:`~jaxaudio.recommender.collection.collection_arrays` of the songs and their
        :func:`collection_recommender` (built with the same ``k``, ``hub_size``, ``mode``).
    objective, direction, progress, **attack_options
        Of :func:`jaxaudio.recommender.attack.hub_attack` (``alpha``, ``learning_rate``,
        ``clip_eps``, ``max_iterations``, ``check_every``; a progress-bar description).
    strategy : str
        Target (:func:`~jaxaudio.recommender.attack.choose_targets`): a hub of the plain one.
    defended : bool
        Attack the recommender rescaled by Mutual Proximity ``mp`` instead of the plain one.
    count, seed : int
        Songs attacked (:func:`jaxaudio.recommender.hubness.choose_attacked_songs`, non-hubs
        of the attacked recommender); the seed of that choice and of random targets.

    Returns
    -------
    dict
        Per attacked song (``(batch,)``): ``songs``, ``targets``, ``success``, ``iterations``,
        ``snr_db`` (dB), ``k_occurrence_before`` / ``_after`` / ``approx_k_occurrence_after``
        (attacked recommender), ``k_occurrence_other_system`` (exact, the other one),
        ``adversarial`` ``(batch, num_samples)``; ``system`` (``"kl"`` / ``"mp_<mp>"``),
        ``objective`` (``"_reverse"`` appended for that direction), ``target_strategy``.
    """
    recs, songs, targets, before = _plan(
        recommender, collection["lengths"], defended=defended, mp=mp, strategy=strategy,
        count=count, seed=seed, k=k, hub_size=hub_size, mode=mode)
    waves = songs_lib.waves_of(collection)
    res = attack.hub_attack(np.stack([waves[i] for i in songs]), songs, targets, recs[defended],
                            mode=mode, mp=mp if defended else None, k=k, hub_size=hub_size,
                            objective=objective, direction=direction, progress=progress,
                            **attack_options)
    other_k = scoring.exact_k_occurrences(recs[not defended], res.adversarial, songs, mode=mode,
                                          mp=None if defended else mp, k=k)
    return {"songs": songs, "targets": targets, "success": res.success,
            "iterations": res.iterations, "snr_db": res.snr_db,
            "k_occurrence_before": before, "k_occurrence_after": res.k_occurrence,
            "approx_k_occurrence_after": res.approx_k_occurrence,
            "k_occurrence_other_system": other_k, "adversarial": res.adversarial,
            "system": f"mp_{mp}" if defended else "kl",
            "objective": objective + ("_reverse" if direction == "reverse" else ""),
            "target_strategy": strategy}


def noise_control(collection: Mapping, recommender: Mapping, songs, *, snr_db: float, seed: int,
                  k: int = 5, hub_size: int = 25, mode: str = "published") -> dict:
    """White noise instead of an attack: does it make hubs (of the undefended recommender)?

    Parameters
    ----------
    collection : mapping
        :func:`~jaxaudio.recommender.collection.collection_arrays` of the songs.
    recommender : mapping
        :func:`collection_recommender` of the collection (same ``k``, ``hub_size``, ``mode``).
    songs : int sequence [shape=(batch,)]
        The songs that get noise (of one length).
    snr_db : float
        Noise level (:func:`jaxaudio.metrics.white_noise_at` over the whole song).
    seed : int
        Seed of ``np.random.default_rng([seed, 40])``.

    Returns
    -------
    dict
        ``songs``; ``k_occurrence_before`` and ``k_occurrence_after`` ``(batch,)`` int (exact,
        :func:`jaxaudio.recommender.scoring.exact_k_occurrences` of the noisy songs);
        ``hubs_created`` (how many reach ``hub_size``); ``snr_db``.
    """
    songs, waves = np.asarray(songs), songs_lib.waves_of(collection)
    rec = attack.make_recommender(features.gaussian_from_arrays(recommender), mode=mode, k=k)
    noisy = metrics.white_noise_at(np.stack([waves[i] for i in songs]), snr_db,
                                   np.random.default_rng([int(seed), 40]), margin=0)
    after = scoring.exact_k_occurrences(rec, noisy, songs, mode=mode, mp=None, k=k)
    return {"songs": songs, "k_occurrence_before": recommender["k_occurrence_kl"][songs],
            "k_occurrence_after": after, "hubs_created": int(np.sum(after >= hub_size)),
            "snr_db": snr_db}


def median_range(a) -> Optional[dict]:
    """``{"median", "min", "max"}`` of an integer array (None when empty)."""
    a = np.asarray(a)
    return None if a.size == 0 else {"median": float(np.median(a)), "min": int(a.min()),
                                     "max": int(a.max())}


def attack_summary(r: Mapping, hub_size: int) -> dict:
    """The figures of one attack from its per-song records.

    Parameters
    ----------
    r : mapping
        ``songs``, ``success``, ``iterations``, ``snr_db`` (dB), ``k_occurrence_before`` /
        ``k_occurrence_after`` and ``k_occurrence_other_system`` (``(batch,)`` each), and the
        strings ``system``, ``objective``, ``target_strategy``.
    hub_size : int
        The hub threshold (for the hubs made in the other recommender).

    Returns
    -------
    dict
        ``conversion_rate`` (share of successes; None for no song), :func:`median_range` of
        k-occurrence before / after (and after, successes only), mean and std (ddof 1) of the
        successes' SNR, median iterations of the successes, ``hubs_in_other_system`` and one
        ``examples`` row per song. None wherever there is nothing to measure.
    """
    ok = np.asarray(r["success"], bool)
    snr = np.asarray(r["snr_db"], np.float64)[ok]
    before, after = np.asarray(r["k_occurrence_before"]), np.asarray(r["k_occurrence_after"])
    return {"system": r["system"], "objective": r["objective"],
            "target_strategy": r["target_strategy"], "attacked": int(ok.size),
            "conversion_rate": float(ok.mean()) if ok.size else None,
            "k_occurrence_before": median_range(before),
            "k_occurrence_after": median_range(after),
            "k_occurrence_after_successes": median_range(after[ok]),
            "snr_db_mean": float(snr.mean()) if snr.size else None,
            "snr_db_std": float(snr.std(ddof=1)) if snr.size > 1 else None,
            "iterations_median": float(np.median(np.asarray(r["iterations"])[ok]))
            if ok.any() else None,
            "hubs_in_other_system": int(np.sum(np.asarray(r["k_occurrence_other_system"])
                                               >= hub_size)),
            "examples": [{"song": int(s), "k_occurrence": f"{int(b)} -> {int(a)}",
                          "snr_db": float(q), "success": bool(o)} for s, b, a, q, o in zip(
                r["songs"], before, after, r["snr_db"], ok)]}


def listening_examples(folder, runs: Mapping[str, Mapping], collection: Mapping,
                       count: int) -> dict:
    """WAVs of the first ``count`` successes of every attack, under ``folder/<attack>/``.

    Parameters
    ----------
    folder : path
        Created as needed.
    runs : mapping attack name -> records
        ``songs``, ``success``, ``adversarial`` ``(batch, num_samples)``, ``snr_db`` and
        ``k_occurrence_before`` / ``k_occurrence_after`` per attacked song.
    collection : mapping
        :func:`~jaxaudio.recommender.collection.collection_arrays` of the original songs
        (``names``, ``sample_rate`` in Hz).
    count : int
        Examples per attack at most.

    Returns
    -------
    dict
        attack name -> one row per example: ``song``, ``name``, ``k_occurrence``
        (``"before -> after"``), ``snr_db``, ``files`` and ``perturbation_gain``
        (:func:`jaxaudio.data.listening.write_listening_example`).
    """
    waves, names = songs_lib.waves_of(collection), collection["names"]
    examples = {}
    for name, r in runs.items():
        rows = []
        for i in np.flatnonzero(np.asarray(r["success"]))[:count]:
            song = int(r["songs"][i])
            info = write_listening_example(pathlib.Path(folder) / name, f"song{song:04d}",
                                           waves[song], r["adversarial"][i],
                                           int(collection["sample_rate"]))
            rows.append({"song": song, "name": names[song],
                         "k_occurrence": f"{int(r['k_occurrence_before'][i])} -> "
                                         f"{int(r['k_occurrence_after'][i])}",
                         "snr_db": float(r["snr_db"][i]), "files": info["files"],
                         "perturbation_gain": info["perturbation_gain"]})
        examples[name] = rows
    return examples


def collection_record(collection: Mapping, source: Optional[str] = None) -> dict:
    """What a collection is (from :func:`jaxaudio.recommender.collection.collection_arrays`):
    ``source`` (a folder, else ``"synthetic"``), ``num_songs``, ``seconds_per_song`` (the
    median length, s) and the sorted ``genres`` (none for files)."""
    lengths = np.asarray(collection["lengths"])
    return {"source": source or "synthetic", "num_songs": int(lengths.size),
            "seconds_per_song": float(np.median(lengths)) / collection["sample_rate"],
            "genres": sorted(set(collection["genres"]) - {""})}


def hubness_record(recommender: Mapping) -> dict:
    """The hubness figures of :func:`collection_recommender` per recommender: ``kl``,
    ``mp_gaussian``, ``mp_empirical`` and ``kl_symmetric`` (the symmetrised distances)."""
    return {**{s: recommender[f"hubness_{s}"] for s in hubness.SYSTEMS},
            "kl_symmetric": recommender["symmetric_hubness"]}


def noise_record(noise: Mapping) -> dict:
    """:func:`noise_control` as JSON: ``snr_db``, ``hubs_created`` and the k-occurrences
    before / after as lists of ints."""
    return {"snr_db": noise["snr_db"], "hubs_created": noise["hubs_created"],
            **{key: [int(v) for v in noise[key]] for key in ("k_occurrence_before",
                                                              "k_occurrence_after")}}


def save_k_occurrences(path, recommender: Mapping) -> pathlib.Path:
    """Write ``k_occurrence_<system>`` of every :data:`jaxaudio.recommender.hubness.SYSTEMS`
    to the ``.npz`` file ``path`` (its folder is created)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"k_occurrence_{s}": np.asarray(recommender[f"k_occurrence_{s}"])
                      for s in hubness.SYSTEMS})
    return path


def headline(num_songs: int, hubness_kl: Mapping, conversion: Optional[float] = None,
             conversion_mp: Optional[float] = None) -> str:
    """One line: songs, hubs and skewness of the plain recommender, and (when given) the
    conversion rate of an attack without and with Mutual Proximity."""
    return (f"{num_songs} songs: {hubness_kl['num_hubs']} hubs, k-occurrence skewness "
            f"{hubness_kl['skewness']:.2f}"
            + (f"; attack conversion {conversion:.0%}" if conversion is not None else "")
            + (f", with Mutual Proximity {conversion_mp:.0%}" if conversion_mp is not None
               else ""))
