"""Adversarial attacks on audio classifiers (study 1 of REFERENCE.md): FGSM, PGD, C&W and
multi-scale C&W, on waveforms or any other input (spectrograms), batched, jitted and shardable.

Quick start::

    import jax
    from jaxaudio import attacks

    logits_fn = jax.jit(lambda w: model.apply(variables, w, train=False))
    res = attacks.pgd(logits_fn, waves, labels, key=jax.random.key(0))
    res.success, res.snr_db, res.iterations          # per example
    res = attacks.carlini_wagner(logits_fn, waves, labels, target=0)   # towards class 0
    sweep = attacks.fgsm_sweep(logits_fn, waves, labels, epsilons=[1e-4, 1e-3, 1e-2])
    res = attacks.sharded(attacks.pgd)(logits_fn, waves, labels, key=jax.random.key(0))

See :mod:`jaxaudio.attacks.gradient` (the attacks), :mod:`jaxaudio.attacks.core` (the shared
per-example loop, result types, SNR) and :mod:`jaxaudio.attacks.losses`.
"""

from jaxaudio.attacks.core import (
    PCM16_MAX_INDEX,
    PCM16_MIN_INDEX,
    PCM16_SCALE,
    AttackConfig,
    AttackResult,
    AttackSpec,
    Decision,
    Goal,
    Hyperparameters,
    LoopState,
    SweepResult,
    attack_example,
    clear_cache,
    compile_attack,
    example_keys,
    make_decision,
    random_targets,
    round_to_16bit,
    sign_gradient,
    signed_adam,
    snr_db,
)
from jaxaudio.attacks.gradient import (
    carlini_wagner,
    fgsm,
    fgsm_sweep,
    make_attack,
    multiscale_carlini_wagner,
    pgd,
)
from jaxaudio.attacks.losses import (
    DEFAULT_FFT_SIZES,
    binary_cross_entropy,
    cross_entropy,
    multiscale_spectral_distance,
    squared_l2_distance,
)
from jaxaudio.attacks.sharding import batch_mesh, shard_batch, sharded, unpad

__all__ = [
    "PCM16_MAX_INDEX",
    "PCM16_MIN_INDEX",
    "PCM16_SCALE",
    "DEFAULT_FFT_SIZES",
    "AttackConfig",
    "AttackResult",
    "AttackSpec",
    "Decision",
    "Goal",
    "Hyperparameters",
    "LoopState",
    "SweepResult",
    "attack_example",
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
    "make_decision",
    "multiscale_carlini_wagner",
    "multiscale_spectral_distance",
    "pgd",
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
