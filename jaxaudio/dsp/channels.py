"""Channels an adversarial waveform goes through on its way to a classifier, and survival.

A channel is a NumPy function ``(waves (batch, n) float32, rng) -> (batch, n) float32``: lossy
codecs (OGG Vorbis and MP3, real files encoded and decoded in memory by libsndfile through
``soundfile``), resampling to 44.1 kHz and back (``soxr``), a gain, a time shift and additive
white noise. Every channel keeps the length, dtype (float32) and range ([-1, 1]) of its input.
:data:`CHANNELS` names a small table of them; :func:`survival` measures, per channel, the share
of successful adversaries that are still adversarial after it, next to the clean accuracy
through the same channel (the control: how much the channel alone costs the classifier).

Example::

    from jaxaudio.dsp import channels
    table = channels.survival(clf.logits_fn, clean, adversarial, labels, success=res.success)
    table["mp3_c0.5"]["survival"]        # share of the adversaries still adversarial
"""

from __future__ import annotations

import dataclasses
import io
from typing import Callable, Optional, Sequence

import numpy as np

from jaxaudio.dsp.batching import map_chunks

__all__ = ["Channel", "CHANNELS", "DEFAULT_CHANNELS", "codec_round_trip", "resample_round_trip",
           "gain", "shift", "white_noise", "apply_channel", "encoded_kbps", "survival",
           "measured_snr_db"]


@dataclasses.dataclass(frozen=True)
class Channel:
    """One named channel: ``apply(waves, rate, rng) -> waves`` and what it does, in words."""

    apply: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
    description: str
    codec: Optional[tuple[str, str, float]] = None  # (format, subtype, compression_level)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded to ``n`` samples, float32 in [-1, 1]."""
    y = np.asarray(y, np.float32).reshape(-1)[:n]
    if y.size < n:
        y = np.pad(y, (0, n - y.size))
    return np.clip(y, -1.0, 1.0)


def _encode(wave: np.ndarray, rate: int, fmt: str, subtype: str, level: float) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    kwargs = {"bitrate_mode": "CONSTANT"} if fmt == "MP3" else {}
    sf.write(buf, np.clip(np.asarray(wave, np.float32), -1.0, 1.0), rate, format=fmt,
             subtype=subtype, compression_level=float(level), **kwargs)
    return buf.getvalue()


def codec_round_trip(waves, rate: int, *, fmt: str = "MP3", subtype: str = "MPEG_LAYER_III",
                     compression_level: float = 0.5) -> np.ndarray:
    """Encode every waveform to a real ``fmt`` file in memory and decode it again.

    Parameters
    ----------
    waves : np.ndarray [shape=(batch, n) or (n,)]
        float waveforms in [-1, 1].
    rate : int > 0
        Sample rate (Hz) written into the file.
    fmt, subtype : str
        libsndfile format and subtype: ``("OGG", "VORBIS")`` or ``("MP3", "MPEG_LAYER_III")``.
    compression_level : float in [0, 1]
        libsndfile's compression level (0 = best quality / highest bitrate); MP3 is written at
        a constant bitrate.

    Returns
    -------
    np.ndarray [shape=waves.shape], float32 in [-1, 1]
        The decoded audio, cut or zero-padded to the input length (codecs pad frames).
    """
    import soundfile as sf

    x = np.asarray(waves, np.float32)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    for i, w in enumerate(flat):
        decoded, _ = sf.read(io.BytesIO(_encode(w, rate, fmt, subtype, compression_level)),
                             dtype="float32", always_2d=False)
        out[i] = _fit(decoded, flat.shape[-1])
    return out.reshape(x.shape)


def encoded_kbps(waves, rate: int, *, fmt: str, subtype: str,
                 compression_level: float) -> float:
    """Mean bitrate (kbit/s) of the files :func:`codec_round_trip` writes for ``waves``."""
    x = np.asarray(waves, np.float32).reshape(-1, np.shape(waves)[-1])
    bits = sum(8 * len(_encode(w, rate, fmt, subtype, compression_level)) for w in x)
    return float(bits / (x.shape[0] * x.shape[1] / rate) / 1000.0)


