"""Properties of the attacks library on a tiny differentiable classifier.

The toy model: magnitude-squared STFT (n_fft 256) -> 16 rectangular bands -> log -> mean over
frames -> random linear layer (4 classes). Clips are 4096 samples; labels are the model's clean
predictions, so every example starts correctly classified. Attack hyperparameters are scaled up
(eps 1e-2, lr 1e-3) so that the toy problems are solved in a few dozen steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio import attacks
from jaxaudio.dsp import frontend
from jaxaudio.attacks import driver, validation
from jaxaudio.metrics import useful_steps

NUM_SAMPLES = 4096
NUM_CLASSES = 4
NUM_BANDS = 16


def _band_matrix():
    bands = np.zeros((NUM_BANDS, 129), np.float32)
    edges = np.linspace(1, 129, NUM_BANDS + 1).astype(int)
    for i in range(NUM_BANDS):
        bands[i, edges[i]:edges[i + 1]] = 1.0
    return bands


BANDS = _band_matrix()
WEIGHTS = jnp.asarray(np.random.default_rng(0).normal(size=(NUM_BANDS, NUM_CLASSES)),
                      jnp.float32)
BINARY_WEIGHTS = jnp.asarray(np.random.default_rng(1).normal(size=(NUM_BANDS, 1)), jnp.float32)


def log_bands(waves):
    spec = frontend.spectrogram(waves, n_fft=256, hop_length=128, power=2.0,
                                pad_mode="constant")
    return jnp.log(jnp.einsum("bf,...ft->...bt", BANDS, spec) + 1e-6)  # (..., bands, frames)


def _head(band_frames, weights):
    feats = band_frames.mean(-1)
    return (feats - feats.mean(-1, keepdims=True)) @ weights


# One object each, so compiled attacks are shared between tests.
logits_fn = jax.jit(lambda w: _head(log_bands(w), WEIGHTS))
binary_logits_fn = jax.jit(lambda w: _head(log_bands(w), BINARY_WEIGHTS))  # (batch, 1)
spectrogram_logits_fn = jax.jit(lambda s: _head(s, WEIGHTS))  # attacks log-band "spectrograms"

FAST = dict(eps=1e-2, learning_rate=1e-3, max_iterations=100)
FAST_CW = dict(clip_eps=5e-2, alpha=1.0, learning_rate=1e-3, max_iterations=100)


def make_waves(num_samples=NUM_SAMPLES, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 16000.0
    waves = [0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.normal(size=num_samples)
             for f in (300.0, 1200.0, 3000.0, 6000.0)]
    waves[3] = 0.995 * waves[3] / np.abs(waves[3]).max()  # near full scale: clipping matters
    return np.stack(waves).astype(np.float32)


WAVES = make_waves()
LABELS = np.asarray(jnp.argmax(logits_fn(WAVES), -1))
KEYS = jax.random.split(jax.random.key(42), len(WAVES))


@pytest.fixture(scope="module")
def pgd_result():
    return attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, **FAST)


def _linf(a):
    return np.abs(np.asarray(a)).reshape(len(a), -1).max(axis=1)


# --------------------------------------------------------------------------------------------
# Constraints and result consistency
# --------------------------------------------------------------------------------------------


def test_toy_labels_are_diverse():
    assert len(set(LABELS.tolist())) >= 3


def test_pgd_stays_in_ball_and_range(pgd_result):
    r = pgd_result
    assert np.all(_linf(r.perturbation) <= FAST["eps"] + 1e-6)
    assert np.all(np.abs(np.asarray(r.adversarial)) <= 1.0)
    np.testing.assert_allclose(np.asarray(r.perturbation), np.asarray(r.adversarial) - WAVES,
                               atol=0)
    assert np.all(np.asarray(r.success))


def test_success_is_reevaluated_on_returned_adversarial(pgd_result):
    r = pgd_result
    logits = np.asarray(logits_fn(r.adversarial))
    prediction = logits.argmax(-1)
    np.testing.assert_array_equal(np.asarray(r.success), prediction != LABELS)
    np.testing.assert_array_equal(np.asarray(r.adversarial_prediction), prediction)
    np.testing.assert_allclose(np.asarray(r.logits), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(r.probabilities).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(r.original_prediction), LABELS)
    np.testing.assert_array_equal(np.asarray(r.target), -1)


def test_batch_equals_single(pgd_result):
    for i in range(len(WAVES)):
        single = attacks.pgd(logits_fn, WAVES[i:i + 1], LABELS[i:i + 1], key=KEYS[i:i + 1],
                             **FAST)
        np.testing.assert_allclose(np.asarray(single.adversarial[0]),
                                   np.asarray(pgd_result.adversarial[i]), atol=1e-7, rtol=0)
        assert int(single.iterations[0]) == int(pgd_result.iterations[i])
        assert bool(single.success[0]) == bool(pgd_result.success[i])


def test_pgd_reproducible_for_a_key(pgd_result):
    again = attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, **FAST)
    np.testing.assert_array_equal(np.asarray(again.adversarial),
                                  np.asarray(pgd_result.adversarial))


def test_early_stopping_freezes_finished_examples(pgd_result):
    iterations = np.asarray(pgd_result.iterations)
    assert len(set(iterations.tolist())) > 1, "toy problem should finish at different steps"
    # A longer budget changes nothing for examples that finished within the shorter one.
    cutoff = int(np.sort(iterations)[1]) + 1  # at least two examples finish before it
    short = attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS,
                        **{**FAST, "max_iterations": cutoff})
    finished = np.asarray(short.success) & (np.asarray(short.iterations) < cutoff)
    assert finished.sum() >= 2
    np.testing.assert_array_equal(np.asarray(short.adversarial)[finished],
                                  np.asarray(pgd_result.adversarial)[finished])
    np.testing.assert_array_equal(np.asarray(short.iterations)[finished], iterations[finished])
    # Unfinished ones report the budget.
    np.testing.assert_array_equal(np.asarray(short.iterations)[~np.asarray(short.success)],
                                  cutoff)


def test_no_early_stop_runs_all_steps_and_keeps_best(pgd_result):
    r = attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, early_stop=False,
                    **{**FAST, "max_iterations": 30})
    assert np.all(np.asarray(r.success))
    # The first success step is the same as with early stopping ...
    np.testing.assert_array_equal(np.asarray(r.iterations), np.asarray(pgd_result.iterations))
    # ... and the returned iterate is the successful one with the highest SNR.
    assert np.all(np.asarray(r.snr_db) >= np.asarray(pgd_result.snr_db) - 1e-4)
    assert np.all(_linf(r.perturbation) <= FAST["eps"] + 1e-6)


def _every_iterate(norm, hyper, steps):
    """Step the compiled host loop of attacks.pgd / attacks.pgd_l2 (the same cached function
    the module fixtures ran) by hand and yield every iterate's ``delta`` and ``x_adv``."""
    fn = attacks.make_attack("pgd", logits_fn, norm=norm, random_start=True)
    assert isinstance(fn, driver.HostLoop)  # the CPU default
    prepared = validation.prepare_inputs(logits_fn, WAVES, LABELS, key=KEYS, need_key=True)
    args = (prepared.x, prepared.labels, prepared.targets, prepared.keys,
            attacks.as_hyper(eps=hyper["eps"], learning_rate=hyper["learning_rate"]),
            jnp.asarray(hyper["max_iterations"], jnp.int32))
    state = fn.init(*args)
    for _ in range(steps):
        delta = np.array(state.delta)  # a copy: the loop body donates the state
        yield delta, np.clip(WAVES + delta, -1.0, 1.0)
        state, _ = fn.body(state, *args)
    assert np.all(np.asarray(state.step) >= 1)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_every_step_respects_the_projection(norm, pgd_result, pgd_l2_result):
    hyper = FAST if norm == "linf" else L2
    eps = hyper["eps"]
    if norm == "linf":
        norm_of = _linf
    else:
        def norm_of(a):
            return np.linalg.norm(np.asarray(a, np.float64).reshape(len(a), -1), axis=1)

    for k, (delta, x_adv) in enumerate(_every_iterate(norm, hyper, 6)):
        if k == 0:
            assert np.all(norm_of(delta) > 0.5 * eps)  # the random start is not zero
        assert np.all(norm_of(delta) <= eps * (1 + 1e-6)), (k, norm_of(delta))
        assert np.all(np.abs(x_adv) <= 1.0)
        # Clipping only shrinks it (up to float32 rounding of x + delta).
        assert np.all(norm_of(x_adv - WAVES) <= eps + 1e-5)


