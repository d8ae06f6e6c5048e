"""Bootstrap ensembles: resample sizes, the mean-logit ensemble, fooling rates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio.training import ensemble


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

    from jaxaudio.training import losses

    loss = losses.get_loss("cross_entropy")
    logits = jnp.asarray([[1.0, -2.0, 0.5]])
    grad = jax.grad(lambda z: loss(z, jnp.zeros((1, 3))))(logits)
    assert float(loss(logits, jnp.zeros((1, 3)))) == 0.0 and not np.any(np.asarray(grad))


# Transfer tables, member folders and the defence figures


def _sign(w):  # class 0 when the clip's mean is positive, else class 1
    m = jnp.mean(w, axis=-1) * 1e3
    return jnp.stack([m, -m], axis=-1)


def _flip(w):  # the opposite decision
    return -_sign(w)


def test_transfer_matrix_and_summary():
    clean = np.full((4, 16), 0.1, np.float32)
    labels = np.zeros(4, int)
    fns = [_sign, _sign, _flip]  # two members that agree, a source that is always wrong
    correct = ensemble.clean_correct(fns, clean, labels)
    np.testing.assert_array_equal(correct[0], [True] * 4)
    assert not correct[2].any()
    adv = [-clean, clean.copy(), -clean]
    success = [np.array([1, 1, 0, 0], bool), np.zeros(4, bool), np.ones(4, bool)]
    matrix = ensemble.transfer_matrix(fns, adv, success, labels, correct=correct)
    assert [matrix[i][i] for i in range(3)] == [None] * 3
    assert matrix[0][1] == 1.0  # member 0's two adversaries fool member 1
    assert matrix[1][0] is None  # member 1 has no successful adversary
    assert matrix[0][2] is None and matrix[2][0] is None  # the source is never right
    summary = ensemble.transfer_summary(matrix, 2)
    assert summary == {"member_to_member_mean": 1.0, "source_to_member_mean": None}
    table = ensemble.transfer_table(fns, adv, success, clean, labels, num_members=2,
                                    attack="pgd")
    assert table["matrix"] == matrix and table["networks"] == ["member 0", "member 1", "source"]
    assert table["member_clean_accuracy"] == [1.0, 1.0]
    assert table["member_pgd_success"] == [0.5, 0.0]
    assert table["member_to_member_mean"] == 1.0
    with pytest.raises(ValueError, match="per network"):
        ensemble.transfer_matrix(fns, adv[:2], success, labels, correct=correct)


def test_transfer_summary_means_over_members_and_sources():
    matrix = [[None, 0.5, 0.0], [1.0, None, None], [0.25, 0.75, None]]
    assert ensemble.transfer_summary(matrix, 2) == {"member_to_member_mean": 0.75,
                                                    "source_to_member_mean": 0.5}
    assert ensemble.transfer_summary([[None]], 1)["member_to_member_mean"] is None


def test_members_save_and_load(tmp_path):
    from jaxaudio.training import tasks

    p = tasks.preset("instruments", "smoke")
    nets = [tasks.new_classifier("instruments", p, seed=s) for s in (0, 1)]
    paths = ensemble.save_members(nets, tmp_path)
    assert [q.name for q in paths] == ["member_0", "member_1"]
    loaded = ensemble.load_members(tmp_path, 2)
    assert [m.fingerprint() for m in loaded] == [m.fingerprint() for m in nets]


def test_defence_and_source_accuracies():
    from jaxaudio.attacks import robustness
    from jaxaudio.data.audio import pcm16_samples

    clean = np.full((4, 16), 0.1, np.float32)
    labels = np.zeros(4, int)
    half = clean.copy()
    half[:2] *= -1  # two of the four transferred adversaries cross the sign
    transferred = {"adversarial_pcm": pcm16_samples(half)}
    whitebox = {"success": np.ones(4, bool), "iterations": np.array([1, 2, 3, 4]),
                "snr_db": np.array([10.0, 20.0, 30.0, 40.0]), "labels": labels,
                "original_prediction": labels, "adversarial_prediction": np.ones(4, int),
                "seconds": np.asarray(1.0)}
    row = robustness.defence_accuracies(
        _sign, clean, labels, transferred={"pgd": transferred},
        whitebox={"fgsm": dict(whitebox, adversarial_prediction=np.array([0, 0, 0, 1])),
                  "pgd": whitebox}, whitebox_pgd=whitebox, max_iterations=8)
    assert row["clean_accuracy"] == 1.0 and row["transferred_pgd_accuracy"] == 0.5
    assert row["whitebox_fgsm_accuracy"] == 0.75 and row["whitebox_pgd_accuracy"] == 0.0
    assert row["whitebox_pgd_snr_db_mean"] == pytest.approx(25.0)
    assert row["whitebox_pgd_iterations_median"] == pytest.approx(2.5)
    clips = {"clean_prediction": np.array([0, 0, 1, 0]), "labels": labels}
    assert robustness.source_summary(clips, {"pgd": whitebox}) == {"clean_accuracy": 0.75,
                                                                     "pgd_accuracy": 0.0}


def test_transfer_runs_and_ensemble_defence_on_toy_networks():
    from jaxaudio import attacks
    from jaxaudio.attacks import evaluation, robustness

    waves = np.full((2, 2048), 0.001, np.float32)
    labels = np.zeros(2, int)
    pgd = dict(eps=0.01, learning_rate=0.005, max_iterations=3, min_samples=1024)
    source = robustness.pgd_run(_sign, waves, labels, kwargs=pgd, key=0, keep_adversarial=True)
    assert source["success"].all()  # one step across the sign
    table = robustness.transfer_runs([_sign, _flip], _sign, source, waves, labels,
                                     pgd_kwargs=pgd, key=1)
    assert table["networks"] == ["member 0", "member 1", "source"]
    assert table["member_clean_accuracy"] == [1.0, 0.0]
    assert table["matrix"][2][0] == 1.0  # the source's adversaries fool its twin member 0
    fgsm = evaluation.run_on_set(attacks.fgsm, _sign, waves, labels, keep_adversarial=True,
                                 eps=0.01)
    row = robustness.ensemble_defence([_sign], waves, labels, fgsm_source=fgsm,
                                      pgd_source=source, fgsm_eps=0.01, pgd_kwargs=pgd, key=2)
    assert row["clean_accuracy"] == 1.0
    assert row["transferred_pgd_accuracy"] == 0.0 and row["whitebox_pgd_accuracy"] == 0.0
