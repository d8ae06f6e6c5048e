"""The singing voice detector of the LIME audit (study 3): trained as published, scored at the
published threshold, and described for ``results.json`` (docs/studies.md §3).

Stage functions (``compute(stage_dir, **...)`` of :class:`jaxaudio.pipeline.Runner`):
:func:`train_stage` and :func:`errors_stage`; helpers :func:`training_settings`,
:func:`training_deviations` and :func:`detector_row`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

__all__ = ["voice_split", "training_settings", "train_stage", "errors_stage",
           "detector_row", "training_deviations"]


def voice_split(data, split: str, preset: str, seed: int, *, progress: bool = True):
    """``split`` of the synthetic songs (``data`` None) or of Jamendo-VAD at ``data``."""
    from jaxaudio import tasks

    return tasks.load_split("jamendo" if data else "synth-voice", split, preset_name=preset,
                            seed=seed, data=data, progress=progress)


def training_settings(preset: str, sp) -> dict:
    """The voice task preset with the study preset ``sp``'s size overrides
    (``train_examples_per_epoch``, ``train_epochs``), as the ``model`` stage's settings
    (every value the trained detector depends on, so a change retrains)."""
    from jaxaudio import tasks

    p = tasks.preset("voice", preset)
    if sp.train_examples_per_epoch:
        p = dataclasses.replace(p, examples_per_epoch=sp.train_examples_per_epoch)
    if sp.train_epochs:
        p = dataclasses.replace(p, epochs=sp.train_epochs)
    return dataclasses.asdict(p)


def train_stage(stage_dir, *, train_dir, progress, preset, seed, data, training):
    """Train the detector (Adam, step size times ``lr_decay_per_epoch`` after every epoch) with
    checkpoints in ``train_dir/<digest of the settings>`` (a killed run resumes there)."""
    import hashlib

    from jaxaudio import tasks
    from jaxaudio.train import train

    p = tasks.Preset(**training)
    from jaxaudio.data import SYNTHETIC_DATA

    digest = hashlib.sha256(json.dumps({"preset": preset, "seed": seed,
                                        "data": data or SYNTHETIC_DATA,
                                        "training": training}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:12]
    clf = tasks.new_classifier("voice", p, seed=seed)
    songs = voice_split(data, "train", preset, seed, progress=progress)
    source = tasks.example_source("voice", songs, p, clf.frontend)
    config = tasks.train_config("voice", p, seed=seed)
    result = train(clf, source, config, out_dir=pathlib.Path(train_dir) / digest, resume=True,
                   progress=progress)
    result.classifier.save(stage_dir / "classifier")
    return {"fingerprint": result.classifier.fingerprint(), "history": result.history}


def errors_stage(stage_dir, *, clf, data, preset, seed, frame_step, threshold, median_seconds,
              linear_baseline):
    """The detector's frame error on the test split (p(sing) > ``threshold``), raw and after
    the ``median_seconds`` median filter, and a linear model's on the same frames."""
    from jaxaudio import tasks
    from jaxaudio.baselines import voice_linear_baseline

    test = voice_split(data, "test", preset, seed)
    out = tasks.evaluate_songs(clf, test, frame_step=frame_step, threshold=threshold,
                               median_seconds=median_seconds)
    if linear_baseline:
        out["linear_baseline"] = voice_linear_baseline(
            voice_split(data, "train", preset, seed), test, frame_step=frame_step,
            threshold=threshold, median_seconds=median_seconds)
    return out


def detector_row(detector) -> dict:
    """results.json's detector entries: frame error at the published threshold, raw and
    median-filtered, the published error and the linear baseline on the same frames."""
    from jaxaudio import tasks

    row = {k: detector[k] for k in ("accuracy", "error", "accuracy_median_filtered",
                                    "error_median_filtered", "median_filter_seconds",
                                    "threshold", "num_frames", "frame_step", "sing_fraction")
           if k in detector}
    row["published_error_percent"] = dict(tasks.VOICE_PUBLISHED_ERROR)
    if "linear_baseline" in detector:
        lin = detector["linear_baseline"]
        row["linear_baseline"] = {k: lin[k] for k in ("model", "error", "error_median_filtered")
                                  if k in lin}
    return row


def training_deviations(training: dict, *, songs: bool = True) -> list[str]:
    """The detector training's departures from the published sizes (``training``: a voice
    :class:`jaxaudio.tasks.Preset` as a dict; ``songs``: also the synthetic song counts); the
    method (optimiser, step size and its decay, batch size, excerpt length) is the same in
    every preset."""
    from jaxaudio import tasks

    paper = dataclasses.asdict(tasks.preset("voice", "paper"))
    batches = {k: d["examples_per_epoch"] // d["batch_size"] for k, d in
               (("now", training), ("paper", paper))}
    out = [] if batches["now"] == batches["paper"] else [
        f"detector trained on {batches['now']} batches per epoch (paper: {batches['paper']})"]
    sizes = (("epochs", "detector epochs"), ("width", "detector width"))
    if songs:
        sizes += (("num_train", "training songs"), ("num_test", "test songs"))
    for key, what in sizes:
        if training[key] != paper[key]:
            out.append(f"{what} {training[key]} (paper: {paper[key]})")
    return out