def test_unknown_norm_and_method_rejected():
    with pytest.raises(ValueError, match="norm"):
        attacks.specs.pgd(eps=1e-2, learning_rate=1e-3, norm="l3")
    with pytest.raises(ValueError, match="snr_db"):
        attacks.specs.pgd(eps=1e-2, learning_rate=1e-3, norm="snr_l2")
    with pytest.raises(TypeError):
        attacks.specs.pgd(1e-2, 1e-3)  # hyperparameters are keyword-only
    with pytest.raises(ValueError, match="unknown attack"):
        attacks.make_attack("deepfool", logits_fn)


# --------------------------------------------------------------------------------------------
# L2 PGD
# --------------------------------------------------------------------------------------------

L2 = dict(eps=0.5, learning_rate=1e-3, max_iterations=40)


@pytest.fixture(scope="module")
def pgd_l2_result():
    return attacks.pgd_l2(logits_fn, WAVES, LABELS, key=KEYS, **L2)


def test_pgd_l2_stays_in_the_l2_ball(pgd_l2_result):
    r = pgd_l2_result
    l2 = np.linalg.norm(np.asarray(r.perturbation, np.float64), axis=1)
    assert np.all(l2 <= L2["eps"] * (1 + 1e-5)), l2
    assert np.all(np.abs(np.asarray(r.adversarial)) <= 1.0)
    assert np.any(np.asarray(r.success))
    success = np.asarray(r.success)
    np.testing.assert_array_equal(np.asarray(logits_fn(r.adversarial)).argmax(-1) != LABELS,
                                  success)


