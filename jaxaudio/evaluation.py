"""A classifier under waveform attack: the attacked set, the runs, and what is reported of them.

Everything study 1 (:mod:`jaxaudio.studies.instrument_attacks`) does between "here is a trained
classifier and a test split" and "here is ``results.json``", apart from the attacks themselves:

- :func:`attack_excerpts`: one excerpt per test clip on the 16-bit grid, with clean predictions
  (:func:`predict`, chunked);
- :func:`run_on_set`: one attack run on that set as plain numpy arrays (the stage output);
- :func:`wav_round_trip`: success re-measured on the adversarials written as 16-bit WAV files;
- :func:`sweep_on_set`: FGSM at several eps in one call (the stage output);
- :func:`sweep_entries`, :func:`sweep_curves`: the FGSM eps sweep's ``results.json`` entries;
- :func:`headline`, :func:`attacked_clips`, :func:`method_notes`: pieces of ``results.json``;
- :func:`results_table`: all of ``results.json`` but the stage summary, in its key order;
- :func:`write_report_arrays`: ``arrays/*.npz`` every figure of the report is drawn from;
- :func:`listening_examples`: the listening WAVs (:mod:`jaxaudio.data.listening`).

Why a module of its own: :mod:`jaxaudio.attacks` is the attack algebra (jitted, no files, no
datasets) and :mod:`jaxaudio.metrics` holds pure figures of merit (:func:`~jaxaudio.metrics.
attack_summary`, :func:`~jaxaudio.metrics.finite_stats`); this module evaluates finished runs
against a dataset and writes files, so it sits on top of both, next to :mod:`jaxaudio.tasks`.
A *run* is a mapping of arrays over the attacked clips: ``success``, ``iterations``,
``snr_db``, ``labels``, ``original_prediction``, ``adversarial_prediction``, ``target``,
``clip_mask`` (which clips of the set it attacked), ``seconds`` and, for the first seed,
``adversarial_pcm`` (int16).
"""

from __future__ import annotations

import math
import pathlib
import tempfile
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from jaxaudio.metrics import finite_stats

__all__ = ["predict", "attack_excerpts", "run_on_set", "wav_round_trip", "sweep_on_set",
           "sweep_entries", "sweep_curves", "headline", "attacked_clips", "method_notes",
           "results_table", "write_report_arrays", "listening_examples", "HEADLINE_ORDER"]

#: Which attack the one-line headline reports: the first of these that was run.
HEADLINE_ORDER = ("pgd", "cw_random", "mscw", "cw", "fgsm")


def predict(clf, waves: np.ndarray, *, chunk_size: int = 32) -> np.ndarray:
    """Class indices (int32) of ``clf`` on ``waves`` [shape=(batch, n)], in chunks."""
    from jaxaudio.batching import map_chunks

    pred = map_chunks(lambda w: np.asarray(clf.logits(w)).argmax(-1), waves,
                      chunk_size=chunk_size, pad_single=False)
    return np.asarray(pred, np.int32)


def attack_excerpts(test_set, clf, *, num_clips: Optional[int], clip_seconds: Optional[float],
                    seed: int) -> dict:
    """The attacked set: one centre excerpt per single-label test clip, on the 16-bit grid.

    ``num_clips`` clips drawn with ``seed`` (None = all), cut to ``clip_seconds`` (None = the
    classifier's excerpt). Returns ``waves`` (float32), ``labels``, ``chosen`` (clip indices),
    ``rate`` and ``clean_prediction``.
    """
    from jaxaudio.attacks import round_to_16bit
    from jaxaudio.data.windowing import centre_excerpt

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


