"""A trained classifier on the user's own audio files: ``jaxaudio predict --audio PATH...``.

Files are read with :func:`jaxaudio.data.load_audio` (anything libsndfile reads, at any sample
rate and channel count), mixed to mono and resampled to the classifier's rate. Then:

- an instrument classifier (``task="multiclass"``) scores the whole file as the studies do: cut
  into half-overlapping excerpts of its training length (circular padding for short files),
  logits averaged over the excerpts, softmax: one probability per class;
- the singing voice detector (``task="binary"``) gives p(sing) for every frame (the excerpt
  centred on it), smoothed by the 0.8 s sliding median, and the sung segments where the
  smoothed p(sing) > 0.51 (the published decision threshold).
"""

from __future__ import annotations

import csv
import pathlib
from typing import Sequence

import numpy as np
from scipy import ndimage

from jaxaudio import metrics
from jaxaudio.data import load_audio
from jaxaudio.data.types import ClipDataset, SongDataset
from jaxaudio.data.windowing import song_padded, window_dataset
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.models.classifier import TAG_THRESHOLD, Classifier

__all__ = ["VOICE_LABELS", "VOICE_THRESHOLD", "VOICE_MEDIAN_SECONDS", "clip_probabilities",
           "sing_segments", "predict_files", "write_predictions_csv", "clip_scores",
           "evaluate_clips", "song_frame_probabilities", "median_smoothed", "frame_errors",
           "evaluate_songs", "evaluate"]


def clip_probabilities(classifier, waves: Sequence[np.ndarray], *,
                       batch_size: int = 32) -> np.ndarray:
    """Clip-level class probabilities ``(len(waves), num_classes)`` of a multiclass model.

    ``waves``: 1-D float32 arrays at ``classifier.frontend.sample_rate``, any lengths. Each is
    cut into half-overlapping excerpts of ``classifier.excerpt_samples`` (circular padding for
    short ones); the clip's logits are the mean over its excerpts, then softmax (a
    ``task="multilabel"`` tagger: sigmoid, independent tag probabilities).
    """
    import jax

    windows, owner = window_dataset([np.asarray(w, np.float32) for w in waves],
                                    length=classifier.excerpt_samples)
    logits = map_chunks(classifier.logits, windows.astype(np.float32), chunk_size=batch_size)
    summed = np.zeros((len(waves), logits.shape[-1]))
    np.add.at(summed, owner, logits)
    mean_logits = summed / np.maximum(np.bincount(owner, minlength=len(waves))[:, None], 1)
    if classifier.task == "multilabel":
        return np.asarray(jax.nn.sigmoid(mean_logits))
    return np.asarray(jax.nn.softmax(mean_logits, axis=-1))


def sing_segments(probs: np.ndarray, *, frames_per_second: float,
                  median_seconds: float = 0.8, threshold: float = 0.51) -> list[tuple]:
    """``[(start_s, end_s), ...]`` where the median-filtered p(sing) of consecutive frames
    (``probs``, one per frame, frame ``i`` at ``i / frames_per_second`` s) exceeds
    ``threshold``."""

    p = np.asarray(probs, np.float64)
    if median_seconds > 0 and p.size:
        p = median_smoothed(p, frames_per_second=frames_per_second,
                            median_seconds=median_seconds)
    sung = np.concatenate([[False], p > threshold, [False]])
    edges = np.flatnonzero(np.diff(sung.astype(np.int8)))
    return [(float(a / frames_per_second), float(b / frames_per_second))
            for a, b in zip(edges[::2], edges[1::2])]