def test_pgd_l2_batch_equals_single(pgd_l2_result):
    for i in range(len(WAVES)):
        single = attacks.pgd_l2(logits_fn, WAVES[i:i + 1], LABELS[i:i + 1], key=KEYS[i:i + 1],
                                **L2)
        np.testing.assert_array_equal(np.asarray(single.adversarial[0]),
                                      np.asarray(pgd_l2_result.adversarial[i]))
        assert int(single.iterations[0]) == int(pgd_l2_result.iterations[i])


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def test_carlini_wagner_hits_fixed_and_random_targets():
    fixed = next(c for c in range(NUM_CLASSES) if np.sum(LABELS != c) >= 3)
    keep = LABELS != fixed
    r = attacks.carlini_wagner(logits_fn, WAVES[keep], LABELS[keep], target=fixed, **FAST_CW)
    assert np.all(np.asarray(r.success))
    np.testing.assert_array_equal(np.asarray(r.adversarial_prediction), fixed)
    np.testing.assert_array_equal(np.asarray(r.target), fixed)
    assert np.all(_linf(r.perturbation) <= FAST_CW["clip_eps"] + 1e-6)

    r = attacks.carlini_wagner(logits_fn, WAVES, LABELS, target="random",
                               key=jax.random.key(7), **FAST_CW)
    target = np.asarray(r.target)
    assert np.all(target != LABELS)
    np.testing.assert_array_equal(np.asarray(r.success),
                                  np.asarray(r.adversarial_prediction) == target)
    assert np.all(np.asarray(r.success))


def test_random_targets_never_the_label_and_reproducible():
    labels = np.random.default_rng(0).integers(0, 5, size=500)
    a = np.asarray(attacks.random_targets(jax.random.key(1), labels, 5))
    b = np.asarray(attacks.random_targets(jax.random.key(1), labels, 5))
    c = np.asarray(attacks.random_targets(jax.random.key(2), labels, 5))
    assert np.all(a != labels) and np.all((a >= 0) & (a < 5))
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    assert set(a[labels == 0].tolist()) == {1, 2, 3, 4}


def test_untargeted_carlini_wagner():
    r = attacks.carlini_wagner(logits_fn, WAVES, LABELS, target=None, **FAST_CW)
    assert np.all(np.asarray(r.success))
    assert np.all(np.asarray(r.adversarial_prediction) != LABELS)


def test_multiscale_carlini_wagner_targeted():
    r = attacks.multiscale_carlini_wagner(
        logits_fn, WAVES, LABELS, target="random", key=jax.random.key(3),
        clip_eps=5e-2, alpha=10.0, learning_rate=1e-3, max_iterations=100)
    assert np.all(np.asarray(r.success))
    np.testing.assert_array_equal(np.asarray(r.adversarial_prediction), np.asarray(r.target))
    assert np.all(_linf(r.perturbation) <= 5e-2 + 1e-6)


