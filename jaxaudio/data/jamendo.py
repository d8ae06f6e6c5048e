"""Jamendo-VAD loader (Ramona et al. 2008, in the layout of Schlüter & Lehner's experiments).

On-disk layout (docs/studies.md §3)::

    ROOT/audio/<name>               93 songs; mp3 or ogg in the original release
    ROOT/labels/<stem>.lab          one segment per line: ``start end sing|nosing`` (seconds)
    ROOT/filelists/train|valid|test one audio file name per line (e.g. ``03 - Say me Good Bye.mp3``)

``<stem>`` is the file-list name without its extension. An audio file is looked up by the exact
name first and otherwise by stem with any extension (so songs converted to WAV/FLAC/OGG work
unchanged). File names may contain spaces; file-list lines are only stripped at the ends.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from jaxaudio.data.audio import load_audio
from jaxaudio.data.types import SongDataset

__all__ = ["JAMENDO_SPLITS", "read_filelist", "read_lab", "load_jamendo"]

JAMENDO_SPLITS: tuple[str, ...] = ("train", "valid", "test")

# Preference among several audio files sharing a stem: lossless first.
_EXTENSION_PREFERENCE = (".wav", ".flac", ".ogg", ".mp3")


def _stem(name: str) -> str:
    """File-list name without extension (``rsplit('.', 1)``, as in Schlüter's code)."""
    return name.rsplit(".", 1)[0] if "." in name else name


def read_filelist(path: str | os.PathLike) -> list[str]:
    """Audio file names listed in a Jamendo file list, in order.

    Blank lines are skipped; leading and trailing whitespace is removed (inner spaces are kept).

    Raises
    ------
    ValueError
        If the file does not exist, cannot be read, lists no files or lists a name twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Jamendo file list not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read Jamendo file list {path}: {err}") from err
    names: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            continue
        if name in names:
            raise ValueError(f"{path}, line {lineno}: {name!r} is listed twice")
        names.append(name)
    if not names:
        raise ValueError(f"Jamendo file list {path} lists no files")
    return names


def read_lab(path: str | os.PathLike) -> np.ndarray:
    """Singing segments of a ``.lab`` annotation file, merged.

    Parameters
    ----------
    path : path-like
        Text file with one ``start end label`` line per segment (whitespace separated, times in
        seconds, label ``sing`` or ``nosing``); blank lines are ignored.

    Returns
    -------
    segments : np.ndarray [shape=(k, 2), dtype=float64]
        Sorted, disjoint ``[start, end)`` intervals (seconds) covered by ``sing`` lines;
        overlapping or touching ``sing`` segments are merged, empty ones dropped.

    Raises
    ------
    ValueError
        If the file is missing or unreadable, or a line does not have exactly three fields,
        has non-numeric, non-finite or negative times, ``end < start``, or a label other than
        ``sing``/``nosing``. The message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Jamendo label file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read Jamendo label file {path}: {err}") from err
    sing: list[tuple[float, float]] = []
    for lineno, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {lineno}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'start end sing|nosing', got {line.strip()!r}")
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise ValueError(
                f"{where}: start and end must be numbers (seconds), got {line.strip()!r}"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise ValueError(
                f"{where}: need finite times with 0 <= start <= end, got {line.strip()!r}"
            )
        label = fields[2]
        if label not in ("sing", "nosing"):
            raise ValueError(f"{where}: label must be 'sing' or 'nosing', got {label!r}")
        if label == "sing" and end > start:
            sing.append((start, end))
    sing.sort()
    merged: list[list[float]] = []
    for start, end in sing:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.asarray(merged, dtype=np.float64).reshape(-1, 2)


def _audio_index(audio_dir: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for entry in audio_dir.iterdir():
        if entry.is_file():
            index.setdefault(_stem(entry.name), []).append(entry)
    return index


def _find_audio(audio_dir: Path, name: str, index: dict[str, list[Path]]) -> Path | None:
    exact = audio_dir / name
    if exact.is_file():
        return exact
    candidates = index.get(_stem(name), []) + index.get(name, [])
    if not candidates:
        return None

    def preference(p: Path) -> tuple[int, str]:
        ext = p.suffix.lower()
        rank = _EXTENSION_PREFERENCE.index(ext) if ext in _EXTENSION_PREFERENCE else 99
        return rank, p.name

    return min(candidates, key=preference)


def load_jamendo(
    root: str | os.PathLike,
    *,
    split: str,
    sample_rate: int = 22050,
    progress: bool = True,
) -> SongDataset:
    """Load one split of Jamendo-VAD as a :class:`SongDataset`.

    Parameters
    ----------
    root : path-like
        Folder holding ``audio/``, ``labels/`` and ``filelists/``.
    split : {"train", "valid", "test"}
    sample_rate : int > 0
        Target sample rate in Hz (the detector uses 22050); audio is resampled on load.
    progress : bool
        Show a tqdm progress bar while reading audio.

    Returns
    -------
    SongDataset
        ``waves[i]`` float32 mono ``(num_samples_i,)`` at ``sample_rate``; ``segments[i]``
        ``(k_i, 2)`` merged singing intervals in seconds (see :func:`read_lab`); ``names`` the
        file stems, in file-list order.

    Raises
    ------
    ValueError
        Unknown split or bad sample rate; missing file list; a listed song missing from
        ``audio/``; a missing or malformed ``.lab`` file; unreadable audio. Messages name the
        offending path (and line).
    """
    if split not in JAMENDO_SPLITS:
        raise ValueError(f"split must be one of {list(JAMENDO_SPLITS)}, got {split!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    root = Path(root)
    filelist = root / "filelists" / split
    names = read_filelist(filelist)
    audio_dir = root / "audio"
    if not audio_dir.is_dir():
        raise ValueError(f"Jamendo audio folder not found: {audio_dir}")
    index = _audio_index(audio_dir)

    # Resolve and parse everything cheap before decoding any audio, so errors come fast.
    audio_paths, segments = [], []
    for name in names:
        path = _find_audio(audio_dir, name, index)
        if path is None:
            raise ValueError(
                f"song {name!r} listed in {filelist} has no audio file in {audio_dir} "
                f"(looked for {audio_dir / name} or {_stem(name)}.<any extension>)"
            )
        audio_paths.append(path)
        segments.append(read_lab(root / "labels" / (_stem(name) + ".lab")))

    from tqdm import tqdm


    waves = []
    for path in tqdm(audio_paths, desc=f"Jamendo {split}", unit="song", disable=not progress):
        wave, sr = load_audio(path, sample_rate=sample_rate, mono=True)
        if sr != sample_rate:  # load_audio resamples; this guards against a contract change
            raise ValueError(f"{path}: expected sample rate {sample_rate} Hz, got {sr} Hz")
        waves.append(np.asarray(wave, dtype=np.float32))
    return SongDataset(
        waves=waves,
        segments=segments,
        sample_rate=int(sample_rate),
        names=tuple(_stem(name) for name in names),
    )
