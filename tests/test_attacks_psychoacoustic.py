"""The psychoacoustic attack (jaxaudio.attacks.psychoacoustic): masking threshold, hinge, the
two-stage attack on a tiny linear classifier."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio import attacks

psy = importlib.import_module("jaxaudio.attacks.psychoacoustic")  # attacks.psychoacoustic: the fn

RATE, N = 16000, 4096
CLASSES = 4


def _clip(rng, amplitude=0.3, freq=440.0):
    t = np.arange(N) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)
            + 0.1 * amplitude * rng.normal(size=N)).astype(np.float32)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return np.stack([_clip(rng), _clip(rng, 0.2, 1000.0), _clip(rng, 0.1, 3000.0)])


@pytest.fixture(scope="module")
def model():
    w = jnp.asarray(np.random.default_rng(1).normal(size=(N, CLASSES)) / np.sqrt(N), jnp.float32)
    return jax.jit(lambda x: 20.0 * x @ w)


def _one(m, i):
    return jax.tree.map(lambda a: a[i], m)


def test_threshold_shape_finite_and_louder_clip_masks_more(clips):
    m = attacks.masking_threshold(clips, sample_rate=RATE)
    frames, bins = 1 + N // psy.HOP_LENGTH, psy.N_FFT // 2 + 1
    assert m.threshold.shape == (3, frames, bins) and m.reference.shape == (3,)
    assert np.all(np.isfinite(m.threshold)) and np.all(np.asarray(m.threshold) >= 0)
    loud = attacks.masking_threshold(clips * 2.0, sample_rate=RATE)
    # In absolute power (threshold · reference) a clip twice as loud masks four times as much.
    np.testing.assert_allclose(loud.threshold * loud.reference[:, None, None],
                               4 * m.threshold * m.reference[:, None, None], rtol=2e-3)
    delta = 2e-2 * np.random.default_rng(2).normal(size=N).astype(np.float32)
    quiet_h = psy.hinge_distance(delta, _one(m, 0))
    loud_h = psy.hinge_distance(delta, _one(loud, 0))
    assert 0 < float(loud_h) < float(quiet_h)
    # A tone raises the threshold around its own frequency, well above the noise-only one.
    rng = np.random.default_rng(3)
    noise = (0.03 * rng.normal(size=N)).astype(np.float32)
    tone = noise + (0.3 * np.sin(2 * np.pi * 1000 * np.arange(N) / RATE)).astype(np.float32)
    both = attacks.masking_threshold(np.stack([noise, tone]) * 0.5, sample_rate=RATE)
    k = int(round(1000 * psy.N_FFT / RATE))
    absolute = both.threshold * both.reference[:, None, None]
    assert float(absolute[1, 4, k]) > 10 * float(absolute[0, 4, k])


def test_hinge_zero_below_threshold_positive_above(clips):
    m = _one(attacks.masking_threshold(clips, sample_rate=RATE), 0)
    delta = np.random.default_rng(4).normal(size=N).astype(np.float32)
    small, big = 1e-7 * delta, 0.05 * delta
    assert float(psy.perturbation_psd(small, m.reference).max()) > 0
    assert float(psy.hinge_distance(small, m)) == 0.0
    assert float(psy.excess_share(small, m)) == 0.0
    assert float(psy.hinge_distance(big, m)) > 0
    assert 0 < float(psy.excess_share(big, m)) <= 1
    assert float(psy.excess_share(np.zeros(N, np.float32), m)) == 0.0


def test_gradients_finite_on_silence():
    silent = np.zeros(N, np.float32)
    m = psy.masking_threshold_example(silent, sample_rate=RATE)
    assert np.all(np.isfinite(m.threshold))
    assert float(m.reference) == pytest.approx(psy.REFERENCE_FLOOR)
    delta = 1e-4 * np.random.default_rng(5).normal(size=N).astype(np.float32)
    g = jax.grad(lambda d: psy.hinge_distance(d, m))(delta)
    assert np.all(np.isfinite(g)) and np.any(g != 0)
    # The factory's objective, threshold computed from x inside (gradient w.r.t. x_adv).
    spec = attacks.specs.psychoacoustic(alpha=1.0, clip_eps=0.01, learning_rate=1e-4,
                                        sample_rate=RATE)
    g = jax.jit(jax.grad(lambda xa: spec.objective(jnp.asarray(silent), xa, 0.0)))(silent + delta)
    assert np.all(np.isfinite(g))


@pytest.fixture(scope="module")
def targeted(clips, model):
    labels = np.asarray(jnp.argmax(model(clips), -1), np.int32)
    target = (labels + 1) % CLASSES
    kw = dict(eps=0.02, stage1_learning_rate=2e-3, stage1_iterations=60, learning_rate=5e-4,
              max_iterations=40, alpha=1.0, check_every=10, sample_rate=RATE)
    res = attacks.psychoacoustic(model, clips, labels, target=target,
                                 key=jax.random.key(0), **kw)
    stage1 = attacks.pgd(model, clips, labels, target=target,
                         key=attacks.example_keys(jax.random.key(0), len(clips)),
                         eps=kw["eps"], learning_rate=kw["stage1_learning_rate"],
                         max_iterations=kw["stage1_iterations"])
    return labels, target, kw, res, stage1


def test_targeted_success_and_less_excess_than_stage1(clips, model, targeted):
    labels, target, kw, res, stage1 = targeted
    assert np.all(np.asarray(res.success)) and np.all(np.asarray(stage1.success))
    np.testing.assert_array_equal(res.adversarial_prediction, target)
    np.testing.assert_array_equal(res.target, target)
    assert np.all(np.abs(np.asarray(res.perturbation)) <= kw["eps"] + 1e-6)
    m = attacks.masking_threshold(clips, sample_rate=RATE)
    hinge = jax.vmap(psy.hinge_distance)
    h2 = np.asarray(hinge(jnp.asarray(res.perturbation), m))
    h1 = np.asarray(hinge(jnp.asarray(stage1.perturbation), m))
    assert np.all(h2 <= h1 + 1e-6) and np.any(h2 < 0.5 * h1)
    np.testing.assert_array_equal(res.iterations, stage1.iterations)


def test_batch_equals_single(clips, model, targeted):
    labels, target, kw, res, _ = targeted
    keys = attacks.example_keys(jax.random.key(0), len(clips))
    for i in (0, 2):
        alone = attacks.psychoacoustic(model, clips[i:i + 1], labels[i:i + 1],
                                       target=target[i:i + 1], key=keys[i:i + 1], **kw)
        np.testing.assert_allclose(alone.adversarial[0], res.adversarial[i], atol=1e-6)
        assert bool(alone.success[0]) == bool(res.success[i])


def test_untargeted_and_registered(clips, model):
    labels = np.asarray(jnp.argmax(model(clips), -1), np.int32)
    res = attacks.get("psy").function(model, clips, labels, key=jax.random.key(1), eps=0.02,
                                 stage1_learning_rate=2e-3, stage1_iterations=60,
                                 learning_rate=5e-4, max_iterations=20, alpha=1.0,
                                 check_every=10, sample_rate=RATE, quantize_16bit=True)
    assert np.all(np.asarray(res.success))
    assert np.all(np.asarray(res.adversarial_prediction) != labels)
    pcm = np.asarray(res.adversarial) * 32768
    np.testing.assert_array_equal(pcm, np.round(pcm))


@pytest.mark.parametrize("bad, match", [(dict(alpha=0.0), "alpha"), (dict(eps=-1.0), "eps"),
                                        (dict(alpha=1e5), "alpha_min <= alpha"),
                                        (dict(sample_rate=0), "sample_rate")])
def test_bad_arguments(clips, model, bad, match):
    with pytest.raises(ValueError, match=match):
        attacks.psychoacoustic(model, clips, np.zeros(3, np.int32), key=jax.random.key(0),
                               **bad)


def test_given_stage1_equals_running_it(clips, model, targeted):
    labels, target, kw, res, stage1 = targeted
    given = attacks.psychoacoustic(model, clips, labels, target=target, key=jax.random.key(0),
                                   start=stage1.perturbation,
                                   start_iterations=stage1.iterations, **kw)
    np.testing.assert_allclose(given.adversarial, res.adversarial, atol=1e-6)
    np.testing.assert_array_equal(given.iterations, res.iterations)
    with pytest.raises(ValueError, match="start"):
        attacks.psychoacoustic(model, clips, labels, key=jax.random.key(0),
                               start=np.zeros((2, N), np.float32))
