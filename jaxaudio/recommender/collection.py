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

:func:`pack_waves` / :func:`unpack_waves` store songs of different lengths as one array and
their lengths; :func:`collection_arrays` is a whole :class:`Collection` in that form (what a
pipeline stage stores), and :func:`load_collection` the synthetic or folder one in it.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import numpy as np

from jaxaudio.data import synth_instruments as si
from jaxaudio.data import synth_voice as sv
from jaxaudio.data.audio import collect_audio, load_audio

__all__ = ["GENRES", "Collection", "synth_collection", "load_folder", "middle", "pack_waves",
           "unpack_waves", "collection_arrays", "load_collection", "waves_of"]


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
        wave, _ = sv.synth_song(rng, n, sr)
        return wave
    parts, voice_p, pitch, bright = spec
    style = si.InstrumentStyle(pitch_scale=si.log_uniform(rng, *pitch),
                      brightness=si.log_uniform(rng, *bright))
    mix = np.zeros(n)
    for name in parts:
        part = si.SYNTHS[name](rng, n, sr, style)
        mix += part / _rms(part) * rng.uniform(0.4, 1.0)
    if rng.random() < voice_p or not parts:
        voices = ("Female_singing", "Male_singing")
        for name in voices if genre == "choir" else (voices[int(rng.integers(2))],):
            part = si.SYNTHS[name](rng, n, sr, style)
            mix += part / _rms(part) * rng.uniform(0.6, 1.2)
    return si.finish_clip(rng, mix, sr, shifted=False)


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


def pack_waves(waves) -> tuple[np.ndarray, np.ndarray]:
    """Songs of any lengths as one array.

    Parameters
    ----------
    waves : sequence of np.ndarray [shape=(num_samples_i,)]

    Returns
    -------
    audio : np.ndarray [shape=(sum num_samples_i,)], float32
        The songs one after another.
    lengths : np.ndarray [shape=(num_songs,)], int64
        Samples per song.
    """
    lengths = np.array([w.shape[0] for w in waves], np.int64)
    return np.concatenate(waves).astype(np.float32), lengths


def unpack_waves(audio, lengths) -> list:
    """The inverse of :func:`pack_waves`: ``audio`` cut into the songs of ``lengths`` (views)."""
    ends = np.cumsum(lengths)
    return [audio[e - n:e] for e, n in zip(ends, lengths)]


def waves_of(arrays) -> list:
    """The songs of :func:`collection_arrays` (any mapping with its ``audio`` and ``lengths``,
    e.g. a finished stage): :func:`unpack_waves`."""
    return unpack_waves(arrays["audio"], arrays["lengths"])


def collection_arrays(c: Collection) -> dict:
    """A :class:`Collection` as arrays and JSON values: ``audio`` and ``lengths``
    (:func:`pack_waves`), ``names``, ``genres`` (lists) and ``sample_rate``."""
    audio, lengths = pack_waves(c.waves)
    return {"audio": audio, "lengths": lengths, "names": list(c.names),
            "genres": list(c.genres), "sample_rate": c.sample_rate}


def load_collection(source=None, *, num_songs: int, seconds: float, seed: int = 0,
                    progress: bool = False) -> dict:
    """:func:`collection_arrays` of the synthetic collection (``source`` None:
    :func:`synth_collection` of ``num_songs``) or of the folder ``source``
    (:func:`load_folder`, every file; ``num_songs`` and ``seed`` unused); ``seconds`` per
    song."""
    if source is None:
        c = synth_collection(num_songs=num_songs, seconds=seconds, seed=seed, progress=progress)
    else:
        c = load_folder(source, seconds=seconds)
    return collection_arrays(c)