# --------------------------------------------------------------------------------------------
# SNR, budgets, FGSM
# --------------------------------------------------------------------------------------------


def _snr_numpy(x, y, margin=2048):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape[-1] > 2 * margin:
        x, y = x[..., margin:-margin], y[..., margin:-margin]
    return 20 * np.log10(np.linalg.norm(x, axis=-1) / np.linalg.norm(x - y, axis=-1))


def test_snr_definition():
    rng = np.random.default_rng(0)
    long = rng.normal(size=(2, 10000)).astype(np.float32) * 0.1
    noisy = long + rng.normal(size=long.shape).astype(np.float32) * 1e-3
    noisy[:, :2048] += 0.5  # outside the SNR region: ignored
    np.testing.assert_allclose(np.asarray(attacks.snr_db(long, noisy)), _snr_numpy(long, noisy),
                               rtol=1e-4)
    short = long[:, :4096]  # <= 4096 samples: the whole clip
    np.testing.assert_allclose(np.asarray(attacks.snr_db(short, noisy[:, :4096])),
                               20 * np.log10(np.linalg.norm(short, axis=-1) / np.linalg.norm(
                                   short - noisy[:, :4096], axis=-1)), rtol=1e-4)
    assert np.all(np.isinf(np.asarray(attacks.snr_db(long, long))))
    spec = rng.normal(size=(2, 8, 6)).astype(np.float32)  # 2-D examples: all elements
    np.testing.assert_allclose(
        np.asarray(attacks.snr_db(spec, spec * 1.1)), np.full(2, 20.0), rtol=1e-4)


def test_attack_snr_is_the_metrics_snr():
    from jaxaudio import metrics

    x = WAVES
    x_adv = np.clip(WAVES + 1e-3 * np.random.default_rng(3).normal(size=WAVES.shape), -1, 1)
    x_adv[2] = x[2]
    for margin in (0, 1024, 2048):
        got = np.asarray(attacks.snr_db(jnp.asarray(x), jnp.asarray(x_adv, jnp.float32),
                                        margin=margin))
        want = metrics.snr_db(x, x_adv.astype(np.float32), trim=margin)
        np.testing.assert_allclose(got, want, rtol=1e-4)
    # spectrogram-like examples: all elements, no trimming
    spec, spec_adv = x.reshape(4, 64, 64), x_adv.reshape(4, 64, 64)
    np.testing.assert_allclose(np.asarray(attacks.snr_db(spec, spec_adv)),
                               metrics.snr_db(spec.reshape(4, -1), spec_adv.reshape(4, -1),
                                              trim=0), rtol=1e-4)


def test_pgd_snr_budget_is_kept():
    waves = make_waves(8192, seed=1)  # longer than 4096: SNR leaves out 2048 samples each side
    labels = np.asarray(jnp.argmax(logits_fn(waves), -1))
    r = attacks.pgd(logits_fn, waves, labels, key=jax.random.key(0), snr_db=30.0,
                    learning_rate=1e-3, max_iterations=60)
    snr = np.asarray(r.snr_db)
    assert np.all(snr >= 30.0 - 1e-3), snr
    np.testing.assert_allclose(snr, _snr_numpy(waves, r.adversarial), atol=1e-3)
    assert np.any(np.asarray(r.success))


def test_fgsm_sweep_matches_fgsm_and_grows_with_eps():
    eps = np.array([1e-5, 1e-3, 1e-2, 1e-1], np.float32)
    sweep = attacks.fgsm_sweep(logits_fn, WAVES, LABELS, epsilons=eps)
    success, snr = np.asarray(sweep.success), np.asarray(sweep.snr_db)
    assert success.shape == snr.shape == (4, len(WAVES))
    assert success[-1].sum() >= success[0].sum()
    assert success[-1].sum() >= 1
    assert np.all(np.diff(snr, axis=0) < 0)  # louder steps, lower SNR
    single = attacks.fgsm(logits_fn, WAVES, LABELS, eps=float(eps[2]))
    np.testing.assert_array_equal(np.asarray(single.success), success[2])
    np.testing.assert_allclose(np.asarray(single.snr_db), snr[2], rtol=1e-5)
    assert np.all(_linf(single.perturbation) <= eps[2] + 1e-6)
    np.testing.assert_array_equal(np.asarray(single.iterations)[np.asarray(single.success)], 1)