def run_on_set(attack: Callable, logits_fn, waves, labels, *, keep_adversarial: bool,
               **kwargs) -> dict:
    """One run of ``attack(logits_fn, x, y, quantize_16bit=True, **kwargs)`` on the set.

    With a fixed integer ``target`` the clips of that class are left out (``clip_mask``). The
    batch is padded back to ``len(waves)`` with copies of the first kept clip, so that runs
    with and without a fixed target share one compiled function (examples are independent);
    the padding is cut off. ``keep_adversarial`` adds ``adversarial_pcm`` (int16: the loop
    quantises onto the k/32768 grid, which int16 stores exactly).
    """
    import jax

    from jaxaudio.data import pcm16_samples

    target = kwargs.get("target")
    fixed = isinstance(target, (int, np.integer)) and not isinstance(target, bool)
    keep = labels != target if fixed else np.ones(len(waves), bool)
    x, y = waves[keep], labels[keep]
    if x.shape[0] == 0:
        raise ValueError(f"no clips left to attack (all are of the target class {target})")
    count = x.shape[0]
    x = np.concatenate([x, np.repeat(x[:1], len(waves) - count, 0)])
    y = np.concatenate([y, np.repeat(y[:1], len(waves) - count, 0)])
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
    """Write every adversarial of ``run`` as a 16-bit WAV (in a temporary folder inside
    ``folder``), read it back, classify it with ``predict_fn`` and count the successes again.

    Returns ``wav_success_rate``, ``wav_accuracy_after``, ``wav_flipped_back`` (in-loop
    successes lost on saving), ``wav_files`` and ``max_abs_change_on_save``.
    """
    from jaxaudio import data

    adv = data.pcm16_to_float(run["adversarial_pcm"])
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        back = []
        for i, a in enumerate(adv):
            path = data.save_wav(pathlib.Path(tmp) / f"{i:04d}.wav", a, rate, subtype="PCM_16")
            back.append(data.load_audio(path, sample_rate=rate)[0])
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
    """``sweep(logits_fn, waves, labels, epsilons=..., quantize_16bit=True)`` (e.g.
    :func:`jaxaudio.attacks.fgsm_sweep`) as numpy arrays [shape=(len(eps), n)] and seconds."""
    import jax

    t0 = time.perf_counter()
    res = jax.device_get(sweep(logits_fn, waves, labels, epsilons=list(epsilons),
                               quantize_16bit=True))
    return {"epsilons": np.asarray(res.epsilons), "success": np.asarray(res.success),
            "snr_db": np.asarray(res.snr_db, np.float64),
            "adversarial_prediction": np.asarray(res.adversarial_prediction),
            "seconds": np.asarray(time.perf_counter() - t0)}


def sweep_entries(sweep: Mapping, labels, epsilons: Sequence[float]) -> dict:
    """``fgsm@<eps>`` entries of ``results.json`` from an FGSM sweep at ``epsilons``.

    ``sweep``: ``success``, ``snr_db``, ``adversarial_prediction`` [shape=(len(eps), n)],
    ``epsilons`` and ``seconds`` (of the whole sweep, shared equally among the eps).
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
    """``results["fgsm_sweep"]``: success, accuracy and mean SNR per eps, from the entries."""
    pick = lambda key: [entries[f"fgsm@{e:g}"][key] for e in epsilons]  # noqa: E731
    return {"epsilons": [float(e) for e in epsilons], "success_rate": pick("success_rate"),
            "accuracy_after": pick("accuracy_after"), "snr_db_mean": pick("snr_db_mean")}


def headline(summary: Mapping, clean_attacked: float, n: int) -> str:
    """One line for the demo index: success and mean SNR of the first attack of
    :data:`HEADLINE_ORDER` in ``summary`` and white noise's accuracy at that SNR."""
    name = next((a for a in HEADLINE_ORDER if a in summary), None)
    if name is None:
        return ""
    e = summary[name]
    snr, noise = e["snr_db_mean"], e.get("noise_control_accuracy")
    return (f"{name}: success {e['success_rate']:.2f} on {n} excerpts (clean accuracy "
            f"{clean_attacked:.2f}), mean SNR " + ("–" if snr is None else f"{snr:.1f} dB")
            + "; white noise at that SNR leaves accuracy "
            + ("–" if noise is None else f"{noise:.2f}"))


def attacked_clips(attack_set: Mapping) -> dict:
    """``results["attacked_clips"]``: size, clip indices and length of the attacked set."""
    waves, rate = attack_set["waves"], int(attack_set["rate"])
    return {"n": int(len(attack_set["labels"])), "clip_indices": attack_set["chosen"].tolist(),
            "samples": int(waves.shape[1]), "seconds": waves.shape[1] / rate,
            "sample_rate": rate,
            "unit": "one excerpt per test clip (centre of a long clip, circular tiling of a "
                    "short one), on the 16-bit grid; accuracy_after is measured on these, "
                    "clean_accuracy_attacked is their clean accuracy"}


def method_notes(*, slots: int, margin: int, cw_target: str) -> dict:
    """``results["method"]``: how the attacks ran and how their figures are counted."""
    return {"quantize_16bit": True,
            "early_stopping": f"per example, slot refill ({slots} slots)",
            "snr_region": f"without the first and last {margin} samples",
            "success": "untargeted: prediction != true label; targeted: prediction == target; "
                       "measured on exactly the returned adversarial",
            "statistics": "success_rate / accuracy_after: mean (± std) over seeds; SNR and "
                          "iterations over the successful adversaries of all seeds",
            "cw_fixed_target": cw_target}