def predict_files(classifier, files: Sequence, *, top: int = 3, progress: bool = True) -> list:
    """One row per file: ``file``, ``seconds`` (duration), ``rate`` (the file's), and for a
    multiclass model ``top`` ``(label, probability)`` pairs; for the binary detector
    ``sing_fraction`` (of frames, after the median filter) and ``segments``."""
    import soundfile as sf
    from tqdm.auto import tqdm

    rate = classifier.frontend.sample_rate
    rows = []
    for f in tqdm(files, desc="predict", unit="file", disable=not progress):
        wave, _ = load_audio(f, sample_rate=rate)
        try:
            file_rate = int(sf.info(str(f)).samplerate)
        except RuntimeError:
            file_rate = rate
        row = {"file": str(f), "seconds": len(wave) / rate, "rate": file_rate}
        if classifier.task == "binary":
            hop = classifier.frontend.hop_length
            _, p = song_frame_probabilities(classifier, wave)
            segs = sing_segments(p, frames_per_second=rate / hop,
                                 threshold=VOICE_THRESHOLD,
                                 median_seconds=VOICE_MEDIAN_SECONDS)
            sung = sum(b - a for a, b in segs)
            row.update(sing_fraction=float(min(1.0, sung / max(row["seconds"], 1e-9))),
                       segments=segs)
        else:
            probs = clip_probabilities(classifier, [wave])[0]
            order = np.argsort(-probs)[:top]
            row["top"] = [(classifier.label_names[i], float(probs[i])) for i in order]
            if classifier.task == "multilabel":

                row["tags"] = [classifier.label_names[i] for i in np.flatnonzero(
                    probs > TAG_THRESHOLD)]
        rows.append(row)
    return rows


