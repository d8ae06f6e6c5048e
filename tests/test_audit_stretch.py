"""jaxaudio.audit.stretch and song_attacks: the stretch adversaries of study 3 (tiny shapes, a
linear toy model)."""

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio.audit import detector, song_attacks, stretch
from jaxaudio.data import windowing

HOP, E, L = 4, 5, 16  # hop, excerpt frames, excerpt samples


def toy_logits(x):
    """(1, L) -> (1, 1): a fixed linear detector on the excerpt's samples."""
    w = jnp.linspace(-4.0, 4.0, x.shape[-1])
    return (x @ w - 0.05)[..., None]


def toy_spec_logits(x):
    """(1, M, E) -> (1, 1): the mean of the spectrogram, shifted."""
    return (x.mean(axis=(-2, -1)) * 4.0 - 0.5)[..., None]


def test_balanced_stretch():
    d = np.array([0, 0, 0, 0, 1, 1, 0, 1, 1, 1])
    assert stretch.balanced_stretch(d, 4) == (2, 4)  # 0 0 1 1
    assert stretch.balanced_stretch(d, None) == (0, 10)
    assert stretch.balanced_stretch(d, 50) == (0, 10)
    with pytest.raises(ValueError, match="stretch length"):
        stretch.balanced_stretch(d, 0)


