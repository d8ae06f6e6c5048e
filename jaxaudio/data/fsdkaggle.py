"""FSDKaggle2019 (DCASE 2019 task 2, "Freesound Audio Tagging 2019") loader.

On-disk layout (docs/studies.md §1, the Zenodo release)::

    ROOT/FSDKaggle2019.meta/train_curated_post_competition.csv
    ROOT/FSDKaggle2019.meta/train_noisy_post_competition.csv
    ROOT/FSDKaggle2019.meta/test_post_competition.csv
    ROOT/FSDKaggle2019.audio_train_curated/<fname>     44.1 kHz mono 16-bit WAV
    ROOT/FSDKaggle2019.audio_train_noisy/<fname>
    ROOT/FSDKaggle2019.audio_test/<fname>

Each CSV has a header with at least the columns ``fname`` and ``labels``; ``labels`` holds the
clip's labels separated by commas (quoted, e.g. ``"Bass_guitar,Strum"``). Other columns
(``freesound_id``, ``license``, ``usage``, ...) are ignored.

The instrument studies use the clips carrying exactly one of the 12 musical labels
(:data:`~jaxaudio.data.types.INSTRUMENT_LABELS`) and nothing else: 799 clips of the curated set.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from jaxaudio.data.audio import load_audio
from jaxaudio.data.types import INSTRUMENT_LABELS, ClipDataset

__all__ = [
    "FSDKAGGLE2019_LABELS",
    "FSDKAGGLE2019_SPLITS",
    "FSDKAGGLE_SPLIT_SEED",
    "read_fsdkaggle_csv",
    "load_fsdkaggle2019",
    "fsdkaggle_split",
]

#: The full 80-label vocabulary of FSDKaggle2019, in alphabetical (submission-column) order.
FSDKAGGLE2019_LABELS: tuple[str, ...] = (
    "Accelerating_and_revving_and_vroom", "Accordion", "Acoustic_guitar", "Applause", "Bark",
    "Bass_drum", "Bass_guitar", "Bathtub_(filling_or_washing)", "Bicycle_bell",
    "Burping_and_eructation", "Bus", "Buzz", "Car_passing_by", "Cheering",
    "Chewing_and_mastication", "Child_speech_and_kid_speaking", "Chink_and_clink",
    "Chirp_and_tweet", "Church_bell", "Clapping", "Computer_keyboard", "Crackle", "Cricket",
    "Crowd", "Cupboard_open_or_close", "Cutlery_and_silverware", "Dishes_and_pots_and_pans",
    "Drawer_open_or_close", "Drip", "Electric_guitar", "Fart", "Female_singing",
    "Female_speech_and_woman_speaking", "Fill_(with_liquid)", "Finger_snapping", "Frying_(food)",
    "Gasp", "Glockenspiel", "Gong", "Gurgling", "Harmonica", "Hi-hat", "Hiss", "Keys_jangling",
    "Knock", "Male_singing", "Male_speech_and_man_speaking", "Marimba_and_xylophone",
    "Mechanical_fan", "Meow", "Microwave_oven", "Motorcycle", "Printer", "Purr",
    "Race_car_and_auto_racing", "Raindrop", "Run", "Scissors", "Screaming", "Shatter", "Sigh",
    "Sink_(filling_or_washing)", "Skateboard", "Slam", "Sneeze", "Squeak", "Stream", "Strum",
    "Tap", "Tick-tock", "Toilet_flush", "Traffic_noise_and_roadway_noise",
    "Trickle_and_dribble", "Walk_and_footsteps", "Water_tap_and_faucet", "Waves_and_surf",
    "Whispering", "Writing", "Yell", "Zipper_(clothing)",
)
_VOCABULARY = frozenset(FSDKAGGLE2019_LABELS)

#: split name -> (CSV file inside ``FSDKaggle2019.meta/``, audio folder inside ROOT).
FSDKAGGLE2019_SPLITS: dict[str, tuple[str, str]] = {
    "curated": ("train_curated_post_competition.csv", "FSDKaggle2019.audio_train_curated"),
    "noisy": ("train_noisy_post_competition.csv", "FSDKaggle2019.audio_train_noisy"),
    "test": ("test_post_competition.csv", "FSDKaggle2019.audio_test"),
}
_META_DIR = "FSDKaggle2019.meta"

#: Default seed of the fixed 75/25 train/validation split of the instrument studies.
FSDKAGGLE_SPLIT_SEED: int = 0


def read_fsdkaggle_csv(csv_path: str | os.PathLike) -> list[tuple[str, tuple[str, ...]]]:
    """Read an FSDKaggle2019 metadata CSV and validate its labels.

    Parameters
    ----------
    csv_path : path-like
        One of the ``*_post_competition.csv`` files.

    Returns
    -------
    rows : list of (fname, labels)
        In file order; ``labels`` is the tuple of the clip's labels in the order written.

    Raises
    ------
    ValueError
        If the file is missing or unreadable, lacks the ``fname``/``labels`` columns, has a row
        with an empty file name, a duplicate file name, or a label outside
        :data:`FSDKAGGLE2019_LABELS` (the message names the file, the line and the label).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ValueError(f"FSDKaggle2019 metadata CSV not found: {csv_path}")
    rows: list[tuple[str, tuple[str, ...]]] = []
    seen: dict[str, int] = {}
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in ("fname", "labels") if c not in header]
            if missing:
                raise ValueError(
                    f"{csv_path}: header must contain the columns 'fname' and 'labels', "
                    f"missing {missing} (header: {header})"
                )
            for row in reader:
                line = reader.line_num
                fname = (row.get("fname") or "").strip()
                if not fname:
                    raise ValueError(f"{csv_path}, line {line}: empty 'fname'")
                if fname in seen:
                    raise ValueError(
                        f"{csv_path}, line {line}: duplicate fname {fname!r} "
                        f"(first on line {seen[fname]})"
                    )
                seen[fname] = line
                labels = tuple(lab.strip() for lab in (row.get("labels") or "").split(","))
                for lab in labels:
                    if lab not in _VOCABULARY:
                        raise ValueError(
                            f"{csv_path}, line {line} (fname {fname!r}): unknown label {lab!r}; "
                            "expected one of the 80 FSDKaggle2019 labels"
                        )
                rows.append((fname, labels))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"cannot read FSDKaggle2019 metadata CSV {csv_path}: {err}") from err
    return rows


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(labels, str):
        raise ValueError(f"labels must be a sequence of label names, got the string {labels!r}")
    labels = tuple(labels)
    if not labels:
        raise ValueError("labels must name at least one FSDKaggle2019 label")
    unknown = [lab for lab in labels if lab not in _VOCABULARY]
    if unknown:
        raise ValueError(f"labels contains names outside the FSDKaggle2019 vocabulary: {unknown}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels contains duplicates: {labels}")
    return labels


