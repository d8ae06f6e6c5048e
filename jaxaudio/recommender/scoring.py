"""The k-occurrence of one song of a recommender replaced by a new waveform.

:func:`song_counts` is the check the hub attack (:mod:`jaxaudio.recommender.attack`) makes
inside its loop, pure ``jnp``: the song's new Gaussian, its distance row
(:func:`jaxaudio.recommender.hubness.song_row`), the matrix with that row and column replaced,
rescaled by Mutual Proximity where the recommender uses it, and from it the published
approximate filter and the exact k-occurrence. :func:`exact_k_occurrences` counts a batch
(numpy), e.g. an attack's adversaries in the *other* recommender, or a white-noise control.

A *recommender* here is anything with the arrays of
:class:`jaxaudio.recommender.attack.Recommender`: ``gaussians`` (leading axis ``n``),
``distances`` ``(n, n)`` and ``kth`` ``(n,)``.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.recommender import features, hubness

__all__ = ["replaced_row", "song_counts", "exact_k_occurrences"]


def replaced_row(rec, g: features.Gaussian, song, *, mode: str = "published"):
    """Distances ``(n,)`` of song ``song`` to every song of ``rec`` once its Gaussian is ``g``
    (``jnp``; :func:`jaxaudio.recommender.hubness.song_row`)."""
    kl_from = features.kl_divergence(g, rec.gaussians)
    kl_to = jax.vmap(lambda q: features.kl_divergence(q, g))(rec.gaussians)
    return hubness.song_row(kl_from, kl_to, song, mode=mode)


def song_counts(rec, wave, song, *, mode: str = "published", mp: Optional[str] = None,
                k: int = 5):
    """k-occurrence of song ``song`` of ``rec`` replaced by ``wave``.

    Parameters
    ----------
    rec : Recommender
        See the module docstring; ``rec.kth`` must come from the metric ranked by (``mp``).
    wave : array [shape=(num_samples,)]
        The new waveform of the song, in [-1, 1].
    song : int
        Its index in the collection.
    mode, mp, k
        Distance mode, Mutual Proximity (None / ``"gaussian"`` / ``"empirical"``) and
        neighbours of the recommender.

    Returns
    -------
    approx, exact : int32 scalars (``jnp``)
        The published approximate filter (how many songs' ``k``-th-neighbour value the song
        beats) and the exact k-occurrence in the matrix with its row and column replaced.
    """
    row = replaced_row(rec, features.gaussian_of_wave(wave), song, mode=mode)
    m = hubness.mp_rescale(hubness.replace_song(rec.distances, song, row), mp)
    others = jnp.arange(m.shape[0]) != song
    approx = jnp.sum((m[:, song] < rec.kth) & others).astype(jnp.int32)
    return approx, hubness.k_occurrence_of(m, song, k=k)


def exact_k_occurrences(rec, waves, songs, *, mode: str = "published",
                        mp: Optional[str] = None, k: int = 5) -> np.ndarray:
    """The exact k-occurrence (:func:`song_counts`) of each song ``songs[i]`` replaced by
    ``waves[i]``, one song at a time; ``(batch,)`` int64."""
    return np.array([int(song_counts(rec, w, s, mode=mode, mp=mp, k=k)[1])
                     for w, s in zip(waves, songs)])
