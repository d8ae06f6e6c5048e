"""Song collections for the recommender: an embedded synthetic one, or a folder of audio files.

:func:`synth_collection` synthesises songs of several *genres*; a genre is an instrument set
(the timbre models of :mod:`jaxaudio.data.synth_instruments`), a key range, a brightness and
the chance of a sung part; the band-with-voice genre ("pop") is the song generator of
:mod:`jaxaudio.data.synth_voice`. Tempi come from the drum and note generators; every song goes
through a random recording channel (EQ, low-pass, sometimes reverberation, background noise).
Within-genre variety plus between-genre contrast gives the KL-Gaussian recommender the
hubness it shows on real collections.

:func:`load_folder` reads any folder of audio files that soundfile (or librosa) reads, at
22.05 kHz mono, keeping the middle ``seconds`` of each.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import numpy as np

from jaxaudio.data import synth_instruments as si
from jaxaudio.data import synth_voice as sv

__all__ = ["GENRES", "Collection", "synth_collection", "load_folder", "middle"]


class Collection(NamedTuple):
    """``waves``: list of float32 mono songs at ``sample_rate``; ``names``; ``genres``
    (``""`` for files)."""

    waves: list
    names: tuple
    genres: tuple
    sample_rate: int


#: genre -> (instrument parts, probability of a sung part, pitch-scale range, brightness range)
GENRES = {
    "rock": (("Electric_guitar", "Bass_guitar", "Bass_drum", "Hi-hat"), 0.7, (0.8, 1.25),
             (1.0, 1.6)),
    "folk": (("Acoustic_guitar", "Harmonica"), 0.6, (0.85, 1.2), (0.8, 1.2)),
    "chanson": (("Accordion", "Acoustic_guitar", "Bass_guitar"), 0.8, (0.85, 1.2), (0.7, 1.1)),
    "percussion": (("Marimba_and_xylophone", "Bass_drum", "Hi-hat"), 0.0, (0.8, 1.25),
                   (0.8, 1.4)),
    "ambient": (("Gong", "Glockenspiel"), 0.2, (0.7, 1.3), (0.6, 1.0)),
    "jazz": (("Bass_guitar", "Marimba_and_xylophone", "Hi-hat", "Harmonica"), 0.4, (0.8, 1.25),
             (0.7, 1.2)),
    "choir": ((), 1.0, (0.85, 1.2), (0.8, 1.2)),
    "pop": None,  # synth_voice's band with voice
}


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def _genre_song(rng: np.random.Generator, genre: str, n: int, sr: int) -> np.ndarray:
    spec = GENRES[genre]
    if spec is None:
        wave, _ = sv._song(rng, n, sr)
        return wave
    parts, voice_p, pitch, bright = spec
    style = si._Style(pitch_scale=si._log_uniform(rng, *pitch),
                      brightness=si._log_uniform(rng, *bright))
    mix = np.zeros(n)
    for name in parts:
        part = si._SYNTHS[name](rng, n, sr, style)
        mix += part / _rms(part) * rng.uniform(0.4, 1.0)
    if rng.random() < voice_p or not parts:
        voices = ("Female_singing", "Male_singing")
        for name in voices if genre == "choir" else (voices[int(rng.integers(2))],):
            part = si._SYNTHS[name](rng, n, sr, style)
            mix += part / _rms(part) * rng.uniform(0.6, 1.2)
    return si._finish(rng, mix, sr, shifted=False)


def synth_collection(*, num_songs: int, seconds: float, seed: int = 0,
                     sample_rate: int = 22050, progress: bool = False) -> Collection:
    """``num_songs`` synthetic songs of ``seconds`` each, genres round-robin over
    :data:`GENRES` (one independent random stream per song)."""
    if int(num_songs) != num_songs or num_songs < 8:
        raise ValueError(f"num_songs must be an integer >= 8, got {num_songs!r}")
    if not seconds >= 1.0:
        raise ValueError(f"seconds must be >= 1, got {seconds!r}")
    n = int(round(seconds * sample_rate))
    genres = tuple(list(GENRES)[i % len(GENRES)] for i in range(int(num_songs)))
    it = range(int(num_songs))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="synthesising songs", leave=False)
    waves = []
    for i in it:
        rng = np.random.default_rng([int(seed), 4000, i])
        wave = np.asarray(_genre_song(rng, genres[i], n, sample_rate), np.float32)
        waves.append(np.clip(wave, -1.0, 1.0))
    names = tuple(f"song{i:04d}_{g}" for i, g in enumerate(genres))
    return Collection(waves, names, genres, int(sample_rate))


def middle(wave: np.ndarray, num_samples: int) -> np.ndarray:
    """The middle ``num_samples`` of ``wave`` (all of it when shorter)."""
    extra = wave.shape[0] - int(num_samples)
    if extra <= 0:
        return wave
    return wave[extra // 2: extra // 2 + int(num_samples)]


def load_folder(folder, *, seconds: float, sample_rate: int = 22050,
                min_songs: int = 8, flag: str = "--audio") -> Collection:
    """Every audio file under ``folder`` (recursively), resampled to ``sample_rate`` mono, the
    middle ``seconds`` of each. ``ValueError`` naming ``flag`` for a missing or empty folder,
    an unreadable file, a song shorter than 0.5 s or fewer than ``min_songs`` songs."""
    from jaxaudio.data.audio import load_audio
    from jaxaudio.predict import collect_audio

    path = pathlib.Path(folder)
    if not path.is_dir():
        raise ValueError(f"{flag} {folder}: no such folder")
    files, _ = collect_audio([path], flag=flag)
    if len(files) < min_songs:
        raise ValueError(f"{flag} {folder}: found {len(files)} audio file(s), the recommender "
                         f"needs at least {min_songs} songs")
    waves = []
    for f in files:
        try:
            wave, _ = load_audio(f, sample_rate=sample_rate)
        except ValueError as err:
            raise ValueError(f"{flag}: {err}") from None
        if wave.shape[0] < sample_rate // 2:
            raise ValueError(f"{flag}: {f} is shorter than 0.5 s ({wave.shape[0]} samples at "
                             f"{sample_rate} Hz)")
        waves.append(np.ascontiguousarray(middle(wave, int(round(seconds * sample_rate)))))
    names = tuple(str(f.relative_to(path)) for f in files)
    return Collection(waves, names, ("",) * len(files), int(sample_rate))
