"""Distances, nearest-neighbour recommendations, hubness and Mutual Proximity.

Numpy for whole collections (:func:`distance_matrix`, :func:`nearest_neighbours`,
:func:`k_occurrence`, :func:`skewness`, :func:`mutual_proximity`), and pure ``jax.numpy`` for
what the attack evaluates inside its compiled loop: the distance row of a perturbed song
(:func:`song_row`), the matrix with one song's row and column replaced
(:func:`replace_song`), Gaussian Mutual Proximity (:func:`mp_gaussian`) and the exact
k-occurrence of one song (:func:`k_occurrence_of`).

For a study: :func:`collection_hubness` (the hubness of a collection without and with Mutual
Proximity, in one dict) and :func:`choose_attacked_songs` (a seeded choice of non-hub songs).

Ties between equal distances are broken as a stable sort does: the lower index first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

__all__ = ["DISTANCE_MODES", "MP_METHODS", "distance_matrix", "song_row", "nearest_neighbours",
           "k_occurrence", "hubs", "skewness", "mp_gaussian", "mp_empirical",
           "mutual_proximity", "mp_rescale",
           "replace_song", "k_occurrence_of", "kth_neighbour_distance", "hubness_summary",
           "offdiag_stats", "HUBNESS_FIELDS", "SYSTEMS", "collection_hubness",
           "choose_attacked_songs"]

#: ``"published"``: entries ``[i, j]`` and ``[j, i]`` both ``KL(g_i || g_j)`` for ``j >= i``
#: (the published, one-directional matrix); ``"symmetric"``: ``(KL(g_i||g_j) + KL(g_j||g_i)) / 2``.
DISTANCE_MODES = ("published", "symmetric")
#: Mutual Proximity variants (:func:`mutual_proximity`).
MP_METHODS = ("gaussian", "empirical")


def _check_mode(mode: str) -> None:
    if mode not in DISTANCE_MODES:
        raise ValueError(f"distance mode must be one of {DISTANCE_MODES}, got {mode!r}")


def distance_matrix(kl, *, mode: str = "published") -> np.ndarray:
    """Song distances ``(n, n)`` from the KL matrix ``kl[i, j] = KL(g_i || g_j)``.

    Symmetric, zero diagonal, float64. See :data:`DISTANCE_MODES`.
    """
    _check_mode(mode)
    kl = np.asarray(kl, np.float64)
    if kl.ndim != 2 or kl.shape[0] != kl.shape[1]:
        raise ValueError(f"kl must be a square (n, n) matrix, got shape {kl.shape}")
    if mode == "published":
        upper = np.triu(kl, 1)
        d = upper + upper.T
    else:
        d = 0.5 * (kl + kl.T)
    np.fill_diagonal(d, 0.0)
    return d


def song_row(kl_from_song, kl_to_song, index, *, mode: str = "published"):
    """Distances ``(n,)`` of song ``index`` to every song (``jnp``; 0 at ``index``).

    ``kl_from_song[j] = KL(g || g_j)``, ``kl_to_song[j] = KL(g_j || g)`` for the song's (new)
    Gaussian ``g``; the published matrix takes ``KL(g || g_j)`` for ``j > index`` and
    ``KL(g_j || g)`` for ``j < index``.
    """
    _check_mode(mode)
    j = jnp.arange(kl_from_song.shape[-1])
    if mode == "published":
        row = jnp.where(j > index, kl_from_song, kl_to_song)
    else:
        row = 0.5 * (kl_from_song + kl_to_song)
    return jnp.where(j == index, 0.0, row)


def nearest_neighbours(distances, k: int = 5) -> np.ndarray:
    """The ``k`` nearest other songs of every song, ``(n, k)`` int, closest first (stable sort:
    equal distances go to the lower index)."""
    d = np.array(distances, np.float64)
    n = d.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n - 1] = [1, {n - 1}], got {k}")
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def k_occurrence(neighbours, n: int | None = None) -> np.ndarray:
    """How often each song appears in the others' neighbour lists, ``(n,)`` int (sums to
    ``n * k``)."""
    neighbours = np.asarray(neighbours)
    n = neighbours.shape[0] if n is None else int(n)
    return np.bincount(neighbours.reshape(-1), minlength=n)


def hubs(k_occ, hub_size: int = 25) -> np.ndarray:
    """Indices of the songs with k-occurrence ``>= hub_size``."""
    return np.flatnonzero(np.asarray(k_occ) >= hub_size)


def skewness(k_occ) -> float:
    """Skewness ``E[(N - μ)³] / σ³`` of the k-occurrence distribution (0 when constant)."""
    x = np.asarray(k_occ, np.float64)
    sd = x.std()
    return 0.0 if sd == 0 else float(np.mean((x - x.mean()) ** 3) / sd ** 3)


def offdiag_stats(d):
    """Per row mean and (population) std over the other songs (``jnp``).

    Parameters
    ----------
    d : array [shape=(..., n, n)]
        Distances; the diagonal is left out.

    Returns
    -------
    mu, sd : arrays [shape=(..., n)]
        ``sd`` floored at ``1e-6`` (its variance at ``1e-12``).
    """
    n = d.shape[-1]
    off = 1.0 - jnp.eye(n, dtype=d.dtype)
    mu = jnp.sum(d * off, axis=-1) / (n - 1)
    var = jnp.sum(((d - mu[..., None]) * off) ** 2, axis=-1) / (n - 1)
    return mu, jnp.sqrt(jnp.maximum(var, 1e-12))




def mp_gaussian(d):
    """Gaussian Mutual Proximity of a symmetric distance matrix (``jnp``)::

        MP[i, j] = 1 - P(X_i > d_ij) · P(X_j > d_ij),  X_i ~ N(μ_i, σ_i²)

    ``μ_i``, ``σ_i``: mean and population std of row ``i`` without its diagonal. Returns
    ``(n, n)`` with a zero diagonal.
    """
    d = jnp.asarray(d)
    mu, sd = offdiag_stats(d)
    p_i = ndtr(-(d - mu[:, None]) / sd[:, None])
    p_j = ndtr(-(d - mu[None, :]) / sd[None, :])
    mp = jnp.clip(1.0 - p_i * p_j, 0.0, 1.0)
    return jnp.where(jnp.eye(d.shape[0], dtype=bool), 0.0, mp)


def mp_empirical(d):
    """Empirical Mutual Proximity (``jnp``, ``O(n³)`` work, one row at a time)::

        MP[i, j] = 1 - |{m : d_im > d_ij and d_jm > d_ij}| / (n - 2)
    """
    d = jnp.asarray(d)
    n = d.shape[0]
    if n < 3:
        raise ValueError(f"empirical Mutual Proximity needs at least 3 songs, got {n}")

    def row(di):
        beyond = (di[None, :] > di[:, None]) & (d > di[:, None])  # [j, m]
        return jnp.clip(1.0 - jnp.sum(beyond, axis=1) / (n - 2), 0.0, 1.0)

    mp = jax.lax.map(row, d)
    return jnp.where(jnp.eye(n, dtype=bool), 0.0, mp)


def mp_rescale(d, method: str):
    """:func:`mp_gaussian` or :func:`mp_empirical` (``jnp``), or ``d`` itself for ``None``."""
    if method is None:
        return d
    if method == "gaussian":
        return mp_gaussian(d)
    if method == "empirical":
        return mp_empirical(d)
    raise ValueError(f"Mutual Proximity method must be one of {MP_METHODS}, got {method!r}")


def mutual_proximity(d, *, method: str = "gaussian") -> np.ndarray:
    """Mutual Proximity rescaling (``"gaussian"`` or ``"empirical"``) as float64 numpy."""
    if method not in MP_METHODS:
        raise ValueError(f"Mutual Proximity method must be one of {MP_METHODS}, got {method!r}")
    fn = jax.jit(mp_rescale, static_argnums=1)
    return np.asarray(fn(jnp.asarray(d, jnp.float32), method), np.float64)


def replace_song(d, index, row):
    """``d`` with row and column ``index`` replaced by ``row`` (``row[index]`` = 0; ``jnp``)."""
    row = jnp.where(jnp.arange(d.shape[-1]) == index, 0.0, row)
    return d.at[index, :].set(row).at[:, index].set(row)


def k_occurrence_of(d, index, *, k: int = 5):
    """Exact k-occurrence of song ``index`` in distance matrix ``d`` (``jnp``, int32).

    Song ``j`` recommends ``index`` when fewer than ``k`` other songs ``m`` (``m != j``) come
    before it: ``d[j, m] < d[j, index]``, or equal with ``m < index``
    (as :func:`nearest_neighbours` sorts).
    """
    n = d.shape[-1]
    m = jnp.arange(n)
    own = d[:, index][:, None]
    before = (d < own) | ((d == own) & (m[None, :] < index))
    before = before & (m[None, :] != m[:, None])
    recommends = (jnp.sum(before, axis=1) < k) & (m != index)
    return jnp.sum(recommends).astype(jnp.int32)


def kth_neighbour_distance(d, k: int = 5) -> np.ndarray:
    """Every song's distance to its ``k``-th nearest other song, ``(n,)``."""
    d = np.array(d, np.float64)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def hubness_summary(d, *, k: int = 5, hub_size: int = 25) -> dict:
    """k-occurrence, hubs, skewness and the anti-hubs (k-occurrence 0) of a matrix."""
    k_occ = k_occurrence(nearest_neighbours(d, k), d.shape[0])
    h = hubs(k_occ, hub_size)
    return {"k_occurrence": k_occ, "hubs": h, "num_hubs": int(h.size),
            "skewness": skewness(k_occ), "num_anti_hubs": int(np.sum(k_occ == 0)),
            "max_k_occurrence": int(k_occ.max())}