def results_table(head: Mapping, *, summary: Mapping, noise_control: Mapping,
                  attack_set: Mapping, sweep: Optional[Mapping], epsilons: Sequence[float],
                  clean_accuracy: float, label_names: Sequence[str], model: Mapping,
                  settings: Mapping, published: Mapping, method: Mapping,
                  deviations: Sequence[str], listening: Mapping) -> dict:
    """``results.json`` (but ``stages`` and ``seconds``): ``head`` (study, title, preset, ...)
    then the headline, model, clean accuracies, attacked set, ``method``, ``deviations``, one
    entry per attack in ``summary`` (:func:`jaxaudio.metrics.attack_summary` plus controls,
    with its ``settings`` and ``published`` figures) and per sweep eps, the noise controls, the
    sweep curves, the ``listening`` examples and ``published``."""
    attacks = {name: dict(e, settings=settings[name], published=published[name])
               for name, e in summary.items()}
    labels = attack_set["labels"]
    if sweep is not None:
        attacks.update(sweep_entries(sweep, labels, epsilons))
    clean_attacked = float((attack_set["clean_prediction"] == labels).mean())
    return {
        **head, "headline": headline(summary, clean_attacked, len(labels)),
        "model": dict(model), "label_names": list(label_names),
        "clean_accuracy": float(clean_accuracy),
        "clean_accuracy_note": "clip level on the whole test split (the classifier's "
                               "half-overlapping windows, mean logits)",
        "clean_accuracy_attacked": clean_attacked, "chance": 1.0 / len(label_names),
        "attacked_clips": attacked_clips(attack_set), "method": dict(method),
        "preset_deviations_from_paper": list(deviations),
        "attacks": attacks, "noise_control": dict(noise_control), "attacks_run": list(summary),
        "fgsm_sweep": None if sweep is None else sweep_curves(attacks, epsilons),
        "listening_examples": dict(listening), "published": published}


def write_report_arrays(folder, attack_set: Mapping, runs: Mapping[str, Sequence[Mapping]],
                        sweep: Optional[Mapping]) -> None:
    """``confusion.npz`` (clean and first-seed labels / predictions per attack), ``snr.npz``
    (SNR of every successful adversary of all seeds, per attack) and, with a sweep,
    ``fgsm_sweep.npz`` (success, accuracy and mean SNR per eps) into ``folder``."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    confusion = {"clean_labels": attack_set["labels"],
                 "clean_prediction": attack_set["clean_prediction"]}
    for name, rs in runs.items():
        confusion[f"{name}_labels"] = rs[0]["labels"]
        confusion[f"{name}_prediction"] = rs[0]["adversarial_prediction"]
    np.savez_compressed(folder / "confusion.npz", **confusion)
    np.savez_compressed(folder / "snr.npz", **{
        name: np.concatenate([r["snr_db"][r["success"]] for r in rs])
        for name, rs in runs.items()})
    if sweep is not None:
        labels = attack_set["labels"]
        snr = [finite_stats(sweep["snr_db"][j][sweep["success"][j]])["mean"]
               for j in range(len(sweep["epsilons"]))]
        np.savez_compressed(folder / "fgsm_sweep.npz", epsilons=sweep["epsilons"],
                            success_rate=sweep["success"].mean(1),
                            accuracy_after=(sweep["adversarial_prediction"] == labels).mean(1),
                            snr_db_mean=np.array([np.nan if s is None else s for s in snr]))


def listening_examples(folder, waves, run: Mapping, names: Sequence[str], rate: int,
                       count: int) -> list:
    """Listening WAVs of the first ``count`` successful clips of ``run`` that needed at least
    one step: ``clipNNN_{original,adversary,perturbation}.wav`` in ``folder``
    (:func:`jaxaudio.data.listening.write_listening_example`), the perturbation amplified by the
    power of ten that brings its peak to at most 0.5. Returns per clip its index in the test
    split, true and adversarial label names, SNR (dB) and the gain (also in dB)."""
    from jaxaudio.data import pcm16_to_float
    from jaxaudio.data.listening import write_listening_example

    clips = np.flatnonzero(run["clip_mask"])
    adv = pcm16_to_float(run["adversarial_pcm"])
    examples = []
    for i in [i for i in np.flatnonzero(run["success"]) if run["iterations"][i] > 0][:count]:
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
