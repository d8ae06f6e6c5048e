"""A classifier under waveform attack on a test set: the attacked set, the runs, their checks.

What happens between "here is a trained classifier and a test split" and the figures of merit
(:func:`jaxaudio.metrics.attack_summary`), apart from the attacks themselves:

- :func:`predict`: class indices of a classifier on waveforms, in chunks;
- :func:`attack_excerpts`: one excerpt per test clip on the 16-bit grid, with clean predictions;
- :func:`run_on_set`: one attack run on that set as plain numpy arrays;
- :func:`wav_round_trip`: success re-measured on the adversarials written as 16-bit WAV files;
- :func:`sweep_on_set`: FGSM at several eps in one call;
- :func:`sweep_entries`, :func:`sweep_curves`: the eps sweep as per-eps entries and curves;
- :func:`listening_positions`, :func:`listening_examples`: which adversaries to listen to, and
  their WAVs (:mod:`jaxaudio.data.listening`).

The attacks themselves (:mod:`jaxaudio.attacks.gradient`) are jitted and touch no files or
datasets; this module runs them on a dataset and writes files. A *run* is a mapping of arrays
over the attacked clips: ``success``, ``iterations``, ``snr_db``, ``labels``,
``original_prediction``, ``adversarial_prediction``, ``target``, ``clip_mask`` (which clips of
the set it attacked), ``seconds`` and, where kept, ``adversarial_pcm`` (int16).
"""

from __future__ import annotations

import math
import pathlib
import tempfile
import time
from typing import Callable, Mapping, Optional, Sequence

import jax
import numpy as np

from jaxaudio.attacks.pieces import round_to_16bit
from jaxaudio.data.audio import load_audio, pcm16_samples, pcm16_to_float, save_wav
from jaxaudio.data.listening import write_listening_example
from jaxaudio.data.windowing import centre_excerpt
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.metrics import finite_stats

__all__ = ["predict", "attack_excerpts", "run_on_set", "wav_round_trip", "sweep_on_set",
           "sweep_entries", "sweep_curves", "listening_positions", "listening_examples"]


def predict(clf, waves: np.ndarray, *, chunk_size: int = 32) -> np.ndarray:
    """Class indices of ``clf`` on waveforms.

    Parameters
    ----------
    clf : Classifier
        Anything with ``logits(waves) -> (batch, classes)``.
    waves : np.ndarray [shape=(batch, n)]
        Waveforms in [-1, 1] at the classifier's rate.
    chunk_size : int
        Waveforms per call.

    Returns
    -------
    np.ndarray [shape=(batch,), dtype=int32]
    """
    pred = map_chunks(lambda w: np.asarray(clf.logits(w)).argmax(-1), waves,
                      chunk_size=chunk_size, pad_single=False)
    return np.asarray(pred, np.int32)


def attack_excerpts(test_set, clf, *, num_clips: Optional[int], clip_seconds: Optional[float],
                    seed: int) -> dict:
    """The attacked set: one centre excerpt per single-label test clip, on the 16-bit grid.

    Parameters
    ----------
    test_set : ClipDataset
        ``waves`` (list of 1-D float arrays), ``labels`` (class index, -1 = not single-label)
        and ``sample_rate`` (Hz; must be the classifier's).
    clf : Classifier
    num_clips : int or None
        Clips drawn without replacement with ``seed`` (None = all single-label clips).
    clip_seconds : float or None
        Excerpt length in seconds (None = the classifier's excerpt).
    seed : int

    Returns
    -------
    dict
        ``waves`` [shape=(num_clips, samples), float32], ``labels`` (int32), ``chosen`` (clip
        indices into ``test_set``), ``rate`` (Hz) and ``clean_prediction`` (int32).
    """
    rate = int(getattr(test_set, "sample_rate", clf.frontend.sample_rate))
    if rate != clf.frontend.sample_rate:
        raise ValueError(f"test data is at {rate} Hz but the classifier expects "
                         f"{clf.frontend.sample_rate} Hz")
    labels = np.asarray(test_set.labels)
    chosen = np.flatnonzero(labels >= 0)
    if chosen.size == 0:
        raise ValueError("the test split has no single-label clips to attack")
    if num_clips is not None and num_clips < chosen.size:
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, num_clips, replace=False))
    length = clf.excerpt_samples if clip_seconds is None else int(round(clip_seconds * rate))
    if length < clf.frontend.n_fft:
        raise ValueError(f"clip_seconds gives {length} samples, shorter than one analysis frame "
                         f"(n_fft = {clf.frontend.n_fft})")
    waves = np.stack([centre_excerpt(test_set.waves[i], length) for i in chosen])
    waves = np.asarray(round_to_16bit(np.clip(waves, -1.0, 1.0)), np.float32)
    return {"waves": waves, "labels": labels[chosen].astype(np.int32), "chosen": chosen,
            "rate": rate, "clean_prediction": predict(clf, waves)}


