"""Bootstrap ensembles: resample sizes, the mean-logit ensemble, fooling rates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio import ensemble


def test_bootstrap_masks_sizes_and_seeding():
    masks = ensemble.bootstrap_masks(2000, 3, seed=7)
    assert masks.shape == (3, 2000) and masks.dtype == bool
    fractions = masks.mean(axis=1)
    np.testing.assert_allclose(fractions, 1 - np.exp(-1), atol=0.03)  # ≈ 0.632 each
    assert not np.array_equal(masks[0], masks[1])  # members differ
    np.testing.assert_array_equal(masks, ensemble.bootstrap_masks(2000, 3, seed=7))
    assert not np.array_equal(masks, ensemble.bootstrap_masks(2000, 3, seed=8))
    # the first members do not depend on how many are drawn
    np.testing.assert_array_equal(masks[:2], ensemble.bootstrap_masks(2000, 2, seed=7))
    with pytest.raises(ValueError, match="--members"):
        ensemble.bootstrap_masks(10, 0, seed=0)


def _member(scale):
    return lambda w: jnp.stack([scale * w.mean(-1), -w.mean(-1), w.std(-1) * scale], -1)


def test_ensemble_logits_are_the_mean():
    fns = [_member(s) for s in (1.0, 2.0, -3.0)]
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 64)), jnp.float32)
    got = ensemble.ensemble_logits_fn(fns)(x)
    want = np.mean([np.asarray(f(x)) for f in fns], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert ensemble.ensemble_logits_fn(fns) is ensemble.ensemble_logits_fn(fns)  # cached
    assert ensemble.ensemble_logits_fn(fns[:1]) is fns[0]
    with pytest.raises(ValueError, match="at least one member"):
        ensemble.ensemble_logits_fn([])


def test_fooling_rate_and_predict():
    fn = _member(1.0)
    x = np.stack([np.full(8, 0.5), np.full(8, -0.5), np.full(8, 0.2)]).astype(np.float32)
    np.testing.assert_array_equal(ensemble.predict(fn, x), [0, 1, 0])
    labels = np.array([0, 0, 0])
    assert ensemble.fooling_rate(fn, x, labels) == pytest.approx(1 / 3)
    assert ensemble.fooling_rate(fn, x, labels, among=[False, True, False]) == 1.0
    assert ensemble.fooling_rate(fn, x, labels, among=[False] * 3) is None


def test_member_training_checks_shapes():
    with pytest.raises(ValueError, match="masks must have shape"):
        ensemble.train_bootstrap_members(None, [np.zeros(10)] * 4, np.zeros((4, 2)), None,
                                         masks=np.ones((2, 3), bool))


def test_clip_outside_resample_gives_no_gradient():
    # Why a zero target leaves a member's weights alone: the training loss of that clip is 0.
    import jax

    from jaxaudio import losses

    loss = losses.get_loss("cross_entropy")
    logits = jnp.asarray([[1.0, -2.0, 0.5]])
    grad = jax.grad(lambda z: loss(z, jnp.zeros((1, 3))))(logits)
    assert float(loss(logits, jnp.zeros((1, 3)))) == 0.0 and not np.any(np.asarray(grad))
