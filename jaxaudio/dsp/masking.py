"""The psychoacoustic masking model: a clip's frequency-masking threshold and how far a
perturbation's power spectral density rises above it (pure signal processing).

Shapes and units: one clip ``wave (samples,)`` in [-1, 1]; PSDs and thresholds ``(frames,
bins)`` with ``frames = 1 + samples // hop_length`` and ``bins = n_fft // 2 + 1``, linear power
in the clip's normalised units (10^9.6 = the clip's loudest bin, i.e. 96 dB SPL).

The masking threshold follows the MPEG-1 psychoacoustic model 1 as Qin et al. use it: a centred
STFT with a periodic Hann window (scaled by sqrt(8/3)), the power spectral density normalised
so that the clip's loudest bin is 96 dB SPL, tonal maskers = local maxima of the PSD (power of
the bin and its two neighbours), kept only above the absolute threshold of hearing and when no
other masker within ±0.5 Bark is stronger (the standard decimation rule, written
vectorised), the two-slope spreading function (27 dB/Bark below the masker,
``27 - 0.37 max(P - 40, 0)`` dB/Bark above it) with offset ``-6.025 - 0.275 z``, and the global
threshold = sum of the individual thresholds and the absolute threshold of hearing (in power).
Pure ``jax.numpy``, ``jit``/``vmap``-safe, finite on silence (the normalisation reference has a
floor of :data:`REFERENCE_FLOOR`).

Used by the psychoacoustic attack (:mod:`jaxaudio.attacks.psychoacoustic`, its hinge) and by
the perceptual measures (:mod:`jaxaudio.dsp.perceptual`, the share above the threshold).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp import frontend

__all__ = ["REFERENCE_FLOOR", "N_FFT", "HOP_LENGTH", "MaskingThreshold", "bark",
           "absolute_threshold_db", "power_spectral_density", "masking_threshold",
           "masking_threshold_example", "perturbation_psd", "hinge_distance", "excess_share"]

#: Frame and hop of the PSD (Qin et al.: 2048 / 512 samples at 16 kHz).
N_FFT, HOP_LENGTH = 2048, 512
#: Floor of the normalisation reference (peak bin power, full scale = 1): about -100 dB, so a
#: silent clip gets a finite threshold (the absolute threshold of hearing alone).
REFERENCE_FLOOR = 1e-10
_SPL_PEAK_DB = 96.0
_POWER_FLOOR = 1e-30
_HANN_SCALE = math.sqrt(8.0 / 3.0)


class MaskingThreshold(NamedTuple):
    """The masking threshold of a clip (batched: a leading axis on both).

    Attributes:
      threshold: float32 ``(frames, bins)`` global masking threshold, linear power in the
        normalised units of :func:`power_spectral_density` (10^9.6 = the clip's loudest bin).
      reference: float32 ``()`` the clip's peak bin power (absolute, full scale = 1, floored at
        :data:`REFERENCE_FLOOR`): a perturbation's PSD is normalised by it
        (:func:`perturbation_psd`).
    """

    threshold: jax.Array
    reference: jax.Array


def bark(f):
    """Bark scale of frequencies ``f`` in Hz: ``13 atan(0.00076 f) + 3.5 atan((f / 7500)²)``."""
    f = np.asarray(f, np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def absolute_threshold_db(f):
    """Absolute threshold of hearing in dB SPL at ``f`` Hz (Terhardt, minus 12 dB as in Qin et
    al.); ``-inf`` (no threshold) below 1 Bark."""
    f = np.asarray(f, np.float64)
    khz = np.maximum(f, 1.0) * 1e-3
    ath = (3.64 * khz ** -0.8 - 6.5 * np.exp(-0.6 * (khz - 3.3) ** 2) + 1e-3 * khz ** 4 - 12.0)
    return np.where(bark(f) > 1.0, ath, -np.inf)


class _Tables(NamedTuple):
    bark: np.ndarray       # (bins,)
    ath_db: np.ndarray     # (bins,)
    ath_power: np.ndarray  # (bins,)
    lo: np.ndarray         # (bins,) first bin within 0.5 Bark
    hi: np.ndarray         # (bins,) last bin within 0.5 Bark
    levels: int            # sparse-table levels for the window maximum
    maskers: int           # most maskers a frame can keep


@functools.lru_cache(maxsize=None)
def _tables(sample_rate: int, n_fft: int) -> _Tables:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    z = bark(freqs)
    ath = absolute_threshold_db(freqs)
    lo = np.searchsorted(z, z - 0.5, side="right")  # first j with z[j] > z[k] - 0.5
    hi = np.searchsorted(z, z + 0.5, side="left") - 1  # last j with z[j] < z[k] + 0.5
    width = int((hi - lo + 1).max())
    # Kept maskers are the strongest within ±0.5 Bark: at least 0.5 Bark apart (ties aside).
    maskers = min(len(freqs), int(math.ceil(z[-1] / 0.5)) + 2)
    with np.errstate(over="ignore"):
        power = np.where(np.isfinite(ath), 10.0 ** (np.where(np.isfinite(ath), ath, 0) / 10), 0)
    return _Tables(z.astype(np.float32), ath.astype(np.float32), power.astype(np.float32),
                   lo.astype(np.int32), hi.astype(np.int32),
                   max(1, int(math.floor(math.log2(width))) + 1), maskers)


def _window_max(values, t: _Tables):
    """``max(values[lo_k : hi_k + 1])`` for every bin ``k`` (a sparse table; last axis bins)."""
    table, n = [values], values.shape[-1]
    for j in range(1, t.levels):
        prev, half = table[-1], 2 ** (j - 1)
        shifted = jnp.concatenate(
            [prev[..., half:], jnp.full(prev.shape[:-1] + (half,), -jnp.inf, prev.dtype)], -1)
        table.append(jnp.maximum(prev, shifted))
    length = t.hi - t.lo + 1
    level = np.floor(np.log2(length)).astype(np.int32)
    stacked = jnp.stack(table)  # (levels, ..., bins)
    first = stacked[level, ..., t.lo]  # (bins, ...)
    second = stacked[level, ..., np.minimum(t.hi - 2 ** level + 1, n - 1)]
    return jnp.moveaxis(jnp.maximum(first, second), 0, -1)


def power_spectral_density(wave, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """Absolute PSD of one waveform: ``(sqrt(8/3) |STFT| / n_fft)²`` (centred, zero-padded,
    periodic Hann; :func:`jaxaudio.dsp.frontend.stft`). ``wave (samples,)`` -> ``(frames, bins)``."""
    spec = frontend.stft(wave, n_fft=n_fft, hop_length=hop_length, pad_mode="constant")
    z = _HANN_SCALE * jnp.abs(spec) / n_fft
    return jnp.swapaxes(z * z, -1, -2)


def _frame_threshold(psd_db, t: _Tables):
    """Global masking threshold (linear power) of one frame's normalised PSD in dB ``(bins,)``."""
    prev, post = psd_db[:-2], psd_db[2:]
    mid = psd_db[1:-1]
    peak = jnp.pad((mid > prev) & (mid > post), (1, 1))  # boundary bins are no maskers
    p = 10.0 ** (psd_db / 10.0)
    p_tm = 10.0 * jnp.log10(jnp.pad(p[:-2] + p[1:-1] + p[2:], (1, 1)) + _POWER_FLOOR)
    candidate = jnp.where(peak & (p_tm >= t.ath_db), p_tm, -jnp.inf)
    keep = jnp.isfinite(candidate) & (candidate >= _window_max(candidate, t))
    level, index = jax.lax.top_k(jnp.where(keep, p_tm, -jnp.inf), t.maskers)
    valid = jnp.isfinite(level)
    level = jnp.where(valid, level, 0.0)
    z_m = jnp.asarray(t.bark)[index]
    dz = jnp.asarray(t.bark)[None, :] - z_m[:, None]  # (maskers, bins)
    upper = -27.0 + 0.37 * jnp.maximum(level - 40.0, 0.0)
    spread = jnp.where(dz > 0, upper[:, None] * dz, 27.0 * dz)
    individual = level[:, None] + (-6.025 - 0.275 * z_m)[:, None] + spread
    masked = jnp.where(valid[:, None], 10.0 ** (individual / 10.0), 0.0)
    return jnp.sum(masked, axis=0) + jnp.asarray(t.ath_power)