def _kept_clips(waves, labels, target):
    """The clips an attack towards ``target`` runs on (a fixed class leaves its own clips out),
    padded back to ``len(waves)`` with copies of the first kept clip; and the kept mask."""
    fixed = isinstance(target, (int, np.integer)) and not isinstance(target, bool)
    keep = labels != target if fixed else np.ones(len(waves), bool)
    x, y = waves[keep], labels[keep]
    if x.shape[0] == 0:
        raise ValueError(f"no clips left to attack (all are of the target class {target})")
    pad = len(waves) - x.shape[0]
    return (np.concatenate([x, np.repeat(x[:1], pad, 0)]),
            np.concatenate([y, np.repeat(y[:1], pad, 0)]), keep)


def run_on_set(attack: Callable, logits_fn, waves, labels, *, keep_adversarial: bool,
               **kwargs) -> dict:
    """One run of ``attack(logits_fn, x, y, quantize_16bit=True, **kwargs)`` on the set.

    Parameters
    ----------
    attack : callable
        A waveform attack returning an :class:`~jaxaudio.attacks.AttackResult`.
    logits_fn : callable
        ``logits_fn(waves) -> (batch, classes)``.
    waves : np.ndarray [shape=(batch, n)]
        The attacked set, on the 16-bit grid.
    labels : np.ndarray [shape=(batch,)]
        True class indices.
    keep_adversarial : bool
        Add ``adversarial_pcm`` (int16: the loop quantises onto the k/32768 grid, which int16
        stores exactly).
    **kwargs
        The attack's options; a fixed integer ``target`` leaves the clips of that class out
        (``clip_mask``).

    Returns
    -------
    dict
        A run (see the module docstring); ``seconds`` is the wall time of the attack call.

    Notes
    -----
    The batch is padded back to ``len(waves)`` with copies of the first kept clip, so that runs
    with and without a fixed target share one compiled function (examples are independent);
    the padding is cut off.
    """
    x, y, keep = _kept_clips(waves, labels, kwargs.get("target"))
    count = int(keep.sum())
    t0 = time.perf_counter()
    res = attack(logits_fn, x, y, quantize_16bit=True, **kwargs)
    res = jax.tree.map(lambda a: np.asarray(a)[:count], jax.device_get(res))
    out = {"clip_mask": keep, "labels": y[:count], "success": np.asarray(res.success),
           "iterations": np.asarray(res.iterations),
           "snr_db": np.asarray(res.snr_db, np.float64),
           "original_prediction": np.asarray(res.original_prediction),
           "adversarial_prediction": np.asarray(res.adversarial_prediction),
           "target": np.asarray(res.target), "seconds": np.asarray(time.perf_counter() - t0)}
    if keep_adversarial:
        out["adversarial_pcm"] = pcm16_samples(np.asarray(res.adversarial))
    return out


def wav_round_trip(run: Mapping, predict_fn: Callable, rate: int, folder) -> dict:
    """Success re-measured on the adversarials of ``run`` written as 16-bit WAV files.

    Parameters
    ----------
    run : mapping
        A run with ``adversarial_pcm`` [shape=(n, samples), int16], ``target`` (-1 =
        untargeted), ``labels`` and ``success``.
    predict_fn : callable
        ``predict_fn(waves) -> class indices``.
    rate : int
        Hz of the files.
    folder : path
        Where the temporary folder of WAV files is made (and removed).

    Returns
    -------
    dict
        ``wav_success_rate``, ``wav_accuracy_after``, ``wav_flipped_back`` (in-loop successes
        lost on saving), ``wav_files`` and ``max_abs_change_on_save``.
    """
    adv = pcm16_to_float(run["adversarial_pcm"])
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        back = []
        for i, a in enumerate(adv):
            path = save_wav(pathlib.Path(tmp) / f"{i:04d}.wav", a, rate, subtype="PCM_16")
            back.append(load_audio(path, sample_rate=rate)[0])
        back = np.stack(back).astype(np.float32)
    pred = predict_fn(back)
    target, labels = run["target"], run["labels"]
    success = np.where(target >= 0, pred == target, pred != labels)
    return {"wav_success_rate": float(success.mean()),
            "wav_accuracy_after": float((pred == labels).mean()),
            "wav_flipped_back": int(np.sum(run["success"] & ~success)),
            "wav_files": int(len(adv)),
            "max_abs_change_on_save": float(np.abs(back - adv).max())}