# --------------------------------------------------------------------------------------------
# Binary decisions, other domains, 16-bit output
# --------------------------------------------------------------------------------------------


def test_sigmoid_decision_flips_a_single_logit():
    logit = np.asarray(binary_logits_fn(WAVES))[:, 0]
    labels = (logit > 0).astype(np.int32)
    r = attacks.pgd(binary_logits_fn, WAVES, labels, key=jax.random.key(0),
                    decision="sigmoid", **FAST)
    assert np.asarray(r.logits).shape == (len(WAVES), 1)
    assert np.all(np.asarray(r.success))
    flipped = (np.asarray(binary_logits_fn(r.adversarial))[:, 0] > 0).astype(np.int32)
    np.testing.assert_array_equal(flipped, 1 - labels)
    np.testing.assert_array_equal(np.asarray(r.target), 1 - labels)
    np.testing.assert_array_equal(np.asarray(r.original_prediction), labels)


def test_spectrogram_domain_attack_is_unbounded():
    specs = np.asarray(log_bands(WAVES))  # (batch, bands, frames), values far outside [-1, 1]
    assert np.abs(specs).max() > 1.0
    labels = np.asarray(jnp.argmax(spectrogram_logits_fn(specs), -1))
    np.testing.assert_array_equal(labels, LABELS)
    r = attacks.pgd(spectrogram_logits_fn, specs, labels, key=jax.random.key(0),
                    domain="spectrogram", eps=1.0, learning_rate=0.05, max_iterations=100)
    assert np.all(np.asarray(r.success))
    assert np.all(_linf(r.perturbation) <= 1.0 + 1e-5)
    assert np.abs(np.asarray(r.adversarial)).max() > 1.0  # not clipped to [-1, 1]
    diff = (specs - np.asarray(r.adversarial)).reshape(len(specs), -1)
    expected = 20 * np.log10(np.linalg.norm(specs.reshape(len(specs), -1), axis=1)
                             / np.linalg.norm(diff, axis=1))
    np.testing.assert_allclose(np.asarray(r.snr_db), expected, rtol=1e-4)


def test_quantized_adversarial_survives_pcm16_round_trip(tmp_path):
    from jaxaudio.data import load_audio, quantize_pcm16, save_wav

    waves = np.asarray(attacks.round_to_16bit(WAVES))  # as if read from a 16-bit WAV
    np.testing.assert_array_equal(quantize_pcm16(WAVES), waves)
    r = attacks.pgd(logits_fn, waves, LABELS, key=KEYS, quantize_16bit=True, **FAST)
    adversarial = np.asarray(r.adversarial)
    # Real files: written as PCM_16 and read back, bit for bit the evaluated arrays.
    round_trip = np.stack([
        load_audio(save_wav(tmp_path / f"{i}.wav", a, 16000), sample_rate=16000)[0]
        for i, a in enumerate(adversarial)])
    np.testing.assert_array_equal(round_trip, adversarial)
    prediction = np.asarray(jnp.argmax(logits_fn(round_trip), -1))
    np.testing.assert_array_equal(prediction != LABELS, np.asarray(r.success))
    assert np.all(np.asarray(r.success))
    assert np.all(_linf(r.perturbation) <= FAST["eps"] + 1e-6)
    assert np.all(np.abs(adversarial) <= 1.0)


# --------------------------------------------------------------------------------------------
# Multi-scale spectral distance
# --------------------------------------------------------------------------------------------


def test_multiscale_distance_zero_for_identical_inputs_with_finite_gradient():
    @jax.jit  # one compile for the distance and its gradient
    def distance_and_grad(a, b):
        return (attacks.multiscale_spectral_distance(a, b),
                jax.grad(lambda b: attacks.multiscale_spectral_distance(a, b).sum())(b))

    x = jnp.asarray(WAVES[:2])
    silence = jnp.zeros_like(x)
    d, g = distance_and_grad(x, x)
    np.testing.assert_array_equal(np.asarray(d), 0.0)
    assert np.all(np.isfinite(np.asarray(g)))  # at x_adv == x ...
    assert np.all(np.asarray(distance_and_grad(x, x + 1e-3)[0]) > 0.0)
    assert np.all(np.isfinite(np.asarray(distance_and_grad(silence, silence)[1])))  # ... silence


