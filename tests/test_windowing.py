"""Properties of half-overlapping windowing with circular padding (docs/studies.md §1)."""

import numpy as np
import pytest

from jaxaudio.data.windowing import window, window_dataset, window_starts


@pytest.mark.parametrize("num_items", [1, 5, 16, 17, 40, 41, 100, 115])
@pytest.mark.parametrize("length,hop", [(16, None), (16, 4), (16, 16), (7, 3)])
def test_windows_cover_clip_and_equal_slices(num_items, length, hop):
    x = np.arange(num_items, dtype=np.float32)
    windows = window(x, length=length, hop=hop)
    assert windows.ndim == 2 and windows.shape[1] == length
    assert windows.dtype == x.dtype
    if num_items <= length:
        assert windows.shape[0] == 1
        # Circular padding: the clip is tiled to exactly one window.
        np.testing.assert_array_equal(windows[0], x[np.arange(length) % num_items])
        return
    starts = window_starts(num_items, length=length, hop=hop)
    step = length // 2 if hop is None else hop
    assert starts[0] == 0 and starts[-1] == num_items - length
    assert np.all(np.diff(starts)[:-1] == step) and np.all(np.diff(starts) <= step)
    for w, s in zip(windows, starts):
        np.testing.assert_array_equal(w, x[s:s + length])
    covered = np.zeros(num_items, dtype=bool)
    for s in starts:
        covered[s:s + length] = True
    assert covered.all()


def test_default_hop_is_half_overlap():
    x = np.random.default_rng(0).standard_normal(64)
    windows = window(x, length=16)
    assert windows.shape == (7, 16)
    np.testing.assert_array_equal(windows[1, :8], windows[0, 8:])


def test_pick_confident_prefers_confident_and_correct_then_falls_back():
    from jaxaudio.data.windowing import pick_confident

    p = np.array([0.95, 0.4, 0.97, 0.6, 0.99, 0.2])
    correct = np.array([True, True, False, True, False, False])
    picked = pick_confident(p, correct, num=2, confidence=0.9, rng=np.random.default_rng(0))
    assert sorted(picked) in ([0, 2], [0, 4])  # the only confident+correct one, then confident
    everything = pick_confident(p, correct, num=10, confidence=0.9, rng=np.random.default_rng(0))
    assert sorted(everything) == [0, 2, 3, 4]  # all predicted as the class, no repeats
    with pytest.raises(ValueError, match="num"):
        pick_confident(p, correct, num=-1, confidence=0.9, rng=np.random.default_rng(0))


def test_excerpt_at_centres_frames_and_song_padded_moved():
    from jaxaudio.training import train
    from jaxaudio.data.windowing import excerpt_at, song_padded

    assert train.song_padded is song_padded
    song = np.arange(100, dtype=np.float32)
    ex = excerpt_at([song], [0, 0], [0, 3], excerpt_frames=5, hop_length=4, excerpt_samples=20)
    assert ex.shape == (2, 20)
    np.testing.assert_array_equal(ex[0][:8], 0)  # two frames of zero padding before frame 0
    np.testing.assert_array_equal(ex[1], np.arange(4, 24))  # frame 3 centred: starts 2 frames back
    assert excerpt_at([song], [], [], excerpt_frames=5, hop_length=4, excerpt_samples=20).shape == (0, 20)


def test_window_along_spectrogram_axes():
    spec = np.random.default_rng(0).standard_normal((5, 30)).astype(np.float32)  # (mel, frames)
    last = window(spec, length=12, axis=-1)
    assert last.shape == (4, 5, 12)  # starts 0, 6, 12, 18
    np.testing.assert_array_equal(last[2], spec[:, 12:24])
    first = window(spec.T, length=12, axis=0)  # (frames, mel)
    assert first.shape == (4, 12, 5)
    np.testing.assert_array_equal(first[2], spec.T[12:24])
    short = window(spec, length=70, axis=1)
    assert short.shape == (1, 5, 70)
    np.testing.assert_array_equal(short[0][:, 30:60], spec)


@pytest.mark.parametrize("kwargs", [{"length": 0}, {"length": -3}, {"length": 4, "hop": 0},
                                    {"length": 2.5}])
def test_bad_lengths_raise(kwargs):
    with pytest.raises(ValueError, match="length|hop"):
        window(np.ones(10), **kwargs)


def test_empty_input_raises():
    with pytest.raises(ValueError, match="empty"):
        window(np.zeros(0), length=4)
    with pytest.raises(ValueError, match="empty"):
        window_dataset([], length=4)
    with pytest.raises(ValueError, match="empty"):
        window_dataset([np.ones(5), np.zeros(0)], length=4)


def test_window_dataset_stacks_windows_with_clip_index():
    rng = np.random.default_rng(1)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (3, 32, 50, 16)]
    windows, clip_index = window_dataset(waves, length=16)
    assert windows.shape == (len(clip_index), 16)
    assert windows.dtype == np.float32
    assert np.all(np.diff(clip_index) >= 0)
    for i, wave in enumerate(waves):
        np.testing.assert_array_equal(windows[clip_index == i], window(wave, length=16))


# ----------------------------------------------------------------------------- centre excerpt


@pytest.mark.parametrize("n,length", [(10, 4), (11, 4), (4, 4), (3, 8), (1, 5), (5, 12)])
def test_centre_excerpt_is_the_centre_of_the_tiled_clip(n, length):
    from jaxaudio.data.windowing import centre_excerpt

    x = np.arange(n, dtype=np.float64)
    e = centre_excerpt(x, length)
    assert e.shape == (length,) and e.dtype == np.float32
    # Every sample comes from the clip, in circular order.
    steps = np.diff(e) % n
    assert np.all(steps == (1 % n))
    if n >= length:  # no tiling: centred, equal margins up to one sample
        left = int(e[0])
        assert abs(left - (n - length - left)) <= 1


def test_centre_excerpt_rejects_bad_input():
    from jaxaudio.data.windowing import centre_excerpt

    with pytest.raises(ValueError, match="length"):
        centre_excerpt(np.ones(4), 0)
    with pytest.raises(ValueError, match="wave"):
        centre_excerpt(np.ones((2, 4)), 2)
    with pytest.raises(ValueError, match="wave"):
        centre_excerpt(np.zeros(0), 2)
