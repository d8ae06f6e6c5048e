"""The excerpts the audit attacks: every evaluated frame of the test songs with its label and
p(class 1), and confidently classified frames of each class (REFERENCE.md §3)."""

from __future__ import annotations

import numpy as np

__all__ = ["frame_table", "pick_per_class"]


def frame_table(clf, waves, frame_labels, *, frame_step: int, progress: bool = False):
    """``(num_frames, 4)`` float rows ``(song, frame, label, p)`` of every ``frame_step``-th
    frame of every song (:func:`jaxaudio.tasks.song_frame_probabilities`); ``frame_labels(i)``
    gives song ``i``'s label per frame."""
    from tqdm.auto import tqdm

    from jaxaudio import tasks

    rows = []
    for i in tqdm(range(len(waves)), disable=not progress, leave=False, desc="test songs"):
        frames, probs = tasks.song_frame_probabilities(clf, waves[i], frame_step=frame_step)
        labels = frame_labels(i)[frames]
        rows.append(np.stack([np.full(len(frames), i), frames, labels, probs], 1))
    return np.concatenate(rows)


def pick_per_class(table, *, num: int, confidence: float, rng: np.random.Generator):
    """``(rows, classes)``: up to ``num`` rows of ``table`` predicted as class 0, then as class
    1 (``classes``: which), confident (p(class) >= ``confidence``) and correctly labelled ones
    first (:func:`jaxaudio.data.windowing.pick_confident`)."""
    from jaxaudio.data import windowing

    chosen = []
    for source in (0, 1):
        p_class = table[:, 3] if source == 1 else 1.0 - table[:, 3]
        chosen.append(windowing.pick_confident(p_class, table[:, 2] == source, rng=rng,
                                               num=num, confidence=confidence))
    classes = np.concatenate([np.full(len(c), d, np.int64) for d, c in enumerate(chosen)])
    return np.concatenate(chosen), classes