# --------------------------------------------------------------------------------------------
# Sharding (single device here; several devices in test_attacks_sharding.py)
# --------------------------------------------------------------------------------------------


def test_sharded_on_one_device_is_a_no_op(pgd_result):
    if len(jax.devices()) != 1:
        pytest.skip("single-device check")
    r = attacks.sharded(attacks.pgd)(logits_fn, WAVES, LABELS, key=KEYS, **FAST)
    np.testing.assert_array_equal(np.asarray(r.adversarial), np.asarray(pgd_result.adversarial))


# --------------------------------------------------------------------------------------------
# Compilation cache
# --------------------------------------------------------------------------------------------


def test_compiled_attacks_are_cached_per_logits_fn_and_config():
    a = attacks.make_attack("pgd", logits_fn, random_start=True)
    assert attacks.make_attack("pgd", logits_fn, random_start=True) is a
    assert attacks.make_attack("pgd", logits_fn, random_start=False) is not a
    assert attacks.make_attack("pgd", binary_logits_fn, random_start=True) is not a


class _UnhashableModel:
    __hash__ = None  # e.g. a dataclass with eq=True

    def __call__(self, waves):
        return logits_fn(waves)


def test_unhashable_logits_fn_works_uncached():
    r = attacks.fgsm(_UnhashableModel(), WAVES, LABELS, eps=1e-2)
    np.testing.assert_array_equal(
        np.asarray(r.success), np.asarray(attacks.fgsm(logits_fn, WAVES, LABELS,
                                                       eps=1e-2).success))


# --------------------------------------------------------------------------------------------
# Early stopping with slot refill (a queue of examples through fewer parallel slots)
# --------------------------------------------------------------------------------------------


def _assert_same_results(a, b):
    np.testing.assert_allclose(np.asarray(a.adversarial), np.asarray(b.adversarial), atol=1e-7,
                               rtol=0)
    np.testing.assert_array_equal(np.asarray(a.iterations), np.asarray(b.iterations))
    np.testing.assert_array_equal(np.asarray(a.success), np.asarray(b.success))
    np.testing.assert_array_equal(np.asarray(a.adversarial_prediction),
                                  np.asarray(b.adversarial_prediction))
    np.testing.assert_array_equal(np.asarray(a.target), np.asarray(b.target))


@pytest.mark.parametrize("slots", [1, 3])
def test_slot_refill_equals_running_each_example_alone(pgd_result, slots):
    # pgd_result equals the examples run one by one (test_batch_equals_single).
    refilled = attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, slots=slots, **FAST)
    _assert_same_results(refilled, pgd_result)


def test_slot_refill_with_random_targets_and_unfinished_examples():
    # Few iterations: some examples never succeed and must be written out at max_iterations.
    kwargs = dict(target="random", key=KEYS, **dict(FAST_CW, max_iterations=6))
    plain = attacks.carlini_wagner(logits_fn, WAVES, LABELS, **kwargs)
    refilled = attacks.carlini_wagner(logits_fn, WAVES, LABELS, slots=2, **kwargs)
    _assert_same_results(refilled, plain)
    assert not np.all(np.asarray(plain.success)), "want at least one unfinished example"


# Traced arguments as attacks.pgd passes them (same types: compiled functions are shared).
_HYPER = attacks.as_hyper(eps=FAST["eps"], learning_rate=FAST["learning_rate"])
_MAX_ITERATIONS = jnp.asarray(FAST["max_iterations"], jnp.int32)


def test_slot_refill_needs_fewer_steps_than_waiting_for_the_slowest(pgd_result):
    prepared = validation.prepare_inputs(logits_fn, WAVES, LABELS, key=KEYS, need_key=True)
    # The options attacks.pgd passes: the compiled queue of the slots=3 test above is reused.
    fn = attacks.make_attack("pgd", logits_fn, slots=3, norm="linf", random_start=True)
    result, slot_steps = fn(prepared.x, prepared.labels, prepared.targets, prepared.keys,
                            _HYPER, _MAX_ITERATIONS)
    _assert_same_results(result, pgd_result)
    need = useful_steps(result.iterations, FAST["max_iterations"])
    # Three slots, examples 0-2 first: the queue computes at least the steps the examples
    # need, and never more than running examples 0-2 and then example 3 as plain batches.
    assert need.sum() <= int(slot_steps)
    assert int(slot_steps) <= 3 * (need[:3].max() + need[3:].max())


