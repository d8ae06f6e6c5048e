"""Differentiable audio front-end: STFT, mel filterbanks, dB/log scaling, standardisation.

Everything here is pure ``jax.numpy``: safe under ``jit``, ``vmap`` and ``grad`` with respect to
the waveform, float32 throughout, and checked against librosa in ``tests/test_frontend.py``.
Leading axes are batch axes: a waveform ``(..., num_samples)`` becomes a spectrogram
``(..., n_bins, num_frames)``.

Every log and square root is guarded so that silence, clipped full-scale signals and very quiet
signals give finite values *and* finite gradients (attacks differentiate through this module).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FrontendConfig",
    "FrontendError",
    "num_frames",
    "num_samples_for_frames",
    "frame",
    "stft",
    "spectrogram",
    "mel_filterbank",
    "mel_spectrogram",
    "power_to_db",
    "log_compress",
    "log1p_compress",
    "standardize",
    "features",
    "check_waves",
]

# Added under square roots so that d sqrt(x)/dx stays finite at x = 0 (digital silence).
# Far below float32 resolution of any audible magnitude, so values are unchanged.
_SQRT_EPS = 1e-20

_PAD_MODES = ("reflect", "constant")
_MEL_SCALES = ("htk", "slaney")
_SCALINGS = ("db", "log", "log1p", "none")


class FrontendError(ValueError):
    """Raised for invalid front-end parameters or inputs (a ``ValueError``)."""


@dataclasses.dataclass(frozen=True)
class FrontendConfig:
    """Everything that turns a waveform into the model's input features.

    Frozen and hashable, so it can be a static argument of ``jax.jit``.

    Attributes:
      sample_rate: waveform sample rate in Hz.
      n_fft: FFT size (= window length) in samples.
      hop_length: hop between frames in samples.
      n_mels: number of mel bands.
      fmin, fmax: lowest / highest mel filter edge in Hz (``fmax=None`` means ``sample_rate/2``).
      power: exponent of the magnitude (2 = power spectrogram, 1 = magnitude).
      mel_scale: ``"htk"`` or ``"slaney"``.
      norm: mel filter normalisation, ``None`` or ``"slaney"``.
      pad_mode: ``"reflect"`` or ``"constant"`` padding of the centred STFT.
      scaling: ``"db"`` (``power_to_db`` with ``top_db``), ``"log"`` (``log(max(x, log_floor))``),
        ``"log1p"`` or ``"none"``.
      top_db: dynamic range kept below each example's maximum for ``scaling="db"`` (dB).
      log_floor: floor of ``scaling="log"``.
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 100
    fmin: float = 40.0
    fmax: Optional[float] = None
    power: float = 2.0
    mel_scale: str = "htk"
    norm: Optional[str] = None
    pad_mode: str = "reflect"
    scaling: str = "db"
    top_db: Optional[float] = 80.0
    log_floor: float = 1e-7

    def __post_init__(self):
        _check_stft_params(self.n_fft, self.hop_length, self.pad_mode)
        if self.sample_rate <= 0:
            raise FrontendError(f"sample_rate must be > 0 Hz, got {self.sample_rate}")
        if self.n_mels <= 0:
            raise FrontendError(f"n_mels must be > 0, got {self.n_mels}")
        if self.mel_scale not in _MEL_SCALES:
            raise FrontendError(f"mel_scale must be one of {_MEL_SCALES}, got {self.mel_scale!r}")
        if self.scaling not in _SCALINGS:
            raise FrontendError(f"scaling must be one of {_SCALINGS}, got {self.scaling!r}")
        if self.power <= 0:
            raise FrontendError(f"power must be > 0, got {self.power}")

    @classmethod
    def instrument(cls) -> "FrontendConfig":
        """The instrument classifier's front-end (docs/studies.md §1): 16 kHz, 2048/512, 100 HTK
        mel bands from 40 Hz, power 2, dB with top_db 80."""
        return cls()

    @classmethod
    def voice(cls) -> "FrontendConfig":
        """The singing voice detector's front-end (docs/studies.md §3): 22.05 kHz, 1024/315,
        magnitude, 80 mel bands 27.5-8000 Hz, log(max(x, 1e-7))."""
        return cls(
            sample_rate=22050, n_fft=1024, hop_length=315, n_mels=80, fmin=27.5, fmax=8000.0,
            power=1.0, scaling="log", top_db=None, log_floor=1e-7,
        )

    def num_frames(self, num_samples: int) -> int:
        """Number of STFT frames for a clip of ``num_samples`` samples."""
        return num_frames(num_samples, self.hop_length)

    def num_samples_for_frames(self, frames: int) -> int:
        """Shortest clip length (samples) that yields ``frames`` frames."""
        return num_samples_for_frames(frames, self.hop_length)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendConfig":
        return cls(**d)


