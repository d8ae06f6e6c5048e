"""The ``jaxaudio`` command (also ``python -m jaxaudio``).

    jaxaudio train --dataset synth-instruments --out runs/inst [--preset demo] [--resume]
    jaxaudio evaluate --model runs/inst/model [--dataset synth-instruments] [--data PATH]
    jaxaudio attack --preset demo --out runs/attacks      (study 1, docs/studies.md §1)
    jaxaudio noise  --preset demo --out runs/noise        (study 2, docs/studies.md §2)
    jaxaudio audit  --preset demo --out runs/audit        (study 3, docs/studies.md §3)
    jaxaudio recommend --preset demo --out runs/rec [--audio DIR]  (study 4, docs/studies.md §4)
    jaxaudio robustness --preset demo --model M --out runs/robust  (study 1 option: channels, EOT, ensembles)
    jaxaudio demo --out runs/demo                         (foundation + the four studies)
    jaxaudio report runs/demo                             (redraw reports from the files)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pathlib
import sys
import time

from jaxaudio import __version__, report
from jaxaudio.cli import attack_command
from jaxaudio.data.audio import collect_audio
from jaxaudio.explain import files as xf
from jaxaudio.report.explanation import draw_explanation
from jaxaudio.models import Classifier, inference, load_classifier
from jaxaudio.models.inference import predict_files, write_predictions_csv
from jaxaudio.runtime import extras
from jaxaudio.runtime.pipeline import write_json
from jaxaudio.runtime.xla_cache import use_compilation_cache
from jaxaudio.training import tasks
from jaxaudio.training.baselines import voice_linear_baseline
from jaxaudio.training.tasks import DATASETS, PRESETS
from jaxaudio.training.train import train

#: The studies: (command, module in jaxaudio.studies, help, foundation model the demo reuses).
#: The demo passes ``model=<demo>/foundation/<that>/model`` to the study's ``run`` (or None).
STUDY_COMMANDS: tuple[tuple[str, str, str, str | None], ...] = (
    ("attack", "instrument_attacks", "end-to-end waveform attacks on the instrument classifier", "instruments"),
    ("noise", "label_noise", "label noise in the instrument tagger: curated vs noisy vs corrupted", None),
    ("audit", "lime_veracity", "auditing LIME explanations of the singing voice detector with adversaries", "voice"),
    ("recommend", "recommender", "adversarial hubs in a music recommender, and Mutual Proximity", None),
    ("robustness", "attack_robustness", "channels, robust (EOT) adversaries and an ensemble defence for the instrument classifier", "instruments"),
)

#: Study options the demo leaves out unless named in ``--only`` (they take long and are not
#: one of the published studies): channel survival, EOT and the ensemble defence.
NOT_IN_DEMO = ("robustness",)

#: Study commands whose flags and dispatch a cli module wraps around the study's own
#: (``add_arguments``, ``run_from_args``): ``attack --audio`` attacks the user's files.
COMMAND_WRAPPERS = {"attack": attack_command}

#: Install extras (:mod:`jaxaudio.runtime.extras`) each study needs with its default options.
STUDY_EXTRAS = {"attack": ("perceptual",), "noise": ("labels",), "audit": ("audit",)}


def _study(module: str):
    return importlib.import_module(f"jaxaudio.studies.{module}")


def _add_data_args(p: argparse.ArgumentParser, *, required: bool,
                   from_training: bool = False) -> None:

    trained = " (default: the one the model was trained with, else %s)" if from_training else ""
    p.add_argument("--dataset", choices=DATASETS, required=required,
                   help="synthetic (embedded, default data) or real dataset"
                        + (trained % "its task's synthetic data" if trained else ""))
    p.add_argument("--data", default=None, help="root folder of a real dataset")
    p.add_argument("--preset", choices=PRESETS, default=None if from_training else "demo",
                   help="sizes" + (trained % "demo" if trained else " (default: demo)"))
    p.add_argument("--seed", type=int, default=None if from_training else 0,
                   help="data split seed" + (trained % "0" if trained else " (default: 0)"))


def cmd_train(args) -> int:

    task = tasks.task_of(args.dataset)
    if args.tagger == "multi" and task != "instruments":
        raise ValueError("--tagger multi needs instrument data (a --dataset of tagged clips)")
    p = tasks.preset(task, args.preset)
    out = pathlib.Path(args.out)
    t0 = time.perf_counter()
    multi = args.tagger == "multi"  # synthetic data: half the clips mix two tagged instruments
    train_set = tasks.load_split(args.dataset, "train", preset_name=args.preset, seed=args.seed,
                                 data=args.data, multi_label=multi)
    test_set = tasks.load_split(args.dataset, "test", preset_name=args.preset, seed=args.seed,
                                data=args.data, multi_label=multi)
    clf = tasks.new_classifier(task, p, seed=args.seed,
                               label_names=getattr(train_set, "label_names", None))
    if args.tagger == "multi":
        # Same network, one sigmoid per label, binary cross-entropy on multi-hot targets.
        clf = dataclasses.replace(clf, task="multilabel")
    source = tasks.example_source(task, train_set, p, clf.frontend)
    config = tasks.train_config(task, p, seed=args.seed, epochs=args.epochs)
    result = train(clf, source, config, out_dir=out, resume=args.resume)
    result.classifier.save(out / "model")
    metrics = inference.evaluate(result.classifier, test_set, frame_step=p.eval_frame_step)
    seconds = time.perf_counter() - t0
    if task == "voice":  # next to the published error and a linear model on the same data

        metrics["published_error_percent"] = dict(tasks.VOICE_PUBLISHED_ERROR)
        metrics["linear_baseline"] = voice_linear_baseline(train_set, test_set,
                                                           frame_step=p.eval_frame_step)
    metrics.update({"dataset": args.dataset, "preset": args.preset, "seed": args.seed,
                    "tagger": args.tagger,
                    "num_classes": len(result.classifier.label_names),
                    "epochs": config.epochs, "learning_rate": config.learning_rate,
                    "lr_decay_per_epoch": config.lr_decay_per_epoch,
                    "batch_size": config.batch_size, "seconds": seconds,
                    "history": result.history})
    write_json(out / "metrics.json", metrics)
    if task == "voice":
        print(f"frame error {100 * metrics['error']:.2f} % ("
              f"{100 * metrics['error_median_filtered']:.2f} % after the "
              f"{inference.VOICE_MEDIAN_SECONDS} s median filter; linear baseline "
              f"{100 * metrics['linear_baseline']['error']:.2f} %)")
    print(f"test accuracy {metrics['accuracy']:.4f} ({args.dataset}, {args.preset}); "
          f"model saved to {out / 'model'}; {metrics['seconds']:.0f} s")
    return 0


def cmd_evaluate(args) -> int:

    if args.data is not None and args.dataset is None:
        raise ValueError("--data needs --dataset (fsdkaggle2019 or jamendo): which layout is "
                         f"the folder {args.data}?")
    clf = Classifier.load(args.model)
    run_metrics = pathlib.Path(args.model).absolute().parent / "metrics.json"
    trained = json.loads(run_metrics.read_text()) if run_metrics.is_file() else {}
    real = trained.get("dataset") in ("fsdkaggle2019", "jamendo")
    if args.data is None and args.dataset is None and real:
        raise ValueError(f"--model {args.model} was trained on {trained['dataset']}: give "
                         f"--dataset {trained['dataset']} --data ROOT (or a synthetic --dataset)")
    preset = args.preset or trained.get("preset", "demo")
    seed = args.seed if args.seed is not None else int(trained.get("seed", 0))
    dataset = args.dataset or trained.get("dataset") or (
        "synth-instruments" if clf.task != "binary" else "synth-voice")
    task = tasks.task_of(dataset)
    model_task = "instruments" if clf.task != "binary" else "voice"
    if task != model_task:
        kind = ("an instrument classifier" if model_task == "instruments"
                else "a singing voice detector")
        raise ValueError(f"--dataset {dataset} is {task} data but --model {args.model} is "
                         f"{kind}")
    p = tasks.preset(task, preset)
    test_set = tasks.load_split(dataset, "test", preset_name=preset, seed=seed, data=args.data)
    metrics = inference.evaluate(clf, test_set, frame_step=p.eval_frame_step)
    metrics.update({"dataset": dataset, "preset": preset, "seed": seed, "model": str(args.model),
                    "defaults_from": str(run_metrics) if trained else None})
    out = (pathlib.Path(args.out) if args.out
           else pathlib.Path(args.model).absolute().parent / "evaluation")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_predict(args) -> int:
    """Classify the user's audio files with a saved classifier; prints a table and writes
    ``predictions.csv`` into ``--out``."""

    files, skipped = collect_audio(args.audio)
    clf = load_classifier(args.model)
    rows = predict_files(clf, files, top=args.top, progress=not args.no_progress)
    for r in rows:
        if "segments" in r:
            segs = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in r["segments"]) or "none"
            what = f"sung {100 * r['sing_fraction']:.0f} %: {segs}"
        else:
            what = "  ".join(f"{label} {p:.2f}" for label, p in r["top"])
        print(f"{r['file']}  ({r['seconds']:.1f} s, {r['rate']} Hz)  {what}")
    path = write_predictions_csv(rows, pathlib.Path(args.out) / "predictions.csv")
    note = f"; skipped {skipped} non-audio file(s)" if skipped else ""
    print(f"{len(rows)} file(s) -> {path}{note}")
    return 0


def cmd_explain(args) -> int:
    """Explain a saved classifier's decision on one excerpt of the user's audio file; writes
    ``explanation.json`` and ``explanation.png`` into ``--out``."""

    clf = load_classifier(args.model)
    excerpt, seconds = xf.file_excerpt(clf, args.audio, start=args.start)
    exp = xf.explain_excerpt(clf, excerpt, method=args.method, label=args.label,
                             num_samples=args.num_samples, seed=args.seed,
                             progress=not args.no_progress)
    record = xf.explanation_record(exp, clf, file=args.audio, start=args.start, seconds=seconds)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "explanation.json", record)
    figure = draw_explanation(exp, record, out / "explanation.png")
    top = ", ".join(f"{c} ({record['weights'][c]:+.3f})" for c in record["ranking"][:3])
    fid = "" if record["fidelity_r2"] is None else f"; fidelity R² {record['fidelity_r2']:.2f}"
    print(f"{record['method']} for {record['label']} (p = {record['probability']:.2f}): "
          f"top components {top}{fid}")
    print(f"-> {out / 'explanation.json'}, {figure}")
    return 0


def cmd_demo(args) -> int:
    """Train and evaluate both tasks on the synthetic data, then run every study.

    Layout under ``--out``: ``foundation/`` (the two trained classifiers, their metrics and
    report), one folder per study, and ``index.html`` linking all reports.
    """

    out = pathlib.Path(args.out)
    foundation = out / "foundation"
    names = []
    for dataset, name in (("synth-instruments", "instruments"), ("synth-voice", "voice")):
        ns = argparse.Namespace(dataset=dataset, data=None, preset=args.preset, seed=args.seed,
                                out=str(foundation / name), epochs=None, resume=True,
                                tagger="single")
        cmd_train(ns)
        names.append(name)
    accuracy = {n: json.loads((foundation / n / "metrics.json").read_text())["accuracy"]
                for n in names}
    results = {"study": "foundation", "title": "jaxaudio demo: the two classifiers",
               "preset": args.preset, "seed": args.seed, "classifiers": names,
               "headline": "test accuracy: " + ", ".join(f"{n} {a:.3f}"
                                                         for n, a in accuracy.items())}
    write_json(foundation / "results.json", results)
    reports = {"foundation: training and evaluation": report.write_report(foundation)}
    only = None if args.only is None else set(args.only)
    for command, module, help_text, reuse in STUDY_COMMANDS:
        if not _in_demo(command, only):
            continue
        model = foundation / reuse / "model" if reuse else None
        print(f"== {command}: {help_text}", flush=True)
        _study(module).run(out=out / command, preset=args.preset, seed=args.seed, model=model)
        reports[f"{command}: {help_text}"] = out / command / "report.html"
    parts = {name: pathlib.Path(path).parent.relative_to(out).as_posix()
             for name, path in reports.items()}
    write_json(out / "index.json", {"title": "jaxaudio demo", "parts": parts})
    index = report.combine_reports(out, reports, title="jaxaudio demo")
    print(f"report: {index}")
    return 0


def _in_demo(command: str, only) -> bool:
    """Whether the demo runs the study ``command`` (``only``: ``--only`` as a set, or None)."""
    return command not in NOT_IN_DEMO if only is None else command in only


def _extras_needed(args) -> tuple[str, ...]:
    """The install extras the parsed command needs, so a missing one stops it before any work."""
    command = args.command
    if command == "demo":
        only = None if args.only is None else set(args.only)
        return tuple(e for c, *_ in STUDY_COMMANDS if _in_demo(c, only)
                     for e in STUDY_EXTRAS.get(c, ()))
    if command == "explain":
        return ("audit",) if args.method == "lime" else ()
    if command == "noise" and getattr(args, "no_label_issues", False):
        return ()  # cleanlab only finds the wrong labels
    if command == "attack" and getattr(args, "audio", None):
        return ()  # attacking files scores no ViSQOL
    return STUDY_EXTRAS.get(command, ())


def cmd_report(args) -> int:
    """Redraw the figures and report.html of a finished study or demo folder from its files."""

    for path in report.redraw(args.folder):
        print(f"report: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="jaxaudio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"jaxaudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a classifier and save it with Orbax")
    _add_data_args(p, required=True)
    p.add_argument("--out", required=True, help="run directory (checkpoints, model, metrics)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--tagger", choices=("single", "multi"), default="single",
                   help="instrument classifiers: single (softmax, cross-entropy; default) or "
                        "multi (a multi-label tagger: one sigmoid per label, binary "
                        "cross-entropy on multi-hot targets, tags above 0.5); recorded in the "
                        "saved model, so evaluate and predict use its decision")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a saved classifier; writes metrics.json")
    p.add_argument("--model", required=True, help="directory written by train (…/model)")
    _add_data_args(p, required=False, from_training=True)
    p.add_argument("--out", default=None, help="folder for metrics.json (default: evaluation/ "
                   "next to the model folder, so train's own metrics.json stays)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify your own audio files with a saved classifier; "
                                       "writes predictions.csv")
    p.add_argument("--model", required=True, help="a saved classifier folder (…/model)")
    p.add_argument("--audio", required=True, nargs="+", metavar="PATH",
                   help="audio files or folders (searched recursively); any sample rate and "
                        "channel count, mixed to mono and resampled to the model's rate")
    p.add_argument("--out", required=True, help="folder for predictions.csv")
    p.add_argument("--top", type=int, default=3, help="classes listed per file (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="explain a saved classifier's decision on an excerpt of "
                                       "your own audio file (LIME, occlusion or integrated "
                                       "gradients over 5 x 4 time-frequency components)")
    p.add_argument("--model", required=True, help="a saved classifier folder (…/model)")
    p.add_argument("--audio", required=True, metavar="FILE", help="an audio file (any rate, "
                   "any channels; mixed to mono and resampled to the model's rate)")
    p.add_argument("--start", type=float, default=0.0,
                   help="start of the excerpt in seconds (default 0; the excerpt is the "
                        "model's training length, zero-padded past the end of the file)")
    p.add_argument("--method", choices=("lime", "occlusion", "integrated-gradients"),
                   default="lime", help="explainer (default lime)")
    p.add_argument("--label", default=None, help="class to explain (default: the model's "
                   "decision)")
    p.add_argument("--num-samples", type=int, default=8192,
                   help="LIME perturbation samples (default 8192, as in the audit study)")
    p.add_argument("--seed", type=int, default=0, help="LIME's sampling seed")
    p.add_argument("--out", required=True, help="folder for explanation.json and .png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("demo", help="the main job on the embedded synthetic data")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--preset", default="demo", choices=("smoke", "demo", "paper"),
                   help="sizes of every part (default: demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, training and "
                   "attacks (default: 0)")
    p.add_argument("--only", nargs="*", default=None, metavar="STUDY",
                   choices=[c for c, *_ in STUDY_COMMANDS],
                   help="run only these studies after the foundation (default: all but "
                        + ", ".join(NOT_IN_DEMO) + "; --only alone: none)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="redraw a finished study or demo folder's reports from "
                                      "its files (results.json, arrays, audio)")
    p.add_argument("folder", help="a study's --out folder, or the demo's")
    p.set_defaults(func=cmd_report)

    for command, module, help_text, _ in STUDY_COMMANDS:
        study = COMMAND_WRAPPERS.get(command) or _study(module)
        p = sub.add_parser(command, help=help_text)
        study.add_arguments(p)
        p.set_defaults(func=study.run_from_args)
    return parser


#: Integer flags and their least allowed value, checked before any work starts.
_AT_LEAST = {"seed": 0, "epochs": 1, "seeds": 1, "num_clips": 1, "num_samples": 1,
             "per_direction": 1, "top": 1}


def _check_args(args) -> None:
    """Reject bad numbers and an ``--out`` that is a file up front, naming the flag."""
    for name, least in _AT_LEAST.items():
        value = getattr(args, name, None)
        if value is not None and value < least:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {least}, "
                             f"got {value}")
    out = getattr(args, "out", None)
    if out is not None and pathlib.Path(out).exists() and not pathlib.Path(out).is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (created if missing)")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        extras.check(_extras_needed(args), feature=f"jaxaudio {args.command}")
        import matplotlib

        # The command draws figures to files only; library code never chooses a backend.
        matplotlib.use("Agg")

        use_compilation_cache()
        return args.func(args)
    except extras.MissingExtra as err:  # an optional dependency is not installed
        print(f"jaxaudio: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # bad input: one clear line, no traceback
        print(f"jaxaudio: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system said no (permissions, a full disk, ...)
        print(f"jaxaudio: error: {err.strerror or err}"
              + (f": {err.filename}" if getattr(err, "filename", None) else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        kept = f"finished stages and checkpoints under {out} are kept; " if out else ""
        print(f"\njaxaudio: interrupted; {kept}run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
