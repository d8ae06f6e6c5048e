"""The singing voice detector of the LIME audit (study 3): trained as published, scored at the
published threshold, and described for ``results.json`` (docs/studies.md §3).

Stage functions (``compute(stage_dir, **...)`` of :class:`jaxaudio.runtime.pipeline.Runner`):
:func:`train_stage` and :func:`errors_stage`; helpers :func:`training_settings`,
:func:`training_deviations` and :func:`detector_row`; the detector's compiled entry points,
made once per classifier: :func:`excerpt_features` and :func:`two_class_predict`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from typing import Callable

import jax
import numpy as np

from jaxaudio.data import SYNTHETIC_DATA
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.explain import binary_to_two_class
from jaxaudio.models import Classifier, inference, load_classifier
from jaxaudio.runtime.pipeline import Runner, StageResult
from jaxaudio.training import tasks
from jaxaudio.training.baselines import voice_linear_baseline
from jaxaudio.training.train import train

__all__ = ["voice_split", "training_settings", "train_stage", "errors_stage",
           "voice_detector", "detector_row", "training_deviations", "excerpt_features",
           "two_class_predict"]

#: Compiled entry points per classifier object: ``id(clf)`` -> ``(clf, jitted features)`` and
#: ``(id(clf), threshold)`` -> ``(clf, predict_fn)`` (holding ``clf`` keeps its id unique).
_FEATURES: dict = {}
_PREDICT: dict = {}

#: Excerpts per call of the jitted front-end in :func:`excerpt_features`.
FEATURE_CHUNK = 16


def voice_split(data, split: str, preset: str, seed: int, *, progress: bool = True):
    """``split`` of the synthetic songs (``data`` None) or of Jamendo-VAD at ``data``."""

    return tasks.load_split("jamendo" if data else "synth-voice", split, preset_name=preset,
                            seed=seed, data=data, progress=progress)


def training_settings(preset: str, sp) -> dict:
    """The voice task preset with the study preset ``sp``'s size overrides
    (``train_examples_per_epoch``, ``train_epochs``), as the ``model`` stage's settings
    (every value the trained detector depends on, so a change retrains)."""

    p = tasks.preset("voice", preset)
    if sp.train_examples_per_epoch:
        p = dataclasses.replace(p, examples_per_epoch=sp.train_examples_per_epoch)
    if sp.train_epochs:
        p = dataclasses.replace(p, epochs=sp.train_epochs)
    return dataclasses.asdict(p)


def train_stage(stage_dir, *, train_dir, progress, preset, seed, data, training):
    """Train the detector (Adam, step size times ``lr_decay_per_epoch`` after every epoch) with
    checkpoints in ``train_dir/<digest of the settings>`` (a killed run resumes there)."""
    p = tasks.Preset(**training)
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

    test = voice_split(data, "test", preset, seed)
    out = inference.evaluate_songs(clf, test, frame_step=frame_step, threshold=threshold,
                               median_seconds=median_seconds)
    if linear_baseline:
        out["linear_baseline"] = voice_linear_baseline(
            voice_split(data, "train", preset, seed), test, frame_step=frame_step,
            threshold=threshold, median_seconds=median_seconds)
    return out


def voice_detector(runner: Runner, out, *, preset: str, seed: int, data, model, progress: bool,
                   training: dict) -> tuple[Classifier, pathlib.Path, StageResult]:
    """The detector to audit: ``model`` (a saved classifier folder) loaded, or one trained in
    the ``model`` stage (:func:`train_stage` with ``training``, checkpoints under
    ``out/train``); then its frame errors (the ``detector`` stage, :func:`errors_stage`, at
    the published threshold and median filter, with the linear baseline).

    Returns ``(classifier, its folder, the detector StageResult)``; raises ``ValueError``
    when the classifier is not a binary detector.
    """
    if model is None:
        model = runner.stage("model", train_stage, settings={
            "preset": preset, "seed": seed, "training": training},
            context={"train_dir": pathlib.Path(out) / "train", "progress": progress,
                     "data": data}).path / "classifier"
    clf = load_classifier(model)
    if clf.task != "binary":
        raise ValueError(f"--model: the audit needs a binary singing voice detector, got task "
                         f"{clf.task!r}")
    errors = runner.stage("detector", errors_stage, settings={
        "preset": preset, "seed": seed, "frame_step": tasks.preset("voice", preset).eval_frame_step,
        "threshold": inference.VOICE_THRESHOLD, "median_seconds": inference.VOICE_MEDIAN_SECONDS,
        "linear_baseline": True}, depends={"model": clf.fingerprint()},
        context={"clf": clf, "data": data})
    return clf, pathlib.Path(model), errors


def detector_row(detector) -> dict:
    """results.json's detector entries: frame error at the published threshold, raw and
    median-filtered, the published error and the linear baseline on the same frames."""

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
    :class:`jaxaudio.training.tasks.Preset` as a dict; ``songs``: also the synthetic song
    counts); the method (optimiser, step size and its decay, batch size, excerpt length) is the
    same in every preset."""

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


def excerpt_features(clf, waves) -> np.ndarray:
    """``(n, n_mels, excerpt_frames)`` float32 front-end output (``clf.features``, jitted once
    per classifier, :data:`FEATURE_CHUNK` excerpts per call) of ``waves`` ``(n, samples)`` in
    [-1, 1]; ``n = 0`` gives an empty batch of that shape."""
    if len(waves) == 0:
        return np.zeros((0, clf.frontend.n_mels, clf.excerpt_frames), np.float32)
    if id(clf) not in _FEATURES:
        _FEATURES[id(clf)] = (clf, jax.jit(clf.features))
    return map_chunks(_FEATURES[id(clf)][1], waves, chunk_size=FEATURE_CHUNK)


def two_class_predict(clf, *, threshold: float) -> Callable:
    """The two-class ``predict_fn`` of a one-logit detector on front-end outputs
    (:func:`jaxaudio.explain.binary_to_two_class` of ``clf.feature_logits_fn``: ``(batch,
    n_mels, frames) -> (batch, 2)`` with class 1 where p(sing) > ``threshold``), the same
    object on every call for the same classifier and threshold (its compiled programs are
    reused)."""
    key = (id(clf), float(threshold))
    if key not in _PREDICT:
        _PREDICT[key] = (clf, binary_to_two_class(clf.feature_logits_fn, from_logits=True,
                                                  threshold=threshold))
    return _PREDICT[key][1]
