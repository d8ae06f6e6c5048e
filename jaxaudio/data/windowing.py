"""Cut clips into fixed-length, half-overlapping windows (docs/studies.md §1).

The instrument classifier sees excerpts of a fixed number of frames; long clips are cut into
half-overlapping windows and short ones are circularly padded (tiled) to one full window. The
same helpers work on waveforms (samples) and on spectrograms (frames along any axis).
Numpy only: this is data preparation, outside the differentiable graph.
"""

from __future__ import annotations

import numpy as np

__all__ = ["window_starts", "window", "window_dataset", "centre_excerpt"]


def _check_lengths(length: int, hop: int | None) -> tuple[int, int]:
    if int(length) != length or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length}")
    length = int(length)
    if hop is None:
        hop = max(length // 2, 1)
    if int(hop) != hop or hop < 1:
        raise ValueError(f"hop must be an integer >= 1, got {hop}")
    return length, int(hop)


def window_starts(num_items: int, *, length: int, hop: int | None = None) -> np.ndarray:
    """Start positions of the windows that :func:`window` cuts from ``num_items`` items.

    Regular starts ``0, hop, 2*hop, ...`` while a full window fits, plus a final window
    ``num_items - length`` if the regular ones leave the end uncovered. A clip shorter than
    ``length`` gives the single start ``0`` (it is tiled to ``length``).

    Returns
    -------
    np.ndarray [shape=(num_windows,)], int64
    """
    length, hop = _check_lengths(length, hop)
    if num_items < 1:
        raise ValueError("cannot window an empty input (0 items along the axis)")
    if num_items <= length:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, num_items - length + 1, hop, dtype=np.int64)
    if starts[-1] + length < num_items:
        starts = np.append(starts, num_items - length)
    return starts


