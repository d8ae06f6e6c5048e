"""The excerpts the audit attacks: every evaluated frame of the test songs with its label and
p(class 1), and confidently classified frames of each class (docs/studies.md §3)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from jaxaudio import metrics
from jaxaudio.data import windowing
from jaxaudio.models import inference

__all__ = ["frame_table", "pick_per_class", "attack_excerpts"]


def frame_table(clf, waves, frame_labels, *, frame_step: int, progress: bool = False):
    """``(num_frames, 4)`` float rows ``(song, frame, label, p)`` of every ``frame_step``-th
    frame of every song (:func:`jaxaudio.models.inference.song_frame_probabilities`);
    ``frame_labels(i)`` gives song ``i``'s label per frame."""

    rows = []
    for i in tqdm(range(len(waves)), disable=not progress, leave=False, desc="test songs"):
        frames, probs = inference.song_frame_probabilities(clf, waves[i], frame_step=frame_step)
        labels = frame_labels(i)[frames]
        rows.append(np.stack([np.full(len(frames), i), frames, labels, probs], 1))
    return np.concatenate(rows)


def pick_per_class(table, *, num: int, confidence: float, rng: np.random.Generator):
    """``(rows, classes)``: up to ``num`` rows of ``table`` predicted as class 0, then as class
    1 (``classes``: which), confident (p(class) >= ``confidence``) and correctly labelled ones
    first (:func:`jaxaudio.data.windowing.pick_confident`)."""

    chosen = []
    for source in (0, 1):
        p_class = table[:, 3] if source == 1 else 1.0 - table[:, 3]
        chosen.append(windowing.pick_confident(p_class, table[:, 2] == source, rng=rng,
                                               num=num, confidence=confidence))
    classes = np.concatenate([np.full(len(c), d, np.int64) for d, c in enumerate(chosen)])
    return np.concatenate(chosen), classes


def attack_excerpts(clf, songs, *, frame_step: int, num: int, confidence: float,
                    rng: np.random.Generator, progress: bool = False) -> dict:
    """Frame accuracy of ``clf`` on ``songs`` (a :class:`jaxaudio.data.types` song set with
    ``waves`` and ``frame_labels``) and up to ``num`` excerpts predicted as each class
    (:func:`pick_per_class`), cut at their frames (:func:`jaxaudio.data.windowing.excerpt_at`).

    ``direction`` is the predicted class the excerpt is attacked from; ``correct`` whether its
    true label is that class. Raises ``ValueError`` when no excerpt qualifies.
    """

    hop = clf.frontend.hop_length
    table = frame_table(clf, songs.waves, lambda i: songs.frame_labels(i, hop_length=hop),
                        frame_step=frame_step, progress=progress)
    chosen, directions = pick_per_class(table, num=num, confidence=confidence, rng=rng)
    index, frames = table[chosen, 0].astype(np.int64), table[chosen, 1].astype(np.int64)
    waves = windowing.excerpt_at(songs.waves, index, frames, excerpt_frames=clf.excerpt_frames,
                                 hop_length=hop, excerpt_samples=clf.excerpt_samples)
    if len(waves) == 0:
        raise ValueError("no test excerpt is predicted as either class; cannot attack "
                         "(check --model / --data)")
    return {"accuracy": float(metrics.frame_accuracy(table[:, 3], table[:, 2])),
            "num_frames": len(table), "frame_step": frame_step,
            "sing_fraction": float(table[:, 2].mean()), "waves": waves, "direction": directions,
            "song": index, "frame": frames, "true_label": table[chosen, 2].astype(np.int64),
            "probability": table[chosen, 3], "correct": table[chosen, 2] == directions}
