"""Signal-level figures: the SNR of a perturbation (numpy or jax, differentiable) and the white-noise control at a given SNR."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.metrics.classification import accuracy

__all__ = ['snr_db', 'white_noise_at', 'noise_control_accuracy']


def snr_db(clean, adversarial, *, trim: int = 2048):
    """Signal-to-noise ratio of a perturbation, per example, in dB.

    ``20 * log10(||x|| / ||x - x_adv||)`` over the samples ``[trim : n - trim]``
    (docs/studies.md §1: the first and last 2048 samples are left out). Clips with
    ``n <= 2 * trim`` samples are measured over the whole clip.

    Parameters
    ----------
    clean : np.ndarray or jax.Array [shape=(..., n)]
        Original waveforms ``x``.
    adversarial : np.ndarray or jax.Array [shape=(..., n)]
        Perturbed waveforms ``x_adv``, same shape.
    trim : int >= 0
        Samples left out at each end.

    Returns
    -------
    snr : np.ndarray or jax.Array [shape=(...)]
        dB; ``+inf`` where ``x_adv == x`` on the measured samples, ``-inf`` where ``x`` is
        silent but ``x_adv`` is not. A jax array (finite gradients wherever the SNR is finite)
        if either input is a jax array, else a float64 numpy array.

    Raises
    ------
    ValueError
        Shapes differ, inputs have no sample axis or no samples, or ``trim < 0``.
    """
    if isinstance(trim, bool) or not isinstance(trim, (int, np.integer)) or trim < 0:
        raise ValueError(f"trim must be a non-negative integer (samples), got {trim!r}")
    use_jax = isinstance(clean, jax.Array) or isinstance(adversarial, jax.Array)
    xp = jnp if use_jax else np
    clean = xp.asarray(clean) if use_jax else np.asarray(clean, dtype=np.float64)
    adversarial = xp.asarray(adversarial) if use_jax else np.asarray(adversarial, np.float64)
    if clean.shape != adversarial.shape:
        raise ValueError(
            f"clean and adversarial must have the same shape, got {clean.shape} and "
            f"{adversarial.shape}"
        )
    if clean.ndim == 0 or clean.shape[-1] == 0:
        raise ValueError(f"clean must have shape (..., n) with n > 0, got {clean.shape}")
    n = clean.shape[-1]
    if n > 2 * trim:
        clean = clean[..., trim:n - trim]
        adversarial = adversarial[..., trim:n - trim]
    signal_energy = xp.sum(clean * clean, axis=-1)
    noise = clean - adversarial
    noise_energy = xp.sum(noise * noise, axis=-1)
    # Energies instead of norms (no sqrt at 0), and logs only of positive numbers, so the
    # untaken branches of `where` stay finite and so do the gradients.
    safe_signal = xp.where(signal_energy > 0, signal_energy, 1.0)
    safe_noise = xp.where(noise_energy > 0, noise_energy, 1.0)
    ratio_db = 10.0 * (xp.log10(safe_signal) - xp.log10(safe_noise))
    ratio_db = xp.where(signal_energy > 0, ratio_db, -xp.inf)
    return xp.where(noise_energy > 0, ratio_db, xp.inf)


_measured_snr_db = snr_db  # the functions below take an argument of that name


def white_noise_at(waves, snr_db: float, rng: np.random.Generator, *,
                   margin: int = 2048) -> np.ndarray:
    """``waves`` plus Gaussian white noise scaled per clip to ``snr_db``, clipped to [-1, 1].

    The noise's level is measured as :func:`snr_db` measures a perturbation (over the samples
    ``[margin : n - margin]``), so the control and the attacks it is compared with share one
    SNR. A silent clip gets no noise.

    Parameters
    ----------
    waves : np.ndarray [shape=(batch, n)]
        Clean clips in [-1, 1].
    snr_db : float
        Target SNR (dB) of every clip (before clipping to [-1, 1]).
    rng : np.random.Generator
        Source of the noise (seeded by the caller).
    margin : int >= 0
        Samples left out at each end when measuring, as ``trim`` in :func:`snr_db`.

    Returns
    -------
    noisy : np.ndarray [shape=(batch, n)], float32
    """
    waves = np.asarray(waves, np.float32)
    if waves.ndim != 2 or waves.shape[1] == 0:
        raise ValueError(f"waves must have shape (batch, n) with n > 0, got {waves.shape}")
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number (dB), got {snr_db!r}")
    noise = rng.standard_normal(waves.shape).astype(np.float32)
    # SNR of the unit-variance noise, then the gain that moves it to snr_db (0 for silence).
    clean = waves.astype(np.float64)
    unit = _measured_snr_db(clean, clean - noise, trim=margin)
    gain = np.where(np.isfinite(unit), 10.0 ** ((unit - float(snr_db)) / 20.0), 0.0)
    return np.clip(waves + noise * gain.astype(np.float32)[:, None], -1.0, 1.0).astype(
        np.float32)


def noise_control_accuracy(predict, waves, labels, *, snr_db: float,
                           rng: np.random.Generator, margin: int = 2048) -> float:
    """Accuracy of ``predict`` on ``waves`` with white noise at ``snr_db`` (the noise control).

    If an attack at mean SNR ``s`` worked by its energy alone, white noise at ``s``
    (:func:`white_noise_at`) would hurt the classifier as much.

    Parameters
    ----------
    predict : callable
        ``predict(waves) -> class indices [shape=(batch,)]``.
    waves : np.ndarray [shape=(batch, n)]
    labels : np.ndarray [shape=(batch,)]
        True class indices.
    snr_db, rng, margin
        As in :func:`white_noise_at`.

    Returns
    -------
    float in [0, 1]
    """
    noisy = white_noise_at(waves, snr_db, rng, margin=margin)
    return accuracy(np.asarray(predict(noisy)), labels)