def test_host_queue_narrows_the_batch_when_half_its_slots_are_empty():
    """Stepping by hand: once at most half the slots are occupied the host loop halves the
    batch (the slots still occupied come first), and the results equal the device loop's."""
    prepared = validation.prepare_inputs(logits_fn, WAVES, LABELS, key=KEYS, need_key=True)
    args = (prepared.x, prepared.labels, prepared.targets, prepared.keys, _HYPER,
            _MAX_ITERATIONS)
    fn = attacks.make_attack("pgd", logits_fn, slots=4, norm="linf", random_start=True,
                             loop="host")
    assert isinstance(fn, driver.HostLoop) and fn.shrink is not None
    carry = fn.init(*args)
    n = len(WAVES)
    while True:
        carry, status = fn.body(carry, *args)
        active, occupied = (int(v) for v in status)
        if not active or occupied <= 2:
            break
    if active:
        occupied_before = np.sort(np.asarray(carry.slot_index)[np.asarray(carry.slot_index) < n])
        narrowed = fn.shrink(carry, 2, *args)
        assert narrowed.x.shape[0] == 2 and narrowed.state.delta.shape[0] == 2
        kept = np.asarray(narrowed.slot_index)
        np.testing.assert_array_equal(np.sort(kept[kept < n]), occupied_before)
    host, host_steps = fn(*args)
    device, device_steps = attacks.make_attack("pgd", logits_fn, slots=4, norm="linf",
                                               random_start=True, loop="device")(*args)
    _assert_same_results(host, device)
    assert int(host_steps) <= int(device_steps)


@pytest.mark.parametrize("slots", [None, 2])
def test_device_loop_equals_host_loop(pgd_result, slots):
    # On CPU the default is the host-driven loop; the on-device while_loop must agree.
    assert driver.default_loop() == "host"
    prepared = validation.prepare_inputs(logits_fn, WAVES, LABELS, key=KEYS, need_key=True)
    fn = attacks.make_attack("pgd", logits_fn, slots=slots, loop="device", random_start=True)
    result = fn(prepared.x, prepared.labels, prepared.targets, prepared.keys, _HYPER,
                _MAX_ITERATIONS)
    _assert_same_results(result if slots is None else result[0], pgd_result)


