"""Adversarial attacks on audio classifiers (study 1 of docs/studies.md): FGSM, PGD, C&W and
multi-scale C&W and the psychoacoustic (masking-threshold) attack, on waveforms or any other
input (spectrograms), batched, jitted and shardable.

Quick start::

    import jax
    from jaxaudio import attacks

    logits_fn = jax.jit(lambda w: model.apply(variables, w, train=False))
    res = attacks.pgd(logits_fn, waves, labels, key=jax.random.key(0))
    res.success, res.snr_db, res.iterations          # per example
    res = attacks.carlini_wagner(logits_fn, waves, labels, target=0)   # towards class 0
    sweep = attacks.fgsm_sweep(logits_fn, waves, labels, epsilons=[1e-4, 1e-3, 1e-2])
    res = attacks.sharded(attacks.pgd)(logits_fn, waves, labels, key=jax.random.key(0))

    res = attacks.pgd_l2(logits_fn, waves, labels, key=jax.random.key(0), eps=0.1)  # L2 ball
    res = attacks.multilabel(tagger_logits, waves, tags, goal="remove", tag=3,
                             key=jax.random.key(0))  # a tagger's tag 3 pushed below threshold

Modules, by role: :mod:`~jaxaudio.attacks.gradient` (the public attacks and their checks),
:mod:`~jaxaudio.attacks.specs` (one factory per attack: its hyperparameters),
:mod:`~jaxaudio.attacks.containers` (result/spec/carry types), :mod:`~jaxaudio.attacks.pieces`
(decisions, projections, starts, 16-bit grid, SNR), :mod:`~jaxaudio.attacks.loop` (the
per-example step, plain and refilled-queue programs), :mod:`~jaxaudio.attacks.driver` (the one
loop driver, device or host, and the compile cache), :mod:`~jaxaudio.attacks.validation`
(input checks), :mod:`~jaxaudio.attacks.losses` and :mod:`~jaxaudio.attacks.sharding`;
:mod:`~jaxaudio.attacks.core` re-exports the core names.
"""

from jaxaudio.attacks import core, specs  # noqa: F401  (attacks.core.useful_steps etc.)
from jaxaudio.attacks.containers import (AttackConfig, AttackResult, AttackSpec, Decision, Goal,
                                         LoopState, SweepResult)
from jaxaudio.attacks.driver import as_hyper, clear_cache, compile_attack
from jaxaudio.attacks.gradient import (carlini_wagner, fgsm, fgsm_sweep,
                                       multiscale_carlini_wagner, pgd, pgd_l2)
from jaxaudio.attacks.multilabel import multilabel
from jaxaudio.attacks.losses import (DEFAULT_FFT_SIZES, binary_cross_entropy, cross_entropy,
                                     multiscale_spectral_distance, squared_l2_distance)
from jaxaudio.attacks.pieces import (make_decision, round_to_16bit, sign_gradient, signed_adam,
                                     snr_db)
from jaxaudio.attacks.sharding import batch_mesh, shard_batch, sharded, unpad
from jaxaudio.attacks.psychoacoustic import masking_threshold, psychoacoustic
from jaxaudio.attacks.specs import make_attack
from jaxaudio.attacks.validation import example_keys, random_targets
from jaxaudio.data.audio import PCM16_MAX_INDEX, PCM16_MIN_INDEX, PCM16_SCALE

#: The public waveform attacks by their short names (study 1, ``jaxaudio attack --audio``).
BY_NAME = {"fgsm": fgsm, "pgd": pgd, "pgd_l2": pgd_l2, "cw": carlini_wagner,
           "mscw": multiscale_carlini_wagner, "psy": psychoacoustic}

__all__ = [
    "BY_NAME",
    "PCM16_MAX_INDEX",
    "PCM16_MIN_INDEX",
    "PCM16_SCALE",
    "DEFAULT_FFT_SIZES",
    "AttackConfig",
    "AttackResult",
    "AttackSpec",
    "Decision",
    "Goal",
    "LoopState",
    "SweepResult",
    "batch_mesh",
    "binary_cross_entropy",
    "carlini_wagner",
    "clear_cache",
    "compile_attack",
    "cross_entropy",
    "example_keys",
    "fgsm",
    "fgsm_sweep",
    "make_attack",
    "masking_threshold",
    "make_decision",
    "multiscale_carlini_wagner",
    "multiscale_spectral_distance",
    "multilabel",
    "pgd",
    "pgd_l2",
    "psychoacoustic",
    "specs",
    "as_hyper",
    "random_targets",
    "round_to_16bit",
    "shard_batch",
    "sharded",
    "sign_gradient",
    "signed_adam",
    "snr_db",
    "squared_l2_distance",
    "unpad",
]