@functools.partial(jax.jit, static_argnames=("sample_rate", "n_fft", "hop_length"))
def masking_threshold_example(wave, *, sample_rate: int, n_fft: int = N_FFT,
                              hop_length: int = HOP_LENGTH) -> MaskingThreshold:
    """The masking threshold of one clip ``wave (samples,)`` in [-1, 1] (see module docstring).

    Returns a :class:`MaskingThreshold` with ``threshold (frames, bins)``, frames ``1 +
    samples // hop_length``, bins ``n_fft // 2 + 1``. No gradient flows through it. Jitted
    (``sample_rate``, ``n_fft``, ``hop_length`` static).
    """
    t = _tables(int(sample_rate), int(n_fft))
    psd = power_spectral_density(jax.lax.stop_gradient(jnp.asarray(wave, jnp.float32)),
                                 n_fft=n_fft, hop_length=hop_length)
    reference = jnp.maximum(jnp.max(psd), REFERENCE_FLOOR)
    psd_db = _SPL_PEAK_DB + 10.0 * jnp.log10(psd / reference + _POWER_FLOOR)
    return MaskingThreshold(jax.vmap(lambda f: _frame_threshold(f, t))(psd_db), reference)


@functools.partial(jax.jit, static_argnames=("sample_rate", "n_fft", "hop_length"))
def masking_threshold(x, *, sample_rate: int, n_fft: int = N_FFT,
                      hop_length: int = HOP_LENGTH) -> MaskingThreshold:
    """:func:`masking_threshold_example` of every clip of ``x (batch, samples)`` (vmapped)."""
    return jax.vmap(functools.partial(masking_threshold_example, sample_rate=int(sample_rate),
                                      n_fft=int(n_fft), hop_length=int(hop_length)))(x)


