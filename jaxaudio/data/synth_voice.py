"""Embedded default dataset for singing voice detection: synthetic songs with exact labels.

Each song is a small arrangement in a random key and tempo: a chord progression (sustained
pads or plucked arpeggios), a bass line, a drum kit, and *instrumental* lead melodies (a
band-limited sawtooth or a breathy flute, sometimes with vibrato), so that "any pitched,
melodic sound is a voice" is not a solution. Sung phrases (glottal pulses through vowel
formant filters, vibrato, note glides, syllable envelopes and consonant-like noise bursts; see
:func:`jaxaudio.data.synth_instruments.sing_syllables`) enter and leave; the exact
``[start, end)`` time of every phrase is recorded. About 40-60 % of each song is sung.

Stands in for Jamendo-VAD (docs/studies.md §3) when no download is possible.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from jaxaudio.data.synth_instruments import (
    add_at,
    adsr,
    colored_noise,
    exp_envelope,
    karplus_strong,
    max_harmonics,
    oscillate,
    rms_level,
    sing_syllables,
    VoiceStyle,
    wavetable,
)
from jaxaudio.data.types import SongDataset

__all__ = ["make_synth_voice", "VOICE_SPLITS"]

#: Valid values of ``split``; the index seeds the split's random stream.
VOICE_SPLITS: tuple[str, ...] = ("train", "valid", "test")

# Offsets the split index in the seed so that these streams never coincide with those of
# make_synth_instruments for the same user seed.
_STREAM_TAG = 1000

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
# Common progressions as scale degrees (0-based): I-V-vi-IV, vi-IV-I-V, I-IV-V-IV, ii-V-I-vi...
_PROGRESSIONS = ([0, 4, 5, 3], [5, 3, 0, 4], [0, 3, 4, 3], [1, 4, 0, 5], [0, 5, 3, 4],
                 [0, 0, 3, 4])


def _midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _triad(scale: np.ndarray, degree: int, tonic_midi: int) -> np.ndarray:
    """MIDI notes of the diatonic triad on ``degree`` of ``scale``."""
    steps = degree + np.array([0, 2, 4])
    return tonic_midi + scale[steps % 7] + 12 * (steps // 7)


def _plan_segments(rng: np.random.Generator, duration: float) -> np.ndarray:
    """Sung phrases ``(k, 2)`` in seconds covering 40-60 % of ``duration``.

    Phrase lengths and the gaps between them (intro and outro included) are random, with
    floors of 1 s per phrase and 0.5 s per gap, and add up to the song exactly.
    """
    sung_fraction = rng.uniform(0.42, 0.58)
    sung_total = sung_fraction * duration
    num_phrases = int(np.clip(round(sung_total / rng.uniform(3.0, 7.0)), 1,
                              max(1, int(sung_total // 1.5))))
    phrase_floor, gap_floor = 1.0, 0.5
    gap_total = duration - sung_total
    phrases = phrase_floor + (sung_total - phrase_floor * num_phrases) * rng.dirichlet(
        np.full(num_phrases, 3.0))
    gaps = gap_floor + (gap_total - gap_floor * (num_phrases + 1)) * rng.dirichlet(
        np.full(num_phrases + 1, 2.0))
    starts = np.cumsum(gaps[:-1]) + np.concatenate([[0.0], np.cumsum(phrases[:-1])])
    return np.stack([starts, starts + phrases], axis=1)


def _kick(rng, sr):
    length = int(0.35 * sr)
    t = np.arange(length) / sr
    sweep = 50.0 + 100.0 * np.exp(-t / 0.035)
    body = np.sin(2 * np.pi * np.cumsum(sweep) / sr)
    return body * exp_envelope(length, sr, decay_seconds=rng.uniform(0.08, 0.15))


def _snare(rng, sr):
    length = int(0.25 * sr)
    t = np.arange(length) / sr
    band = signal.butter(2, [1500.0 / (sr / 2), 7000.0 / (sr / 2)], btype="band", output="sos")
    rattle = signal.sosfilt(band, rng.standard_normal(length))
    rattle /= np.max(np.abs(rattle)) + 1e-12
    tone = np.sin(2 * np.pi * rng.uniform(170.0, 230.0) * t)
    return (0.7 * rattle * exp_envelope(length, sr, decay_seconds=0.06)
            + 0.5 * tone * exp_envelope(length, sr, decay_seconds=0.04))


def _hat(rng, sr):
    length = int(0.08 * sr)
    high = signal.butter(4, min(7000.0, 0.4 * sr) / (sr / 2), btype="high", output="sos")
    return signal.sosfilt(high, rng.standard_normal(length)) * exp_envelope(
        length, sr, decay_seconds=0.02)


def _drums(rng, n, sr, beat_seconds) -> np.ndarray:
    out = np.zeros(n)
    kick, snare, hat = _kick(rng, sr), _snare(rng, sr), _hat(rng, sr)
    eighth = beat_seconds / 2
    hat_density = rng.uniform(0.5, 1.0)
    for step, time in enumerate(np.arange(0.0, n / sr, eighth)):
        start = int(time * sr)
        position = step % 8  # eighth notes in a 4/4 bar
        if position in (0, 4) or (position == 5 and rng.random() < 0.3):
            add_at(out, kick * rng.uniform(0.8, 1.0), start)
        if position in (2, 6):
            add_at(out, snare * rng.uniform(0.7, 1.0), start)
        if rng.random() < hat_density:
            add_at(out, hat * rng.uniform(0.3, 0.7), start)
    return out


def _chord_timeline(rng, n, sr, beat_seconds, scale, tonic_midi):
    """Chords as (start_sample, stop_sample, midi_notes) spans filling the song."""
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    bar_samples = int(4 * beat_seconds * sr) * rng.choice([1, 2])
    spans = []
    for i, start in enumerate(range(0, n, bar_samples)):
        degree = progression[i % len(progression)]
        spans.append((start, min(n, start + bar_samples), _triad(scale, degree, tonic_midi)))
    return spans


def _pads(rng, n, sr, spans) -> np.ndarray:
    """Sustained harmonic chords (organ / string pad)."""
    out = np.zeros(n)
    max_hz = float(_midi_to_hz(max(int(s[2].max()) for s in spans)))
    k = np.arange(1, max_harmonics(max_hz, sr) + 1)
    table = wavetable(k ** -rng.uniform(1.0, 2.0) * rng.uniform(0.5, 1.0, k.size))
    for start, stop, notes in spans:
        length = stop - start
        tone = sum(oscillate(table, f, length, sr, phase0=rng.random())
                   for f in _midi_to_hz(notes))
        out[start:stop] += tone * adsr(length, sr, attack=rng.uniform(0.05, 0.3),
                                        release=rng.uniform(0.05, 0.2))
    return out


def _arpeggio(rng, n, sr, spans, beat_seconds) -> np.ndarray:
    """Plucked chord tones (Karplus-Strong) on a rhythmic grid."""
    out = np.zeros(n)
    step = int(beat_seconds * sr / rng.choice([1, 2]))
    brightness = rng.uniform(0.3, 0.9)
    for start, stop, notes in spans:
        pattern = rng.permutation(np.concatenate([notes, notes[:1] + 12]))
        for j, onset in enumerate(range(start, stop, step)):
            length = min(int(1.0 * sr), n - onset)
            pluck = karplus_strong(rng, f0_hz=float(_midi_to_hz(pattern[j % pattern.size])),
                                    num_samples=length, sample_rate=sr,
                                    decay_seconds=rng.uniform(0.6, 1.5), brightness=brightness)
            add_at(out, pluck * rng.uniform(0.6, 1.0), onset)
    return out


def _bass(rng, n, sr, spans, beat_seconds) -> np.ndarray:
    out = np.zeros(n)
    step = int(beat_seconds * sr * rng.choice([1, 2]))
    for start, stop, notes in spans:
        root_hz = float(_midi_to_hz(notes[0] - 24))
        for onset in range(start, stop, step):
            length = min(step, n - onset)
            pluck = karplus_strong(rng, f0_hz=root_hz, num_samples=length, sample_rate=sr,
                                    decay_seconds=rng.uniform(0.8, 1.5), brightness=0.1)
            add_at(out, pluck, onset)
    return out


def _lead_line(rng, length, sr, *, scale, tonic_midi, beat_seconds) -> np.ndarray:
    """An instrumental melody (sawtooth or flute) of ``length`` samples."""
    note_samples = int(beat_seconds * sr / rng.choice([1, 2]))
    num_notes = max(1, -(-length // note_samples))
    degrees = np.cumsum(rng.choice([-2, -1, 0, 1, 2], size=num_notes)) + rng.integers(0, 7)
    degrees = np.clip(degrees, -3, 10)
    midi = tonic_midi + 12 + scale[degrees % 7] + 12 * (degrees // 7)
    freq = np.repeat(_midi_to_hz(midi), note_samples)[:length]
    t = np.arange(length) / sr
    if rng.random() < 0.5:  # vibrato, so that vibrato alone does not mean "voice"
        freq = freq * 2 ** (rng.uniform(0.1, 0.5) / 12 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5)
                                                                  * t))
    k = np.arange(1, max_harmonics(float(freq.max()) * 1.05, sr) + 1)
    flute = rng.random() < 0.5
    if flute:
        amps = np.exp(-(k - 1) * rng.uniform(0.8, 1.5))
    else:
        amps = 1.0 / k  # sawtooth
    tone = oscillate(wavetable(amps), freq, length, sr, phase0=rng.random())
    tone /= np.max(np.abs(tone)) + 1e-12
    if flute:
        tone += rng.uniform(0.03, 0.12) * colored_noise(rng, length, exponent=1.0) / 3.0
    # Per-note articulation: short attacks and releases so notes are separated.
    env = np.concatenate([adsr(note_samples, sr, attack=0.02, release=0.04)] * num_notes)
    return tone * env[:length] * adsr(length, sr, attack=0.05, release=0.1)


def synth_song(rng: np.random.Generator, num_samples: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """One song ``(num_samples,)`` float32 and its sung segments ``(k, 2)`` in seconds."""
    duration = num_samples / sr
    beat_seconds = 60.0 / rng.uniform(70.0, 150.0)
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    tonic_midi = int(rng.integers(55, 67))  # G3..F#4
    spans = _chord_timeline(rng, num_samples, sr, beat_seconds, scale, tonic_midi)

    # --- Accompaniment: each part at unit RMS times a random gain. ---
    parts = [(_bass(rng, num_samples, sr, spans, beat_seconds), rng.uniform(0.5, 1.0))]
    if rng.random() < 0.85:
        parts.append((_drums(rng, num_samples, sr, beat_seconds), rng.uniform(0.4, 1.0)))
    if rng.random() < 0.7:
        parts.append((_pads(rng, num_samples, sr, spans), rng.uniform(0.3, 0.8)))
    if rng.random() < 0.7 or len(parts) < 3:
        parts.append((_arpeggio(rng, num_samples, sr, spans, beat_seconds),
                      rng.uniform(0.3, 0.9)))
    accompaniment = sum(part / rms_level(part) * gain for part, gain in parts)

    # --- Voice phrases at the planned segments. ---
    segments = _plan_segments(rng, duration)
    female = rng.random() < 0.5
    voice_style = VoiceStyle(
        f0_low_hz=(196.0 if female else 98.0) * rng.uniform(0.95, 1.1),
        f0_high_hz=(440.0 if female else 220.0) * rng.uniform(0.85, 1.0),
        formant_scale=rng.uniform(1.12, 1.25) if female else rng.uniform(0.92, 1.05),
        spectral_tilt=rng.uniform(0.9, 1.5), vibrato_hz=rng.uniform(4.5, 6.5),
        vibrato_semitones=rng.uniform(0.2, 0.7), breathiness=rng.uniform(0.01, 0.05),
    )
    voice = np.zeros(num_samples)
    sample_bounds = np.round(segments * sr).astype(np.int64)
    sample_bounds[:, 1] = np.minimum(sample_bounds[:, 1], num_samples)
    for start, stop in sample_bounds:
        voice[start:stop] = sing_syllables(rng, num_samples=stop - start, sample_rate=sr,
                                            style=voice_style, syllable_seconds=(0.15, 0.6),
                                            rest_probability=0.05)
    sung = np.zeros(num_samples, dtype=bool)
    for start, stop in sample_bounds:
        sung[start:stop] = True

    # --- Instrumental leads: in most instrumental gaps, sometimes under the voice. ---
    lead = np.zeros(num_samples)
    gap_bounds = np.concatenate([[0], sample_bounds.reshape(-1), [num_samples]]).reshape(-1, 2)
    for start, stop in gap_bounds:
        if stop - start > int(0.5 * sr) and rng.random() < 0.7:
            lead[start:stop] += _lead_line(rng, stop - start, sr, scale=scale,
                                           tonic_midi=tonic_midi, beat_seconds=beat_seconds)
    for start, stop in sample_bounds:
        if rng.random() < 0.25:
            lead[start:stop] += 0.5 * _lead_line(rng, stop - start, sr, scale=scale,
                                                 tonic_midi=tonic_midi,
                                                 beat_seconds=beat_seconds)

    # Levels relative to the accompaniment, measured where each part plays.
    accompaniment_rms = rms_level(accompaniment)
    voice_db = rng.uniform(-3.0, 6.0)
    voice *= accompaniment_rms * 10 ** (voice_db / 20) / rms_level(voice[sung])
    if np.any(lead):
        lead *= accompaniment_rms * 10 ** (rng.uniform(-4.0, 4.0) / 20) / rms_level(lead[lead != 0])
    mix = accompaniment + voice + lead
    mix += colored_noise(rng, num_samples, exponent=rng.uniform(0.0, 2.0)) * rms_level(mix) * 10 ** (
        -rng.uniform(30.0, 50.0) / 20)
    mix *= rng.uniform(0.5, 0.95) / (np.max(np.abs(mix)) + 1e-12)
    exact_segments = sample_bounds.astype(np.float64) / sr
    return mix.astype(np.float32), exact_segments


def make_synth_voice(*, split: str, num_songs: int, seed: int, sample_rate: int = 22050,
                     min_seconds: float = 20.0, max_seconds: float = 40.0) -> SongDataset:
    """Synthetic songs with exact singing-voice annotations.

    Parameters
    ----------
    split : {"train", "valid", "test"}
        Same distribution, different songs; each split has its own random stream.
    num_songs : int >= 1
    seed : int
        Same ``(split, seed)`` gives identical songs.
    sample_rate : int > 0
        Hz (the singing voice detector uses 22.05 kHz).
    min_seconds, max_seconds : float, 5 <= min_seconds <= max_seconds
        Song durations are uniform in this range (seconds).

    Returns
    -------
    SongDataset
        ``waves``: float32 mono songs in [-1, 1]; ``segments``: per song a ``(k, 2)`` float64
        array of sung ``[start, end)`` times in seconds, sorted, disjoint, inside the song, on
        sample boundaries; names ``synth_voice_<split>_<index:04d>``.
    """
    if split not in VOICE_SPLITS:
        raise ValueError(f"split must be one of {VOICE_SPLITS}, got {split!r}")
    if int(num_songs) != num_songs or num_songs < 1:
        raise ValueError(f"num_songs must be an integer >= 1, got {num_songs}")
    if int(sample_rate) != sample_rate or sample_rate < 16000:
        raise ValueError(f"sample_rate must be an integer >= 16000 Hz, got {sample_rate}")
    if not (5.0 <= min_seconds <= max_seconds):
        raise ValueError(
            "need 5 <= min_seconds <= max_seconds (seconds; a song needs room for phrases and "
            f"gaps), got min_seconds={min_seconds}, max_seconds={max_seconds}"
        )
    split_id = _STREAM_TAG + VOICE_SPLITS.index(split)
    waves, segments = [], []
    for i in range(int(num_songs)):
        rng = np.random.default_rng([int(seed), split_id, i])
        num_samples = int(round(rng.uniform(min_seconds, max_seconds) * sample_rate))
        wave, segs = synth_song(rng, num_samples, int(sample_rate))
        waves.append(wave)
        segments.append(segs)
    names = tuple(f"synth_voice_{split}_{i:04d}" for i in range(int(num_songs)))
    return SongDataset(waves=waves, segments=segments, sample_rate=int(sample_rate), names=names)
