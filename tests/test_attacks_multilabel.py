"""Multi-label attack goals on a tiny differentiable tagger: success rule per goal, batch
equals single, the L∞ bound, input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio import attacks
from jaxaudio.attacks.multilabel import goal_targets

SAMPLES, TAGS = 4096, 4
_T = np.arange(SAMPLES) / 16000
_BASIS = jnp.asarray(np.stack([np.sin(2 * np.pi * f * _T) for f in (300, 700, 1500, 3100)]),
                     jnp.float32)


@jax.jit
def tagger(x):
    """Tag k is on when the waveform correlates with sinusoid k (scaled so a 1e-2 change of
    amplitude moves a logit by about 2)."""
    return 400.0 * (x @ _BASIS.T) / SAMPLES - 1.0


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    amps = np.array([[0.03, 0.03, 0, 0], [0.03, 0, 0.03, 0], [0, 0.03, 0, 0.03]], np.float32)
    x = amps @ np.asarray(_BASIS) + 0.001 * rng.standard_normal((3, SAMPLES))
    x = np.asarray(x, np.float32)
    tags = (np.asarray(tagger(x)) > 0).astype(np.int32)
    assert tags.tolist() == (amps > 0).astype(int).tolist()  # the clean tag sets
    return x, tags


def _pred(res):
    return (np.asarray(res.logits) > 0).astype(np.int32)


@pytest.mark.parametrize("attack", ["pgd", "cw"])
def test_every_goal_succeeds_by_its_own_rule(clips, attack):
    x, tags = clips
    key = jax.random.key(1)
    common = dict(attack=attack, key=key, eps=0.05, clip_eps=0.05, alpha=50.0,
                  learning_rate=2e-3, max_iterations=200)
    remove = np.argmax(tags, 1)                      # a present tag
    add = np.argmin(tags, 1)                         # an absent tag
    target = 1 - tags
    cases = {"remove": dict(tag=remove), "add": dict(tag=add),
             "replace": dict(target_tags=target), "change": {}}
    for goal, extra in cases.items():
        res = attacks.multilabel(tagger, x, tags, goal=goal, **common, **extra)
        pred = _pred(res)
        np.testing.assert_array_equal(np.asarray(res.adversarial_prediction), pred)
        np.testing.assert_array_equal(np.asarray(res.original_prediction), tags)
        rule = {"remove": pred[np.arange(3), remove] == 0,
                "add": pred[np.arange(3), add] == 1,
                "replace": np.all(pred == target, 1),
                "change": np.any(pred != tags, 1)}[goal]
        np.testing.assert_array_equal(np.asarray(res.success), rule)
        assert np.all(np.asarray(res.success)), (goal, attack)
        assert np.all(np.isfinite(np.asarray(res.snr_db)))
        assert np.all(np.asarray(res.iterations) >= 1)
        bound = 0.05 + 1e-7
        assert float(np.max(np.abs(np.asarray(res.perturbation)))) <= bound


def test_a_tight_budget_fails_and_says_so(clips):
    x, tags = clips
    res = attacks.multilabel(tagger, x, tags, goal="replace", target_tags=1 - tags,
                             key=jax.random.key(0), eps=1e-5, learning_rate=1e-6,
                             max_iterations=5)
    assert not np.any(np.asarray(res.success))
    assert np.all(np.asarray(res.iterations) == 5)
    assert float(np.max(np.abs(np.asarray(res.perturbation)))) <= 1e-5 + 1e-8


def test_batch_equals_examples_run_alone(clips):
    x, tags = clips
    keys = jax.random.split(jax.random.key(3), 3)
    kw = dict(goal="remove", eps=0.02, learning_rate=2e-3, max_iterations=60)
    tag = np.argmax(tags, 1)
    batch = attacks.multilabel(tagger, x, tags, tag=tag, key=keys, **kw)
    for i in range(3):
        one = attacks.multilabel(tagger, x[i:i + 1], tags[i:i + 1], tag=tag[i:i + 1],
                                 key=keys[i:i + 1], **kw)
        np.testing.assert_allclose(np.asarray(one.adversarial[0]),
                                   np.asarray(batch.adversarial[i]), atol=1e-7)
        assert int(one.iterations[0]) == int(batch.iterations[i])


def test_goal_targets_and_bad_goals(clips):
    x, tags = clips
    t = goal_targets(tags[:1], goal="remove", tag=0)[0]
    assert t.tolist() == [0, -1, -1, -1]
    assert goal_targets(tags, goal="change").min() == -1
    with pytest.raises(ValueError, match="already absent"):
        goal_targets(tags, goal="remove", tag=3)
    with pytest.raises(ValueError, match="already present"):
        goal_targets(tags[:1], goal="add", tag=0)
    with pytest.raises(ValueError, match="equal the tag set"):
        goal_targets(tags, goal="replace", target_tags=tags)
    with pytest.raises(ValueError, match="needs tag"):
        goal_targets(tags, goal="add")
    with pytest.raises(ValueError, match="goal must be"):
        goal_targets(tags, goal="swap")
    with pytest.raises(ValueError, match="columns"):
        attacks.multilabel(tagger, x, np.zeros((3, 5), int), goal="change",
                           key=jax.random.key(0))
    with pytest.raises(ValueError, match="key is required"):
        attacks.multilabel(tagger, x, tags, goal="change")
    with pytest.raises(ValueError, match="attack must be"):
        attacks.multilabel(tagger, x, tags, goal="change", attack="fgsm")


# ------------------------------------------------------------------ study 1's section
def test_study_section_runs_a_goal_where_it_applies_and_reports_it(clips):
    import types

    from jaxaudio.report.attacks import multilabel_section
    from jaxaudio.studies import instrument_attacks as ia
    from jaxaudio.studies import instrument_multilabel as ml

    x, tags = clips
    aset = {"waves": x, "tags": tags, "valid_remove": np.array([True, False, True]),
            "remove_tag": np.argmax(tags, 1)}
    clf = types.SimpleNamespace(logits_fn=tagger)
    out = ml.ml_attack_stage(None, attack_set=aset, clf=clf, goal="remove", attack="pgd",
                             kwargs={"eps": 0.05, "learning_rate": 2e-3, "max_iterations": 100},
                             key=0)
    np.testing.assert_array_equal(out["clip_index"], [0, 2])
    assert out["success"].all() and np.isfinite(out["snr_db"]).all()
    summary = ml.ml_summary(out, max_iterations=100)
    assert summary["success_rate"] == 1.0 and summary["num_clips"] == 2
    none = ml.ml_attack_stage(None, attack_set=dict(aset, valid_remove=np.zeros(3, bool)),
                              clf=clf, goal="remove", attack="pgd", kwargs={}, key=0)
    assert ml.ml_summary(none, max_iterations=1)["success_rate"] is None
    html = multilabel_section({"multilabel": {
        "goals": {"remove/pgd": dict(summary, goal="remove", attack="pgd")},
        "tagger": {"test_lwlrap": 0.5, "test_roc_auc": 0.7, "num_test_clips": 10,
                   "excerpt_tag_exact_match": 0.3}, "num_clips": 2, "mixed_share": 0.5}})
    assert "remove" in html and "1.000" in html
    assert multilabel_section({}) == ""
    with pytest.raises(ValueError, match="--multilabel"):
        ia.run(out="unused", preset="smoke", data="somewhere", multilabel=True)
