"""Perceptual quality of adversarial audio, next to the SNR (docs/studies.md §1).

Two measures of how audible a perturbation is:

* :func:`visqol_scores`: ViSQOL v3 in audio mode (Hines et al.; the ``visqol-python`` package,
  a pure-Python port of Google's ViSQOL with its bundled SVR model) between the original and the
  adversarial: MOS-LQO from 1 (bad) to about 4.7 (the score of identical signals). Audio mode
  expects 48 kHz, so both signals are resampled with ``soxr`` (high quality) first. About
  0.4 s per 3-s clip on one CPU core, plus a one-off ~10 s the first time (numba compiles).
* :func:`share_above_threshold`: the share of the perturbation's PSD energy above the clean
  clip's frequency-masking threshold (:func:`jaxaudio.attacks.psychoacoustic.excess_share`):
  0 = entirely masked, 1 = nothing masked.

What was tried for a perceptual score: PEAQ (ITU-R BS.1387) has no maintained package that
installs from the registry here; ``audio-samples-qoe`` fails to build; ``visqol-python`` 3.8
installs on Python 3.11 and runs, so it is the score used.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import numpy as np

from jaxaudio.dsp.masking import excess_share, masking_threshold_example
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.runtime.extras import require

__all__ = ["VISQOL_RATE", "VISQOL_MIN_SECONDS", "visqol_api", "visqol_mos", "visqol_scores",
           "share_above_threshold"]

#: ViSQOL's audio mode works at 48 kHz.
VISQOL_RATE = 48000
#: ViSQOL compares patches of 45 frames: shorter signals (about 0.95 s) are refused.
VISQOL_MIN_SECONDS = 1.0


@functools.lru_cache(maxsize=1)
def visqol_api():
    """One ``visqol.VisqolApi`` created in audio mode (cached: creating it loads the model)."""
    visqol = require("visqol", "perceptual", feature="ViSQOL in jaxaudio.dsp.perceptual")
    api = visqol.VisqolApi()
    api.create(mode="audio")
    return api


def _to_48k(wave, rate: int) -> np.ndarray:
    import soxr

    wave = np.asarray(wave, np.float64)
    return wave if rate == VISQOL_RATE else soxr.resample(wave, rate, VISQOL_RATE, quality="HQ")


def visqol_mos(reference, degraded, sample_rate: int) -> float:
    """ViSQOL audio-mode MOS-LQO (1-5) of ``degraded`` against ``reference``.

    Args:
      reference, degraded: ``(samples,)`` waveforms in [-1, 1] at ``sample_rate`` Hz, same
        length, at least :data:`VISQOL_MIN_SECONDS` long.
      sample_rate: Hz; both are resampled to 48 kHz.
    """
    reference, degraded = np.asarray(reference), np.asarray(degraded)
    if reference.ndim != 1 or reference.shape != degraded.shape:
        raise ValueError(f"reference and degraded must be 1-D waveforms of one length, got "
                         f"{reference.shape} and {degraded.shape}")
    if int(sample_rate) != sample_rate or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if reference.shape[0] < VISQOL_MIN_SECONDS * sample_rate:
        raise ValueError(f"ViSQOL needs at least {VISQOL_MIN_SECONDS:g} s of audio, got "
                         f"{reference.shape[0] / sample_rate:.3g} s")
    result = visqol_api().measure_from_arrays(_to_48k(reference, int(sample_rate)),
                                              _to_48k(degraded, int(sample_rate)), VISQOL_RATE)
    return float(result.moslqo)


def visqol_scores(originals, adversarials, sample_rate: int, *,
                  progress: Optional[str] = None) -> np.ndarray:
    """:func:`visqol_mos` of every pair: ``(n, samples)`` twice -> float64 ``(n,)``.

    ``progress``: a description to show a tqdm bar over the clips.
    """
    originals, adversarials = np.asarray(originals), np.asarray(adversarials)
    if originals.ndim != 2 or originals.shape != adversarials.shape:
        raise ValueError(f"originals and adversarials must be (n, samples) of one shape, got "
                         f"{originals.shape} and {adversarials.shape}")
    pairs = zip(originals, adversarials)
    if progress is not None:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, total=len(originals), desc=str(progress), unit="clip", leave=False)
    return np.array([visqol_mos(o, a, sample_rate) for o, a in pairs], np.float64)


@functools.lru_cache(maxsize=8)
def _share_fn(sample_rate: int):

    def one(x, x_adv):
        return excess_share(x_adv - x, masking_threshold_example(x, sample_rate=sample_rate))

    return jax.jit(jax.vmap(one))


def share_above_threshold(originals, adversarials, sample_rate: int, *,
                          chunk_size: int = 8) -> np.ndarray:
    """Per pair, the share of the perturbation ``adversarial - original``'s PSD energy above the
    original's masking threshold (:mod:`jaxaudio.attacks.psychoacoustic`): ``(n, samples)``
    twice -> float64 ``(n,)`` in [0, 1]; 0 where nothing changed."""
    originals = np.asarray(originals, np.float32)
    adversarials = np.asarray(adversarials, np.float32)
    if originals.ndim != 2 or originals.shape != adversarials.shape:
        raise ValueError(f"originals and adversarials must be (n, samples) of one shape, got "
                         f"{originals.shape} and {adversarials.shape}")
    return np.asarray(map_chunks(_share_fn(int(sample_rate)), originals, adversarials,
                                 chunk_size=chunk_size, pad_single=False), np.float64)