def perturbation_psd(delta, reference, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """PSD of one perturbation ``delta (samples,)`` in the clip's normalised units:
    ``10^9.6 · psd(delta) / reference`` -> ``(frames, bins)``."""
    return (10.0 ** (_SPL_PEAK_DB / 10.0)) * power_spectral_density(
        delta, n_fft=n_fft, hop_length=hop_length) / reference


def hinge_distance(delta, masking: MaskingThreshold, *, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH):
    """Mean over frames and bins of ``relu(psd(delta) - threshold)`` for one example: zero when
    the perturbation sits below the clean clip's masking threshold everywhere."""
    psd = perturbation_psd(delta, masking.reference, n_fft=n_fft, hop_length=hop_length)
    return jnp.mean(jax.nn.relu(psd - masking.threshold))


def excess_share(delta, masking: MaskingThreshold, *, n_fft: int = N_FFT,
                 hop_length: int = HOP_LENGTH):
    """Share of one perturbation's PSD energy above the masking threshold:
    ``sum relu(psd - threshold) / sum psd`` in [0, 1] (0 for a zero perturbation)."""
    psd = perturbation_psd(delta, masking.reference, n_fft=n_fft, hop_length=hop_length)
    total = jnp.sum(psd)
    above = jnp.sum(jax.nn.relu(psd - masking.threshold))
    return jnp.where(total > 0, above / jnp.where(total > 0, total, 1.0), 0.0)
