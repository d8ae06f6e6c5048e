"""Timbre model of the recommender: MFCCs -> one full-covariance Gaussian per song -> KL.

All pure ``jax.numpy`` (jit / vmap / grad-safe): the attack differentiates through the whole
chain, waveform -> STFT -> mel -> dB -> DCT -> mean and covariance -> KL divergence.

* :func:`mfcc`: 20 MFCCs from a 36-band mel spectrogram (n_fft 1024, hop 512 at 22.05 kHz),
  built on :mod:`jaxaudio.dsp.frontend` (equal to ``librosa.feature.mfcc`` with these settings).
* :func:`song_gaussian`: mean and unbiased covariance over frames, made positive definite by
  the published fix (eigen-decompose, ``|eigenvalues|`` floored at ``1e-5``), with its inverse
  and log-determinant.
* :func:`kl_divergence`: closed-form ``KL(p || q)`` of two Gaussians;
  :func:`kl_matrix` all pairs of a collection.
* :func:`gaussians_of_waves`: the Gaussians of a whole collection of songs (any lengths);
  :func:`gaussian_arrays` / :func:`gaussian_from_arrays` store them as named arrays.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp import frontend
from jaxaudio.dsp.batching import map_chunks

__all__ = ["SAMPLE_RATE", "N_MFCC", "N_FFT", "HOP_LENGTH", "N_MELS", "EIGEN_FLOOR", "Gaussian",
           "mfcc", "song_gaussian", "gaussian_of_wave", "kl_divergence", "kl_matrix",
           "stack_gaussians", "gaussians_of_waves", "gaussian_arrays", "gaussian_from_arrays"]

SAMPLE_RATE = 22050
N_MFCC = 20
N_FFT = 1024
HOP_LENGTH = 512
N_MELS = 36
#: The positive-definite fix: eigenvalues of the covariance are replaced by ``max(|w|, floor)``.
EIGEN_FLOOR = 1e-5


class Gaussian(NamedTuple):
    """A song's timbre model (fields may carry leading batch axes).

    Attributes:
      mean: ``(d,)`` mean MFCC vector.
      cov: ``(d, d)`` covariance after the positive-definite fix.
      inv: ``(d, d)`` its inverse.
      logdet: ``()`` its log-determinant.
    """

    mean: jnp.ndarray
    cov: jnp.ndarray
    inv: jnp.ndarray
    logdet: jnp.ndarray


@functools.lru_cache(maxsize=None)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    # Orthonormal DCT-II (scipy.fft.dct(type=2, norm="ortho"), what librosa.feature.mfcc uses).
    from scipy.fft import dct

    m = dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].astype(np.float32)
    m.setflags(write=False)
    return m


def mfcc(waves, *, sample_rate: int = SAMPLE_RATE, n_mfcc: int = N_MFCC, n_fft: int = N_FFT,
         hop_length: int = HOP_LENGTH, n_mels: int = N_MELS, top_db: float = 80.0):
    """Mel-frequency cepstral coefficients.

    Parameters
    ----------
    waves : array [shape=(..., num_samples)]
        Mono waveforms in [-1, 1].
    sample_rate, n_fft, hop_length, n_mels : int > 0
        Hz, STFT size, hop (samples) and mel bands (Slaney scale and area normalisation).
    n_mfcc : int, 1 <= n_mfcc <= n_mels
    top_db : float >= 0
        Dynamic range of the dB mel spectrogram, per example.

    Returns
    -------
    array [shape=(..., n_mfcc, 1 + num_samples // hop_length)], float32
        Equal to ``librosa.feature.mfcc(y=waves, sr=sample_rate, n_mfcc=n_mfcc, n_fft=n_fft,
        hop_length=hop_length, n_mels=n_mels)`` (centred frames, zero padding).
    """
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
    mel = frontend.mel_spectrogram(waves, sample_rate=sample_rate, n_fft=n_fft,
                                   hop_length=hop_length, n_mels=n_mels, mel_scale="slaney",
                                   norm="slaney", pad_mode="constant")
    db = frontend.power_to_db(mel, top_db=top_db)
    return jnp.einsum("cm,...mt->...ct", _dct_matrix(n_mels, n_mfcc), db,
                      precision=jax.lax.Precision.HIGHEST)


def song_gaussian(coefficients, *, floor: float = EIGEN_FLOOR) -> Gaussian:
    """Full-covariance Gaussian of one song's frames.

    Parameters
    ----------
    coefficients : array [shape=(d, frames)], frames >= 2
        e.g. :func:`mfcc` of one song.
    floor : float > 0
        The positive-definite fix: ``cov = V diag(max(|w|, floor)) V^T`` from the eigen
        decomposition ``cov = V diag(w) V^T`` of the unbiased covariance.

    Returns
    -------
    Gaussian
        Its ``inv`` and ``logdet`` come from a Cholesky factor of the fixed covariance.

    Notes
    -----
    The fix enters the gradient straight-through (``cov + stop_gradient(fixed - cov)``): it is
    the identity wherever every eigenvalue is above ``floor`` (always, for real MFCC
    covariances), and the eigenvector derivative of ``eigh`` is undefined for repeated
    eigenvalues, which would give NaN gradients.
    """
    c = jnp.asarray(coefficients, jnp.float32)
    frames = c.shape[-1]
    if frames < 2:
        raise ValueError(f"a song needs at least 2 frames for a covariance, got {frames}")
    mean = jnp.mean(c, axis=-1)
    centred = c - mean[:, None]
    cov = centred @ centred.T / (frames - 1)
    cov = 0.5 * (cov + cov.T)
    w, v = jnp.linalg.eigh(jax.lax.stop_gradient(cov))
    fixed = (v * jnp.maximum(jnp.abs(w), floor)) @ v.T
    cov = cov + jax.lax.stop_gradient(0.5 * (fixed + fixed.T) - cov)
    chol = jnp.linalg.cholesky(cov)
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    inv = jax.scipy.linalg.cho_solve((chol, True), eye)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return Gaussian(mean, cov, 0.5 * (inv + inv.T), logdet)


def gaussian_of_wave(wave, **mfcc_kwargs) -> Gaussian:
    """:func:`song_gaussian` of :func:`mfcc` of one waveform ``(num_samples,)``."""
    return song_gaussian(mfcc(wave, **mfcc_kwargs))


def kl_divergence(p: Gaussian, q: Gaussian):
    """Closed-form ``KL(p || q)`` in nats of two ``d``-dimensional Gaussians (broadcasts over
    leading axes)::

        0.5 (tr(Σq⁻¹ Σp) + (μq - μp)ᵀ Σq⁻¹ (μq - μp) - d + ln|Σq| - ln|Σp|)
    """
    d = p.mean.shape[-1]
    diff = q.mean - p.mean
    trace = jnp.sum(q.inv * jnp.swapaxes(p.cov, -1, -2), axis=(-2, -1))
    quad = jnp.einsum("...a,...ab,...b->...", diff, q.inv, diff)
    return 0.5 * (trace + quad - d + q.logdet - p.logdet)


def stack_gaussians(gaussians) -> Gaussian:
    """A list of :class:`Gaussian` -> one with a leading ``(n,)`` axis (numpy float64 arrays
    are kept as float32)."""
    return Gaussian(*(jnp.stack([jnp.asarray(getattr(g, f), jnp.float32) for g in gaussians])
                      for f in Gaussian._fields))


def gaussians_of_waves(waves) -> Gaussian:
    """:func:`gaussian_of_wave` of every song, stacked (:func:`stack_gaussians`).

    Parameters
    ----------
    waves : sequence of array [shape=(num_samples_i,)]
        Mono songs at :data:`SAMPLE_RATE`; lengths may differ (one compilation per length).

    Returns
    -------
    Gaussian
        Fields with a leading ``(num_songs,)`` axis, float32.
    """
    fn = jax.jit(gaussian_of_wave)
    return stack_gaussians([fn(w) for w in waves])


def gaussian_arrays(g: Gaussian, prefix: str = "gaussian_") -> dict:
    """``{prefix + field: numpy array}`` of every field of ``g`` (how a stage stores it)."""
    return {f"{prefix}{f}": np.asarray(getattr(g, f)) for f in Gaussian._fields}


def gaussian_from_arrays(values, prefix: str = "gaussian_") -> Gaussian:
    """The inverse of :func:`gaussian_arrays`: a :class:`Gaussian` of numpy arrays read from
    ``values`` (any mapping, e.g. a finished stage)."""
    return Gaussian(*(np.asarray(values[f"{prefix}{f}"]) for f in Gaussian._fields))


@jax.jit
def _kl_rows(rows: Gaussian, collection: Gaussian):
    return jax.vmap(lambda p: kl_divergence(p, collection))(rows)


def kl_matrix(gaussians: Gaussian, *, chunk_size: int = 256) -> np.ndarray:
    """``KL[i, j] = KL(g_i || g_j)`` for a collection with leading axis ``n``.

    Returns ``(n, n)`` float64 numpy (zero diagonal up to rounding, set to exactly 0), computed
    ``chunk_size`` rows at a time.
    """

    rows = map_chunks(lambda *leaves: _kl_rows(Gaussian(*leaves), gaussians), *gaussians,
                      chunk_size=chunk_size, pad_single=False)
    kl = np.asarray(rows, np.float64)
    np.fill_diagonal(kl, 0.0)
    return kl