def load_fsdkaggle2019(
    root: str | os.PathLike,
    *,
    split: str,
    sample_rate: int = 16000,
    labels: Sequence[str] = INSTRUMENT_LABELS,
    single_label: bool = True,
    max_clips: int | None = None,
    progress: bool = True,
) -> ClipDataset:
    """Load (a label subset of) one FSDKaggle2019 split as a :class:`ClipDataset`.

    Parameters
    ----------
    root : path-like
        Folder holding ``FSDKaggle2019.meta/`` and the ``FSDKaggle2019.audio_*`` folders.
    split : {"curated", "noisy", "test"}
        Curated train set, noisy train set, or (curated) test set.
    sample_rate : int > 0
        Target sample rate in Hz; the 44.1 kHz files are resampled on load.
    labels : sequence of str
        Class names (all from :data:`FSDKAGGLE2019_LABELS`); class ``k`` is ``labels[k]``.
    single_label : bool
        If True, keep only clips whose *only* label is one of ``labels`` (the study's 799-clip
        curated subset; ``targets`` are one-hot). If False, keep clips carrying any of
        ``labels``; ``targets`` are multi-hot over ``labels`` (other labels are dropped) and
        ``dataset.labels`` is -1 for clips with more than one of ``labels``.
    max_clips : int > 0 or None
        Keep only the first ``max_clips`` selected clips (CSV order).
    progress : bool
        Show a tqdm progress bar while reading audio.

    Returns
    -------
    ClipDataset
        ``waves[i]`` float32 ``(num_samples_i,)`` in [-1, 1] at ``sample_rate``;
        ``targets`` float32 ``(num_clips, len(labels))``; ``labels`` int32 ``(num_clips,)``;
        ``names`` the CSV file names, in CSV order.

    Raises
    ------
    ValueError
        Bad arguments, missing CSV, unknown labels in the CSV (see :func:`read_fsdkaggle_csv`),
        no clip matching ``labels``, audio files referenced by the CSV but missing, or
        unreadable/corrupt audio.
    """
    if split not in FSDKAGGLE2019_SPLITS:
        raise ValueError(f"split must be one of {sorted(FSDKAGGLE2019_SPLITS)}, got {split!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if max_clips is not None and (isinstance(max_clips, bool)
                                  or not isinstance(max_clips, (int, np.integer))
                                  or max_clips <= 0):
        raise ValueError(f"max_clips must be a positive integer or None, got {max_clips!r}")
    labels = _check_labels(labels)
    index = {lab: k for k, lab in enumerate(labels)}

    root = Path(root)
    csv_name, audio_name = FSDKAGGLE2019_SPLITS[split]
    rows = read_fsdkaggle_csv(root / _META_DIR / csv_name)
    audio_dir = root / audio_name

    selected: list[tuple[str, list[int]]] = []
    for fname, clip_labels in rows:
        distinct = set(clip_labels)
        ours = sorted(index[lab] for lab in distinct if lab in index)
        if not ours or (single_label and len(distinct) != 1):
            continue
        selected.append((fname, ours))
        if max_clips is not None and len(selected) == max_clips:
            break

    if not selected:
        kind = "exactly one label, which is one" if single_label else "at least one"
        raise ValueError(
            f"no clip in {root / _META_DIR / csv_name} carries {kind} of labels={labels}"
        )

    # Check every file before reading any, so a broken download fails fast.
    paths = [audio_dir / fname for fname, _ in selected]
    for path in paths:
        if not path.is_file():
            raise ValueError(
                f"audio file {path} listed in {root / _META_DIR / csv_name} does not exist"
            )

    from tqdm import tqdm


    waves = []
    for path in tqdm(paths, desc=f"FSDKaggle2019 {split}", unit="clip", disable=not progress):
        wave, sr = load_audio(path, sample_rate=sample_rate, mono=True)
        if sr != sample_rate:  # load_audio resamples; this guards against a contract change
            raise ValueError(f"{path}: expected sample rate {sample_rate} Hz, got {sr} Hz")
        waves.append(np.asarray(wave, dtype=np.float32))

    num_classes = len(labels)
    targets = np.zeros((len(selected), num_classes), dtype=np.float32)
    class_index = np.full(len(selected), -1, dtype=np.int32)
    for i, (_, ours) in enumerate(selected):
        targets[i, ours] = 1.0
        if len(ours) == 1:
            class_index[i] = ours[0]
    return ClipDataset(
        waves=waves,
        targets=targets,
        labels=class_index,
        label_names=labels,
        sample_rate=int(sample_rate),
        names=tuple(fname for fname, _ in selected),
    )


