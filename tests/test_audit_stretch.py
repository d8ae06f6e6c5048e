"""jaxaudio.audit.stretch: the stretch adversaries of study 3 (tiny shapes, a linear toy model)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio.audit import stretch
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
