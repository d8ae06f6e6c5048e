"""Attack the user's own audio files with a saved classifier: ``jaxaudio attack --audio``.

Each file is read (any rate and channel count; mixed to mono, resampled to the model's rate,
put on the 16-bit grid) and attacked WHOLE, with one perturbation for the file: the attack
sees the classifier's logits of the whole waveform (the average-pool CNN takes the maximum over
time, so any length of at least one analysis frame works; ``jaxaudio predict`` instead averages
excerpts of the training length, so the two can disagree on a file). Files shorter than one
analysis frame (``n_fft``), or longer than ``max_seconds`` (the gradient of a long file needs
memory in proportion), are refused with a message; cut long recordings into pieces first. The attack's settings are
study 1's published ones (``--set ATTACK.KEY=VALUE`` changes one), with 16-bit quantisation in
the loop. Each adversary is written as a 16-bit WAV, read back and classified again, so the
reported success is that of the file on disk.
"""

from __future__ import annotations

import csv
import pathlib
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxaudio.attacks import evaluation, registry, round_to_16bit
from jaxaudio.data import load_audio, pcm16_to_float, save_wav
from jaxaudio.metrics import snr_db

__all__ = ["ATTACKS", "read_labels_csv", "attack_file", "write_attacks_csv"]

#: The ``--attack`` choices: the registry's command-line attacks, by short name.
ATTACKS = registry.cli_names()


def read_labels_csv(path) -> dict:
    """``{file name: label}`` from a CSV with columns ``fname,label`` (header required; a
    file is matched by its name, with or without its folder). ``ValueError`` naming
    ``--labels`` on a missing file or columns."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"--labels {path}: no such file")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"fname", "label"} <= set(reader.fieldnames):
            raise ValueError(f"--labels {path}: needs the columns fname,label, got "
                             f"{reader.fieldnames}")
        return {row["fname"].strip(): row["label"].strip() for row in reader}


def attack_file(classifier, path, *, attack: str, settings: Mapping, label: Optional[str],
                target: Optional[str], seed: int, out_dir, max_seconds: float = 60.0) -> dict:
    """Attack one file and write ``out_dir/<stem>.adversarial.wav`` and
    ``<stem>.perturbation.wav`` (16-bit, at the model's rate).

    ``label``: the file's true class name (``None``: the model's clean prediction is taken as
    the label, so success means "the prediction changed"); ``target``: a class name, ``"random"``
    (another class drawn with ``seed``) or ``None`` (untargeted; C&W variants need a target and
    default to ``"random"``). Returns the file's row for ``attacks.csv``.
    """
    import jax

    if attack not in ATTACKS:
        raise ValueError(f"--attack must be one of {', '.join(ATTACKS)}, got {attack!r}")
    names, rate = list(classifier.label_names), classifier.frontend.sample_rate
    for flag, value in (("--label", label), ("--target", target)):
        if value is not None and value != "random" and value not in names:
            raise ValueError(f"{flag} {value!r} is not a class of the model; choose one of "
                             f"{', '.join(names)}" + (" or random" if flag == "--target" else ""))
    if label == "random":
        raise ValueError("--label random: give the file's true class name")
    wave, _ = load_audio(path, sample_rate=rate)
    seconds = len(wave) / rate
    if len(wave) < classifier.frontend.n_fft:
        raise ValueError(f"--audio {path}: {len(wave)} samples at {rate} Hz is shorter than one "
                         f"analysis frame ({classifier.frontend.n_fft} samples)")
    if seconds > max_seconds:
        raise ValueError(f"--audio {path}: {seconds:.0f} s is longer than --max-seconds "
                         f"{max_seconds:g}; cut it into pieces (each is attacked whole)")
    x = np.asarray(round_to_16bit(np.clip(wave, -1, 1)), np.float32)[None]
    before = int(evaluation.predict(classifier, x)[0])
    y = names.index(label) if label is not None else before
    if attack in ("cw", "mscw") and target is None:
        target = "random"
    if target is not None and target != "random" and names.index(target) == y:
        raise ValueError(f"--target {target}: the file's label is already {target}; choose "
                         f"another class (or random)")
    kwargs = dict(settings)
    if target is not None:
        kwargs["target"] = "random" if target == "random" else names.index(target)
    if attack != "fgsm":
        kwargs["key"] = jax.random.key(seed)
    run = evaluation.run_on_set(registry.get(attack).function, classifier.logits_fn, x,
                                np.array([y], np.int32), keep_adversarial=True, **kwargs)
    adv = pcm16_to_float(run["adversarial_pcm"])[0]
    out_dir = pathlib.Path(out_dir)
    stem = pathlib.Path(path).stem
    adv_path = save_wav(out_dir / f"{stem}.adversarial.wav", adv, rate, subtype="PCM_16")
    save_wav(out_dir / f"{stem}.perturbation.wav", adv - x[0], rate, subtype="PCM_16")
    back = load_audio(adv_path, sample_rate=rate)[0][None].astype(np.float32)
    on_disk = int(evaluation.predict(classifier, back)[0])
    tgt = int(run["target"][0])
    return {"file": str(path), "seconds": seconds, "attack": attack, "label": names[y],
            "label_given": label is not None, "target": names[tgt] if tgt >= 0 else "",
            "prediction_before": names[before], "prediction_after": names[on_disk],
            "success": bool(on_disk == tgt if tgt >= 0 else on_disk != y),
            "success_in_loop": bool(run["success"][0]),
            "snr_db": float(snr_db(x, back)[0]), "iterations": int(run["iterations"][0]),
            "adversarial_wav": str(adv_path)}


def write_attacks_csv(rows: Sequence[dict], path) -> pathlib.Path:
    """``attacks.csv``: one row per file with the keys of :func:`attack_file`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0]) if rows else ["file"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()})
    return path
