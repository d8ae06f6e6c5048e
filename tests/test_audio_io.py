"""Audio file I/O: round trips, mixdown, resampling, and a clear error for every bad input."""

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.data.audio import load_audio, quantize_pcm16, save_wav


def _sine(freq_hz, seconds, sample_rate, amplitude=0.5):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_pcm16_round_trip_equals_quantize(tmp_path):
    x = np.random.default_rng(0).uniform(-1.3, 1.3, 4000).astype(np.float32)
    path = save_wav(tmp_path / "nested" / "dir" / "clip.wav", x, 16000)
    assert path.exists()  # parent directories were created
    y, rate = load_audio(path)
    assert rate == 16000 and y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, quantize_pcm16(x))
    # Out-of-range input is clipped, and quantisation error is at most 2 LSB.
    assert np.all(np.abs(y) <= 1.0)
    assert np.max(np.abs(y - np.clip(x, -1, 1))) <= 2 / 32768


def test_quantize_pcm16_is_idempotent_and_keeps_shape():
    x = np.random.default_rng(1).uniform(-1, 1, (3, 500)).astype(np.float32)
    q = quantize_pcm16(x)
    assert q.shape == x.shape
    np.testing.assert_array_equal(quantize_pcm16(q), q)
    np.testing.assert_array_equal(q * 32768, np.round(q * 32768))


def test_float_wav_round_trip_is_exact(tmp_path):
    x = np.random.default_rng(2).uniform(-1, 1, 1000).astype(np.float32)
    save_wav(tmp_path / "f.wav", x, 8000, subtype="FLOAT")
    y, _ = load_audio(tmp_path / "f.wav")
    np.testing.assert_array_equal(y, x)


def test_flac_is_read(tmp_path):
    x = _sine(440, 0.2, 16000)
    sf.write(tmp_path / "a.flac", x, 16000)
    y, rate = load_audio(tmp_path / "a.flac")
    assert rate == 16000
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_stereo_is_mixed_down_by_averaging(tmp_path):
    left, right = _sine(440, 0.1, 16000, 0.6), _sine(1000, 0.1, 16000, 0.2)
    save_wav(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    mono, _ = load_audio(tmp_path / "st.wav")
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-6)
    both, _ = load_audio(tmp_path / "st.wav", mono=False)
    assert both.shape == (left.size, 2)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    x = _sine(440, 0.5, 44100)
    save_wav(tmp_path / "hi.wav", x, 44100)
    y, rate = load_audio(tmp_path / "hi.wav", sample_rate=16000)
    assert rate == 16000
    assert abs(y.size - x.size * 16000 / 44100) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak_hz = np.argmax(spectrum) * rate / y.size
    assert abs(peak_hz - 440) < 5
    same, same_rate = load_audio(tmp_path / "hi.wav", sample_rate=44100)
    assert same_rate == 44100 and same.size == x.size


def test_missing_file_raises_naming_path(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(ValueError, match="not found") as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_empty_files_raise(tmp_path):
    (tmp_path / "zero_bytes.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="empty") as err:
        load_audio(tmp_path / "zero_bytes.wav")
    assert "zero_bytes.wav" in str(err.value)
    sf.write(tmp_path / "no_frames.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="no samples") as err:
        load_audio(tmp_path / "no_frames.wav")
    assert "no_frames.wav" in str(err.value)


def test_corrupt_file_raises(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ValueError, match="corrupt") as err:
        load_audio(path)
    assert "garbage.wav" in str(err.value)


def test_nan_file_raises(tmp_path):
    x = np.zeros(100, dtype=np.float32)
    x[10] = np.nan
    x[20] = np.inf
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="NaN/Inf") as err:
        load_audio(tmp_path / "nan.wav")
    assert "nan.wav" in str(err.value)


def test_wrong_channel_count_raises(tmp_path):
    save_wav(tmp_path / "st.wav", np.zeros((50, 2)), 16000)
    with pytest.raises(ValueError, match="wrong channel count") as err:
        load_audio(tmp_path / "st.wav", expected_channels=1)
    assert "1" in str(err.value) and "2" in str(err.value)
    wave, _ = load_audio(tmp_path / "st.wav", expected_channels=2)
    assert wave.shape == (50,)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_save_rejects_non_finite(tmp_path, bad):
    x = np.zeros(100)
    x[5] = bad
    with pytest.raises(ValueError, match="NaN/Inf"):
        save_wav(tmp_path / "x.wav", x, 16000)
    assert not (tmp_path / "x.wav").exists()


def test_save_rejects_bad_shapes_and_rates(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        save_wav(tmp_path / "e.wav", np.zeros(0), 16000)
    with pytest.raises(ValueError, match="shape"):
        save_wav(tmp_path / "e.wav", np.zeros((2, 2, 2)), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        save_wav(tmp_path / "e.wav", np.zeros(10), 0)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(tmp_path / "e.wav", sample_rate=-5)
