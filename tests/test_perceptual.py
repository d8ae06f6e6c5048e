"""Perceptual quality next to the SNR (jaxaudio.dsp.perceptual): ViSQOL audio-mode MOS-LQO and the
share of perturbation energy above the masking threshold."""

from __future__ import annotations

import importlib

import jax
import numpy as np
import pytest

from jaxaudio.dsp import perceptual

psy = importlib.import_module("jaxaudio.attacks.psychoacoustic")

RATE = 16000


@pytest.fixture(scope="module")
def clip():
    t = np.arange(int(1.2 * RATE)) / RATE
    rng = np.random.default_rng(0)
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (wave + 0.01 * rng.normal(size=t.shape)).astype(np.float32)


def _noisy(clip, snr_db, seed=1):
    noise = np.random.default_rng(seed).normal(size=clip.shape)
    noise *= np.linalg.norm(clip) / np.linalg.norm(noise) * 10 ** (-snr_db / 20)
    return (clip + noise).astype(np.float32)


def test_visqol_ceiling_and_order(clip):
    scores = perceptual.visqol_scores(np.stack([clip] * 3),
                                      np.stack([clip, _noisy(clip, 50), _noisy(clip, 10)]),
                                      RATE)
    assert scores.shape == (3,) and np.all((scores >= 1) & (scores <= 5))
    assert scores[0] > 4.5  # identical signals: the ceiling (about 4.73)
    assert scores[0] >= scores[1] > scores[2] + 0.5
    assert perceptual.visqol_mos(clip, _noisy(clip, 10), RATE) == pytest.approx(scores[2])


def test_visqol_rejects_short_or_mismatched(clip):
    short = clip[:int(0.5 * RATE)]
    with pytest.raises(ValueError, match="at least 1 s"):
        perceptual.visqol_mos(short, short, RATE)
    with pytest.raises(ValueError, match="one length"):
        perceptual.visqol_mos(clip, clip[:-1], RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        perceptual.visqol_mos(clip, clip, 0)
    with pytest.raises(ValueError, match="one shape"):
        perceptual.visqol_scores(clip[None], clip[None, :-1], RATE)


def test_share_above_threshold(clip):
    x = np.stack([clip, clip, clip, 0.5 * clip])
    adv = np.stack([clip, _noisy(clip, 80), _noisy(clip, 10), 0.5 * _noisy(clip, 10)])
    share = perceptual.share_above_threshold(x, adv, RATE, chunk_size=3)
    assert share.shape == (4,) and np.all((share >= 0) & (share <= 1))
    assert share[0] == 0.0  # nothing changed
    assert share[1] < share[2]  # louder noise: more of it is audible
    assert share[3] == pytest.approx(share[2], abs=1e-4)  # scale-invariant, as the threshold
    m = psy.masking_threshold_example(clip, sample_rate=RATE)
    assert share[2] == pytest.approx(float(psy.excess_share(adv[2] - clip, m)), abs=1e-6)
    alone = perceptual.share_above_threshold(x[2:3], adv[2:3], RATE)
    assert alone[0] == pytest.approx(share[2], abs=1e-6)
    assert jax.numpy.isfinite(share).all()


# ------------------------------------- a set of adversaries (jaxaudio.dsp.perceptual_scoring)
def test_visqol_selection_first_also_and_too_short():
    from jaxaudio.dsp import perceptual_scoring as ps

    mask = ps.visqol_selection(6, RATE, RATE, first=2, also=[4])
    assert mask.tolist() == [True, True, False, False, True, False]
    assert ps.visqol_selection(3, RATE, RATE, first=None).all()
    assert not ps.visqol_selection(3, RATE // 2, RATE, first=None, also=[1]).any()  # 0.5 s


def test_score_adversaries_and_means(clip, monkeypatch):
    from jaxaudio.dsp import perceptual_scoring as ps

    scored_pairs = []

    def fake_visqol(originals, adversarials, rate):
        scored_pairs.append(len(originals))
        return np.full(len(originals), 3.0) + np.arange(len(originals))

    monkeypatch.setattr(perceptual, "visqol_scores", fake_visqol)
    x = np.stack([clip] * 3)
    adv = np.stack([clip, _noisy(clip, 40), _noisy(clip, 10)])
    mask = np.array([False, True, True])
    scores = ps.score_adversaries(x, adv, RATE, visqol_mask=mask)
    np.testing.assert_array_equal(scores["share_above_threshold"],
                                  perceptual.share_above_threshold(x, adv, RATE))
    assert scored_pairs == [2] and np.isnan(scores["visqol_mos"][0])
    assert scores["visqol_mos"][1:].tolist() == [3.0, 4.0]
    assert scores["visqol_scored"].tolist() == mask.tolist()
    assert float(scores["share_seconds"]) >= 0 and float(scores["visqol_seconds_per_clip"]) >= 0
    means = ps.perceptual_means(scores, np.array([True, True, True]), first=2)
    assert means["visqol_n"] == 1 and means["visqol_mos_mean"] == 3.0  # pair 2 is past first
    assert means["share_above_threshold_mean"] == pytest.approx(
        scores["share_above_threshold"].mean())
    none = ps.perceptual_means(scores, np.zeros(3, bool), first=None)
    assert none["visqol_mos_mean"] is None and none["share_above_threshold_mean"] is None
    untouched = ps.score_adversaries(x, adv, RATE, visqol_mask=np.zeros(3, bool))
    assert scored_pairs == [2] and np.isnan(untouched["visqol_mos"]).all()
