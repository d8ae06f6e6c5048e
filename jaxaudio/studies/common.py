"""What every study shares: its preset, the common flags, its classifier, ``results.json`` and
the report.

A study module is presets + stage functions + a short ``run()``; this module holds the rest, so
every study validates its options with one wording, writes its results under one JSON policy
(:func:`jaxaudio.runtime.pipeline.to_json`: non-finite numbers become ``null``) and ends the
same way (:func:`finish`)::

    p = common.choose_preset(preset, PRESETS)
    runner = common.study_runner(out, progress=progress)
    clf, info = common.instrument_classifier(runner, out, dataset=..., preset=preset, ...)
    ...
    return common.finish(out, results, runner=runner, t_start=t0)
"""

from __future__ import annotations

import argparse
import pathlib
import time
from typing import Any, Mapping, Optional, TypeVar

from jaxaudio import report
from jaxaudio.data import SYNTHETIC_DATA
from jaxaudio.models import Classifier, load_classifier
from jaxaudio.runtime.pipeline import Runner, write_json
from jaxaudio.training import tasks
from jaxaudio.training.train import train

__all__ = ["PRESET_NAMES", "choose_preset", "check_count", "check_positive",
           "add_common_arguments", "study_runner", "instrument_classifier",
           "train_instrument_stage", "write_results", "finish", "print_outcome"]

#: The presets every study offers (sizes only, never the method).
PRESET_NAMES = tasks.PRESETS

T = TypeVar("T")


def choose_preset(name: str, presets: Mapping[str, T]) -> T:
    """``presets[name]``, or a ValueError naming ``--preset`` and the choices."""
    if name not in presets:
        raise ValueError(f"--preset: unknown preset {name!r}; choose one of "
                         f"{', '.join(presets)}")
    return presets[name]


def _flag(name: str) -> str:
    return "--" + name.lstrip("-").replace("_", "-")


def check_count(value: Any, name: str, *, least: int = 1) -> Optional[int]:
    """``value`` as an int >= ``least`` (None passes through); else a ValueError naming the
    flag ``name`` (``"num_clips"`` -> ``--num-clips``)."""
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < least:
        raise ValueError(f"{_flag(name)} must be an integer >= {least}, got {value!r}")
    return int(value)


def check_positive(value: Any, name: str) -> Optional[float]:
    """``value`` as a float > 0 (None passes through); else a ValueError naming the flag."""
    if value is None:
        return None
    if isinstance(value, bool) or not float(value) > 0:
        raise ValueError(f"{_flag(name)} must be a positive number, got {value!r}")
    return float(value)


def add_common_arguments(parser: argparse.ArgumentParser, *, preset_help: str,
                         data_help: Optional[str] = None, model_help: Optional[str] = None,
                         seed_help: str = "seed of the data, training and attacks (default 0)",
                         ) -> None:
    """The flags every study takes: ``--preset``, ``--out``, ``--seed``, ``--no-progress``,
    and ``--data`` / ``--model`` where the study reads a real dataset or a saved model."""
    parser.add_argument("--preset", choices=PRESET_NAMES, default="demo",
                        help=f"sizes only (default: demo); {preset_help}")
    if data_help is not None:
        parser.add_argument("--data", default=None, help=data_help)
    if model_help is not None:
        parser.add_argument("--model", default=None, help=model_help)
    parser.add_argument("--out", required=True,
                        help="output folder (finished stages are reused on a rerun)")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def study_runner(out, *, progress: bool, data: Optional[str] = None,
                 depends: Optional[Mapping[str, str]] = None) -> Runner:
    """The study's stage runner under ``out/stages`` (``out`` is created). ``data``: a real
    dataset's root (its path joins every stage key), None = the embedded synthetic data."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    deps = {"data": SYNTHETIC_DATA if data is None else str(data)}
    return Runner(out / "stages", progress=progress, depends={**deps, **(depends or {})})


def train_instrument_stage(stage_dir, *, load_train, train_dir, progress, dataset, preset,
                           seed):
    """Stage: train the instrument classifier (resumable in ``train_dir``) into
    ``stage_dir/model``; returns its epochs and training seconds."""
    task, train_set = tasks.task_of(dataset), load_train()
    p = tasks.preset(task, preset)
    clf = tasks.new_classifier(task, p, seed=seed,
                               label_names=getattr(train_set, "label_names", None))
    config, t0 = tasks.train_config(task, p, seed=seed), time.perf_counter()
    result = train(clf, tasks.example_source(task, train_set, p, clf.frontend), config,
                   out_dir=train_dir, resume=True, progress=progress)
    result.classifier.save(pathlib.Path(stage_dir) / "model")
    return {"epochs": config.epochs, "seconds": time.perf_counter() - t0}


def instrument_classifier(runner: Runner, out, *, dataset: str, preset: str, seed: int,
                          data: Optional[str], model, progress: bool
                          ) -> tuple[Classifier, dict]:
    """The study's instrument classifier: ``model`` (a saved classifier folder) loaded, or one
    trained in the ``model`` stage (resumable under ``out/train``). Returns the classifier and
    a record of where it came from (``source``, ``path``, training ``epochs``/``seconds``)."""
    if model is not None:
        clf, info = load_classifier(model), {"source": "loaded", "path": str(model)}
    else:
        suffix = "" if data else f"-{SYNTHETIC_DATA}"
        trained = runner.stage(
            "model", train_instrument_stage,
            settings={"dataset": dataset, "preset": preset, "seed": seed},
            context={"progress": progress,
                     "train_dir": pathlib.Path(out) / "train" / f"{preset}-seed{seed}{suffix}",
                     "load_train": lambda: tasks.load_split(dataset, "train", preset_name=preset,
                                                            seed=seed, data=data,
                                                            progress=progress)})
        clf, info = Classifier.load(trained.path / "model"), {
            "source": "trained" if trained.computed else "trained earlier",
            "path": str(trained.path / "model"), "epochs": trained["epochs"],
            "seconds": trained["seconds"]}
    if clf.task != "multiclass":
        raise ValueError(f"--model: the instrument study needs a multiclass classifier, got task "
                         f"{clf.task!r} ({info['path']})")
    return clf, info


def write_results(out, results: Mapping) -> pathlib.Path:
    """``out/results.json`` under the one JSON policy (non-finite numbers -> ``null``)."""
    return write_json(pathlib.Path(out) / "results.json", results)


def finish(out, results: dict, *, runner: Optional[Runner] = None,
           t_start: Optional[float] = None) -> dict:
    """End a study: record the runner's stage summary and the wall time (when given), write
    ``results.json`` and draw ``report.html`` from the files. Returns ``results``."""
    if runner is not None:
        results["stages"] = runner.summary()
    if t_start is not None:
        results["seconds"] = time.perf_counter() - t_start
    write_results(out, results)
    report.write_report(pathlib.Path(out))
    return results


def print_outcome(results: Mapping, out) -> int:
    """What a study command prints at the end: its headline and where the report is."""
    if results.get("headline"):
        print(results["headline"])
    print(f"report: {pathlib.Path(out) / 'report.html'}")
    return 0
