"""Dataset containers shared by the synthetic generators and the real-dataset loaders."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

#: The 12 musical labels of FSDKaggle2019 used by the instrument studies (docs/studies.md §1),
#: in alphabetical order; a class index is a position in this tuple.
INSTRUMENT_LABELS: tuple[str, ...] = (
    "Accordion", "Acoustic_guitar", "Bass_drum", "Bass_guitar", "Electric_guitar",
    "Female_singing", "Glockenspiel", "Gong", "Harmonica", "Hi-hat", "Male_singing",
    "Marimba_and_xylophone",
)


@dataclasses.dataclass(frozen=True)
class ClipDataset:
    """Labelled clips of variable length (instrument tagging).

    Attributes:
      waves: one float32 mono array per clip, samples in [-1, 1], at ``sample_rate``.
      targets: ``(num_clips, num_classes)`` float32 multi-hot targets.
      labels: ``(num_clips,)`` int32 class index for single-label clips, -1 for multi-label.
      label_names: class names; index ``k`` of ``targets`` is ``label_names[k]``.
      sample_rate: Hz.
      names: clip identifiers (file names for real data).
    """

    waves: Sequence[np.ndarray]
    targets: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    sample_rate: int
    names: tuple[str, ...]

    def __post_init__(self):
        n = len(self.waves)
        if self.targets.shape != (n, len(self.label_names)):
            raise ValueError(
                f"targets must have shape ({n}, {len(self.label_names)}), got {self.targets.shape}"
            )
        if self.labels.shape != (n,) or len(self.names) != n:
            raise ValueError("labels and names must have one entry per clip")

    def __len__(self) -> int:
        return len(self.waves)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def subset(self, index) -> "ClipDataset":
        """The clips at integer positions ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        return dataclasses.replace(
            self,
            waves=[self.waves[i] for i in index],
            targets=self.targets[index],
            labels=self.labels[index],
            names=tuple(self.names[i] for i in index),
        )

    def with_labels(self, labels: np.ndarray) -> "ClipDataset":
        """Same clips with new single-label class indices (targets rebuilt one-hot)."""
        labels = np.asarray(labels, dtype=np.int32)
        targets = np.eye(self.num_classes, dtype=np.float32)[labels]
        return dataclasses.replace(self, labels=labels, targets=targets)


@dataclasses.dataclass(frozen=True)
class SongDataset:
    """Songs with singing-voice annotations (singing voice detection).

    Attributes:
      waves: one float32 mono array per song, in [-1, 1], at ``sample_rate``.
      segments: per song, a ``(k, 2)`` float array of ``[start, end)`` times in seconds
        during which a voice sings; everything else is "nosing".
      sample_rate: Hz.
      names: song identifiers (file stems for real data).
    """

    waves: Sequence[np.ndarray]
    segments: Sequence[np.ndarray]
    sample_rate: int
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.waves)

    def frame_labels(self, i: int, *, hop_length: int) -> np.ndarray:
        """0/1 float32 label per centred STFT frame of song ``i`` (1 = singing).

        Frame ``t`` is centred at sample ``t * hop_length``; it is labelled by whether that
        instant lies inside a singing segment.
        """
        num = 1 + len(self.waves[i]) // hop_length
        times = np.arange(num) * hop_length / self.sample_rate
        out = np.zeros(num, dtype=np.float32)
        for start, end in np.asarray(self.segments[i]).reshape(-1, 2):
            out[(times >= start) & (times < end)] = 1.0
        return out