def fsdkaggle_split(
    dataset: ClipDataset,
    *,
    fraction: float = 0.25,
    seed: int = FSDKAGGLE_SPLIT_SEED,
) -> tuple[ClipDataset, ClipDataset]:
    """Fixed-seed train/validation split, stratified by class (the study's 75/25 split).

    The validation set gets ``round(fraction * len(dataset))`` clips, spread over the classes in
    proportion to their sizes (largest remainders get the leftover clips); multi-label clips
    (``labels == -1``) form one more stratum. Both parts keep the original clip order.

    Parameters
    ----------
    dataset : ClipDataset
    fraction : float in (0, 1)
        Share of clips in the validation part.
    seed : int
        Seed of the ``numpy.random.Generator`` that draws the split.

    Returns
    -------
    train, valid : ClipDataset
        Disjoint; together they hold every clip exactly once.

    Raises
    ------
    ValueError
        If ``fraction`` is outside (0, 1) or would leave one part empty.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")
    n = len(dataset)
    num_valid = int(round(fraction * n))
    if num_valid == 0 or num_valid == n:
        raise ValueError(
            f"fraction={fraction} of {n} clips leaves an empty train or validation part"
        )
    rng = np.random.default_rng(seed)
    strata = np.asarray(dataset.labels)
    classes, counts = np.unique(strata, return_counts=True)
    quota = counts * (num_valid / n)  # proportional to class size, sums to num_valid
    take = np.floor(quota).astype(np.int64)
    leftover = num_valid - int(take.sum())
    if leftover > 0:
        # Largest remainders first; ties broken at random (but reproducibly).
        order = np.lexsort((rng.random(len(classes)), -(quota - take)))
        take[order[:leftover]] += 1
    valid_index = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(strata == cls)
        valid_index.append(rng.permutation(members)[:k])
    valid_mask = np.zeros(n, dtype=bool)
    valid_mask[np.concatenate(valid_index)] = True
    return dataset.subset(np.flatnonzero(~valid_mask)), dataset.subset(np.flatnonzero(valid_mask))
