"""Tests for jaxaudio.explain: segmentation, the LIME bridge, occlusion and integrated gradients.

The workhorse is a linear model over per-component means: with component c's mean m_c and the
baseline's b, switching c off changes the output by exactly w_c (m_c - b), so every explainer's
weights have a known answer.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lime import lime_base

from jaxaudio import explain as ex

SHAPE = (16, 20)  # (n_bins, n_frames): 5 x 4 components of 4 x 4 cells each
MASKS = ex.component_masks(SHAPE)
NUM_COMPONENTS = 20


def _linear_problem():
    rng = np.random.default_rng(0)
    # Component c holds values around level_c; the spectrogram's mean is exactly 1.5.
    level = np.where(np.arange(NUM_COMPONENTS) % 2 == 0, 1.0, 2.0)
    noise = rng.normal(0.0, 0.05, SHAPE)
    for c in range(NUM_COMPONENTS):  # zero-mean noise inside every component
        m = MASKS[c] > 0
        noise[m] -= noise[m].mean()
    spec = (np.einsum("c,cft->ft", level, MASKS) + noise).astype(np.float32)
    effect = rng.permutation(np.linspace(-0.2, 0.2, NUM_COMPONENTS))  # true effect of each component
    weight = effect / (level - 1.5)  # so that weight_c * (m_c - mean) == effect_c
    return spec, effect, weight.astype(np.float32)


SPEC, TRUE_EFFECT, TRUE_WEIGHT = _linear_problem()
AREA = MASKS.sum(axis=(1, 2))


def linear_predict(specs):
    """(batch, 16, 20) -> (batch, 2): [1 - p, p] with p linear in the component means."""
    means = ex.component_sums(specs, MASKS) / AREA
    p = 0.5 + means @ TRUE_WEIGHT - TRUE_WEIGHT @ np.full(NUM_COMPONENTS, 1.5, np.float32)
    return jnp.stack([1.0 - p, p], axis=-1)


def sigmoid_logit(specs):
    """One-output detector (a logit) over component means."""
    means = ex.component_sums(specs, MASKS) / AREA
    return (means - 1.5) @ (4.0 * TRUE_WEIGHT)


# --------------------------------------------------------------------------- segmentation


def test_masks_partition_and_order():
    masks = ex.component_masks((17, 23), n_temporal=5, n_frequency=4)
    assert masks.shape == (20, 17, 23) and masks.dtype == np.float32
    np.testing.assert_array_equal(masks.sum(0), 1.0)
    assert set(np.unique(masks)) == {0.0, 1.0}
    # sizes follow np.array_split; component = t * n_frequency + f
    t_sizes = [len(a) for a in np.array_split(np.arange(23), 5)]
    f_sizes = [len(a) for a in np.array_split(np.arange(17), 4)]
    slices = ex.component_slices((17, 23))
    for c in range(20):
        t, f = ex.component_position(c)
        assert ex.component_index(t, f) == c
        fs, ts = slices[c]
        assert (fs.stop - fs.start, ts.stop - ts.start) == (f_sizes[f], t_sizes[t])
        block = np.zeros((17, 23), np.float32)
        block[fs, ts] = 1
        np.testing.assert_array_equal(masks[c], block)
    assert ex.component_position(1) == (0, 1)  # second component: first segment, second band
    np.testing.assert_array_equal(ex.component_map((17, 23)), masks.argmax(0))


@pytest.mark.parametrize("shape,nt,nf", [((16, 4), 5, 4), ((3, 20), 5, 4), ((16, 20), 0, 4)])
def test_segmentation_finer_than_spectrogram_raises(shape, nt, nf):
    with pytest.raises(ValueError):
        ex.component_masks(shape, n_temporal=nt, n_frequency=nf)


def test_compose_identity_baseline_and_jit():
    base = ex.baseline_value(SPEC, "mean")
    z = np.stack([np.ones(20), np.zeros(20), (np.arange(20) % 3 == 0)]).astype(np.float32)
    out = jax.jit(ex.compose)(SPEC, MASKS, base, z)
    assert out.shape == (3,) + SHAPE
    np.testing.assert_array_equal(out[0], SPEC)
    np.testing.assert_allclose(out[1], np.full(SHAPE, SPEC.mean()), rtol=1e-6)
    keep = np.einsum("c,cft->ft", z[2], MASKS) > 0
    np.testing.assert_array_equal(np.asarray(out[2])[keep], SPEC[keep])
    np.testing.assert_allclose(np.asarray(out[2])[~keep], SPEC.mean(), rtol=1e-6)


def test_baselines():
    assert float(ex.baseline_value(SPEC, "zero")) == 0.0
    assert float(ex.baseline_value(SPEC, "min")) == SPEC.min()
    np.testing.assert_allclose(float(ex.baseline_value(SPEC, "mean")), SPEC.mean(), rtol=1e-6)
    key = jax.random.key(3)
    shuffled = np.asarray(ex.baseline_value(SPEC, "shuffle", key=key))
    assert shuffled.shape == SHAPE and not np.array_equal(shuffled, SPEC)
    np.testing.assert_array_equal(np.sort(shuffled, None), np.sort(SPEC, None))
    np.testing.assert_array_equal(shuffled, ex.baseline_value(SPEC, "shuffle", key=key))
    with pytest.raises(ValueError, match="zero"):
        ex.baseline_value(SPEC, "median")
    with pytest.raises(ValueError, match="key"):
        ex.baseline_value(SPEC, "shuffle")
    with pytest.raises(ValueError):
        ex.baseline_value(SPEC, np.zeros((3, 3)))


def test_component_norms():
    x = np.zeros(SHAPE, np.float32)
    x[:4, :4] = 1.0  # exactly component 0 (t=0, f=0)
    np.testing.assert_allclose(ex.component_norms(x, MASKS), np.eye(20)[0] * 4.0)
    np.testing.assert_allclose(ex.component_norms(x, MASKS, ord=1), np.eye(20)[0] * 16.0)


# --------------------------------------------------------------------------- LIME bridge


@pytest.fixture(scope="module")
def lime_exp():
    return ex.explain(linear_predict, SPEC, key=jax.random.key(0), num_samples=1024,
                      labels=(1, 0), chunk_size=384)


def test_lime_recovers_linear_model(lime_exp):
    exp = lime_exp
    assert exp.weights.shape == (2, 20) and exp.labels == (1, 0) and exp.method == "lime"
    np.testing.assert_array_equal(exp.ranking(1), np.argsort(-TRUE_EFFECT))
    np.testing.assert_allclose(exp.weights_for(1), TRUE_EFFECT, atol=0.01)
    np.testing.assert_allclose(exp.weights_for(0), -exp.weights_for(1), atol=1e-9)
    assert np.all(exp.score > 0.999)
    np.testing.assert_allclose(exp.reference_prediction, [0.5, 0.5], atol=1e-5)
    np.testing.assert_array_equal(exp.top_k(1, 3), np.argsort(-TRUE_EFFECT)[:3])
    pos = exp.positive_components(1)
    assert set(pos.tolist()) == set(np.flatnonzero(TRUE_EFFECT > 0).tolist())
    assert list(pos) == list(exp.ranking(1)[: len(pos)])
    json.dumps(exp.to_dict())
    assert exp.weight_map(1).shape == SHAPE


def test_lime_matches_plain_limebase(lime_exp):
    exp = lime_exp
    data = exp.samples.astype(np.int64)
    assert exp.samples.shape == (1024, 20)
    np.testing.assert_array_equal(exp.samples[0], 1)  # first sample is the input
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(data, data[0:1], metric="cosine").ravel()
    kernel = lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2))  # noqa: E731  (lime_image's kernel)
    base = lime_base.LimeBase(kernel, verbose=False, random_state=0)
    for row, label in enumerate(exp.labels):
        intercept, pairs, score, local = base.explain_instance_with_data(
            data, exp.predictions, distances, label, 100000)
        dense = np.zeros(20)
        for c, w in pairs:
            dense[c] = w
        np.testing.assert_allclose(exp.weights[row], dense, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(exp.intercept[row], intercept, rtol=1e-10)
        np.testing.assert_allclose(exp.score[row], score, rtol=1e-10)
        np.testing.assert_allclose(exp.local_prediction[row], local[0], rtol=1e-10)
        assert exp.local_exp(label)[0][0] == pairs[0][0]
    # predictions really are the model on the composed spectrograms
    composed = ex.compose(SPEC, MASKS, SPEC.mean(), exp.samples[:50])
    np.testing.assert_allclose(exp.predictions[:50], linear_predict(composed), atol=1e-5)


def test_lime_same_key_identical_different_key_differs(lime_exp):
    again = ex.explain(linear_predict, SPEC, key=jax.random.key(0), num_samples=1024,
                       labels=(1, 0), chunk_size=384)
    np.testing.assert_array_equal(again.samples, lime_exp.samples)
    np.testing.assert_array_equal(again.weights, lime_exp.weights)
    other = ex.explain(linear_predict, SPEC, key=jax.random.key(1), num_samples=1024,
                       labels=(1, 0), chunk_size=384)
    assert not np.array_equal(other.samples, lime_exp.samples)
    np.testing.assert_array_equal(other.samples[0], 1)
    # chunking does not change the result
    unchunked = ex.explain(linear_predict, SPEC, key=jax.random.key(0), num_samples=1024,
                           labels=(1, 0), chunk_size=4096)
    np.testing.assert_allclose(unchunked.weights, lime_exp.weights, rtol=1e-6, atol=1e-9)


def test_bridge_agrees_with_plain_lime_image(lime_exp):
    """End to end against the unmodified ``lime.lime_image.LimeImageExplainer`` (its own
    sampling, our rectangles as its segmentation, the mean as its hide colour): both recover
    the known component effects of the linear model and agree with each other."""
    import contextlib
    import io

    from lime import lime_image

    def classifier_fn(images):  # lime_image hands (batch, H, W, 3) RGB copies
        return np.asarray(linear_predict(jnp.asarray(images[..., 0], jnp.float32)), np.float64)

    explainer = lime_image.LimeImageExplainer(random_state=0)
    with contextlib.redirect_stderr(io.StringIO()):  # lime_image's own tqdm bar
        plain = explainer.explain_instance(
            SPEC.astype(np.float64), classifier_fn, labels=(1,), top_labels=None,
            hide_color=float(SPEC.mean()), num_samples=1024, batch_size=256,
            segmentation_fn=lambda image: ex.component_map(SHAPE), random_seed=0)
    plain_weights = np.zeros(NUM_COMPONENTS)
    for c, w in plain.local_exp[1]:
        plain_weights[c] = w
    ours = lime_exp.weights_for(1)
    truth_order = np.argsort(-TRUE_EFFECT)
    np.testing.assert_array_equal(np.argsort(-plain_weights), truth_order)
    np.testing.assert_array_equal(lime_exp.ranking(1), truth_order)
    np.testing.assert_allclose(plain_weights, TRUE_EFFECT, atol=0.01)
    np.testing.assert_allclose(ours, plain_weights, atol=0.01)
    assert plain.score > 0.999 and lime_exp.score[0] > 0.999  # lime_image keeps the last label's R²


def test_binary_detector_default_label_and_baselines():
    predict = ex.binary_to_two_class(sigmoid_logit, from_logits=True)
    assert predict == ex.binary_to_two_class(sigmoid_logit, from_logits=True)  # shares compiled code
    spec = SPEC + 0.3 * MASKS[int(np.argmax(TRUE_EFFECT))]  # push p above 0.5
    exp = ex.explain(predict, spec, key=jax.random.key(2), num_samples=512)
    assert exp.labels == (1,)  # default: the top label of the unperturbed input
    assert exp.ranking(1)[0] == int(np.argmax(TRUE_EFFECT))
    for kind in ("zero", "min", "shuffle", 1.5):
        e = ex.explain(predict, spec, key=jax.random.key(2), num_samples=256, baseline=kind, labels=(0, 1))
        assert e.weights.shape == (2, 20) and np.all(np.isfinite(e.weights))
        assert e.baseline == (kind if isinstance(kind, str) else "custom")


def _params_predict(weight, specs):
    means = ex.component_sums(specs, MASKS) / AREA
    return (means - 1.5) @ weight


def test_partial_predict_fn_traces_variables():
    """A jax.tree_util.Partial(apply, variables) is traced: new variables reuse the program."""
    traced = ex.lime_bridge._predict_chunk.traced
    before = traced._cache_size()
    exps = []
    for scale in (4.0, 2.0):
        predict = ex.binary_to_two_class(
            jax.tree_util.Partial(_params_predict, jnp.asarray(scale * TRUE_WEIGHT)), from_logits=True)
        exps.append(ex.explain(predict, SPEC, key=jax.random.key(7), num_samples=128, labels=1))
    assert traced._cache_size() == before + 1
    assert not np.allclose(exps[0].weights, exps[1].weights)
    plain = ex.explain(ex.binary_to_two_class(sigmoid_logit, from_logits=True), SPEC,
                       key=jax.random.key(7), num_samples=128, labels=1)
    np.testing.assert_allclose(exps[0].weights, plain.weights, rtol=1e-5, atol=1e-8)
    ig = ex.integrated_gradients(predict, SPEC, labels=1, steps=8)
    assert ig.ranking(1)[0] == int(np.argmax(TRUE_EFFECT))


def test_explain_waveform():
    def to_spec(wave):  # a toy front-end: frames of 16 samples as columns
        return wave.reshape(20, 16).T

    wave = np.asarray(SPEC.T.reshape(-1))
    a = ex.explain_waveform(linear_predict, to_spec, wave, key=jax.random.key(5), num_samples=256, labels=1)
    b = ex.explain(linear_predict, SPEC, key=jax.random.key(5), num_samples=256, labels=1)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.spec, SPEC)
    with pytest.raises(ValueError, match="NaN"):
        ex.explain_waveform(linear_predict, to_spec, np.full(320, np.nan), key=jax.random.key(5))


def test_topk_stability():
    result = ex.topk_stability(linear_predict, SPEC, key=jax.random.key(4), sample_sizes=(64, 128),
                               k=3, repeats=2, label=1)
    json.dumps(result)
    assert result["label"] == 1 and result["reference_size"] == 128
    assert result["reference_top_k"] == sorted(np.argsort(-TRUE_EFFECT)[:3].tolist())
    assert len(result["mean_overlap"]) == 2
    assert all(0.0 <= v <= 1.0 for v in result["mean_overlap"] + result["mean_jaccard"])
    assert result["mean_overlap"][-1] == 1.0  # a noise-free linear model is easy


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_samples=1), "num_samples"),
        (dict(baseline="median"), "baseline"),
        (dict(labels=(5,)), "label"),
        (dict(n_temporal=21), "n_temporal"),
        (dict(n_frequency=17), "n_frequency"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_explain_errors(kwargs, match):
    args = dict(key=jax.random.key(0), num_samples=16)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ex.explain(linear_predict, SPEC, **args)


def test_explain_rejects_bad_inputs():
    bad = SPEC.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ex.explain(linear_predict, bad, key=jax.random.key(0), num_samples=16)
    with pytest.raises(ValueError, match="n_bins, n_frames"):
        ex.explain(linear_predict, SPEC[None], key=jax.random.key(0), num_samples=16)
    with pytest.raises(ValueError, match="binary_to_two_class"):
        ex.explain(lambda s: linear_predict(s)[:, 1], SPEC, key=jax.random.key(0), num_samples=16)


# --------------------------------------------------------------------------- other explainers


def test_occlusion_recovers_linear_effects():
    exp = ex.occlusion(linear_predict, SPEC, labels=(1, 0))
    assert exp.method == "occlusion" and exp.weights.shape == (2, 20)
    np.testing.assert_allclose(exp.weights_for(1), TRUE_EFFECT, atol=1e-5)
    np.testing.assert_allclose(exp.weights_for(0), -TRUE_EFFECT, atol=1e-5)
    assert exp.ranking(1)[0] == int(np.argmax(TRUE_EFFECT))


def test_integrated_gradients_linear_and_completeness():
    exp = ex.integrated_gradients(linear_predict, SPEC, labels=(1,), steps=4)
    assert exp.method == "integrated_gradients"
    np.testing.assert_allclose(exp.weights_for(1), TRUE_EFFECT, atol=1e-5)
    # non-linear model: completeness sum(IG) = p(x) - p(baseline), up to quadrature error
    predict = ex.binary_to_two_class(sigmoid_logit, from_logits=True)
    ig = ex.integrated_gradients(predict, SPEC, labels=(0, 1), steps=32, baseline="zero")
    assert np.all(np.abs(ig.info["completeness_gap"]) < 1e-3)
    assert ig.ranking(1)[0] == ex.occlusion(predict, SPEC, labels=1, baseline="zero").ranking(1)[0]
    with pytest.raises(ValueError, match="rule"):
        ex.integrated_gradients(linear_predict, SPEC, rule="simpson")
    with pytest.raises(ValueError, match="steps"):
        ex.integrated_gradients(linear_predict, SPEC, steps=0)


# --------------------------------------------------------------------------- several devices

_MULTI_DEVICE = """
import json, jax, numpy as np
import tests.test_explain as t
from jaxaudio import explain as ex
assert len(jax.devices()) == 2
e = ex.explain(t.linear_predict, t.SPEC, key=jax.random.key(0), num_samples=256, labels=1, chunk_size=64)
print(json.dumps(e.weights.tolist()))
"""


def test_sharded_over_two_devices_matches_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _MULTI_DEVICE], env=env, cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    sharded = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    single = ex.explain(linear_predict, SPEC, key=jax.random.key(0), num_samples=256, labels=1, chunk_size=64)
    np.testing.assert_allclose(sharded, single.weights, rtol=1e-5, atol=1e-7)


def test_batched_occlusion_and_ig_equal_one_at_a_time():
    from jaxaudio.explain.attribution import integrated_gradients_batch, occlusion_batch

    rng = np.random.default_rng(3)
    w = jnp.asarray(rng.normal(size=(8 * 10, 3)).astype(np.float32))

    def predict(x):
        return jax.nn.softmax(jnp.tanh(x.reshape(x.shape[0], -1)) @ w)

    specs = rng.normal(size=(5, 8, 10)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])
    occ = occlusion_batch(predict, specs, labels, chunk_size=4)
    ig = integrated_gradients_batch(predict, specs, labels, steps=3, chunk_examples=2)
    for i in range(5):
        lab = int(labels[i])
        np.testing.assert_allclose(occ[i], ex.occlusion(predict, specs[i], labels=lab)
                                   .weights_for(lab), rtol=0, atol=1e-6)
        np.testing.assert_allclose(ig[i], ex.integrated_gradients(predict, specs[i], labels=lab,
                                                                  steps=3).weights_for(lab),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        occlusion_batch(predict, specs, labels[:2])


def test_binary_detector_threshold_moves_the_decision_only():
    logits = jnp.array([-0.2, 0.0, 0.03, 0.05, 1.0])  # p = 0.45, 0.5, 0.5075, 0.5125, 0.73
    plain = np.asarray(ex.binary_to_two_class(lambda x: x, from_logits=True)(logits))
    at_051 = np.asarray(ex.binary_to_two_class(lambda x: x, from_logits=True, threshold=0.51)(logits))
    probs = np.asarray(ex.binary_to_two_class(lambda x: x, threshold=0.51)(jax.nn.sigmoid(logits)))
    np.testing.assert_array_equal(plain.argmax(-1), [0, 0, 1, 1, 1])  # 0.5 decides ties as 0
    np.testing.assert_array_equal(at_051.argmax(-1), [0, 0, 0, 1, 1])  # p > 0.51 is class 1
    np.testing.assert_allclose(probs, at_051, atol=1e-6)
    assert np.all(np.diff(at_051[:, 1]) > 0)  # monotone in p
    np.testing.assert_allclose(at_051.sum(-1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="threshold"):
        ex.binary_to_two_class(lambda x: x, threshold=1.0)
