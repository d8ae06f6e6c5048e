"""``jaxaudio attack``: study 1 (:mod:`jaxaudio.studies.instrument_attacks`), or with ``--audio``
the user's own files attacked with a saved classifier (:mod:`jaxaudio.cli.attack_files`).

The study's flags come from the study; this module adds the file flags and routes the command:
with ``--audio`` every file is attacked whole at the study preset's attack settings (``--set``
changes one), and ``attacks.csv`` lists the outcome measured on the written WAVs.
"""

from __future__ import annotations

import argparse
import pathlib

from jaxaudio.cli import attack_files
from jaxaudio.data.audio import collect_audio
from jaxaudio.models import load_classifier
from jaxaudio.studies import instrument_attacks as study

__all__ = ["add_arguments", "run_from_args", "file_settings", "run_on_files"]

#: Flags that only mean something with ``--audio``.
FILE_ONLY = ("label", "labels", "target")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's flags and the ``--audio`` group."""
    study.add_arguments(parser)
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


def run_from_args(args) -> int:
    """``--audio``: :func:`run_on_files`; otherwise the study (file flags refused)."""
    if getattr(args, "audio", None):
        return run_on_files(args)
    stray = [f"--{k}" for k in FILE_ONLY if getattr(args, k, None)]
    if stray:
        raise ValueError(f"{', '.join(stray)}: used only with --audio (the study attacks "
                         f"the test split with its own labels and targets)")
    return study.run_from_args(args)


def file_settings(preset: str, overrides, sample_rate: int) -> dict:
    """Each file attack's keyword arguments: the study preset's, with ``--set`` applied (the
    psychoacoustic attack at the model's ``sample_rate``)."""
    sp = study.apply_overrides(study.STUDY_PRESETS[preset], overrides)
    return {"fgsm": {"eps": sp.fgsm_eps}, "pgd": sp.pgd, "cw": sp.cw, "mscw": sp.mscw,
            study.PSY: dict(sp.psy, sample_rate=int(sample_rate))}


def _file_labels(args, files) -> list:
    """The true class name of every file (None = the model's clean prediction)."""
    if not args.labels:
        return [args.label] * len(files)
    table = attack_files.read_labels_csv(args.labels)
    labels = [table.get(f.name, table.get(str(f))) for f in files]
    for f, label in zip(files, labels):
        if label is None:
            raise ValueError(f"--labels {args.labels}: no row for {f.name}")
    return labels


def _outcome_line(name: str, r: dict) -> str:
    target = f" (target {r['target']})" if r["target"] else ""
    return (f"{name}: {r['label']} -> {r['prediction_after']}{target}; "
            f"{'success' if r['success'] else 'failed'}, SNR {r['snr_db']:.1f} dB, "
            f"{r['iterations']} iterations")


def run_on_files(args) -> int:
    """``jaxaudio attack --audio``: attack the user's files, write ``OUT/audio/*.wav`` and
    ``OUT/attacks.csv``; prints one line per file and the count of adversaries on disk."""
    if not args.model:
        raise ValueError("--audio needs --model (a trained classifier folder)")
    if args.label and args.labels:
        raise ValueError("give either --label or --labels, not both")
    files, skipped = collect_audio(args.audio)
    labels = _file_labels(args, files)
    clf = load_classifier(args.model)
    if clf.task != "multiclass":
        raise ValueError(f"--model: attacking files needs a multiclass classifier, got task "
                         f"{clf.task!r}")
    settings = file_settings(args.preset, getattr(args, "overrides", None),
                             clf.frontend.sample_rate)
    out, rows = pathlib.Path(args.out), []
    for i, (f, label) in enumerate(zip(files, labels)):
        rows.append(attack_files.attack_file(
            clf, f, attack=args.attack, settings=settings[args.attack], label=label,
            target=args.target, seed=1000 * args.seed + i, out_dir=out / "audio",
            max_seconds=args.max_seconds))
        print(_outcome_line(f.name, rows[-1]), flush=True)
    path = attack_files.write_attacks_csv(rows, out / "attacks.csv")
    note = f"; skipped {skipped} non-audio file(s)" if skipped else ""
    print(f"{sum(r['success'] for r in rows)}/{len(rows)} adversarial (re-read from the "
          f"written WAVs) -> {path}{note}")
    return 0