def test_bad_slots_rejected():
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="slots"):
            _pgd(slots=bad)
    with pytest.raises(ValueError, match="loop"):
        attacks.make_attack("pgd", logits_fn, loop="gpu")


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def _pgd(**overrides):
    kwargs = dict(x=WAVES, labels=LABELS, key=jax.random.key(0), **FAST)
    kwargs.update(overrides)
    x, labels = kwargs.pop("x"), kwargs.pop("labels")
    return attacks.pgd(logits_fn, x, labels, **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_waves_rejected(bad):
    waves = WAVES.copy()
    waves[1, 100] = bad
    with pytest.raises(ValueError, match="NaN/Inf"):
        _pgd(x=waves)


def test_out_of_range_waves_rejected():
    with pytest.raises(ValueError, match="outside the bounds"):
        _pgd(x=WAVES * 2.0)


@pytest.mark.parametrize("name,value", [
    ("eps", 0.0), ("eps", -1e-3), ("learning_rate", 0.0), ("learning_rate", -1.0),
    ("max_iterations", 0), ("eps", float("nan")),
])
def test_bad_hyperparameters_rejected(name, value):
    with pytest.raises(ValueError, match=name):
        _pgd(**{name: value})


def test_bad_cw_hyperparameters_rejected():
    for name in ("clip_eps", "alpha", "learning_rate"):
        with pytest.raises(ValueError, match=name):
            attacks.carlini_wagner(logits_fn, WAVES, LABELS, target=None, **{name: 0.0})
    with pytest.raises(ValueError, match="max_iterations"):
        attacks.carlini_wagner(logits_fn, WAVES, LABELS, target=None, max_iterations=0)
    with pytest.raises(ValueError, match="eps"):
        attacks.fgsm(logits_fn, WAVES, LABELS, eps=0.0)
    with pytest.raises(ValueError, match="epsilons"):
        attacks.fgsm_sweep(logits_fn, WAVES, LABELS, epsilons=[0.1, -0.1])


def test_bad_targets_rejected():
    with pytest.raises(ValueError, match="target must be class indices"):
        _pgd(target=NUM_CLASSES)
    with pytest.raises(ValueError, match="target must be class indices"):
        _pgd(target=-1)
    with pytest.raises(ValueError, match="equals the true label"):
        _pgd(target=int(LABELS[0]))
    with pytest.raises(ValueError, match="equals the true label"):
        _pgd(target=LABELS)
    with pytest.raises(ValueError, match="shape"):
        _pgd(target=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="target must be None"):
        _pgd(target="closest")
    with pytest.raises(ValueError, match="key is required"):
        attacks.carlini_wagner(logits_fn, WAVES, LABELS, target="random")


def test_bad_labels_rejected():
    with pytest.raises(ValueError, match="labels"):
        _pgd(labels=np.full(len(WAVES), NUM_CLASSES))
    with pytest.raises(ValueError, match="labels"):
        _pgd(labels=LABELS[:2])
    with pytest.raises(ValueError, match="0 or 1"):
        attacks.pgd(binary_logits_fn, WAVES, np.full(len(WAVES), 2), key=jax.random.key(0),
                    decision="sigmoid")
    with pytest.raises(ValueError, match="at least 2 classes"):
        attacks.pgd(binary_logits_fn, WAVES, np.zeros(len(WAVES), int), key=jax.random.key(0))


def test_too_short_waves_rejected():
    with pytest.raises(ValueError, match="too short"):
        _pgd(x=WAVES[:, :1024])
    with pytest.raises(ValueError, match="too short"):
        _pgd(x=WAVES, min_samples=NUM_SAMPLES + 1)
    with pytest.raises(ValueError, match="multi-scale"):
        attacks.multiscale_carlini_wagner(logits_fn, WAVES[:, :1024], LABELS, target=None,
                                          min_samples=256)


def test_missing_key_and_bad_options_rejected():
    with pytest.raises(ValueError, match="key is required"):
        attacks.pgd(logits_fn, WAVES, LABELS, key=None)
    with pytest.raises(ValueError, match="domain"):
        _pgd(domain="mel")
    with pytest.raises(ValueError, match="decision"):
        _pgd(decision="argmax")
    with pytest.raises(ValueError, match="snr_db"):
        _pgd(snr_db=float("inf"))
    with pytest.raises(ValueError, match="waveforms"):
        _pgd(x=WAVES[:, None, :])


def test_progress_bar_counts_loop_steps_and_changes_nothing(pgd_result, monkeypatch):
    """``progress=`` only drives a bar (one update per host-loop step); results are the same."""
    import tqdm.auto

    updates = []

    class Bar:
        def __init__(self, desc, **kw):
            updates.append(desc)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            updates.append(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    shown = attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, progress="pgd test", **FAST)
    for a, b in zip(jax.tree.leaves(pgd_result), jax.tree.leaves(shown)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert updates[0] == "pgd test"
    if attacks.driver.default_loop() == "host":  # one update per step until all have stopped
        slowest = int(np.asarray(pgd_result.iterations).max())
        assert slowest <= len(updates) - 1 <= min(slowest + 1, FAST["max_iterations"])


def test_pgd_sign_step_moves_by_the_full_step_each_iteration():
    """step="sign": every iterate moves each sample by exactly learning_rate (until the
    projection), where the default Adam steps are at most that."""
    hyper = dict(eps=1.0, learning_rate=1e-4, max_iterations=3)
    res = attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, random_start=False, step="sign",
                      early_stop=False, clip_min=-10.0, clip_max=10.0, **hyper)
    moved = np.abs(np.asarray(res.perturbation))
    assert np.all(moved <= 3 * 1e-4 + 1e-7)
    # Some samples moved by a whole number of steps (1 or 3 times the step size).
    assert np.isclose(moved, 1e-4, atol=1e-7).any() or np.isclose(moved, 3e-4, atol=1e-7).any()
    with pytest.raises(ValueError, match="step"):
        attacks.pgd(logits_fn, WAVES, LABELS, key=KEYS, step="momentum")