def sweep_on_set(sweep: Callable, logits_fn, waves, labels, epsilons: Sequence[float]) -> dict:
    """``sweep(logits_fn, waves, labels, epsilons=..., quantize_16bit=True)`` as numpy arrays.

    Parameters
    ----------
    sweep : callable
        E.g. :func:`jaxaudio.attacks.fgsm_sweep`.
    logits_fn, waves, labels
        As in :func:`run_on_set`.
    epsilons : sequence of float
        The L-inf budgets (waveform units).

    Returns
    -------
    dict
        ``epsilons``, ``success``, ``snr_db`` (dB), ``adversarial_prediction`` [shape=(len(eps),
        batch)] and ``seconds`` (of the whole sweep).
    """
    t0 = time.perf_counter()
    res = jax.device_get(sweep(logits_fn, waves, labels, epsilons=list(epsilons),
                               quantize_16bit=True))
    return {"epsilons": np.asarray(res.epsilons), "success": np.asarray(res.success),
            "snr_db": np.asarray(res.snr_db, np.float64),
            "adversarial_prediction": np.asarray(res.adversarial_prediction),
            "seconds": np.asarray(time.perf_counter() - t0)}


def sweep_entries(sweep: Mapping, labels, epsilons: Sequence[float]) -> dict:
    """One ``fgsm@<eps>`` entry per eps of an FGSM sweep, shaped like an attack summary.

    Parameters
    ----------
    sweep : mapping
        :func:`sweep_on_set`'s output: ``success``, ``snr_db``, ``adversarial_prediction``
        [shape=(len(eps), n)], ``epsilons`` and ``seconds`` (shared equally among the eps).
    labels : np.ndarray [shape=(n,)]
        True class indices.
    epsilons : sequence of float

    Returns
    -------
    dict
        ``{"fgsm@<eps:g>": {success_rate, accuracy_after, snr_db_mean/std/median (dB, over the
        successes), iterations_mean, n, targeted, seconds, settings}}``.
    """
    entries = {}
    for j, eps in enumerate(epsilons):
        s = sweep["success"][j]
        snr = finite_stats(sweep["snr_db"][j][s])
        entries[f"fgsm@{eps:g}"] = {
            "success_rate": float(s.mean()),
            "accuracy_after": float((sweep["adversarial_prediction"][j] == labels).mean()),
            "snr_db_mean": snr["mean"], "snr_db_std": snr["std"], "snr_db_median": snr["median"],
            "iterations_mean": 1.0 if s.any() else None, "n": int(len(labels)),
            "targeted": False, "seconds": float(sweep["seconds"]) / len(sweep["epsilons"]),
            "settings": {"eps": float(eps)}}
    return entries


def sweep_curves(entries: Mapping, epsilons: Sequence[float]) -> dict:
    """Success, accuracy and mean SNR per eps (lists in ``epsilons`` order) from
    :func:`sweep_entries`' entries."""
    pick = lambda key: [entries[f"fgsm@{e:g}"][key] for e in epsilons]  # noqa: E731
    return {"epsilons": [float(e) for e in epsilons], "success_rate": pick("success_rate"),
            "accuracy_after": pick("accuracy_after"), "snr_db_mean": pick("snr_db_mean")}


def listening_positions(run: Mapping, count: int) -> list[int]:
    """Positions in ``run`` of its listening examples: the first ``count`` successes that
    needed at least one step (an adversary found at step 0 is the clean clip)."""
    return [int(i) for i in np.flatnonzero(run["success"]) if run["iterations"][i] > 0][:count]


def listening_examples(folder, waves, run: Mapping, names: Sequence[str], rate: int,
                       count: int) -> list[dict]:
    """Listening WAVs of the adversaries at :func:`listening_positions`.

    Writes ``clipNNN_{original,adversary,perturbation}.wav`` into ``folder``
    (:func:`jaxaudio.data.listening.write_listening_example`), the perturbation amplified by the
    power of ten that brings its peak to at most 0.5.

    Parameters
    ----------
    folder : path
    waves : np.ndarray [shape=(clips, samples)]
        The attacked set (``run["clip_mask"]`` selects the run's clips).
    run : mapping
        A run with ``adversarial_pcm``.
    names : sequence of str
        Class names.
    rate : int
        Hz.
    count : int
        Examples at most.

    Returns
    -------
    list of dict
        Per example its clip index in the set (``clip``), ``true`` and ``adversarial`` class
        names, ``snr_db`` (None if not finite), ``perturbation_gain`` and its dB.
    """
    clips = np.flatnonzero(run["clip_mask"])
    adv = pcm16_to_float(run["adversarial_pcm"])
    examples = []
    for i in listening_positions(run, count):
        x = waves[clips[i]]
        peak = float(np.abs(adv[i] - x).max())
        gain = 1.0 if peak == 0 else float(10 ** math.floor(math.log10(0.5 / peak)))
        write_listening_example(folder, f"clip{int(clips[i]):03d}", x, adv[i], rate,
                                peak=gain * max(peak, 1e-12))
        snr = float(run["snr_db"][i])
        examples.append({"clip": int(clips[i]), "true": names[run["labels"][i]],
                         "adversarial": names[run["adversarial_prediction"][i]],
                         "snr_db": snr if math.isfinite(snr) else None,
                         "perturbation_gain": gain, "perturbation_gain_db": 20 * math.log10(gain)})
    return examples
