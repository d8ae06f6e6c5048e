"""Study 1's ``results.json``: what is reported of the attack runs, and how it is worded.

:mod:`jaxaudio.studies.instrument_attacks` runs the stages; the runs are evaluated by the
library (:mod:`jaxaudio.attacks.evaluation`, :func:`jaxaudio.metrics.attack_summary`,
:mod:`jaxaudio.dsp.perceptual_scoring`). This module turns them into the study's results:

- :func:`headline`, :func:`attacked_clips`, :func:`method_notes`, :func:`perceptual_note`:
  pieces of ``results.json``;
- :func:`results_table`: all of ``results.json`` but the stage summary, in its key order;
- :func:`add_listening_scores`: the perceptual scores under each listening example;
- :func:`write_report_arrays`: ``arrays/*.npz`` every figure of the report is drawn from.
"""

from __future__ import annotations

import pathlib
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxaudio.attacks.evaluation import listening_positions, sweep_curves, sweep_entries
from jaxaudio.metrics import finite_stats

__all__ = ["HEADLINE_ORDER", "headline", "attacked_clips", "method_notes", "perceptual_note",
           "results_table", "add_listening_scores", "write_report_arrays"]

#: Which attack the one-line headline reports: the first of these that was run.
HEADLINE_ORDER = ("pgd", "cw_random", "mscw", "cw", "fgsm")


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


def perceptual_note(clips: Optional[int]) -> str:
    """``results["method"]["perceptual"]``: how ViSQOL and the share above threshold are
    counted (``clips``: ViSQOL's subset, the first this many attacked clips; None = all)."""
    return ("ViSQOL v3 audio mode (visqol-python; original and adversarial resampled to 48 kHz "
            "with soxr): MOS-LQO 1-5, mean over the successful adversaries of seed 0 among "
            + ("all attacked clips" if clips is None else f"the first {clips} attacked clips")
            + " (none for excerpts shorter than 1 s, which ViSQOL refuses). Share above "
            "threshold: the share of the perturbation's PSD energy above the clean "
            "clip's masking threshold (MPEG-1 psychoacoustic model 1, 2048/512 frames), mean "
            "over the successful adversaries of seed 0.")


def add_listening_scores(listening: Mapping[str, list], scores: Mapping[str, Mapping],
                         runs: Mapping[str, Sequence[Mapping]], count: int) -> None:
    """Add ``visqol_mos`` (None where not scored) and ``share_above_threshold`` of each
    attack's seed-0 ``scores`` (:func:`jaxaudio.dsp.perceptual_scoring.score_adversaries`) to
    its listening examples, in place; ``count``: listening examples per attack."""
    for name, examples in listening.items():
        for ex, i in zip(examples, listening_positions(runs[name][0], count)):
            mos = float(scores[name]["visqol_mos"][i])
            ex.update(visqol_mos=None if np.isnan(mos) else mos,
                      share_above_threshold=float(scores[name]["share_above_threshold"][i]))
