"""The one attack registry (jaxaudio.attacks.registry): every table that names an attack is
generated from it, names and aliases resolve, unknown names and options are refused."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio import attacks
from jaxaudio.attacks import registry
from jaxaudio.attacks.containers import Goal

SAMPLES = 2048


def _logits(x):
    w = jnp.asarray(np.random.default_rng(0).normal(size=(SAMPLES, 3)) / np.sqrt(SAMPLES),
                    jnp.float32)
    return 30.0 * x @ w


logits_fn = jax.jit(_logits)
X = np.asarray(0.2 * np.random.default_rng(1).standard_normal((2, SAMPLES)), np.float32)
LABELS = np.asarray(jnp.argmax(logits_fn(X), -1))


def _attack_subparser():
    from jaxaudio.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["attack"]


def test_cli_attack_choices_come_from_the_registry():
    from jaxaudio.cli import attack_files

    assert attack_files.ATTACKS == registry.cli_names()
    assert set(attack_files.ATTACKS) == {"fgsm", "pgd", "cw", "mscw", "psy"}
    action = next(a for a in _attack_subparser()._actions if "--attack" in a.option_strings)
    assert tuple(action.choices) == registry.cli_names()
    for short in registry.cli_names():
        assert registry.get(short).cli


def test_package_all_is_generated_from_the_registry():
    functions = registry.functions()
    assert tuple(functions) == registry.names()
    assert list(attacks.__all__[:len(functions)]) == list(registry.names())
    for name, fn in functions.items():
        assert getattr(attacks, name) is fn
        assert attacks.get(name).function is fn
    # The old duplicate tables are gone.
    for gone in ("BY_NAME", "FACTORIES", "core"):
        assert not hasattr(attacks, gone)
    assert not hasattr(attacks.specs, "FACTORIES")


@pytest.mark.parametrize("alias, canonical", [
    ("cw", "carlini_wagner"), ("mscw", "multiscale_carlini_wagner"),
    ("multiscale_cw", "multiscale_carlini_wagner"), ("psy", "psychoacoustic"),
    ("pgd_linf", "pgd"), ("pgd", "pgd")])
def test_aliases_resolve(alias, canonical):
    assert registry.get(alias).name == canonical
    assert registry.aliases()[alias] == canonical
    assert registry.get(alias) is registry.get(canonical)


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown attack 'deepfool'") as err:
        registry.get("deepfool")
    for name in registry.names():
        assert name in str(err.value)
    with pytest.raises(ValueError, match="carlini_wagner"):
        attacks.make_attack("deepfool", logits_fn)


def test_defaults_are_the_signatures_and_validate_checks_them():
    assert registry.get("pgd").defaults["eps"] == 5e-4
    assert registry.get("mscw").defaults["alpha"] == 10.0
    assert registry.get("psy").defaults["check_every"] == 20
    hyper = registry.validate("cw", alpha=0.5)
    assert hyper == dict(clip_eps=0.01, alpha=0.5, learning_rate=1e-5)
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        registry.validate("cw", alpha=0)
    with pytest.raises(ValueError, match="unknown hyperparameter eps"):
        registry.validate("cw", eps=1e-3)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd_l2", "cw", "mscw", "psy", "fgsm_sweep"])
def test_unknown_loop_option_is_named(name):
    fn = registry.get(name).function
    extra = {"epsilons": [1e-3]} if name == "fgsm_sweep" else {}
    with pytest.raises(ValueError, match="unknown option max_iteration;"):
        fn(logits_fn, X, LABELS, key=jax.random.key(0), max_iteration=3, **extra)


def test_options_value_equals_keywords():
    opts = attacks.AttackOptions(max_iterations=5, early_stop=False)
    a = attacks.pgd(logits_fn, X, LABELS, key=jax.random.key(0), eps=1e-2, learning_rate=1e-3,
                    options=opts)
    b = attacks.pgd(logits_fn, X, LABELS, key=jax.random.key(0), eps=1e-2, learning_rate=1e-3,
                    max_iterations=5, early_stop=False)
    chex.assert_trees_all_close(a, b, rtol=0, atol=0)
    chex.assert_shape(a.adversarial, X.shape)
    # A keyword overrides the field of options=.
    c = attacks.pgd(logits_fn, X, LABELS, key=jax.random.key(0), eps=1e-2, learning_rate=1e-3,
                    options=dataclasses.replace(opts, max_iterations=2), max_iterations=5,
                    early_stop=False)
    chex.assert_trees_all_close(a, c, rtol=0, atol=0)
    with pytest.raises(ValueError, match="does not support domain"):
        attacks.multiscale_carlini_wagner(logits_fn, X, LABELS, domain="spectrogram")
    with pytest.raises(ValueError, match="options must be an AttackOptions"):
        attacks.fgsm(logits_fn, X, LABELS, options={"max_iterations": 1})


def test_pgd_l2_is_pgd_with_norm_l2():
    kw = dict(key=jax.random.key(3), eps=0.5, learning_rate=1e-3, max_iterations=4)
    chex.assert_trees_all_close(attacks.pgd_l2(logits_fn, X, LABELS, **kw),
                                attacks.pgd(logits_fn, X, LABELS, norm="l2", **kw),
                                rtol=0, atol=0)


def test_decision_is_a_cached_value():
    a = attacks.make_decision(targeted=True)
    assert a is attacks.make_decision(targeted=True, threshold=0.3)  # softmax ignores it
    assert a is not attacks.make_decision(targeted=False)
    assert isinstance(a, attacks.Decision)


class DecisionTest(chex.TestCase):
    """The decision's per-example functions, under jit and without."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_multilabel_decision_per_example(self):
        decision = attacks.make_decision(decision="multilabel", targeted=True, threshold=0.5)
        goal = Goal(label=jnp.array([1, 0, 1]), target=jnp.array([0, -1, 1]))
        success = self.variant(decision.success)
        predict = self.variant(decision.predict)
        logits = jnp.array([-2.0, 3.0, 1.0])
        chex.assert_shape(predict(logits), (3,))
        chex.assert_trees_all_close(predict(logits), jnp.array([0, 1, 1]))
        assert bool(success(logits, goal))
        assert not bool(success(jnp.array([2.0, 3.0, 1.0]), goal))
        loss = self.variant(decision.loss)
        chex.assert_shape(loss(logits, goal), ())