#: The scalar figures of :func:`hubness_summary` a study reports per recommender.
HUBNESS_FIELDS = ("num_hubs", "skewness", "num_anti_hubs", "max_k_occurrence")
#: The recommenders :func:`collection_hubness` compares: the distances themselves, and their
#: Mutual Proximity rescalings.
SYSTEMS = ("kl", "mp_gaussian", "mp_empirical")


def collection_hubness(kl, *, k: int = 5, hub_size: int = 25, mode: str = "published") -> dict:
    """Hubness of a collection without and with Mutual Proximity.

    Parameters
    ----------
    kl : array [shape=(n, n)]
        ``kl[i, j] = KL(g_i || g_j)`` (:func:`jaxaudio.recommender.features.kl_matrix`).
    k, hub_size : int
        Neighbours per song, and the k-occurrence from which a song is a hub.
    mode : str
        :data:`DISTANCE_MODES` of the recommender's distances.

    Returns
    -------
    dict
        For each ``s`` of :data:`SYSTEMS` (``"kl"``: :func:`distance_matrix` in ``mode``;
        ``"mp_gaussian"`` / ``"mp_empirical"``: its :func:`mutual_proximity`):
        ``k_occurrence_<s>`` ``(n,)`` int and ``hubness_<s>`` (the :data:`HUBNESS_FIELDS` of
        :func:`hubness_summary`); and ``symmetric_hubness``, the same figures for the
        ``"symmetric"`` distances.
    """
    d = distance_matrix(kl, mode=mode)
    out = {}
    for name, m in (("kl", d), ("mp_gaussian", mutual_proximity(d, method="gaussian")),
                    ("mp_empirical", mutual_proximity(d, method="empirical"))):
        s = hubness_summary(m, k=k, hub_size=hub_size)
        out[f"k_occurrence_{name}"] = s["k_occurrence"]
        out[f"hubness_{name}"] = {key: s[key] for key in HUBNESS_FIELDS}
    symmetric = hubness_summary(distance_matrix(kl, mode="symmetric"), k=k, hub_size=hub_size)
    out["symmetric_hubness"] = {key: symmetric[key] for key in HUBNESS_FIELDS}
    return out


def choose_attacked_songs(k_occ, lengths, *, hub_size: int, count: int,
                          seed: int) -> np.ndarray:
    """The songs an attack starts from: ``count`` non-hubs (k-occurrence ``< hub_size``) among
    the songs of the most common length (so they batch), chosen with a seeded generator.

    Parameters
    ----------
    k_occ : array [shape=(n,)]
        k-occurrence of every song in the attacked recommender.
    lengths : int array [shape=(n,)]
        Samples per song.
    hub_size, count, seed : int
        Hub threshold; songs wanted (fewer when fewer qualify); seed of
        ``np.random.default_rng([seed, 99])``.

    Returns
    -------
    np.ndarray [shape=(min(count, candidates),)], int
        Song indices, ascending.
    """
    lengths = np.asarray(lengths)
    common = np.bincount(lengths).argmax()
    candidates = np.flatnonzero((np.asarray(k_occ) < hub_size) & (lengths == common))
    rng = np.random.default_rng([int(seed), 99])
    return np.sort(rng.choice(candidates, size=min(count, candidates.size), replace=False))