def test_segment_excerpts_are_the_songs_excerpts():
    wave = np.random.default_rng(0).normal(size=60).astype(np.float32)
    seg, mask = stretch.stretch_segment(wave, 3, 6, excerpt_frames=E, hop_length=HOP,
                                        excerpt_samples=L)
    assert seg.shape == mask.shape == (5 * HOP + L,)
    ours = np.asarray(stretch.windows(jnp.asarray(seg), 6, HOP, L))
    ref = windowing.excerpt_at([wave], np.zeros(6, int), 3 + np.arange(6), excerpt_frames=E,
                               hop_length=HOP, excerpt_samples=L)
    np.testing.assert_array_equal(ours, ref)
    # the first excerpts reach into the zero padding before the song: masked out
    head, _ = stretch.stretch_segment(wave, 0, 2, excerpt_frames=E, hop_length=HOP,
                                      excerpt_samples=L)
    _, m0 = stretch.stretch_segment(wave, 0, 2, excerpt_frames=E, hop_length=HOP,
                                    excerpt_samples=L)
    assert m0[:(E // 2) * HOP].sum() == 0 and m0[(E // 2) * HOP:].min() == 1
    assert np.all(head[:(E // 2) * HOP] == 0)
    with pytest.raises(ValueError, match="runs past"):
        stretch.stretch_segment(wave, 14, 6, excerpt_frames=E, hop_length=HOP,
                                excerpt_samples=L)


def test_flipped_rule():
    p = np.array([0.505, 0.52, 0.7, 0.95, 0.3, 0.05])
    t = np.array([1, 1, 1, 1, 0, 0])
    assert list(stretch.flipped(p, t, 0.51)) == [False, True, True, True, True, True]
    assert list(stretch.flipped(p, t, 0.9)) == [False, False, False, True, False, True]
    # at the threshold itself no-sing is "p <= 0.51" (the decision), above it "p <= 1 - c"
    assert stretch.flipped(np.array([0.51]), np.array([0]), 0.51)[0]
    assert not stretch.flipped(np.array([0.45]), np.array([0]), 0.6)[0]


@pytest.fixture(scope="module")
def attacked():
    rng = np.random.default_rng(1)
    seg = (0.01 * rng.normal(size=5 * HOP + L)).astype(np.float32)
    mask = np.ones_like(seg)
    mask[:3] = 0
    kw = dict(domain="waveform", mask=mask, hop_length=HOP, excerpt_size=L, clip_eps=0.2,
              alpha=20.0, learning_rate=3e-3, max_iterations=500)
    targets = np.ones(6, np.int64)
    full = stretch.stretch_attack(toy_logits, seg, targets, levels=(0.51, 0.6, 0.75, 0.9), **kw)
    first = stretch.stretch_attack(toy_logits, seg, targets, levels=(0.51,), **kw)
    return seg, mask, full, first


def test_stretch_attack_stops_at_every_level(attacked):
    seg, mask, full, first = attacked
    assert full["success"].all() and full["delta"].shape == (4, seg.shape[0])
    its = full["iterations"]
    assert np.all(np.diff(its) >= 0) and its[0] >= 1 and full["steps"] == its[-1]
    for level, p in zip((0.51, 0.6, 0.75, 0.9), full["p"]):
        assert np.all(p > level)
    # the first rung is exactly what a run stopped at 0.51 returns
    assert first["iterations"][0] == its[0] and first["steps"] == its[0]
    np.testing.assert_allclose(first["delta"][0], full["delta"][0])
    assert np.abs(full["delta"]).max() <= 0.2 + 1e-7
    assert np.all(full["delta"][:, mask == 0] == 0)
    # the snapshot reproduces the recorded probabilities
    x = np.asarray(stretch.windows(jnp.asarray(seg + full["delta"][0]), 6, HOP, L))
    p = 1 / (1 + np.exp(-np.asarray(toy_logits(jnp.asarray(x)))[:, 0]))
    np.testing.assert_allclose(p, full["p"][0], rtol=1e-5)


def test_stretch_attack_reports_failure_and_checks_levels(attacked):
    seg, mask, _, _ = attacked
    kw = dict(domain="waveform", mask=mask, hop_length=HOP, excerpt_size=L, clip_eps=1e-4,
              alpha=2.0, learning_rate=3e-3, max_iterations=5)
    r = stretch.stretch_attack(toy_logits, seg, np.ones(6), levels=(0.51, 0.9), **kw)
    assert not r["success"].any() and list(r["iterations"]) == [-1, -1] and r["steps"] == 5
    with pytest.raises(ValueError, match="ascending"):
        stretch.stretch_attack(toy_logits, seg, np.ones(6), levels=(0.9, 0.6), **kw)
    with pytest.raises(ValueError, match="domain"):
        stretch.stretch_attack(toy_logits, seg, np.ones(6), levels=(0.51,),
                               **{**kw, "domain": "audio"})


def test_spectrogram_stretch_attack_shares_one_delta():
    specs = np.zeros((6, 3, E), np.float32)
    r = stretch.stretch_attack(toy_spec_logits, specs, np.ones(6), domain="spectrogram",
                               levels=(0.51, 0.9), clip_eps=2.0, alpha=5000.0,
                               learning_rate=0.05, max_iterations=300)
    assert r["delta"].shape == (2, 3, 6 + E - 1) and r["success"].all()
    assert np.all(r["p"][1] > 0.9)


def test_draw_frames_prefers_flipped_and_is_seeded():
    dec = [np.array([0, 0, 0, 1, 1, 1, 1]), np.array([1, 1])]
    pref = [np.array([True, False, False, False, True, True, False]), np.ones(2, bool)]
    a = stretch.draw_frames(dec, pref, per_song=2, rng=np.random.default_rng(5))
    b = stretch.draw_frames(dec, pref, per_song=2, rng=np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert list(a["song"]) == [0, 0, 0, 0, 1, 1] and list(a["direction"]) == [0, 0, 1, 1, 1, 1]
    assert a["frame"][0] == 0  # the only preferred no-sing frame comes first
    assert set(a["frame"][2:4]) == {4, 5}  # both preferred sing frames


def test_attack_summary():
    attack = {"success": np.array([[True, False], [True, True]]),
              "iterations": np.array([[3, -1], [5, 9]]),
              "p": np.array([[0.6, 0.7, 0.2], [0.6, 0.95, 0.05]]),
              "snr_db": np.array([[40.0, 30.0], [44.0, 35.0]])}
    s = stretch.attack_summary(attack, np.array([0.1, 0.2, 0.9]), np.array([0, 2, 3]),
                               (0.51, 0.9))
    assert s["success_rate"] == [1.0, 0.5] and s["median_iterations"] == [4.0, 9.0]
    assert s["frames_flipped"] == [1.0, pytest.approx(2 / 3)]
    assert s["median_snr_db"] == [42.0, 35.0]


class ToyDetector:
    """A stand-in for a one-logit Classifier: :func:`toy_logits` on excerpts of L samples; its
    front-end keeps the first and the last E samples of an excerpt as 2 "bands"."""

    frontend = SimpleNamespace(hop_length=HOP, n_mels=2)
    excerpt_frames, excerpt_samples = E, L
    logits_fn = staticmethod(toy_logits)

    @staticmethod
    def logits(waves):
        return toy_logits(jnp.asarray(waves, jnp.float32))

    @staticmethod
    def features(waves):
        return jnp.stack([waves[..., :E], waves[..., -E:]], axis=-2)

    @staticmethod
    def feature_logits_fn(feats):
        return toy_spec_logits(feats)


class ToySongs:
    """Two songs of 0.3-sized noise (both decisions occur) with alternating frame labels."""

    def __init__(self):
        rng = np.random.default_rng(3)
        self.waves = [(0.3 * rng.normal(size=n)).astype(np.float32) for n in (120, 96)]

    def frame_labels(self, i, hop_length):
        return np.arange(1 + len(self.waves[i]) // hop_length) % 2


CLF, SONGS = ToyDetector(), ToySongs()
SPEC_ATTACK = dict(clip_eps=2.0, alpha=5000.0, learning_rate=0.05)
WAVE_ATTACK = dict(clip_eps=0.5, alpha=20.0, learning_rate=3e-3)


def test_stretch_placement():
    rows = np.stack([np.zeros(8), np.arange(0, 16, 2), np.zeros(8),
                     np.array([0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9])], 1)
    assert song_attacks.stretch_placement(rows, 16, None, 2) == (0, 16)
    assert song_attacks.stretch_placement(rows, 16, 20, 2) == (0, 16)
    # window of 2 evaluated frames: the most balanced one is rows 3-4 (frames 6, 8), centred
    assert song_attacks.stretch_placement(rows, 16, 4, 2) == (6 + 2 - 2, 4)
    # kept inside the song
    late = rows.copy()
    late[:, 3] = [0.1] * 7 + [0.9]
    start, frames = song_attacks.stretch_placement(late, 16, 6, 2)
    assert frames == 6 and start == 16 - 6


def test_stretch_probabilities_and_snr():
    seg = np.random.default_rng(0).normal(size=69 * HOP + L).astype(np.float32)
    p = song_attacks.stretch_probabilities(CLF, seg, 70)  # > 64 excerpts: two calls
    x = np.asarray(stretch.windows(jnp.asarray(seg), 70, HOP, L))
    ref = 1.0 / (1.0 + np.exp(-np.asarray(toy_logits(jnp.asarray(x)))[:, 0]))
    assert p.shape == (70,) and p.dtype == np.float32
    np.testing.assert_array_equal(p, ref)
    seg, mask = np.ones(10, np.float32), np.ones(10, np.float32)
    mask[:5] = 0
    snr = song_attacks.stretch_snr_db(seg, mask, np.stack([np.full(10, 0.1), np.zeros(10)]))
    assert snr[0] == pytest.approx(10 * np.log10(5 / 0.1))  # clean energy: the 5 song samples
    assert snr[1] == pytest.approx(10 * np.log10(5 / 1e-30))  # no perturbation: the floor


def test_excerpt_features_and_two_class_predict():
    waves = np.random.default_rng(0).normal(size=(20, L)).astype(np.float32)
    np.testing.assert_array_equal(detector.excerpt_features(CLF, waves),
                                  np.asarray(CLF.features(waves)))
    assert detector.excerpt_features(CLF, waves[:0]).shape == (0, 2, E)
    f = detector.two_class_predict(CLF, threshold=0.51)
    assert f is detector.two_class_predict(CLF, threshold=0.51)
    assert f is not detector.two_class_predict(CLF, threshold=0.6)
    probs = np.asarray(f(jnp.asarray(detector.excerpt_features(CLF, waves[:3]))))
    assert probs.shape == (3, 2)


@pytest.fixture(scope="module")
def song_set():
    return song_attacks.song_stretches(CLF, SONGS, frame_step=2, num_songs=None,
                                       stretch_frames=8, threshold=0.51)


def test_song_stretches_layout(song_set):
    s = song_set
    assert list(s["song"]) == [0, 1] and list(s["frames"]) == [8, 8]
    assert list(s["frame_offsets"]) == [0, 8, 16]
    assert s["segment_offsets"][-1] == len(s["segments"]) == len(s["masks"])
    for i in (0, 1):
        o = s["segment_offsets"]
        seg, mask = stretch.stretch_segment(SONGS.waves[i], int(s["start"][i]), 8,
                                            excerpt_frames=E, hop_length=HOP, excerpt_samples=L)
        np.testing.assert_array_equal(s["segments"][o[i]:o[i + 1]], seg)
        np.testing.assert_array_equal(s["masks"][o[i]:o[i + 1]], mask)
        np.testing.assert_array_equal(s["p"][8 * i:8 * i + 8],
                                      song_attacks.stretch_probabilities(CLF, seg, 8))
        start = int(s["start"][i])
        np.testing.assert_array_equal(s["labels"][8 * i:8 * i + 8],
                                      SONGS.frame_labels(i, HOP)[start:start + 8])
        np.testing.assert_array_equal(song_attacks.stretch_waves(CLF, s, i),
                                      np.asarray(stretch.windows(seg, 8, HOP, L)))
    assert 0 <= s["accuracy"] <= 1 and s["frame_step"] == 2
    assert s["num_frames"] == len(range(0, 31, 2)) + len(range(0, 25, 2))
    whole = song_attacks.song_stretches(CLF, SONGS, frame_step=2, num_songs=1,
                                        stretch_frames=None)
    assert list(whole["song"]) == [0] and list(whole["frames"]) == [31]


@pytest.fixture(scope="module")
def song_attacked(song_set):
    common = dict(levels=(0.51, 0.6), threshold=0.51, max_iterations=300)
    return {"waveform": song_attacks.attack_songs(CLF, song_set, domain="waveform",
                                                  **common, **WAVE_ATTACK),
            "spectrogram": song_attacks.attack_songs(CLF, song_set, domain="spectrogram",
                                                     **common, **SPEC_ATTACK)}


def test_attack_songs_is_the_stretch_attack_of_each_song(song_set, song_attacked):
    w, sp = song_attacked["waveform"], song_attacked["spectrogram"]
    o = song_set["segment_offsets"]
    assert list(w["delta_offsets"]) == list(o) and w["delta"].shape == (2, o[-1])
    assert w["success"].shape == w["iterations"].shape == w["snr_db"].shape == (2, 2)
    assert w["p"].shape == (2, 16) and "snr_db" not in sp
    assert sp["delta"].shape == (2, 2, 2 * (8 + E - 1))
    i = 1
    seg, mask = song_set["segments"][o[i]:o[i + 1]], song_set["masks"][o[i]:o[i + 1]]
    targets = 1 - (song_set["p"][8:16] > 0.51).astype(np.int64)
    r = stretch.stretch_attack(toy_logits, seg, targets, domain="waveform",
                               levels=(0.51, 0.6), threshold=0.51, max_iterations=300,
                               mask=mask, hop_length=HOP, excerpt_size=L, **WAVE_ATTACK)
    np.testing.assert_array_equal(w["delta"][..., o[i]:o[i + 1]], r["delta"])
    np.testing.assert_array_equal(w["snr_db"][i], song_attacks.stretch_snr_db(seg, mask,
                                                                              r["delta"]))


def test_draw_excerpts(song_set, song_attacked):
    d = song_attacks.draw_excerpts(CLF, song_set, song_attacked, seed=0, per_song=2)
    again = song_attacks.draw_excerpts(CLF, song_set, song_attacked, seed=0, per_song=2)
    assert all(np.array_equal(d[k], again[k]) for k in ("song", "frame", "direction"))
    pos = song_set["frame_offsets"][d["song"]] + d["frame"]
    np.testing.assert_array_equal(d["direction"], (song_set["p"][pos] > 0.51).astype(int))
    np.testing.assert_array_equal(d["waves"], song_attacks.excerpt_waves(
        CLF, song_set, d["song"], d["frame"]))
    np.testing.assert_array_equal(d["specs"], np.asarray(CLF.features(d["waves"])))
    np.testing.assert_array_equal(d["correct"], d["true_label"] == d["direction"])
    np.testing.assert_array_equal(d["song_frame"], song_set["start"][d["song"]] + d["frame"])
    for i, t in zip(d["song"], d["frame"]):  # an excerpt is its stretch's window at the frame
        np.testing.assert_array_equal(
            d["waves"][list(zip(d["song"], d["frame"])).index((i, t))],
            song_attacks.stretch_waves(CLF, song_set, i)[t])
    with pytest.raises(ValueError, match="no frame"):
        song_attacks.draw_excerpts(CLF, song_set, song_attacked, seed=0, per_song=0)