def _check_stft_params(n_fft: int, hop_length: int, pad_mode: str) -> None:
    if int(n_fft) != n_fft or n_fft < 2:
        raise FrontendError(f"n_fft must be an integer >= 2, got {n_fft}")
    if int(hop_length) != hop_length or hop_length < 1:
        raise FrontendError(f"hop_length must be an integer >= 1, got {hop_length}")
    if pad_mode not in _PAD_MODES:
        raise FrontendError(f"pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT of ``num_samples`` samples (same as librosa, center=True)."""
    return 1 + int(num_samples) // int(hop_length)


def num_samples_for_frames(frames: int, hop_length: int) -> int:
    """Shortest number of samples whose centred STFT has ``frames`` frames."""
    return (int(frames) - 1) * int(hop_length)


def check_waves(waves, *, name: str = "waves", min_samples: int = 1) -> None:
    """Validate concrete audio: finite values and at least ``min_samples`` samples.

    Only call on concrete (non-traced) arrays; inside ``jit`` shapes are checked statically.
    Raises ``ValueError`` naming ``name``.
    """
    arr = np.asarray(waves)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a samples axis, got a scalar")
    if arr.shape[-1] < min_samples:
        raise ValueError(
            f"{name} is too short: {arr.shape[-1]} samples, need at least {min_samples}"
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN/Inf samples")


@functools.lru_cache(maxsize=None)
def _hann(n_fft: int) -> np.ndarray:
    # Periodic Hann, as scipy.signal.get_window("hann", n_fft, fftbins=True) used by librosa.
    n = np.arange(n_fft)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)).astype(np.float32)


def frame(padded, *, frames: int, n_fft: int, hop_length: int):
    """Frames ``(..., frames, n_fft)`` of ``padded`` ``(..., samples)``: frame ``i`` is
    ``padded[..., i * hop_length : i * hop_length + n_fft]`` (needs ``(frames - 1) *
    hop_length + n_fft <= samples``).

    When ``hop_length`` divides ``n_fft`` the frames are built from ``n_fft // hop_length``
    shifted slices of the signal cut into hops (reshapes and a concatenation, whose gradient is
    a sum of slices); otherwise by a gather, whose gradient is a scatter-add. Both give the
    same numbers; the first is the cheaper gradient on CPU (the attacks differentiate this).
    """
    if n_fft % hop_length == 0:
        r = n_fft // hop_length
        blocks = frames + r - 1
        cut = padded[..., :blocks * hop_length]
        cut = cut.reshape(cut.shape[:-1] + (blocks, hop_length))
        return jnp.concatenate([cut[..., j:j + frames, :] for j in range(r)], axis=-1)
    index = (np.arange(frames)[:, None] * hop_length + np.arange(n_fft)[None, :]).astype(np.int32)
    return padded[..., index]


def stft(waves, *, n_fft: int, hop_length: int, pad_mode: str = "reflect"):
    """Centred short-time Fourier transform with a periodic Hann window.

    Args:
      waves: ``(..., num_samples)`` real waveform.
      n_fft: FFT / window size in samples (int > 1).
      hop_length: frame hop in samples (int > 0).
      pad_mode: ``"reflect"`` or ``"constant"`` (zero) padding of ``n_fft // 2`` on both sides.

    Returns:
      complex64 ``(..., n_fft // 2 + 1, num_frames)`` with ``num_frames = 1 + num_samples //
      hop_length``, equal to ``librosa.stft(..., window="hann", center=True)``.
    """
    _check_stft_params(n_fft, hop_length, pad_mode)
    waves = jnp.asarray(waves, dtype=jnp.float32)
    num_samples = waves.shape[-1]
    pad = n_fft // 2
    if pad_mode == "reflect" and num_samples <= pad:
        raise FrontendError(
            f"waveform too short for reflect padding: {num_samples} samples, need more than "
            f"n_fft // 2 = {pad}"
        )
    if num_samples < 1:
        raise FrontendError("waveform is empty (0 samples)")
    widths = [(0, 0)] * (waves.ndim - 1) + [(pad, pad)]
    padded = jnp.pad(waves, widths, mode=pad_mode)
    frames = num_frames(num_samples, hop_length)
    framed = frame(padded, frames=frames, n_fft=n_fft, hop_length=hop_length) * _hann(n_fft)
    spec = jnp.fft.rfft(framed, n=n_fft, axis=-1)  # (..., frames, bins)
    return jnp.swapaxes(spec, -1, -2)


def spectrogram(waves, *, n_fft: int, hop_length: int, power: float = 2.0,
                pad_mode: str = "reflect"):
    """``|stft|**power``, ``(..., n_fft // 2 + 1, num_frames)`` float32.

    The magnitude is ``sqrt(re² + im² + 1e-20)`` so its gradient is finite at exact zeros.
    """
    spec = stft(waves, n_fft=n_fft, hop_length=hop_length, pad_mode=pad_mode)
    squared = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    if power == 2.0:
        return squared
    return (squared + _SQRT_EPS) ** (power / 2.0)


