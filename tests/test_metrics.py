"""Properties of the evaluation metrics (SNR, accuracy, lwlrap, ROC-AUC, confusion, frames)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score, roc_auc_score

from jaxaudio.metrics import (
    accuracy,
    confusion_matrix,
    frame_accuracy,
    lwlrap,
    lwlrap_per_class,
    roc_auc_macro,
    snr_db,
)

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- SNR


def _clips(batch=3, n=10000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (batch, n))
    return x, x + 1e-3 * rng.standard_normal((batch, n))


def test_snr_of_a_scaled_copy_is_known():
    x, _ = _clips()
    # x_adv = 1.1 x  ->  ||x|| / ||x - x_adv|| = 10  ->  20 dB
    np.testing.assert_allclose(snr_db(x, 1.1 * x), 20.0, atol=1e-9)


def test_snr_is_invariant_to_scaling_both_signals():
    x, x_adv = _clips()
    np.testing.assert_allclose(snr_db(3.0 * x, 3.0 * x_adv), snr_db(x, x_adv), atol=1e-9)


def test_snr_is_inf_for_identical_signals_and_batch_equals_single():
    x, x_adv = _clips()
    x_adv[1] = x[1]
    snr = snr_db(x, x_adv)
    assert snr.shape == (3,) and snr[1] == np.inf and np.all(np.isfinite(snr[[0, 2]]))
    for i in range(3):
        assert snr_db(x[i], x_adv[i]) == snr[i]


def test_snr_ignores_the_trimmed_edges():
    x, _ = _clips(batch=1)
    x_adv = x.copy()
    x_adv[:, :2048] += 0.1  # only inside the first 2048 samples
    x_adv[:, -2048:] -= 0.1
    assert snr_db(x, x_adv)[0] == np.inf
    assert np.isfinite(snr_db(x, x_adv, trim=0)[0])
    x_adv[:, 2048] += 0.1  # first measured sample
    assert np.isfinite(snr_db(x, x_adv)[0])


def test_snr_of_short_clips_uses_the_whole_clip():
    x = np.linspace(-0.5, 0.5, 4096)
    x_adv = x.copy()
    x_adv[0] += 0.01  # would be trimmed away if 2048 were cut at each end
    assert np.isfinite(snr_db(x, x_adv))
    np.testing.assert_allclose(snr_db(x, x_adv), snr_db(x, x_adv, trim=0))


def test_snr_of_silence_with_noise_is_minus_inf():
    assert snr_db(np.zeros(100), np.full(100, 0.1), trim=0) == -np.inf
    assert snr_db(np.zeros(100), np.zeros(100), trim=0) == np.inf


def test_snr_in_jax_matches_numpy_and_has_finite_gradients():
    x, x_adv = _clips(batch=2, n=5000)
    x_adv[1] = x[1]
    got = jax.jit(snr_db)(jnp.asarray(x, jnp.float32), jnp.asarray(x_adv, jnp.float32))
    assert isinstance(got, jax.Array)
    np.testing.assert_allclose(np.asarray(got)[0], snr_db(x, x_adv)[0], rtol=1e-3)
    assert np.asarray(got)[1] == np.inf
    grad = jax.grad(lambda a: jnp.sum(jnp.where(jnp.isfinite(s := snr_db(jnp.asarray(x), a)),
                                                s, 0.0)))(jnp.asarray(x_adv, jnp.float32))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_snr_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        snr_db(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="trim"):
        snr_db(np.zeros(10), np.zeros(10), trim=-1)
    with pytest.raises(ValueError, match="n > 0"):
        snr_db(np.zeros((2, 0)), np.zeros((2, 0)))


# ----------------------------------------------------------------------------- accuracy


def test_accuracy_from_logits_equals_accuracy_from_predictions():
    logits = RNG.standard_normal((50, 4))
    labels = RNG.integers(0, 4, 50)
    pred = logits.argmax(-1)
    assert accuracy(logits, labels) == accuracy(pred, labels) == np.mean(pred == labels)
    assert accuracy(labels, labels) == 1.0


def test_accuracy_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="logits_or_pred"):
        accuracy(np.zeros((5, 3)), np.zeros(4, int))
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros((0, 3)), np.zeros(0, int))


# ----------------------------------------------------------------------------- lwlrap


def _reference_lwlrap(targets, scores):
    """Per-sample recipe of the DCASE 2019 task 2 baseline (no ties assumed)."""
    precisions, classes = [], []
    for truth, score in zip(targets, scores):
        positives = np.flatnonzero(truth)
        if len(positives) == 0:
            continue
        order = np.argsort(-score)
        rank = np.empty(len(score), int)
        rank[order] = np.arange(1, len(score) + 1)
        hits_at_rank = np.cumsum(truth[order] > 0)  # hits among the top r, r = 1..C
        for c in positives:
            precisions.append(hits_at_rank[rank[c] - 1] / rank[c])
            classes.append(c)
    precisions, classes = np.array(precisions), np.array(classes)
    per_class = np.array([precisions[classes == c].mean() if np.any(classes == c) else 0.0
                          for c in range(targets.shape[1])])
    weights = np.bincount(classes, minlength=targets.shape[1]) / len(classes)
    return float(precisions.mean()), per_class, weights


def test_lwlrap_matches_a_per_sample_reference_implementation():
    targets = (RNG.random((300, 10)) < 0.2).astype(np.float32)
    targets[:5] = 0  # samples without labels are ignored
    scores = RNG.standard_normal((300, 10))
    expected, per_class, weights = _reference_lwlrap(targets, scores)
    assert lwlrap(targets, scores) == pytest.approx(expected, abs=1e-12)
    got_per_class, got_weights = lwlrap_per_class(targets, scores)
    np.testing.assert_allclose(got_per_class, per_class, atol=1e-12)
    np.testing.assert_allclose(got_weights, weights, atol=1e-12)
    assert np.sum(got_per_class * got_weights) == pytest.approx(expected, abs=1e-12)


def test_lwlrap_equals_sklearn_lrap_with_one_positive_per_sample_even_with_ties():
    labels = RNG.integers(0, 6, 200)
    targets = np.eye(6)[labels]
    scores = RNG.integers(0, 3, (200, 6)).astype(float)  # many ties
    assert lwlrap(targets, scores) == pytest.approx(
        label_ranking_average_precision_score(targets, scores), abs=1e-12)


def test_lwlrap_is_one_for_a_perfect_ranking_and_invariant_to_monotone_maps():
    targets = (RNG.random((40, 5)) < 0.4).astype(int)
    targets[:, 0] = 1
    assert lwlrap(targets, targets + 0.1 * RNG.random((40, 5))) == 1.0
    scores = RNG.standard_normal((40, 5))
    assert lwlrap(targets, np.exp(3 * scores)) == pytest.approx(lwlrap(targets, scores))


def test_lwlrap_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        lwlrap(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="0/1"):
        lwlrap(np.full((3, 2), 0.5), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        lwlrap(np.eye(2), np.array([[np.nan, 0], [0, 1]]))
    with pytest.raises(ValueError, match="no positive"):
        lwlrap(np.zeros((3, 2)), np.zeros((3, 2)))


# ----------------------------------------------------------------------------- ROC-AUC


def test_roc_auc_macro_skips_classes_with_one_value():
    targets = (RNG.random((60, 4)) < 0.5).astype(int)
    targets[:, 2] = 0  # never positive: skipped
    scores = RNG.standard_normal((60, 4)) + targets
    expected = np.mean([roc_auc_score(targets[:, k], scores[:, k]) for k in (0, 1, 3)])
    assert roc_auc_macro(targets, scores) == pytest.approx(expected)


def test_roc_auc_macro_accepts_class_indices_and_is_one_when_perfect():
    labels = np.array([0, 1, 2, 0, 1, 2])
    assert roc_auc_macro(labels, np.eye(3)[labels]) == 1.0
    assert np.isnan(roc_auc_macro(np.ones((4, 2)), RNG.random((4, 2))))
    with pytest.raises(ValueError, match="class indices"):
        roc_auc_macro(np.array([0, 3]), np.zeros((2, 3)))


# ----------------------------------------------------------------------------- confusion


def test_confusion_matrix_counts_sum_to_class_sizes():
    true = RNG.integers(0, 5, 100)
    pred = RNG.integers(0, 5, 100)
    cm = confusion_matrix(true, pred, 5)
    assert cm.shape == (5, 5) and cm.sum() == 100
    np.testing.assert_array_equal(cm.sum(1), np.bincount(true, minlength=5))
    np.testing.assert_array_equal(cm.sum(0), np.bincount(pred, minlength=5))
    assert np.trace(cm) / 100 == accuracy(pred, true)


def test_confusion_matrix_rejects_out_of_range_classes():
    with pytest.raises(ValueError, match="pred"):
        confusion_matrix([0, 1], [0, 5], 3)
    with pytest.raises(ValueError, match="true"):
        confusion_matrix([-1, 1], [0, 1], 3)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix([0], [0], 0)


# ----------------------------------------------------------------------------- frames


def test_frame_accuracy_thresholds_and_concatenates_songs():
    probs = [np.array([0.9, 0.2, 0.6]), np.array([0.4])]
    labels = [np.array([1, 0, 0]), np.array([1])]
    assert frame_accuracy(probs, labels) == 0.5
    assert frame_accuracy(probs, labels, threshold=0.3) == 0.75
    with pytest.raises(ValueError, match="same shape"):
        frame_accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="0/1"):
        frame_accuracy(np.zeros(3), np.full(3, 0.5))


# ------------------------------------------------------------------ noise-equivalent p (study 2)

from jaxaudio.metrics import noise_equivalent_p, summarize_noise_equivalent  # noqa: E402


def test_noise_equivalent_p_interpolates_the_first_crossing():
    rates = [0.0, 0.25, 0.5, 0.75]
    curve = [0.9, 0.8, 0.6, 0.5]
    p, status = noise_equivalent_p(rates, curve, 0.7)
    assert status == "crossed"
    assert p == pytest.approx(0.375)  # halfway between 0.8 @ 0.25 and 0.6 @ 0.5
    # Exactly on a measured point.
    assert noise_equivalent_p(rates, curve, 0.8) == (pytest.approx(0.25), "crossed")
    # Non-monotonic curve: the first crossing counts.
    p, _ = noise_equivalent_p([0.0, 0.5, 1.0], [1.0, 0.0, 1.0], 0.5)
    assert p == pytest.approx(0.25)


def test_noise_equivalent_p_edge_cases():
    rates = [0.0, 0.5, 0.9]
    assert noise_equivalent_p(rates, [0.6, 0.5, 0.4], 0.7) == (0.0, "at_or_above_clean")
    assert noise_equivalent_p(rates, [0.9, 0.8, 0.7], 0.5) == (None, "never_below")
    with pytest.raises(ValueError, match="increasing"):
        noise_equivalent_p([0.5, 0.0], [1.0, 0.5], 0.7)
    with pytest.raises(ValueError, match="same length"):
        noise_equivalent_p([0.0, 0.5], [1.0], 0.7)


def test_summary_over_seeds_reports_spread_and_never_crossing_seeds():
    rates = [0.0, 0.5, 1.0]
    curves = np.array([[1.0, 0.5, 0.0], [1.0, 0.6, 0.2], [1.0, 0.9, 0.8]])
    refs = np.array([0.5, 0.4, 0.5])
    s = summarize_noise_equivalent(rates, curves, refs)
    assert s["per_seed"][0] == pytest.approx(0.5)
    assert s["per_seed"][1] == pytest.approx(0.75)
    assert s["per_seed"][2] is None and s["status"][2] == "never_below"
    assert s["defined"] == 2 and s["seeds"] == 3
    assert s["mean"] == pytest.approx(0.625)
    assert s["std"] == pytest.approx(np.std([0.5, 0.75], ddof=1))
    assert "never falls" in s["note"]
    none = summarize_noise_equivalent(rates, curves, np.array([-1.0, -1.0, -1.0]))
    assert none["mean"] is None and none["std"] is None and none["defined"] == 0
    assert "never falls" in none["note"]


from jaxaudio.metrics import label_noise_summary, seed_curves, seed_mean_std  # noqa: E402


def test_seed_curves_and_mean_std_use_the_sample_std_and_zero_for_one_seed():
    values = np.array([[0.9, 0.5], [0.7, 0.1], [0.8, 0.3]])
    c = seed_curves({"accuracy": values})
    assert c["accuracy_mean"] == pytest.approx([0.8, 0.3])
    assert c["accuracy_std"] == pytest.approx(values.std(0, ddof=1).tolist())
    assert c["accuracy_per_seed"] == values.tolist()
    assert seed_curves({"accuracy": values[:1]})["accuracy_std"] == [0.0, 0.0]
    assert seed_mean_std([0.2, 0.4]) == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    assert seed_mean_std([0.2]) == (0.2, 0.0)


@pytest.fixture(scope="module")
def label_noise_inputs():
    rates = [0.0, 0.5, 1.0]
    ce = {"accuracy": np.array([[0.9, 0.6, 0.2], [0.8, 0.5, 0.1]]),
          "lwlrap": np.array([[0.95, 0.7, 0.3], [0.9, 0.6, 0.2]])}
    gce = {m: v + 0.05 for m, v in ce.items()}
    sets = {"noisy": {"accuracy": np.array([0.7, 0.6]), "lwlrap": np.array([0.8, 0.7])},
            "both": {"accuracy": np.array([0.95, 0.85]), "lwlrap": np.array([0.1, 0.1])}}
    return rates, {"ce": ce, "gce": gce}, sets


def test_label_noise_summary_prices_each_set_on_the_reference_curve(label_noise_inputs):
    rates, curves, sets = label_noise_inputs
    out = label_noise_summary(rates, curves, sets, labels_changed=np.array([0, 3, 6]),
                              num_train={"curated": 6, "noisy": 6, "both": 12},
                              curve_info={"ce": {"loss_label": "CE"}, "gce": {"q": 0.7}})
    assert out["corruption"]["loss"] == "ce" and out["corruption"]["loss_label"] == "CE"
    assert out["corruption"]["p"] == rates and out["corruption"]["labels_changed"] == [0, 3, 6]
    assert list(out["robust"]) == ["gce"] and out["robust"]["gce"]["q"] == 0.7
    # Curated only is the p = 0 column of the reference curve.
    assert out["curated"]["accuracy_per_seed"] == [0.9, 0.8]
    assert out["curated"]["accuracy_mean"] == pytest.approx(0.85)
    assert out["noisy"]["num_train"] == 6 and out["both"]["num_train"] == 12
    for m in ("accuracy", "lwlrap"):
        for name in sets:
            expect = summarize_noise_equivalent(rates, curves["ce"][m], sets[name][m])
            assert out["noise_equivalent_p_detail"][m][name] == expect
    # noisy 0.7 on 0.9 -> 0.6 and 0.6 on 0.8 -> 0.5: both 2/3 of the way from p = 0 to 0.5.
    assert out["noise_equivalent_p"]["noisy"] == pytest.approx(1 / 3)
    assert out["noise_equivalent_p"]["both"] == 0.0  # better than clean curated labels
    assert out["robust_gain_accuracy"]["gce"] == pytest.approx([0.05] * 3)


def test_label_noise_summary_other_headline_metric(label_noise_inputs):
    rates, curves, sets = label_noise_inputs
    out = label_noise_summary(rates, curves, sets, labels_changed=[0, 1, 2],
                              num_train={"curated": 1, "noisy": 1, "both": 1},
                              curve_info={"ce": {}, "gce": {}}, headline_metric="lwlrap")
    assert out["noise_equivalent_p"]["both"] is None  # 0.1 is below even p = 1
    assert out["noise_equivalent_p_std"] == {"noisy": pytest.approx(out[
        "noise_equivalent_p_detail"]["lwlrap"]["noisy"]["std"]), "both": None}


# ----------------------------------------------------------------------------- noise control


@pytest.mark.parametrize("level", [-5.0, 10.0, 40.0])
@pytest.mark.parametrize("margin", [0, 16, 2048])
def test_white_noise_is_at_the_requested_snr(level, margin):
    from jaxaudio.metrics import snr_db, white_noise_at

    rng = np.random.default_rng(0)
    waves = (0.01 * rng.standard_normal((3, 300))).astype(np.float32)  # no clipping
    noisy = white_noise_at(waves, level, np.random.default_rng(1), margin=margin)
    assert noisy.shape == waves.shape and noisy.dtype == np.float32
    np.testing.assert_allclose(snr_db(waves, noisy, trim=margin), level, atol=1e-3)


def test_white_noise_is_seeded_clipped_and_spares_silence():
    from jaxaudio.metrics import white_noise_at

    waves = np.zeros((2, 64), np.float32)
    waves[0] = 0.9
    a = white_noise_at(waves, -10.0, np.random.default_rng(3), margin=0)
    b = white_noise_at(waves, -10.0, np.random.default_rng(3), margin=0)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a[1], 0.0)  # silent clip: no noise
    with pytest.raises(ValueError, match="snr_db"):
        white_noise_at(waves, float("inf"), np.random.default_rng(0))
    with pytest.raises(ValueError, match="waves"):
        white_noise_at(np.zeros(5), 0.0, np.random.default_rng(0))


def test_noise_control_accuracy_counts_predictions_on_the_noisy_clips():
    from jaxaudio.metrics import noise_control_accuracy, white_noise_at

    waves = np.full((4, 32), 0.1, np.float32)
    labels = np.array([1, 1, 0, 0])
    seen = []

    def predict(x):  # class 1 where the first sample grew
        seen.append(x)
        return (x[:, 0] > 0.1).astype(int)

    acc = noise_control_accuracy(predict, waves, labels, snr_db=0.0,
                                 rng=np.random.default_rng(5), margin=0)
    expected = white_noise_at(waves, 0.0, np.random.default_rng(5), margin=0)
    np.testing.assert_array_equal(seen[0], expected)
    assert acc == np.mean((expected[:, 0] > 0.1).astype(int) == labels)


# ----------------------------------------------------------------------------- attack runs


def _run(success, iterations, labels, original, adversarial, snr, seconds=1.0):
    return {"success": np.array(success), "iterations": np.array(iterations),
            "labels": np.array(labels), "original_prediction": np.array(original),
            "adversarial_prediction": np.array(adversarial), "snr_db": np.array(snr, float),
            "seconds": np.asarray(seconds)}


def test_finite_stats_ignores_non_finite_values():
    from jaxaudio.metrics import finite_stats

    assert finite_stats([1.0, np.inf, 3.0, np.nan]) == {"mean": 2.0, "std": 1.0, "median": 2.0}
    assert finite_stats([np.inf]) == {"mean": None, "std": None, "median": None}


def test_attack_summary_separates_already_misclassified_clips():
    from jaxaudio.metrics import attack_summary

    # Clip 0 was already wrong (success at 0 iterations, SNR inf), clip 1 flipped at step 3,
    # clip 2 resisted the whole budget of 5 steps.
    a = _run([True, True, False], [0, 3, 5], [0, 1, 2], [1, 1, 2], [1, 0, 2],
             [np.inf, 30.0, 50.0], seconds=2.0)
    b = _run([True, False, False], [0, 5, 5], [0, 1, 2], [1, 1, 2], [1, 1, 2],
             [np.inf, 60.0, 50.0], seconds=1.0)
    e = attack_summary([a, b], targeted=False, max_iterations=5)
    assert e["success_rate"] == pytest.approx(0.5) and e["success_rate_std"] == pytest.approx(
        1 / 6)
    assert e["success_rate_on_clean_correct"] == pytest.approx(0.25)  # 1 of 4 correct clips
    assert e["success_at_0_iterations_rate"] == pytest.approx(2 / 6)
    assert e["accuracy_after"] == pytest.approx(0.5)
    assert e["snr_db_mean"] == 30.0 and e["iterations_median"] == 0.0
    assert e["steps_run_mean"] == pytest.approx((1 + 4 + 5 + 1 + 5 + 5) / 6)
    assert e["seeds"] == 2 and e["n"] == 3 and e["seconds"] == 3.0
    assert "target_hit_rate" not in e
    t = attack_summary([a], targeted=True, max_iterations=5)
    assert t["target_hit_rate"] == t["success_rate"]
    with pytest.raises(ValueError, match="runs"):
        attack_summary([], targeted=False, max_iterations=5)
