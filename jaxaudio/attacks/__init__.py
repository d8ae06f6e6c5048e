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

    opts = attacks.AttackOptions(max_iterations=100, slots=8)   # the shared loop options
    res = attacks.get("mscw").function(logits_fn, waves, labels, key=key, options=opts)

Every attack is one entry of the registry (:mod:`~jaxaudio.attacks.registry`: canonical name,
short name, aliases, factory, defaults); :func:`get` resolves any of its names and this
package's public attack functions are generated from it.

Modules, by role: :mod:`~jaxaudio.attacks.registry` (the table of attacks),
:mod:`~jaxaudio.attacks.gradient` (the public gradient attacks and their checks),
:mod:`~jaxaudio.attacks.specs` (one factory per attack: its hyperparameters),
:mod:`~jaxaudio.attacks.containers` (result/spec/config/options/carry types),
:mod:`~jaxaudio.attacks.pieces` (decisions, projections, starts, 16-bit grid, SNR),
:mod:`~jaxaudio.attacks.loop` (the per-example step, plain and refilled-queue programs),
:mod:`~jaxaudio.attacks.driver` (the one loop driver, device or host, and the compile cache),
:mod:`~jaxaudio.attacks.validation` (input and option checks), :mod:`~jaxaudio.attacks.losses`,
:mod:`~jaxaudio.attacks.sharding` and :mod:`~jaxaudio.attacks.distributed`. The masking
model of the psychoacoustic attack is :mod:`jaxaudio.dsp.masking`.
"""

from jaxaudio.attacks import registry, specs, validation  # noqa: F401  (attacks.registry etc.)
from jaxaudio.attacks.containers import (
    AttackConfig,
    AttackOptions,
    AttackResult,
    AttackSpec,
    Decision,
    Goal,
    LoopState,
    SweepResult,
)
from jaxaudio.attacks.driver import as_hyper, clear_cache, compile_attack
from jaxaudio.attacks.gradient import (  # noqa: F401  (exported through the registry)
    carlini_wagner,
    fgsm,
    fgsm_sweep,
    multiscale_carlini_wagner,
    pgd,
    pgd_l2,
)
from jaxaudio.attacks.losses import (
    DEFAULT_FFT_SIZES,
    binary_cross_entropy,
    cross_entropy,
    multiscale_spectral_distance,
    squared_l2_distance,
)
from jaxaudio.attacks.multilabel import multilabel  # noqa: F401  (exported through the registry)
from jaxaudio.attacks.pieces import (
    make_decision,
    round_to_16bit,
    sign_gradient,
    signed_adam,
    snr_db,
)
from jaxaudio.attacks.psychoacoustic import psychoacoustic  # noqa: F401  (exported through the registry)
from jaxaudio.attacks.registry import get, make_attack, names
from jaxaudio.attacks.sharding import batch_mesh, shard_batch, sharded, unpad
from jaxaudio.attacks.validation import example_keys, random_targets
from jaxaudio.data.audio import PCM16_MAX_INDEX, PCM16_MIN_INDEX, PCM16_SCALE
from jaxaudio.dsp.masking import masking_threshold

#: The public attack functions by canonical name, generated from the registry.
ATTACK_FUNCTIONS = registry.functions()
if any(globals().get(name) is not fn for name, fn in ATTACK_FUNCTIONS.items()):
    raise RuntimeError("jaxaudio.attacks: the imported attack functions differ from the "
                       "registry's")

__all__ = [
    *ATTACK_FUNCTIONS,
    "PCM16_MAX_INDEX",
    "PCM16_MIN_INDEX",
    "PCM16_SCALE",
    "DEFAULT_FFT_SIZES",
    "ATTACK_FUNCTIONS",
    "AttackConfig",
    "AttackOptions",
    "AttackResult",
    "AttackSpec",
    "Decision",
    "Goal",
    "LoopState",
    "SweepResult",
    "as_hyper",
    "batch_mesh",
    "binary_cross_entropy",
    "clear_cache",
    "compile_attack",
    "cross_entropy",
    "example_keys",
    "get",
    "make_attack",
    "make_decision",
    "masking_threshold",
    "multiscale_spectral_distance",
    "names",
    "random_targets",
    "registry",
    "round_to_16bit",
    "shard_batch",
    "sharded",
    "sign_gradient",
    "signed_adam",
    "snr_db",
    "specs",
    "squared_l2_distance",
    "unpad",
]