@functools.lru_cache(maxsize=None)
def _mel_filterbank_np(sample_rate, n_fft, n_mels, fmin, fmax, mel_scale, norm):
    import librosa

    basis = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
        htk=(mel_scale == "htk"), norm=norm, dtype=np.float32,
    )
    basis.setflags(write=False)
    return basis


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: Optional[float] = None, mel_scale: str = "htk",
                   norm: Optional[str] = None) -> np.ndarray:
    """Mel filterbank ``(n_mels, n_fft // 2 + 1)`` taken from ``librosa.filters.mel``.

    ``mel_scale="htk"`` with ``norm=None`` is torchaudio's default; ``"slaney"`` with
    ``norm="slaney"`` is librosa's default. Returned as a read-only float32 numpy constant.
    """
    if mel_scale not in _MEL_SCALES:
        raise FrontendError(f"mel_scale must be one of {_MEL_SCALES}, got {mel_scale!r}")
    if norm not in (None, "slaney"):
        raise FrontendError(f"norm must be None or 'slaney', got {norm!r}")
    if fmax is not None and fmax > sample_rate / 2:
        raise FrontendError(f"fmax={fmax} Hz exceeds the Nyquist frequency {sample_rate / 2} Hz")
    if fmin < 0 or (fmax is not None and fmin >= fmax):
        raise FrontendError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    return _mel_filterbank_np(int(sample_rate), int(n_fft), int(n_mels), float(fmin),
                              None if fmax is None else float(fmax), mel_scale, norm)


def mel_spectrogram(waves, *, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                    fmin: float = 0.0, fmax: Optional[float] = None, power: float = 2.0,
                    mel_scale: str = "htk", norm: Optional[str] = None,
                    pad_mode: str = "reflect"):
    """Mel spectrogram ``(..., n_mels, num_frames)``.

    Equals ``librosa.feature.melspectrogram(y=waves, sr=sample_rate, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, power=power,
    htk=(mel_scale == "htk"), norm=norm, center=True, pad_mode=pad_mode)``.
    """
    basis = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                           fmax=fmax, mel_scale=mel_scale, norm=norm)
    spec = spectrogram(waves, n_fft=n_fft, hop_length=hop_length, power=power,
                       pad_mode=pad_mode)
    return jnp.einsum("mf,...ft->...mt", basis, spec, precision=jax.lax.Precision.HIGHEST)


def power_to_db(S, *, top_db: Optional[float] = 80.0, amin: float = 1e-10):
    """Power to decibels, ``10 log10(max(S, amin))`` relative to ``ref = 1``.

    With ``top_db``, values are clipped to at most ``top_db`` dB below the maximum of *each
    example* (the maximum over the last two axes ``(n_mels, frames)``), i.e.
    ``librosa.power_to_db(S[i], ref=1.0, amin=amin, top_db=top_db)`` for every leading index.
    """
    if amin <= 0:
        raise FrontendError(f"amin must be > 0, got {amin}")
    S = jnp.asarray(S, dtype=jnp.float32)
    log_spec = 10.0 * jnp.log10(jnp.maximum(S, amin))
    if top_db is not None:
        if top_db < 0:
            raise FrontendError(f"top_db must be >= 0 dB, got {top_db}")
        axes = tuple(range(max(S.ndim - 2, 0), S.ndim))
        peak = jnp.max(log_spec, axis=axes, keepdims=True)
        log_spec = jnp.maximum(log_spec, peak - top_db)
    return log_spec


def log_compress(S, *, floor: float = 1e-7):
    """``log(max(S, floor))`` (natural log), as in the singing voice detector."""
    if floor <= 0:
        raise FrontendError(f"floor must be > 0, got {floor}")
    return jnp.log(jnp.maximum(S, floor))


def log1p_compress(S, *, scale: float = 1.0):
    """``log(1 + scale * S)``; finite for all ``S >= 0``."""
    return jnp.log1p(scale * jnp.maximum(S, 0.0))


def scale(S, config: FrontendConfig):
    """Apply ``config.scaling`` to a mel spectrogram."""
    if config.scaling == "db":
        return power_to_db(S, top_db=config.top_db)
    if config.scaling == "log":
        return log_compress(S, floor=config.log_floor)
    if config.scaling == "log1p":
        return log1p_compress(S)
    return S


def features(waves, config: FrontendConfig):
    """Scaled (not yet standardised) mel features ``(..., n_mels, num_frames)``."""
    S = mel_spectrogram(
        waves, sample_rate=config.sample_rate, n_fft=config.n_fft,
        hop_length=config.hop_length, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
        power=config.power, mel_scale=config.mel_scale, norm=config.norm,
        pad_mode=config.pad_mode,
    )
    return scale(S, config)


def standardize(feats, mean, std, *, eps: float = 1e-5):
    """Per-mel-band standardisation ``(feats - mean) / max(std, eps)``.

    Args:
      feats: ``(..., n_mels, frames)``.
      mean, std: ``(n_mels,)`` statistics measured on the training set.
    """
    mean = jnp.asarray(mean, dtype=jnp.float32)[:, None]
    std = jnp.asarray(std, dtype=jnp.float32)[:, None]
    return (feats - mean) / jnp.maximum(std, eps)


def band_statistics(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per mel band over all examples and frames of ``(n, n_mels, frames)``."""
    arr = np.asarray(feats, dtype=np.float64)
    arr = np.moveaxis(arr, -2, 0).reshape(arr.shape[-2], -1)
    return arr.mean(axis=1).astype(np.float32), arr.std(axis=1).astype(np.float32)
