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
from typing import Iterable, Sequence

import numpy as np

__all__ = ["AUDIO_EXTENSIONS", "collect_audio", "clip_probabilities", "sing_segments",
           "predict_files", "write_predictions_csv"]

#: File endings read from folders (an explicitly named file is read whatever its ending).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")


def collect_audio(paths: Iterable, *, flag: str = "--audio") -> tuple[list[pathlib.Path], int]:
    """The audio files named by ``paths`` (files, or folders searched recursively for
    :data:`AUDIO_EXTENSIONS`, sorted). Returns ``(files, skipped)``: ``skipped`` counts the
    other files found in the folders. ``ValueError`` (naming ``flag``) for a missing path or
    when nothing is left."""
    files, skipped = [], 0
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                if f.suffix.lower() in AUDIO_EXTENSIONS:
                    files.append(f)
                else:
                    skipped += 1
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{flag} {raw}: no such file or folder")
    if not files:
        raise ValueError(f"{flag}: no audio files found (looked for "
                         f"{', '.join(AUDIO_EXTENSIONS)} in the folders given)")
    return files, skipped


def clip_probabilities(classifier, waves: Sequence[np.ndarray], *,
                       batch_size: int = 32) -> np.ndarray:
    """Clip-level class probabilities ``(len(waves), num_classes)`` of a multiclass model.

    ``waves``: 1-D float32 arrays at ``classifier.frontend.sample_rate``, any lengths. Each is
    cut into half-overlapping excerpts of ``classifier.excerpt_samples`` (circular padding for
    short ones); the clip's logits are the mean over its excerpts, then softmax (a
    ``task="multilabel"`` tagger: sigmoid, independent tag probabilities).
    """
    import jax

    from jaxaudio.batching import map_chunks
    from jaxaudio.data.windowing import window_dataset

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
    from jaxaudio.tasks import median_smoothed

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

    from jaxaudio import tasks
    from jaxaudio.data import load_audio

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
            _, p = tasks.song_frame_probabilities(classifier, wave)
            segs = sing_segments(p, frames_per_second=rate / hop,
                                 threshold=tasks.VOICE_THRESHOLD,
                                 median_seconds=tasks.VOICE_MEDIAN_SECONDS)
            sung = sum(b - a for a, b in segs)
            row.update(sing_fraction=float(min(1.0, sung / max(row["seconds"], 1e-9))),
                       segments=segs)
        else:
            probs = clip_probabilities(classifier, [wave])[0]
            order = np.argsort(-probs)[:top]
            row["top"] = [(classifier.label_names[i], float(probs[i])) for i in order]
            if classifier.task == "multilabel":
                from jaxaudio.models.classifier import TAG_THRESHOLD

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
