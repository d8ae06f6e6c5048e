"""Properties of the embedded synthetic datasets (instruments and singing voice)."""

import numpy as np
import pytest

from jaxaudio.data.synth_instruments import make_synth_instruments
from jaxaudio.data.synth_voice import make_synth_voice
from jaxaudio.data.types import INSTRUMENT_LABELS, ClipDataset, SongDataset

# Short clips keep the suite fast; the properties do not depend on clip length.
SMALL = dict(num_clips=24, sample_rate=16000, min_seconds=0.3, max_seconds=0.9)
SONGS = dict(num_songs=2, sample_rate=22050, min_seconds=6.0, max_seconds=9.0)


@pytest.fixture(scope="module")
def curated():
    return make_synth_instruments(split="curated", seed=0, **SMALL)


@pytest.fixture(scope="module")
def songs():
    return make_synth_voice(split="train", seed=0, **SONGS)


def _same(a, b):
    return (len(a.waves) == len(b.waves)
            and all(np.array_equal(x, y) for x, y in zip(a.waves, b.waves)))


def test_instruments_are_valid_audio(curated):
    assert isinstance(curated, ClipDataset)
    assert curated.label_names == INSTRUMENT_LABELS and curated.sample_rate == 16000
    for wave in curated.waves:
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert np.all(np.isfinite(wave))
        assert np.max(np.abs(wave)) <= 1.0
        assert np.max(np.abs(wave)) >= 0.09  # peak normalised to at least ~0.1, never silent
        assert 0.3 * 16000 - 1 <= wave.size <= 0.9 * 16000 + 1


def test_instruments_balanced_over_all_classes(curated):
    counts = np.bincount(curated.labels, minlength=len(INSTRUMENT_LABELS))
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(curated.targets.argmax(axis=1), curated.labels)
    np.testing.assert_array_equal(curated.targets.sum(axis=1), 1.0)
    assert curated.names[12] == "synth_curated_00012"


def test_instruments_deterministic_per_seed_and_split(curated):
    again = make_synth_instruments(split="curated", seed=0, **SMALL)
    assert _same(curated, again)
    np.testing.assert_array_equal(curated.labels, again.labels)
    assert not _same(curated, make_synth_instruments(split="curated", seed=1, **SMALL))
    assert not _same(curated, make_synth_instruments(split="test", seed=0, **SMALL))


def test_noisy_split_has_requested_label_noise():
    clean = make_synth_instruments(split="noisy", seed=0, label_noise=0.0, **SMALL)
    noisy = make_synth_instruments(split="noisy", seed=0, **SMALL)  # default 0.3
    # The audio is synthesised from the true classes, so it does not depend on label noise.
    assert _same(clean, noisy)
    changed = noisy.labels != clean.labels
    assert changed.sum() == round(0.3 * len(noisy))
    heavy = make_synth_instruments(split="noisy", seed=0, label_noise=0.75, **SMALL)
    assert np.sum(heavy.labels != clean.labels) == round(0.75 * len(heavy))


def test_classes_differ_in_spectral_centroid(curated):
    def centroid_hz(wave):
        power = np.abs(np.fft.rfft(wave)) ** 2
        freqs = np.fft.rfftfreq(wave.size, 1 / curated.sample_rate)
        return np.sum(freqs * power) / np.sum(power)

    def centroids(name):
        k = INSTRUMENT_LABELS.index(name)
        return [centroid_hz(curated.waves[i]) for i in np.flatnonzero(curated.labels == k)]

    assert min(centroids("Hi-hat")) > max(centroids("Bass_drum"))
    assert min(centroids("Glockenspiel")) > max(centroids("Bass_guitar"))


