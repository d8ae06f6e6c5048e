"""Audio file input/output: soundfile for reading and writing, soxr for resampling.

Everything returns float32 waveforms with samples in [-1, 1]. Bad files fail loudly with a
``ValueError`` that names the file and the problem (missing, empty, unreadable, NaN/Inf, wrong
channel count), because a silently skipped or garbled clip would bias every later experiment.
"""

from __future__ import annotations

import os
import pathlib
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["AUDIO_EXTENSIONS", "collect_audio", "load_audio", "save_wav", "quantize_pcm16", "pcm16_samples", "pcm16_to_float",
           "PCM16_SCALE", "PCM16_MIN_INDEX", "PCM16_MAX_INDEX", "audio_info"]

#: The 16-bit PCM grid: sample ``k`` (int16, ``[-32768, 32767]``) is the float ``k / 32768``,
#: which is what libsndfile returns when it reads a PCM_16 file as float (it divides by 0x8000).
PCM16_SCALE = 32768.0
PCM16_MIN_INDEX = -32768
PCM16_MAX_INDEX = 32767

# Containers libsndfile reads itself. A file with one of these extensions that soundfile
# cannot open is corrupt; anything else (e.g. .mp3 with an old libsndfile, .m4a) is handed to
# librosa, which may find another decoder.
_SOUNDFILE_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".au",
    ".snd", ".caf", ".w64", ".rf64",
})


def _soundfile_can_read(path: Path) -> bool:
    import soundfile as sf

    ext = path.suffix.lower()
    if ext in _SOUNDFILE_EXTENSIONS:
        return True
    # Recent libsndfile (>= 1.1) decodes MP3 itself.
    return ext == ".mp3" and "MP3" in sf.available_formats()


