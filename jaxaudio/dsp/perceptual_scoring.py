"""Perceptual scores of a set of adversaries next to their originals, and their means.

:mod:`jaxaudio.dsp.perceptual` scores pairs of waveforms; this module scores a whole attacked
set the way a study reports it: the share of perturbation energy above the masking threshold on
every pair, ViSQOL MOS-LQO on a chosen subset (ViSQOL costs about 0.4 s per 3-s clip, and refuses
clips shorter than :data:`~jaxaudio.dsp.perceptual.VISQOL_MIN_SECONDS`), and the means over the
successful adversaries::

    mask = visqol_selection(len(x), x.shape[1], rate, first=16, also=[3, 7])
    scores = score_adversaries(x, adversarials, rate, visqol_mask=mask)
    means = perceptual_means(scores, success, first=16)
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxaudio.dsp import perceptual

__all__ = ["visqol_version", "visqol_selection", "score_adversaries", "perceptual_means"]


def visqol_version() -> str:
    """The installed ``visqol-python`` version (a stage setting, so that an upgrade rescores)."""
    return version("visqol-python")


def visqol_selection(n: int, samples: int, rate: int, *, first: Optional[int],
                     also: Sequence[int] = ()) -> np.ndarray:
    """Which of ``n`` pairs ViSQOL scores: the first ``first`` (None = all) and the positions
    ``also``, none if the clips (``samples`` long at ``rate`` Hz) are shorter than
    :data:`~jaxaudio.dsp.perceptual.VISQOL_MIN_SECONDS`. Returns a bool mask [shape=(n,)]."""
    scored = np.zeros(n, bool)
    scored[:n if first is None else first] = True
    scored[list(also)] = True
    scored &= samples >= perceptual.VISQOL_MIN_SECONDS * rate
    return scored


def score_adversaries(originals, adversarials, rate: int, *, visqol_mask) -> dict:
    """Share above the masking threshold of every pair, ViSQOL MOS-LQO where ``visqol_mask``.

    Parameters
    ----------
    originals, adversarials : np.ndarray [shape=(n, samples)]
        Waveforms in [-1, 1] at ``rate`` Hz.
    rate : int
        Hz.
    visqol_mask : np.ndarray [shape=(n,), bool]
        The pairs ViSQOL scores (:func:`visqol_selection`).

    Returns
    -------
    dict
        ``share_above_threshold`` [shape=(n,), in [0, 1]], ``visqol_mos`` [shape=(n,), 1-5, NaN
        where not scored], ``visqol_scored`` (the mask), ``share_seconds`` (wall time of the
        shares) and ``visqol_seconds_per_clip`` (wall time per scored pair).
    """
    scored = np.asarray(visqol_mask, bool)
    t0 = time.perf_counter()
    share = perceptual.share_above_threshold(originals, adversarials, rate)
    t1 = time.perf_counter()
    mos = np.full(len(originals), np.nan)
    if scored.any():
        mos[scored] = perceptual.visqol_scores(originals[scored], adversarials[scored], rate)
    return {"share_above_threshold": share, "visqol_mos": mos, "visqol_scored": scored,
            "share_seconds": np.asarray(t1 - t0),
            "visqol_seconds_per_clip": np.asarray((time.perf_counter() - t1) /
                                                  max(int(scored.sum()), 1))}


def perceptual_means(scores: Mapping, success, *, first: Optional[int]) -> dict:
    """Means over the successful adversaries of :func:`score_adversaries`' ``scores``.

    Parameters
    ----------
    scores : mapping
        :func:`score_adversaries`' output.
    success : np.ndarray [shape=(n,), bool]
        Which adversaries succeeded.
    first : int or None
        The ViSQOL mean is over the first ``first`` pairs only (a fixed subset, the same for
        every attack; None = all), although other pairs may carry a score.

    Returns
    -------
    dict
        ``visqol_mos_mean`` (None without a scored success), ``visqol_n``,
        ``share_above_threshold_mean`` (None without a success), ``visqol_seconds_per_clip``
        and ``share_seconds``.
    """
    ok = np.asarray(success, bool)
    scored = ok & np.asarray(scores["visqol_scored"], bool)
    if first is not None:
        scored[first:] = False
    share = np.asarray(scores["share_above_threshold"])
    return {"visqol_mos_mean": (float(np.asarray(scores["visqol_mos"])[scored].mean())
                                if scored.any() else None),
            "visqol_n": int(scored.sum()),
            "share_above_threshold_mean": float(share[ok].mean()) if ok.any() else None,
            "visqol_seconds_per_clip": float(scores["visqol_seconds_per_clip"]),
            "share_seconds": float(scores["share_seconds"])}