def resample_round_trip(waves, rate: int, *, via_rate: int = 44100,
                        quality: str = "HQ") -> np.ndarray:
    """Resample to ``via_rate`` and back to ``rate`` with ``soxr`` (length kept)."""
    import soxr

    x = np.asarray(waves, np.float32)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    for i, w in enumerate(flat):
        up = soxr.resample(w.astype(np.float64), rate, via_rate, quality=quality)
        out[i] = _fit(soxr.resample(up, via_rate, rate, quality=quality), flat.shape[-1])
    return out.reshape(x.shape)


def gain(waves, db: float) -> np.ndarray:
    """Scale by ``db`` decibels, clipped to [-1, 1] as a 16-bit file would be."""
    return np.clip(np.asarray(waves, np.float32) * np.float32(10.0 ** (db / 20.0)), -1.0, 1.0)


def shift(waves, samples: int) -> np.ndarray:
    """Delay (``samples > 0``) or advance (``< 0``) by whole samples, zero-filled, length kept."""
    x = np.asarray(waves, np.float32)
    out = np.zeros_like(x)
    s = int(samples)
    if s >= 0:
        out[..., s:] = x[..., :x.shape[-1] - s]
    else:
        out[..., :s] = x[..., -s:]
    return out


def white_noise(waves, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` below each clip's power (clipped to [-1, 1])."""
    x = np.asarray(waves, np.float32)
    power = np.mean(np.square(x, dtype=np.float64), axis=-1, keepdims=True)
    scale = np.sqrt(power * 10.0 ** (-snr_db / 10.0))
    noise = rng.standard_normal(x.shape) * scale
    return np.clip(x + noise, -1.0, 1.0).astype(np.float32)


def measured_snr_db(clean, processed) -> np.ndarray:
    """``10 log10(sum x² / sum (y - x)²)`` per clip, over the whole clip (dB)."""
    x = np.asarray(clean, np.float64)
    d = np.asarray(processed, np.float64) - x
    return 10.0 * np.log10(np.sum(x * x, -1) / np.maximum(np.sum(d * d, -1), 1e-30))


def _codec(fmt, subtype, level, name):
    return Channel(lambda w, rate, rng: codec_round_trip(w, rate, fmt=fmt, subtype=subtype,
                                                         compression_level=level),
                   f"{name} round trip (libsndfile compression level {level:g})",
                   codec=(fmt, subtype, level))


#: Named channels (``name -> Channel``). Codec compression levels: 0 = highest bitrate.
CHANNELS: dict[str, Channel] = {
    "identity": Channel(lambda w, rate, rng: np.asarray(w, np.float32), "nothing (control)"),
    "ogg_c0.1": _codec("OGG", "VORBIS", 0.1, "OGG Vorbis"),
    "ogg_c0.5": _codec("OGG", "VORBIS", 0.5, "OGG Vorbis"),
    "ogg_c0.9": _codec("OGG", "VORBIS", 0.9, "OGG Vorbis"),
    "mp3_c0.25": _codec("MP3", "MPEG_LAYER_III", 0.25, "MP3 (CBR)"),
    "mp3_c0.5": _codec("MP3", "MPEG_LAYER_III", 0.5, "MP3 (CBR)"),
    "mp3_c0.9": _codec("MP3", "MPEG_LAYER_III", 0.9, "MP3 (CBR)"),
    "resample_44k1": Channel(lambda w, rate, rng: resample_round_trip(w, rate),
                             "resampled to 44.1 kHz and back (soxr HQ)"),
    "gain_+6dB": Channel(lambda w, rate, rng: gain(w, 6.0), "+6 dB gain, clipped to [-1, 1]"),
    "gain_-6dB": Channel(lambda w, rate, rng: gain(w, -6.0), "−6 dB gain"),
    "shift_+10ms": Channel(lambda w, rate, rng: shift(w, round(0.010 * rate)),
                           "delayed by 10 ms (zero-filled, length kept)"),
    "shift_-5ms": Channel(lambda w, rate, rng: shift(w, -round(0.005 * rate)),
                          "advanced by 5 ms (zero-filled, length kept)"),
    "noise_40dB": Channel(lambda w, rate, rng: white_noise(w, 40.0, rng),
                          "white Gaussian noise at 40 dB SNR per clip"),
}
DEFAULT_CHANNELS = tuple(CHANNELS)


def apply_channel(name: str, waves, rate: int, *, seed: int = 0) -> np.ndarray:
    """Channel ``name`` of :data:`CHANNELS` applied to ``waves`` ``(batch, n)`` (seeded)."""
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {name!r} (--channels); choose from {list(CHANNELS)}")
    x = np.asarray(waves, np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"waves must have shape (batch, samples), got {x.shape}")
    rng = np.random.default_rng([int(seed), list(CHANNELS).index(name)])
    return np.asarray(CHANNELS[name].apply(x, int(rate), rng), np.float32)


def _predict(logits_fn, waves, chunk_size):

    return np.asarray(map_chunks(lambda w: np.asarray(logits_fn(w)).argmax(-1), waves,
                                 chunk_size=chunk_size), np.int32)


def survival(logits_fn, clean, adversarial, labels, *, rate: int, targets=None,
             success=None, channels: Sequence[str] = DEFAULT_CHANNELS, seed: int = 0,
             chunk_size: int = 16, progress: bool = False) -> dict:
    """Per channel, the share of adversaries that stay adversarial after it.

    Parameters
    ----------
    logits_fn : callable
        ``(batch, n) -> (batch, num_classes)`` (softmax decision: argmax).
    clean, adversarial : np.ndarray [shape=(batch, n)]
        Original clips and their adversaries, float in [-1, 1].
    labels : np.ndarray [shape=(batch,)], int
        True classes.
    rate : int
        Sample rate (Hz) of the clips.
    targets : np.ndarray [shape=(batch,)], optional
        Target classes of a targeted attack (``-1`` = untargeted for that clip).
    success : np.ndarray [shape=(batch,)], bool, optional
        Which adversaries count (default: those adversarial without any channel).
    channels : sequence of str
        Names of :data:`CHANNELS`.
    seed : int
        Seed of the random channels (noise).

    Returns
    -------
    dict
        ``channel -> {"survival", "survivors", "num_successful", "clean_accuracy",
        "clean_accuracy_change", "description"}``; ``survival`` is ``None`` when no adversary
        was successful. Codecs add ``kbps`` (mean bitrate of the adversaries' files).
    """
    from tqdm.auto import tqdm

    x, x_adv = np.asarray(clean, np.float32), np.asarray(adversarial, np.float32)
    labels = np.asarray(labels, np.int64)
    if x.shape != x_adv.shape or x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ValueError(f"clean and adversarial must share a shape (batch, n) with labels "
                         f"(batch,); got {x.shape}, {x_adv.shape}, {labels.shape}")
    targets = np.full(labels.shape, -1) if targets is None else np.asarray(targets, np.int64)

    def adversarial_now(pred):
        return np.where(targets >= 0, pred == targets, pred != labels)

    base = adversarial_now(_predict(logits_fn, x_adv, chunk_size))
    success = base if success is None else np.asarray(success, bool)
    clean_base = float(np.mean(_predict(logits_fn, x, chunk_size) == labels))
    out = {}
    for name in tqdm(list(channels), desc="channels", disable=not progress, leave=False):
        pred_adv = _predict(logits_fn, apply_channel(name, x_adv, rate, seed=seed), chunk_size)
        pred_clean = _predict(logits_fn, apply_channel(name, x, rate, seed=seed), chunk_size)
        kept = adversarial_now(pred_adv) & success
        n_ok = int(success.sum())
        acc = float(np.mean(pred_clean == labels))
        entry = {"survival": float(kept.sum() / n_ok) if n_ok else None,
                 "survivors": int(kept.sum()), "num_successful": n_ok,
                 "clean_accuracy": acc, "clean_accuracy_change": acc - clean_base,
                 "description": CHANNELS[name].description}
        codec = CHANNELS[name].codec
        if codec is not None:
            entry["kbps"] = encoded_kbps(x_adv[:4], rate, fmt=codec[0], subtype=codec[1],
                                         compression_level=codec[2])
        out[name] = entry
    return out