def audio_info(path) -> tuple[int, int, int]:
    """``(sample_rate_hz, num_channels, num_frames)`` of a soundfile-readable file.

    Raises ``ValueError`` naming the file when it is missing or unreadable.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file not found: {str(path)!r}")
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise ValueError(f"cannot read audio file {str(path)!r}: {err}") from err
    return int(info.samplerate), int(info.channels), int(info.frames)


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Read ``path`` to a float32 ``(num_samples, num_channels)`` array and its rate."""
    import soundfile as sf

    if path.stat().st_size == 0:
        raise ValueError(f"audio file {str(path)!r} is empty (0 bytes)")
    soundfile_error = None
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(rate)
    except Exception as err:
        soundfile_error = err
    if _soundfile_can_read(path):
        raise ValueError(
            f"cannot read audio file {str(path)!r}: unreadable or corrupt ({soundfile_error})"
        ) from soundfile_error
    import librosa

    try:
        with warnings.catch_warnings():
            # librosa warns when it falls back to audioread; the fallback is the point here.
            warnings.simplefilter("ignore")
            data, rate = librosa.load(str(path), sr=None, mono=False, dtype=np.float32)
    except Exception as err:
        detail = str(err) or str(soundfile_error) or type(err).__name__
        raise ValueError(
            f"cannot read audio file {str(path)!r}: unreadable or unsupported format ({detail})"
        ) from err
    data = np.atleast_2d(data).T  # librosa gives (channels, samples)
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def load_audio(path, *, sample_rate: int | None = None, mono: bool = True,
               expected_channels: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 samples in [-1, 1].

    Parameters
    ----------
    path : str or os.PathLike
        WAV, FLAC, OGG (anything libsndfile reads); other formats such as MP3 are handed to
        ``librosa.load`` when libsndfile cannot decode them.
    sample_rate : int > 0, optional
        Target rate in Hz; the audio is resampled with ``soxr`` (high quality) if the file's
        rate differs. ``None`` keeps the file's rate.
    mono : bool
        Mix all channels down to one by averaging them.
    expected_channels : int >= 1, optional
        If given, files with a different number of channels are rejected.

    Returns
    -------
    wave : np.ndarray, float32
        ``(num_samples,)`` if ``mono`` else ``(num_samples, num_channels)`` (soundfile's
        layout, the one :func:`save_wav` takes). Values outside [-1, 1] (possible in float
        files, or as resampling overshoot) are clipped.
    sample_rate : int
        Rate of ``wave`` in Hz.

    Raises
    ------
    ValueError
        The message names the file and the problem: missing file, empty file, unreadable or
        corrupt data, no samples, NaN/Inf samples, wrong channel count, bad ``sample_rate``.
    """
    path = Path(os.fspath(path))
    if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate}")
    if not path.exists():
        raise ValueError(f"audio file not found: {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"audio path is not a file: {str(path)!r}")
    data, rate = _read(path)
    num_samples, num_channels = data.shape
    if expected_channels is not None and num_channels != expected_channels:
        raise ValueError(
            f"wrong channel count in {str(path)!r}: expected {expected_channels} channel(s), "
            f"the file has {num_channels}"
        )
    if num_samples == 0:
        raise ValueError(f"audio file {str(path)!r} contains no samples (0 frames)")
    if not np.all(np.isfinite(data)):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise ValueError(f"audio file {str(path)!r} contains {bad} NaN/Inf samples")
    if mono:
        data = data.mean(axis=1, dtype=np.float32)
    if sample_rate is not None and int(sample_rate) != rate:
        import soxr

        data = soxr.resample(data, rate, int(sample_rate), quality="HQ")
        rate = int(sample_rate)
    wave = np.clip(np.asarray(data, dtype=np.float32), -1.0, 1.0)
    return np.ascontiguousarray(wave), rate


def save_wav(path, wave, sample_rate: int, *, subtype: str = "PCM_16") -> Path:
    """Write a waveform to a WAV file, creating parent directories.

    Parameters
    ----------
    path : str or os.PathLike
    wave : np.ndarray [shape=(num_samples,) or (num_samples, num_channels)]
        Samples, nominally in [-1, 1]; values outside are clipped (PCM cannot hold them, and
        clipping is what a real recorder would do).
    sample_rate : int > 0
        Hz.
    subtype : str
        soundfile subtype, e.g. ``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``. ``"PCM_16"`` samples
        are converted to int16 here (:func:`pcm16_samples`: nearest ``k / 32768``) rather than
        by libsndfile, whose float-to-short rule differs between versions (1.2 floors
        ``x * 32768``, older versions round ``x * 32767``). Reading the file as float gives
        ``k / 32768`` in every version, so on-grid audio (``jaxaudio.attacks.round_to_16bit``,
        16-bit-quantised adversarials) survives writing and reading bit for bit.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        NaN/Inf samples, empty or >2-D ``wave``, bad ``sample_rate``.
    """
    import soundfile as sf

    path = Path(os.fspath(path))
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate}")
    wave = np.asarray(wave)
    if wave.ndim not in (1, 2):
        raise ValueError(
            f"wave must have shape (num_samples,) or (num_samples, num_channels), got {wave.shape}"
        )
    if wave.shape[0] == 0:
        raise ValueError(f"wave is empty (0 samples); refusing to write {str(path)!r}")
    if not np.all(np.isfinite(wave)):
        bad = int(wave.size - np.count_nonzero(np.isfinite(wave)))
        raise ValueError(f"wave contains {bad} NaN/Inf samples; refusing to write {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    clipped = np.clip(wave.astype(np.float32), -1.0, 1.0)
    data = pcm16_samples(clipped) if subtype.upper() == "PCM_16" else clipped
    sf.write(str(path), data, int(sample_rate), subtype=subtype, format="WAV")
    return path


def pcm16_samples(wave) -> np.ndarray:
    """int16 samples of a float waveform: ``clip(round(32768 x), -32768, 32767)``.

    The 16-bit grid is ``k / 32768`` (what libsndfile returns when it reads PCM_16 as float), so
    a ``wave`` already on it maps to its exact ``k`` and reads back unchanged.
    """
    index = np.round(np.asarray(wave, np.float64) * PCM16_SCALE)
    return np.clip(index, PCM16_MIN_INDEX, PCM16_MAX_INDEX).astype(np.int16)


def pcm16_to_float(samples) -> np.ndarray:
    """float32 ``k / 32768`` of int16 samples (what reading a PCM_16 file as float gives)."""
    return np.asarray(samples, np.int16).astype(np.float32) / np.float32(PCM16_SCALE)


def quantize_pcm16(wave) -> np.ndarray:
    """The value a waveform has after a 16-bit PCM WAV write and read back (soundfile).

    Computed by really writing the clipped samples (converted by :func:`pcm16_samples`, as
    :func:`save_wav` does) to an in-memory PCM_16 WAV and reading them back with soundfile, so it
    matches :func:`save_wav` + :func:`load_audio` exactly: the nearest ``k / 32768``.
    Useful to check that an adversarial perturbation survives being saved: compare a model's
    output on ``quantize_pcm16(x_adv)`` with that on ``x_adv``.

    Parameters
    ----------
    wave : np.ndarray [shape=(..., num_samples)], finite

    Returns
    -------
    np.ndarray, float32, same shape; multiples of 1/32768 in [-1, 32767/32768]
    """
    import io

    import soundfile as sf

    wave = np.asarray(wave, dtype=np.float32)
    if not np.all(np.isfinite(wave)):
        raise ValueError("wave contains NaN/Inf samples; cannot quantise")
    if wave.size == 0:
        return wave.copy()
    buffer = io.BytesIO()
    # Every sample is quantised on its own, so the whole array can travel as one mono signal.
    sf.write(buffer, pcm16_samples(np.clip(wave.reshape(-1), -1.0, 1.0)), 8000,
             subtype="PCM_16", format="WAV")
    buffer.seek(0)
    restored, _ = sf.read(buffer, dtype="float32")
    return restored.reshape(wave.shape)


#: File endings read from folders (an explicitly named file is read whatever its ending).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")


def collect_audio(paths: Iterable, *, flag: str = "--audio") -> tuple[list[pathlib.Path], int]:
    """The audio files named by ``paths`` (files, or folders searched recursively for
    :data:`AUDIO_EXTENSIONS`, sorted). Returns ``(files, skipped)``: ``skipped`` counts the
    other files found in the folders. ``ValueError`` (naming ``flag``) for a missing path or
    when nothing is left."""
    files, skipped = [], 0
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                if f.suffix.lower() in AUDIO_EXTENSIONS:
                    files.append(f)
                else:
                    skipped += 1
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{flag} {raw}: no such file or folder")
    if not files:
        raise ValueError(f"{flag}: no audio files found (looked for "
                         f"{', '.join(AUDIO_EXTENSIONS)} in the folders given)")
    return files, skipped
