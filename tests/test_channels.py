"""Channels (codecs, resampling, gain, shift, noise), survival, and EOT-robust attacks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio import attacks
from jaxaudio.dsp import channels
from jaxaudio.attacks import eot

RATE = 16000


@pytest.fixture(scope="module")
def clips():
    t = np.arange(RATE // 2) / RATE
    rng = np.random.default_rng(0)
    return np.stack([0.4 * np.sin(2 * np.pi * 440 * t),
                     0.3 * np.sin(2 * np.pi * 1200 * t) + 0.02 * rng.standard_normal(t.size)]
                    ).astype(np.float32)


@pytest.mark.parametrize("name", [n for n in channels.CHANNELS])
def test_channel_keeps_length_dtype_range(clips, name):
    out = channels.apply_channel(name, clips, RATE, seed=1)
    assert out.shape == clips.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0


@pytest.mark.parametrize("name", ["ogg_c0.1", "mp3_c0.25", "resample_44k1"])
def test_high_quality_channels_stay_close(clips, name):
    out = channels.apply_channel(name, clips, RATE)
    assert np.all(channels.measured_snr_db(clips, out) > 15.0)  # aligned, not garbage
    assert not np.array_equal(out, clips)  # a real round trip changes the samples


def test_gain_shift_noise_do_what_they_say(clips):
    down = channels.apply_channel("gain_-6dB", clips, RATE)
    np.testing.assert_allclose(down, clips * 10 ** (-6 / 20), rtol=1e-6)
    up = channels.apply_channel("gain_+6dB", clips * 4, RATE)
    assert np.abs(up).max() == 1.0  # clipped as a file would be
    delayed = channels.apply_channel("shift_+10ms", clips, RATE)
    np.testing.assert_array_equal(delayed[:, 160:], clips[:, :-160])
    assert not delayed[:, :160].any()
    advanced = channels.apply_channel("shift_-5ms", clips, RATE)
    np.testing.assert_array_equal(advanced[:, :-80], clips[:, 80:])
    noisy = channels.apply_channel("noise_40dB", clips, RATE, seed=3)
    np.testing.assert_allclose(channels.measured_snr_db(clips, noisy), 40.0, atol=0.3)
    again = channels.apply_channel("noise_40dB", clips, RATE, seed=3)
    np.testing.assert_array_equal(noisy, again)  # seeded


def test_encoded_bitrate_falls_with_compression(clips):
    kbps = [channels.encoded_kbps(clips, RATE, fmt="MP3", subtype="MPEG_LAYER_III",
                                  compression_level=c) for c in (0.25, 0.9)]
    assert kbps[0] > kbps[1] > 0


def _sign_logits(w):  # class 0 when the clip's mean is positive, else class 1
    m = jnp.mean(w, axis=-1) * 1e3
    return jnp.stack([m, -m], axis=-1)


def test_survival_identity_is_one_and_control():
    n = 4000
    clean = np.full((3, n), 0.1, np.float32)
    adversarial = clean - 0.2  # mean negative: class 1
    adversarial[2] = 0.1  # clip 2: the attack failed
    labels = np.zeros(3, int)
    out = channels.survival(_sign_logits, clean, adversarial, labels, rate=RATE,
                            channels=["identity", "gain_-6dB", "shift_+10ms"])
    assert out["identity"]["survival"] == 1.0 and out["identity"]["num_successful"] == 2
    assert out["gain_-6dB"]["survival"] == 1.0  # a gain keeps the sign
    assert out["identity"]["clean_accuracy"] == 1.0
    none = channels.survival(_sign_logits, clean, clean, labels, rate=RATE,
                             channels=["identity"])
    assert none["identity"]["survival"] is None
    with pytest.raises(ValueError, match="unknown channel"):
        channels.survival(_sign_logits, clean, adversarial, labels, rate=RATE,
                          channels=["radio"])


def _spectral_logits(w):  # a tiny differentiable spectral classifier
    spec = jnp.log(1e-4 + jnp.abs(jnp.fft.rfft(w, axis=-1))[..., :64])
    weights = jnp.linspace(-1.0, 1.0, 64)
    s = spec @ weights / 64
    return jnp.stack([s, -s], axis=-1)


def test_eot_gradients_finite_and_deterministic(clips):
    x = jnp.asarray(np.concatenate([clips[:, :2048], np.zeros((1, 2048), np.float32)]))
    transforms = eot.DIFFERENTIABLE + ("mp3",)
    fn = eot.eot_logits_fn(_spectral_logits, transforms=transforms, draws=1, rate=RATE)
    grads = jax.grad(lambda w: fn(w)[:, 0].sum())(x)
    assert grads.shape == x.shape and bool(jnp.all(jnp.isfinite(grads)))
    assert float(jnp.abs(grads[:2]).sum()) > 0
    np.testing.assert_array_equal(fn(x), fn(x))  # same iterate, same draws
    np.testing.assert_allclose(fn(x[1:2])[0], fn(x)[1], rtol=1e-5, atol=1e-6)  # batch = single
    assert eot.eot_logits_fn(_spectral_logits, transforms=transforms, draws=1,
                             rate=RATE) is fn  # one object: attacks' compile cache hits


def test_straight_through_codec_forward_is_the_codec(clips):
    x = jnp.asarray(clips[:, :2048])
    fn = eot.eot_logits_fn(lambda w: w[..., :4], transforms=("mp3",), draws=1, rate=RATE,
                           include_identity=False)
    coded = channels.codec_round_trip(clips[:, :2048], RATE, fmt="MP3",
                                      subtype="MPEG_LAYER_III", compression_level=0.5)
    expected = jax.nn.log_softmax(jnp.asarray(coded[:, :4]), axis=-1)
    np.testing.assert_allclose(fn(x), expected, atol=1e-5)
    grad = jax.grad(lambda w: fn(w)[:, 0].sum())(x)  # identity backward: only 4 samples
    assert bool(jnp.all(grad[:, 4:] == 0)) and bool(jnp.any(grad[:, :4] != 0))


def test_robust_attack_rejudged_on_plain_classifier(clips):
    x = clips[:, :2048] * 0 + 0.001
    labels = np.zeros(2, int)
    res = eot.robust(attacks.pgd, transforms=("gain", "noise"), draws=1, rate=RATE)(
        _sign_logits, x, labels, eps=0.01, learning_rate=0.005, max_iterations=5,
        key=jax.random.key(0), min_samples=1024)
    pred = np.asarray(_sign_logits(jnp.asarray(res.adversarial))).argmax(-1)
    np.testing.assert_array_equal(res.success, pred != labels)
    assert np.abs(res.adversarial - x).max() <= 0.01 + 1e-6
    with pytest.raises(ValueError, match="--eot-draws"):
        eot.robust(attacks.pgd, draws=0)
    with pytest.raises(ValueError, match="transforms"):
        eot.eot_logits_fn(_sign_logits, transforms=("radio",))


# The analysis on attack runs (jaxaudio.attacks.robustness)


def _run(success, *, snr=20.0, target=-1, iterations=3, n=4000, adversarial=None):
    from jaxaudio.data.audio import pcm16_samples

    success = np.asarray(success, bool)
    m = success.size
    waves = np.full((m, n), -0.1, np.float32) if adversarial is None else adversarial
    return {"clip_mask": np.ones(m, bool), "labels": np.zeros(m, int), "success": success,
            "iterations": np.full(m, iterations), "snr_db": np.full(m, snr),
            "original_prediction": np.zeros(m, int),
            "adversarial_prediction": np.where(success, 1, 0),
            "target": np.full(m, target), "seconds": np.asarray(1.0),
            "adversarial_pcm": pcm16_samples(waves)}


def test_run_survival_counts_only_clips_the_model_got_right():
    from jaxaudio.attacks import robustness

    n = 4000
    clips = {"waves": np.full((3, n), 0.1, np.float32), "rate": RATE,
             "clean_prediction": np.array([0, 0, 1])}  # clip 2 was wrong before the attack
    run = _run([True, False, True], n=n)
    out = robustness.run_survival(_sign_logits, clips, run, channels=["identity", "gain_-6dB"])
    assert list(out) == ["identity", "gain_-6dB"]
    assert out["identity"]["num_successful"] == 1  # clip 0 only
    assert out["identity"]["survival"] == 1.0 and out["gain_-6dB"]["survivors"] == 1
    np.testing.assert_allclose(robustness.adversarial_waves(run)[0], -0.1, atol=1 / 32768)
    # a run on a subset of the clips (clip_mask) is compared with those clips only
    sub = dict(_run([True, True], n=n), clip_mask=np.array([True, True, False]))
    assert robustness.run_survival(_sign_logits, clips, sub,
                                   channels=["identity"])["identity"]["num_successful"] == 2


def test_eot_cost_is_plain_minus_robust_snr():
    from jaxaudio.attacks import robustness

    plain = _run([True, True, False], snr=30.0, iterations=2)
    robust = _run([True, False, False], snr=22.5, iterations=6)
    cost = robustness.eot_cost(plain, robust, max_iterations=8)
    assert set(cost) == {f"{v}_{k}" for v in ("plain", "robust")
                         for k in robustness.COST_KEYS} | {"snr_cost_db"}
    assert cost["plain_success_rate"] == pytest.approx(2 / 3)
    assert cost["robust_success_rate"] == pytest.approx(1 / 3)
    assert cost["snr_cost_db"] == pytest.approx(7.5)
    assert cost["robust_iterations_median"] == 6
    failed = robustness.eot_cost(plain, _run([False] * 3), max_iterations=8)
    assert failed["robust_snr_db_mean"] is None and "snr_cost_db" not in failed