def write_predictions_csv(rows: Sequence[dict], path) -> pathlib.Path:
    """``predictions.csv``: ``file,seconds,rate`` then ``label_k,probability_k`` columns
    (multiclass) or ``sing_fraction,segments`` (``start-end`` seconds, ``;``-separated)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = max((len(r.get("top", ())) for r in rows), default=0)
    binary = any("segments" in r for r in rows)
    tags = any("tags" in r for r in rows)
    header = ["file", "seconds", "rate"] + (["sing_fraction", "segments"] if binary else [
        c for k in range(1, top + 1) for c in (f"label_{k}", f"probability_{k}")]) + (
        ["tags"] if tags else [])
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            line = [r["file"], f"{r['seconds']:.3f}", r["rate"]]
            if binary:
                line += [f"{r['sing_fraction']:.4f}",
                         ";".join(f"{a:.2f}-{b:.2f}" for a, b in r["segments"])]
            else:
                line += [v for label, p in r["top"] for v in (label, f"{p:.4f}")]
                if tags:
                    line.append(";".join(r.get("tags", ())))
            writer.writerow(line)
    return path


VOICE_LABELS = ("nosing", "sing")


#: The singing voice detector's decision: a frame is "sing" when p(sing) > this (the published
#: detector's threshold).
VOICE_THRESHOLD = 0.51


#: Length (s) of the sliding median over a song's frame probabilities before the reported error
#: (the published detector's post-processing).
VOICE_MEDIAN_SECONDS = 0.8


def clip_scores(classifier: Classifier, dataset: ClipDataset, *, batch_size: int = 32):
    """Clip-level class probabilities ``(num_clips, num_classes)``.

    Each clip is cut into half-overlapping excerpts of the training length (circular padding
    for short clips); the clip's logits are the mean of its excerpts' logits.
    """
    return clip_probabilities(classifier, list(dataset.waves), batch_size=batch_size)


def evaluate_clips(classifier: Classifier, dataset: ClipDataset, *, batch_size: int = 32) -> dict:
    """Accuracy (single-label clips), lwlrap and macro ROC-AUC on a clip dataset."""
    scores = clip_scores(classifier, dataset, batch_size=batch_size)
    single = dataset.labels >= 0
    return {
        "accuracy": float(metrics.accuracy(scores[single], dataset.labels[single])),
        "lwlrap": float(metrics.lwlrap(dataset.targets, scores)),
        "roc_auc": float(metrics.roc_auc_macro(dataset.targets, scores)),
        "num_clips": int(len(dataset)),
    }


def song_frame_probabilities(classifier: Classifier, wave: np.ndarray, *, frame_step: int = 1,
                             batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Singing probability of every ``frame_step``-th frame of a song.

    Returns ``(frames, probabilities)``: the frame indices and sigmoid outputs.
    """
    hop = classifier.frontend.hop_length
    padded = song_padded(wave, classifier.excerpt_frames, hop)
    frames = np.arange(0, 1 + len(wave) // hop, frame_step)
    length = classifier.excerpt_samples
    excerpts = np.stack([padded[f * hop: f * hop + length] for f in frames])
    logits = map_chunks(classifier.logits, excerpts, chunk_size=batch_size)
    return frames, 1.0 / (1.0 + np.exp(-logits[:, 0]))


def median_smoothed(probs, *, frames_per_second: float, median_seconds: float,
                    frame_step: int = 1) -> np.ndarray:
    """``probs`` (one song's p(sing) of every ``frame_step``-th frame) after a sliding median
    over ``median_seconds`` (an odd number of evaluated frames, edges repeated)."""
    window = int(round(median_seconds * frames_per_second / frame_step)) // 2 * 2 + 1
    return ndimage.median_filter(np.asarray(probs), size=window, mode="nearest")


def frame_errors(probs, labels, *, frames_per_second: float, frame_step: int = 1,
                 median_seconds: float = VOICE_MEDIAN_SECONDS,
                 threshold: float = VOICE_THRESHOLD) -> dict:
    """Frame accuracy and error of per-song singing probabilities, raw and median-filtered.

    Args:
      probs, labels: one array per song, ``(num_evaluated_frames,)`` each: p(sing) and the 0/1
        label of every ``frame_step``-th frame.
      frames_per_second: the front-end's frame rate (sample rate / hop).
      median_seconds: length (s) of the sliding median over each song's probabilities
        (odd number of evaluated frames, edges repeated); 0 disables it.
      threshold: a frame is "sing" when ``p > threshold``.

    Returns:
      ``accuracy``, ``error`` (1 - accuracy), and with the filter ``accuracy_median_filtered``,
      ``error_median_filtered``, ``median_filter_seconds``; plus ``threshold``,
      ``sing_fraction``, ``num_frames``, ``frame_step``.
    """
    flat_p, flat_y = np.concatenate(probs), np.concatenate(labels)
    acc = float(metrics.frame_accuracy(flat_p, flat_y, threshold=threshold))
    out = {"accuracy": acc, "error": 1.0 - acc, "threshold": float(threshold),
           "sing_fraction": float(flat_y.mean()), "num_frames": int(len(flat_y)),
           "frame_step": int(frame_step)}
    if median_seconds > 0:
        smoothed = [median_smoothed(p, frames_per_second=frames_per_second,
                                    median_seconds=median_seconds, frame_step=frame_step)
                    for p in probs]
        acc_f = float(metrics.frame_accuracy(np.concatenate(smoothed), flat_y,
                                             threshold=threshold))
        out.update({"accuracy_median_filtered": acc_f, "error_median_filtered": 1.0 - acc_f,
                    "median_filter_seconds": float(median_seconds)})
    return out


def evaluate_songs(classifier: Classifier, dataset: SongDataset, *, frame_step: int = 1,
                   batch_size: int = 32, median_seconds: float = VOICE_MEDIAN_SECONDS,
                   threshold: float = VOICE_THRESHOLD) -> dict:
    """Frame accuracy and error (p(sing) > ``threshold``, 0.51 as published) over every
    ``frame_step``-th frame of all songs (:func:`frame_errors`).

    ``accuracy``/``error`` score the raw per-frame outputs; ``*_median_filtered`` score them
    after a sliding median over ``median_seconds`` (s) of each song, the published detector's
    post-processing (0.8 s) under which its error is reported; 0 disables it.
    """
    hop = classifier.frontend.hop_length
    probs, labels = [], []
    for i, wave in enumerate(dataset.waves):
        frames, p = song_frame_probabilities(classifier, wave, frame_step=frame_step,
                                             batch_size=batch_size)
        probs.append(p)
        labels.append(dataset.frame_labels(i, hop_length=hop)[frames])
    return frame_errors(probs, labels, frames_per_second=classifier.frontend.sample_rate / hop,
                        frame_step=frame_step, median_seconds=median_seconds,
                        threshold=threshold)


def evaluate(classifier: Classifier, dataset, *, frame_step: int = 1) -> dict:
    if isinstance(dataset, SongDataset):
        return evaluate_songs(classifier, dataset, frame_step=frame_step)
    return evaluate_clips(classifier, dataset)