def window(x, *, length: int, hop: int | None = None, axis: int = -1) -> np.ndarray:
    """Cut ``x`` along ``axis`` into windows of ``length``, stacked on a new leading axis.

    Parameters
    ----------
    x : np.ndarray [shape=(..., n, ...)]
        A waveform ``(n,)`` or e.g. a spectrogram ``(n_mels, n)`` with ``axis=-1``.
    length : int >= 1
        Window length in items along ``axis`` (samples or frames).
    hop : int >= 1, optional
        Step between window starts; default ``length // 2`` (half overlap).
    axis : int
        Axis to cut along.

    Returns
    -------
    np.ndarray [shape=(num_windows, ..., length, ...)]
        Windows in time order. Inputs shorter than ``length`` are circularly padded (tiled)
        to one window; otherwise the last window is the final ``length`` items, so every item
        of ``x`` lies in at least one window.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a scalar")
    axis = axis % x.ndim
    num_items = x.shape[axis]
    starts = window_starts(num_items, length=length, hop=hop)
    length = int(length)
    # Index modulo num_items: identity for windows that fit, circular tiling for short inputs.
    index = (starts[:, None] + np.arange(length)[None, :]) % num_items  # (num_windows, length)
    moved = np.moveaxis(x, axis, -1)
    windows = moved[..., index]  # (..., num_windows, length)
    windows = np.moveaxis(windows, -2, 0)  # (num_windows, ..., length)
    return np.moveaxis(windows, -1, axis + 1)


# ----------------------------------------------------------------------------- excerpts of songs
# (frame-labelled songs, docs/studies.md §3: the singing voice detector sees the excerpt centred
# on a frame; the LIME audit picks confidently classified excerpts of each class)

__all__ += ["song_padded", "excerpt_at", "pick_confident"]


def song_padded(wave, excerpt_frames: int, hop_length: int) -> np.ndarray:
    """Zero-pad a song so that frame ``t``'s centred excerpt starts at sample ``t * hop``."""
    half = (excerpt_frames // 2) * hop_length
    return np.pad(np.asarray(wave, np.float32), (half, half + hop_length))


def excerpt_at(waves, songs, frames, *, excerpt_frames: int, hop_length: int,
               excerpt_samples: int) -> np.ndarray:
    """The excerpts centred on frames ``frames[i]`` of songs ``waves[songs[i]]``.

    Returns
    -------
    np.ndarray [shape=(len(songs), excerpt_samples)], float32
        (0 rows when ``songs`` is empty.)
    """
    songs, frames = np.asarray(songs, np.int64), np.asarray(frames, np.int64)
    if songs.shape != frames.shape or songs.ndim != 1:
        raise ValueError(f"songs and frames must be 1-D of one length, got {songs.shape}, "
                         f"{frames.shape}")
    if len(songs) == 0:
        return np.zeros((0, int(excerpt_samples)), np.float32)
    return np.stack([
        song_padded(waves[s], excerpt_frames, hop_length)[f * hop_length:
                                                          f * hop_length + excerpt_samples]
        for s, f in zip(songs, frames)
    ]).astype(np.float32)


def pick_confident(p_class, is_correct, *, num: int, confidence: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Indices of ``num`` frames predicted as one class, confident and correct first.

    Candidates are drawn in random order (``rng``) from three pools in turn, each topping up
    what the previous left short: predicted as the class with ``p_class >= confidence`` and
    correct; confident (right or wrong); predicted as the class at all (``p_class > 0.5``).
    Tiny smoke models may need the fallbacks; ``is_correct[picked]`` tells which is which.

    Parameters
    ----------
    p_class : np.ndarray [shape=(num_frames,)]
        Probability of the class, per frame.
    is_correct : np.ndarray [shape=(num_frames,)], bool
        Whether the frame's true label is the class.
    num : int >= 0
    confidence : float in [0.5, 1]
    rng : np.random.Generator

    Returns
    -------
    np.ndarray [shape=(<= num,)], int64
    """
    p_class = np.asarray(p_class)
    is_correct = np.asarray(is_correct, bool)
    if p_class.shape != is_correct.shape or p_class.ndim != 1:
        raise ValueError(f"p_class and is_correct must be 1-D of one length, got "
                         f"{p_class.shape}, {is_correct.shape}")
    if int(num) != num or num < 0:
        raise ValueError(f"num must be an integer >= 0, got {num!r}")
    predicted = p_class > 0.5
    confident = predicted & (p_class >= confidence)
    picked: list[int] = []
    for pool in (confident & is_correct, confident, predicted):
        candidates = np.setdiff1d(np.flatnonzero(pool), picked)
        need = int(num) - len(picked)
        if need <= 0:
            break
        picked += list(rng.permutation(candidates)[:need])
    return np.asarray(picked, np.int64)


def window_dataset(waves, *, length: int,
                   hop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Window every clip of a list and stack the results.

    Parameters
    ----------
    waves : list of np.ndarray [shape=(n_i,)]
        1-D clips of any lengths.
    length, hop : int
        As in :func:`window`.

    Returns
    -------
    windows : np.ndarray [shape=(total_windows, length)]
        In clip order, then time order; dtype of the clips (float32 for float input).
    clip_index : np.ndarray [shape=(total_windows,)], int64
        Position in ``waves`` of the clip each window came from.
    """
    if len(waves) == 0:
        raise ValueError("waves is empty: need at least one clip to window")
    pieces, owners = [], []
    for i, wave in enumerate(waves):
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"waves[{i}] must be 1-D, got shape {wave.shape}")
        if wave.size == 0:
            raise ValueError(f"waves[{i}] is empty (0 samples)")
        w = window(wave, length=length, hop=hop)
        pieces.append(w)
        owners.append(np.full(len(w), i, dtype=np.int64))
    return np.concatenate(pieces, axis=0), np.concatenate(owners)


def centre_excerpt(wave, length: int) -> np.ndarray:
    """The centre ``length`` samples of a clip; a shorter clip is tiled circularly first.

    Parameters
    ----------
    wave : np.ndarray [shape=(n,)]
        A 1-D clip with ``n >= 1`` samples.
    length : int >= 1
        Samples of the excerpt.

    Returns
    -------
    excerpt : np.ndarray [shape=(length,)], float32
        ``wave[(n - length) // 2 :][:length]`` for ``n >= length``; otherwise the same cut of
        ``wave`` tiled ``ceil(length / n)`` times (as the classifier's windowing pads).
    """
    if int(length) != length or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    length = int(length)
    wave = np.asarray(wave, np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"wave must be a non-empty 1-D clip, got shape {wave.shape}")
    if len(wave) < length:
        wave = np.tile(wave, -(-length // len(wave)))
    start = (len(wave) - length) // 2
    return wave[start:start + length]