@pytest.mark.parametrize("kwargs,match", [
    ({"split": "train"}, "split"),
    ({"split": "curated", "min_seconds": 2.0, "max_seconds": 1.0}, "min_seconds"),
    ({"split": "curated", "num_clips": 0}, "num_clips"),
    ({"split": "noisy", "label_noise": 1.5}, "rate"),
])
def test_instruments_bad_arguments(kwargs, match):
    args = dict(num_clips=2, seed=0, min_seconds=0.1, max_seconds=0.2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_synth_instruments(**args)


def test_songs_valid_audio_and_segments(songs):
    assert isinstance(songs, SongDataset) and len(songs) == 2
    for wave, segments in zip(songs.waves, songs.segments):
        duration = wave.size / songs.sample_rate
        assert 6.0 - 1e-3 <= duration <= 9.0 + 1e-3
        assert wave.dtype == np.float32 and np.all(np.isfinite(wave))
        assert np.max(np.abs(wave)) <= 1.0
        segments = np.asarray(segments)
        assert segments.ndim == 2 and segments.shape[1] == 2 and len(segments) >= 1
        assert np.all(segments[:, 0] < segments[:, 1])
        assert segments.min() >= 0.0 and segments.max() <= duration
        assert np.all(segments[1:, 0] >= segments[:-1, 1])  # sorted and disjoint
        sung_fraction = np.sum(segments[:, 1] - segments[:, 0]) / duration
        assert 0.35 <= sung_fraction <= 0.65


def test_songs_frame_labels_match_segments(songs):
    hop = 315
    labels = songs.frame_labels(0, hop_length=hop)
    duration = songs.waves[0].size / songs.sample_rate
    sung = np.sum(np.diff(songs.segments[0], axis=1)) / duration
    assert abs(labels.mean() - sung) < 0.02


def test_accompaniment_plays_between_phrases(songs):
    # Silence must not give the label away: the instrumental gaps are as alive as the song.
    for wave, segments in zip(songs.waves, songs.segments):
        sr = songs.sample_rate
        bounds = np.concatenate([[0.0], np.ravel(segments), [wave.size / sr]])
        song_rms = np.sqrt(np.mean(wave ** 2))
        for start, stop in (np.round(bounds * sr).astype(int)).reshape(-1, 2):
            if stop - start > sr // 2:
                assert np.sqrt(np.mean(wave[start:stop] ** 2)) > 0.2 * song_rms


def test_sung_phrases_start_and_end_on_their_bounds():
    from jaxaudio.data.synth_instruments import VoiceStyle, sing_syllables

    sr = 22050
    style = VoiceStyle(f0_low_hz=100.0, f0_high_hz=200.0, formant_scale=1.0)
    for seed in range(3):
        voice = sing_syllables(np.random.default_rng(seed), num_samples=2 * sr,
                                sample_rate=sr, style=style, syllable_seconds=(0.15, 0.6),
                                rest_probability=0.5)
        assert np.max(np.abs(voice)) == pytest.approx(1.0)
        edge = int(0.1 * sr)
        assert np.sqrt(np.mean(voice[:edge] ** 2)) > 0.01
        assert np.sqrt(np.mean(voice[-edge:] ** 2)) > 0.01


def test_songs_deterministic_per_seed_and_split(songs):
    assert _same(songs, make_synth_voice(split="train", seed=0, **SONGS))
    assert not _same(songs, make_synth_voice(split="train", seed=1, **SONGS))
    assert not _same(songs, make_synth_voice(split="test", seed=0, **SONGS))


@pytest.mark.parametrize("kwargs,match", [
    ({"split": "curated"}, "split"),
    ({"split": "train", "min_seconds": 2.0}, "min_seconds"),
    ({"split": "train", "num_songs": 0}, "num_songs"),
])
def test_songs_bad_arguments(kwargs, match):
    args = dict(num_songs=1, seed=0, min_seconds=6.0, max_seconds=6.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_synth_voice(**args)


def _quiet_bins_db(wave, sr=16000):
    """How far (dB) the 5th percentile of the clip's STFT power lies below its maximum."""
    from scipy import signal

    _, _, z = signal.stft(wave, fs=sr, nperseg=1024)
    power_db = 10 * np.log10(np.abs(z) ** 2 + 1e-20)
    return power_db.max() - np.percentile(power_db, 5)


def test_curated_channel_is_clean_and_noisy_split_is_not(curated):
    """Curated and test clips are close to studio-clean (their quiet time-frequency bins lie
    far below the peak, as in FSDKaggle2019's curated set); the noisy split keeps a
    background-noise floor that fills them."""
    noisy = make_synth_instruments(split="noisy", seed=0, **SMALL)
    clean_range = np.median([_quiet_bins_db(w) for w in curated.waves])
    noisy_range = np.median([_quiet_bins_db(w) for w in noisy.waves])
    assert clean_range > 75.0, clean_range
    assert noisy_range < clean_range - 15.0, (noisy_range, clean_range)
