"""Shared attack machinery: one per-example loop that every gradient attack is composed into.

An attack is four pieces (:class:`AttackSpec`):

* ``objective(x, x_adv, logits, goal) -> scalar`` — minimised (a distance term plus a weighted
  classification term from :class:`Decision`);
* ``optimizer`` — a real :class:`optax.GradientTransformation` updating the perturbation
  ``delta`` (e.g. ``optax.chain(optax.scale_by_sign(), optax.scale_by_adam(), optax.scale(-lr))``);
* ``project(delta, x) -> delta`` — back onto the constraint set (L∞ ball, SNR-sized L2 ball);
* ``init_delta(x, key) -> delta`` — zero or a uniform random start;

plus the stopping rule, ``decision.success(logits, goal)``. :func:`attack_example` drives them
for ONE example with :func:`jax.lax.while_loop`:

1. evaluate objective, gradient and logits at the current iterate ``x_adv = clip(x + delta)``
   (optionally quantised to the 16-bit grid, straight-through);
2. if the iterate is adversarial, record it (first success iteration, best = lowest perturbation
   energy in the SNR region) and — with ``early_stop`` — freeze the example: its ``delta`` and
   optimiser state are kept by a mask (``jnp.where``) and its loop predicate turns false;
3. otherwise apply the optimiser update and the projection.

:func:`compile_attack` vmaps :func:`attack_example` over the batch and jits it. Under ``vmap`` the
per-example loop predicate becomes a batched one: the loop runs while *any* example is active and
JAX selects (masks) the carry of finished examples, so a batch gives exactly the adversarials of
each example run alone. After the loop each example's final iterate is checked once more, the
returned adversarial is chosen (best successful iterate, else the last iterate) and ``logits_fn``
is re-evaluated on exactly that array to fill :class:`AttackResult`.

Everything inside the jitted core is pure; validation of concrete inputs lives in the thin
wrappers (:func:`prepare_inputs` and friends), which raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxaudio import metrics
from jaxaudio.attacks import losses
from jaxaudio.data.audio import PCM16_MAX_INDEX, PCM16_MIN_INDEX, PCM16_SCALE

__all__ = [
    "PCM16_SCALE",
    "PCM16_MIN_INDEX",
    "PCM16_MAX_INDEX",
    "AttackResult",
    "SweepResult",
    "Goal",
    "Decision",
    "AttackSpec",
    "AttackConfig",
    "Hyperparameters",
    "LoopState",
    "make_decision",
    "sign_gradient",
    "signed_adam",
    "linf_projection",
    "snr_l2_projection",
    "zero_start",
    "uniform_start",
    "materialize",
    "quantize_16bit",
    "round_to_16bit",
    "snr_db",
    "snr_db_example",
    "init_state",
    "step",
    "finalize",
    "attack_example",
    "QueueState",
    "attack_queue",
    "queue_init",
    "queue_body",
    "queue_active",
    "queue_finish",
    "LOOP_MODES",
    "default_loop",
    "check_slots",
    "useful_steps",
    "compile_attack",
    "clear_cache",
    "example_keys",
    "random_targets",
    "num_classes",
    "PreparedInputs",
    "prepare_inputs",
    "check_positive",
    "check_max_iterations",
]

Array = Any
LogitsFn = Callable[[Array], Array]

# 16-bit PCM grid (defined with the audio I/O): adversarials with ``quantize_16bit`` are
# ``k / PCM16_SCALE`` for integer ``k`` in ``[PCM16_MIN_INDEX, PCM16_MAX_INDEX]``, so an
# adversarial written by :func:`jaxaudio.data.save_wav` and read back is the very array the
# attack evaluated.

_DECISIONS = ("softmax", "sigmoid")
_DOMAINS = ("waveform", "spectrogram")
_NORMS = ("linf", "snr_l2")


# --------------------------------------------------------------------------------------------
# Typed containers
# --------------------------------------------------------------------------------------------


class AttackResult(NamedTuple):
    """Result of an attack on a batch (every field has a leading ``batch`` axis).

    Attributes:
      adversarial: ``(batch, ...)`` the returned adversarial input (inside the value bounds, on
        the 16-bit grid with ``quantize_16bit``).
      perturbation: ``adversarial - x``.
      success: bool ``(batch,)``, from re-evaluating ``logits_fn`` on exactly ``adversarial``:
        softmax untargeted ``argmax != label``; targeted ``argmax == target``; sigmoid: the
        thresholded output differs from ``label``.
      iterations: int32 ``(batch,)``: optimiser steps applied before the first adversarial
        iterate was seen (0 = the starting point already was one); ``max_iterations`` when none
        was found during the loop.
      snr_db: float32 ``(batch,)``, ``20 log10(||x|| / ||x - adversarial||)`` over the SNR region
        (see :func:`snr_db`); ``inf`` when nothing changed.
      logits: ``(batch, num_outputs)`` of ``adversarial``.
      probabilities: softmax (or sigmoid) of ``logits``.
      original_prediction: int32 ``(batch,)`` prediction on the clean input.
      adversarial_prediction: int32 ``(batch,)`` prediction on ``adversarial``.
      target: int32 ``(batch,)``: the target class, ``-1`` when untargeted; for sigmoid decisions
        the flipped label ``1 - label``.
    """

    adversarial: Array
    perturbation: Array
    success: Array
    iterations: Array
    snr_db: Array
    logits: Array
    probabilities: Array
    original_prediction: Array
    adversarial_prediction: Array
    target: Array


class SweepResult(NamedTuple):
    """FGSM over several step sizes at once (:func:`jaxaudio.attacks.fgsm_sweep`).

    Attributes:
      epsilons: ``(num_eps,)``.
      success: bool ``(num_eps, batch)``.
      snr_db: ``(num_eps, batch)``.
      adversarial_prediction: int32 ``(num_eps, batch)``.
      original_prediction: int32 ``(batch,)``.
    """

    epsilons: Array
    success: Array
    snr_db: Array
    adversarial_prediction: Array
    original_prediction: Array


class Goal(NamedTuple):
    """What one example's attack aims for: its ``label`` and ``target`` (``-1`` = untargeted)."""

    label: Array
    target: Array


class Decision(NamedTuple):
    """How logits become a decision, and what counts as a successful attack.

    All functions act on the logits of one example ``(num_outputs,)``.
    ``loss`` is the classification term the attack *minimises*.
    """

    loss: Callable[[Array, Goal], Array]
    success: Callable[[Array, Goal], Array]
    predict: Callable[[Array], Array]
    probabilities: Callable[[Array], Array]


class AttackSpec(NamedTuple):
    """The pieces of one attack, composed by :func:`attack_example`."""

    objective: Callable[[Array, Array, Array, Goal], Array]
    optimizer: optax.GradientTransformation
    project: Callable[[Array, Array], Array]
    init_delta: Callable[[Array, Array], Array]
    decision: Decision


class Hyperparameters(NamedTuple):
    """Numeric hyperparameters, passed *traced* to the compiled core (changing them does not
    recompile; :func:`jaxaudio.attacks.fgsm_sweep` vmaps over ``eps``).

    Attributes:
      learning_rate: optimiser step (FGSM: its step size, equal to ``eps``).
      eps: L∞ radius of the perturbation (PGD ``eps``, C&W ``clip_eps``).
      alpha: weight of the classification term (C&W); 1 for FGSM/PGD.
      snr_db: SNR budget for ``norm="snr_l2"`` (ignored otherwise).
      max_iterations: int32, most optimiser steps.
    """

    learning_rate: Array
    eps: Array
    alpha: Array
    snr_db: Array
    max_iterations: Array

    @classmethod
    def create(cls, *, learning_rate, eps, alpha=1.0, snr_db=0.0, max_iterations=1):
        f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
        return cls(f32(learning_rate), f32(eps), f32(alpha), f32(snr_db),
                   jnp.asarray(max_iterations, jnp.int32))


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Static (hashable) configuration: everything that changes the compiled graph.

    Attributes:
      method: attack name (``"fgsm"``, ``"pgd"``, ``"cw"``, ``"multiscale_cw"``).
      targeted: softmax decisions only; sigmoid decisions always flip.
      decision: ``"softmax"`` (argmax) or ``"sigmoid"`` (``sigmoid(logit) > threshold``).
      threshold: sigmoid decision threshold in (0, 1).
      output_index: which sigmoid output to flip.
      norm: ``"linf"`` (ball of radius ``eps``) or ``"snr_l2"`` (L2 ball set by ``snr_db``).
      random_start: uniform start in ``[-eps, eps]`` (PGD).
      early_stop: freeze each example at its first success; otherwise run all iterations.
      clip_min, clip_max: value bounds of the adversarial (``None`` = unbounded).
      quantize_16bit: keep the evaluated/returned adversarial on the 16-bit PCM grid
        (``k / 32768``, ``k`` in ``[-32768, 32767]``).
      snr_margin: samples dropped at both ends of a waveform for the SNR (0 = whole input).
      fft_sizes: multi-scale spectral loss sizes (``multiscale_cw`` only).
    """

    method: str
    targeted: bool = False
    decision: str = "softmax"
    threshold: float = 0.5
    output_index: int = 0
    norm: str = "linf"
    random_start: bool = False
    early_stop: bool = True
    clip_min: Optional[float] = -1.0
    clip_max: Optional[float] = 1.0
    quantize_16bit: bool = False
    snr_margin: int = 2048
    fft_sizes: tuple[int, ...] = losses.DEFAULT_FFT_SIZES


class LoopState(NamedTuple):
    """Carry of the per-example loop.

    Attributes:
      step: int32, iterations done (evaluations of the objective).
      delta: current perturbation (continuous, projected; the optimiser's parameters).
      opt_state: the optimiser's state for ``delta``.
      found: bool, an adversarial iterate has been seen.
      iterations: int32, step of the first adversarial iterate (``max_iterations`` until then).
      best_delta: the successful ``delta`` with the lowest perturbation energy so far.
      best_energy: its energy ``||x_adv - x||²`` over the SNR region (``inf`` until found).
    """

    step: Array
    delta: Array
    opt_state: optax.OptState
    found: Array
    iterations: Array
    best_delta: Array
    best_energy: Array


# --------------------------------------------------------------------------------------------
# Decisions (classification term + stopping rule)
# --------------------------------------------------------------------------------------------


def make_decision(*, decision: str = "softmax", targeted: bool = False, threshold: float = 0.5,
                  output_index: int = 0) -> Decision:
    """Build the classification loss and success rule.

    * ``"softmax"``, untargeted: loss ``-CE(logits, label)`` (ascend the true class's
      cross-entropy), success ``argmax != label``.
    * ``"softmax"``, targeted: loss ``CE(logits, target)``, success ``argmax == target``.
    * ``"sigmoid"``: output ``logits[output_index]``; prediction ``sigmoid(z) > threshold``;
      loss = binary CE towards the flipped label ``1 - label``; success ``prediction != label``.
    """
    if decision == "softmax":
        def predict(logits):
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)

        def probabilities(logits):
            return jax.nn.softmax(logits, axis=-1)

        if targeted:
            def loss(logits, goal):
                return losses.cross_entropy(logits, goal.target)

            def success(logits, goal):
                return predict(logits) == goal.target
        else:
            def loss(logits, goal):
                return -losses.cross_entropy(logits, goal.label)

            def success(logits, goal):
                return predict(logits) != goal.label
        return Decision(loss, success, predict, probabilities)

    if decision == "sigmoid":
        def predict(logits):
            return (jax.nn.sigmoid(logits[..., output_index]) > threshold).astype(jnp.int32)

        def probabilities(logits):
            return jax.nn.sigmoid(logits)

        def loss(logits, goal):
            return losses.binary_cross_entropy(logits[..., output_index], 1 - goal.label)

        def success(logits, goal):
            return predict(logits) != goal.label

        return Decision(loss, success, predict, probabilities)
    raise ValueError(f"decision must be one of {_DECISIONS}, got {decision!r}")


# --------------------------------------------------------------------------------------------
# Optimiser and projection pieces
# --------------------------------------------------------------------------------------------


def sign_gradient() -> optax.GradientTransformation:
    """Replace every gradient element by its sign (``optax.scale_by_sign``)."""
    return optax.scale_by_sign()


def signed_adam(learning_rate, *, b1: float = 0.9, b2: float = 0.999,
                eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam on the sign of the gradient, as in the paper's PGD and C&W: descends the objective.
    """
    return optax.chain(sign_gradient(), optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                       optax.scale(-learning_rate))


def linf_projection(radius) -> Callable[[Array, Array], Array]:
    """Project ``delta`` onto the L∞ ball of ``radius`` (``optax.projections``)."""
    def project(delta, x):
        del x
        return optax.projections.projection_linf_ball(delta, radius)

    return project


def snr_l2_projection(snr_db_budget, *, margin: int) -> Callable[[Array, Array], Array]:
    """Project ``delta`` onto the L2 ball of radius ``||x_region|| · 10^(-snr_db/20)``.

    ``x_region`` is the SNR region of ``x`` (:func:`snr_db_example`). Since the whole ``delta``
    is bounded by that radius, the SNR over the region is at least ``snr_db_budget``.
    """
    def project(delta, x):
        radius = jnp.sqrt(_region_energy(x, margin)) * 10.0 ** (-snr_db_budget / 20.0)
        # A silent x would give radius 0 and 0/0 inside optax's projection.
        return optax.projections.projection_l2_ball(delta, jnp.maximum(radius, 1e-12))

    return project


def zero_start() -> Callable[[Array, Array], Array]:
    def init_delta(x, key):
        del key
        return jnp.zeros_like(x)

    return init_delta


def uniform_start(radius) -> Callable[[Array, Array], Array]:
    """Uniform random start in ``[-radius, radius]``, drawn from the example's key."""
    def init_delta(x, key):
        return jax.random.uniform(key, x.shape, jnp.float32, -1.0, 1.0) * radius

    return init_delta


# --------------------------------------------------------------------------------------------
# From delta to the evaluated adversarial
# --------------------------------------------------------------------------------------------


def quantize_16bit(x_adv, x, *, clip_min=None, clip_max=None):
    """Round ``x_adv`` onto the 16-bit PCM grid ``k / 32768``, *towards* ``x``.

    The grid index of ``x`` is ``round(32768 x)``; the perturbation measured from it is truncated
    towards zero. When ``x`` itself lies on the grid (audio read from a 16-bit file) every
    sample's deviation ``|q - x|`` is therefore at most ``|x_adv - x|``: L∞/L2 budgets and value
    bounds on the grid are kept. Otherwise the deviation may grow by at most one step. Indices
    stay in the int16 range ``[-32768, 32767]`` (and inside ``[clip_min, clip_max]``), so
    ``save_wav`` + ``load_audio`` return ``q`` bit for bit.
    """
    x_index = jnp.round(x * PCM16_SCALE)
    q_index = x_index + jnp.trunc(x_adv * PCM16_SCALE - x_index)
    low, high = PCM16_MIN_INDEX, PCM16_MAX_INDEX
    if clip_min is not None:
        low = max(low, math.ceil(clip_min * PCM16_SCALE))
    if clip_max is not None:
        high = min(high, math.floor(clip_max * PCM16_SCALE))
    # 1/32768 is a power of two: the product is exactly k / 32768.
    return jnp.clip(q_index, low, high) * (1.0 / PCM16_SCALE)


def round_to_16bit(x):
    """The nearest point ``k / 32768`` of the 16-bit grid (``k`` clipped to the int16 range):
    what :func:`jaxaudio.data.save_wav` (PCM_16) followed by :func:`jaxaudio.data.load_audio`
    does to ``x``."""
    index = jnp.round(jnp.asarray(x, jnp.float32) * PCM16_SCALE)
    return jnp.clip(index, PCM16_MIN_INDEX, PCM16_MAX_INDEX) * (1.0 / PCM16_SCALE)


def materialize(delta, x, config: AttackConfig, *, straight_through: bool = False):
    """``x_adv = clip(x + delta, clip_min, clip_max)``, then the 16-bit grid if configured.

    With ``straight_through=True`` the quantisation's value is used in the forward pass while
    the gradient flows as if it were the identity (the optimiser keeps a continuous ``delta``,
    so steps smaller than one quantisation step still accumulate).
    """
    x_adv = x + delta
    if config.clip_min is not None or config.clip_max is not None:
        x_adv = jnp.clip(x_adv, config.clip_min, config.clip_max)
    if config.quantize_16bit:
        q = quantize_16bit(x_adv, x, clip_min=config.clip_min, clip_max=config.clip_max)
        if straight_through:
            # Value exactly q (a - a == 0), derivative exactly that of x_adv.
            return jax.lax.stop_gradient(q) + (x_adv - jax.lax.stop_gradient(x_adv))
        return q
    return x_adv


# --------------------------------------------------------------------------------------------
# SNR
# --------------------------------------------------------------------------------------------


def _region(a, margin: int):
    """The SNR region of one example: for 1-D examples longer than ``2 * margin``, the samples
    ``[margin : n - margin]``; otherwise everything."""
    if a.ndim == 1 and margin > 0 and a.shape[0] > 2 * margin:
        return a[margin:a.shape[0] - margin]
    return a


def _region_energy(a, margin: int):
    r = _region(a, margin)
    return jnp.sum(r * r)


def snr_db_example(x, x_adv, *, margin: int = 2048):
    """SNR of one example in dB: ``20 log10(||x|| / ||x - x_adv||)`` over its SNR region.

    The one implementation is :func:`jaxaudio.metrics.snr_db` (called here with
    ``trim=margin`` for a waveform ``(samples,)``, ``trim=0`` over all elements of a
    multi-axis example such as a spectrogram). ``inf`` when ``x_adv == x`` over the region,
    ``-inf`` when ``x`` is silent there but the perturbation is not.
    """
    x = jnp.asarray(x, jnp.float32)
    x_adv = jnp.asarray(x_adv, jnp.float32)
    trim = int(margin) if x.ndim == 1 else 0
    return metrics.snr_db(x.reshape(-1), x_adv.reshape(-1), trim=trim)


def snr_db(x, x_adv, *, margin: int = 2048):
    """Per-example SNR in dB of a batch ``(batch, ...)``.

    For waveforms ``(batch, samples)`` the first and last ``margin`` samples are left out
    (REFERENCE.md §1: 2048 samples), unless the clip has at most ``2 * margin`` samples, in which
    case the whole clip is used. Examples with more than one axis (spectrograms) always use all
    elements. Returns float32 ``(batch,)``. Same values as :func:`jaxaudio.metrics.snr_db`
    (which it calls), in jax arrays.
    """
    return jax.vmap(functools.partial(snr_db_example, margin=margin))(x, x_adv)


# --------------------------------------------------------------------------------------------
# The per-example loop
# --------------------------------------------------------------------------------------------


def _one_example_logits(logits_fn: LogitsFn) -> Callable[[Array], Array]:
    return lambda x: logits_fn(x[None])[0]


def _where(mask, new, old):
    return jax.tree.map(lambda a, b: jnp.where(mask, a, b), new, old)


def init_state(spec: AttackSpec, x, key, *, max_iterations) -> LoopState:
    """Initial carry: start perturbation (projected), optimiser state, no success yet."""
    delta = spec.project(spec.init_delta(x, key), x)
    return LoopState(
        step=jnp.zeros((), jnp.int32),
        delta=delta,
        opt_state=spec.optimizer.init(delta),
        found=jnp.zeros((), bool),
        iterations=jnp.asarray(max_iterations, jnp.int32),
        best_delta=delta,
        best_energy=jnp.asarray(jnp.inf, jnp.float32),
    )


def _record(state: LoopState, x, x_adv, succeeded, margin: int) -> LoopState:
    """Note a (possibly) successful iterate: first-success step and the best one so far."""
    energy = _region_energy(x_adv - x, margin)
    better = succeeded & (energy < state.best_energy)
    return state._replace(
        found=state.found | succeeded,
        iterations=jnp.where(succeeded & ~state.found, state.step, state.iterations),
        best_delta=jnp.where(better, state.delta, state.best_delta),
        best_energy=jnp.where(better, energy, state.best_energy),
    )


def step(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, state: LoopState,
         config: AttackConfig) -> LoopState:
    """One iteration for one example: evaluate, record success, update (unless frozen)."""
    f = _one_example_logits(logits_fn)

    def objective(delta):
        x_adv = materialize(delta, x, config, straight_through=True)
        logits = f(x_adv)
        return spec.objective(x, x_adv, logits, goal), (logits, x_adv)

    (_, (logits, x_adv)), grad = jax.value_and_grad(objective, has_aux=True)(state.delta)
    state = _record(state, x, x_adv, spec.decision.success(logits, goal), config.snr_margin)
    updates, opt_state = spec.optimizer.update(grad, state.opt_state, state.delta)
    delta = spec.project(optax.apply_updates(state.delta, updates), x)
    # The early-stopping mask: an example that has succeeded keeps its delta and optimiser state.
    frozen = state.found & config.early_stop
    delta, opt_state = _where(frozen, (state.delta, state.opt_state), (delta, opt_state))
    return state._replace(step=state.step + 1, delta=delta, opt_state=opt_state)


def finalize(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, state: LoopState,
             config: AttackConfig) -> AttackResult:
    """Check the last iterate, choose the returned adversarial and re-evaluate the model on it.

    Returned: the successful iterate with the lowest perturbation energy (highest SNR) if any —
    with ``early_stop`` that is the first success, where the example was frozen — else the
    last iterate. Fields are per example (no batch axis).
    """
    f = _one_example_logits(logits_fn)
    decision = spec.decision
    last = materialize(state.delta, x, config)
    state = _record(state, x, last, decision.success(f(last), goal), config.snr_margin)
    delta = jnp.where(state.found, state.best_delta, state.delta)
    adversarial = materialize(delta, x, config)
    logits = f(adversarial)
    return AttackResult(
        adversarial=adversarial,
        perturbation=adversarial - x,
        success=decision.success(logits, goal),
        iterations=state.iterations,
        snr_db=snr_db_example(x, adversarial, margin=config.snr_margin),
        logits=logits,
        probabilities=decision.probabilities(logits),
        original_prediction=decision.predict(f(x)),
        adversarial_prediction=decision.predict(logits),
        target=jnp.asarray(goal.target, jnp.int32),
    )


def attack_example(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, key, *,
                   max_iterations, config: AttackConfig) -> AttackResult:
    """Run one attack on ONE example ``x`` (no batch axis); vmap this for a batch.

    The loop runs while ``step < max_iterations`` and, with ``early_stop``, until the first
    adversarial iterate.
    """
    state = init_state(spec, x, key, max_iterations=max_iterations)

    def cond(s):
        return (s.step < max_iterations) & ~(s.found & config.early_stop)

    def body(s):
        return step(spec, logits_fn, x, goal, s, config)

    state = jax.lax.while_loop(cond, body, state)
    return finalize(spec, logits_fn, x, goal, state, config)


class QueueState(NamedTuple):
    """Carry of :func:`attack_queue`: ``slots`` examples in flight, the rest waiting or done.

    Attributes:
      slot_index: int32 ``(slots,)``: the example each slot works on; ``num_examples`` = empty.
      next_index: int32, the first example not yet loaded into a slot.
      loop_steps: int32, iterations of the batched loop so far (each runs every slot once).
      x: ``(slots, ...)`` the examples in the slots.
      goal: :class:`Goal` of the examples in the slots.
      state: :class:`LoopState` batched over the slots.
      done: :class:`LoopState` (without ``opt_state``) batched over all examples: the final
        state of every example that has finished.
    """

    slot_index: Array
    next_index: Array
    loop_steps: Array
    x: Array
    goal: Goal
    state: LoopState
    done: LoopState


def _batch_where(mask, new, old):
    """``where(mask[i], new[i], old[i])`` leaf by leaf, ``mask`` of shape ``(batch,)``."""
    def one(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(one, new, old)


def _gather(tree, index):
    return jax.tree.map(lambda a: a[index], tree)


def _finished(s: LoopState, max_iterations, config: AttackConfig):
    return (s.step >= max_iterations) | (s.found & config.early_stop)


def queue_init(spec: AttackSpec, x, goal: Goal, keys, *, slots: int,
               max_iterations) -> QueueState:
    """The first ``slots`` examples in the slots, the others waiting (see :func:`attack_queue`).
    """
    n = x.shape[0]
    slots = max(1, min(int(slots), n))
    first = jnp.arange(slots, dtype=jnp.int32)
    state0 = jax.vmap(lambda xi, ki: init_state(spec, xi, ki, max_iterations=max_iterations))(
        x[:slots], keys[:slots])
    no_opt = state0._replace(opt_state=None)
    done0 = jax.tree.map(lambda a: jnp.zeros((n,) + a.shape[1:], a.dtype), no_opt)
    return QueueState(slot_index=first, next_index=jnp.asarray(slots, jnp.int32),
                      loop_steps=jnp.zeros((), jnp.int32), x=x[:slots],
                      goal=_gather(goal, first), state=state0, done=done0)


def queue_active(carry: QueueState):
    """Whether any slot still holds an unfinished example."""
    return jnp.any(carry.slot_index < carry.done.step.shape[0])


def queue_body(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, keys, carry: QueueState,
               *, max_iterations, config: AttackConfig) -> QueueState:
    """One iteration of the queue: step every slot, write finished examples out, refill."""
    n = x.shape[0]
    state = jax.vmap(lambda xi, gi, si: step(spec, logits_fn, xi, gi, si, config))(
        carry.x, carry.goal, carry.state)
    just_done = (carry.slot_index < n) & _finished(state, max_iterations, config)
    # Finished examples are written out (index n = out of range = dropped).
    out_index = jnp.where(just_done, carry.slot_index, n)
    done = jax.tree.map(lambda buf, v: buf.at[out_index].set(v, mode="drop"), carry.done,
                        state._replace(opt_state=None))
    carry = carry._replace(state=state, done=done, loop_steps=carry.loop_steps + 1)

    def refill(c: QueueState, just_done):
        # Slot j that just finished takes waiting example next_index + (rank of j among them).
        rank = jnp.cumsum(just_done.astype(jnp.int32)) - 1
        wanted = c.next_index + rank
        load = just_done & (wanted < n)
        index = jnp.minimum(wanted, n - 1)
        new_x = x[index]
        new_state = jax.vmap(
            lambda xi, ki: init_state(spec, xi, ki, max_iterations=max_iterations))(
            new_x, keys[index])
        return c._replace(
            slot_index=jnp.where(load, wanted, jnp.where(just_done, n, c.slot_index)),
            next_index=c.next_index + jnp.sum(load.astype(jnp.int32)),
            x=_batch_where(load, new_x, c.x),
            goal=_batch_where(load, _gather(goal, index), c.goal),
            state=_batch_where(load, new_state, c.state),
        )

    # Loading new examples costs a random start per slot: only when some slot is free.
    return jax.lax.cond(jnp.any(just_done), refill, lambda c, _: c, carry, just_done)


def queue_finish(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, carry: QueueState,
                 config: AttackConfig):
    """:func:`finalize` every example from its written-out state -> ``(result, loop_steps)``."""
    result = jax.vmap(lambda xi, gi, si: finalize(spec, logits_fn, xi, gi, si, config))(
        x, goal, carry.done)
    return result, carry.loop_steps


def attack_queue(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, keys, *, slots: int,
                 max_iterations, config: AttackConfig):
    """Run the attack on a batch of ``N`` examples through ``slots`` parallel slots, refilling.

    With early stopping, a plain batch keeps iterating until its slowest example finishes and
    every finished example's slot idles (masked) until then. Here the batch is a queue: one
    :func:`jax.lax.while_loop` steps all slots at once (the same vmapped :func:`step`); after
    each step, every slot whose example has finished (adversarial with ``early_stop``, or
    ``max_iterations`` steps done) writes that example's final :class:`LoopState` out and is
    loaded with the next waiting example (:func:`init_state`). Each example still runs its own
    trajectory from its own start, so the results equal those of :func:`attack_example` run on
    every example alone. :func:`finalize` runs once per example after the loop.

    The pieces (:func:`queue_init`, :func:`queue_body`, :func:`queue_active`,
    :func:`queue_finish`) are also driven one jitted iteration at a time by the host loop
    (see :func:`compile_attack`).

    Args:
      x: ``(N, ...)``; ``goal``: :class:`Goal` of ``(N,)`` arrays; ``keys``: ``(N,)`` start keys.
      slots: static number of slots (clamped to ``N``).

    Returns:
      ``(AttackResult, loop_steps)``: per-example results ``(N, ...)`` and the number of batched
      loop iterations (int32) — the work done is ``slots * loop_steps`` example-steps.
    """
    carry = queue_init(spec, x, goal, keys, slots=slots, max_iterations=max_iterations)
    carry = jax.lax.while_loop(
        queue_active,
        lambda c: queue_body(spec, logits_fn, x, goal, keys, c, max_iterations=max_iterations,
                             config=config),
        carry)
    return queue_finish(spec, logits_fn, x, goal, carry, config)


SpecBuilder = Callable[[AttackConfig, Hyperparameters], AttackSpec]


def _cached(cached_fn, *args):
    """Call an ``lru_cache``-d function, bypassing the cache for unhashable arguments."""
    try:
        hash(args)
    except TypeError:
        return cached_fn.__wrapped__(*args)
    return cached_fn(*args)


#: How the iterations are driven: ``"device"`` = one :func:`jax.lax.while_loop` inside one
#: jitted call; ``"host"`` = a Python loop calling one jitted, vmapped iteration per step.
LOOP_MODES = ("device", "host")


def default_loop() -> str:
    """``"host"`` on the CPU backend, ``"device"`` elsewhere.

    Why: XLA:CPU runs the body of a ``while`` loop about 3x slower than the same computation
    compiled as its own executable (measured on the instrument CNN: value_and_grad 50-70 ms per
    batch of 8 three-second clips alone, 230-270 ms per iteration inside ``fori_loop``, with or
    without unrolling), while a host loop costs one dispatch and one boolean read-back per
    iteration (well under a millisecond). On GPU/TPU the on-device loop avoids those round trips.
    Both modes run the same ``step``/``cond`` per example, so they give the same results.
    """
    return "host" if jax.default_backend() == "cpu" else "device"


def compile_attack(logits_fn: LogitsFn, config: AttackConfig, build_spec: SpecBuilder,
                   sweep: bool = False, slots: Optional[int] = None,
                   loop: Optional[str] = None) -> Callable:
    """The compiled batched core ``fn(x, labels, targets, keys, hyper) -> AttackResult``.

    Built once per ``(logits_fn, config, build_spec, sweep, slots, loop)`` and cached (up to
    128 entries, holding references to ``logits_fn``; see :func:`clear_cache`), so pass the
    *same* ``logits_fn`` object on repeated calls: a fresh lambda each time retraces and
    recompiles. Bound methods of the same object (``classifier.logits_fn``) hit the cache; an
    unhashable ``logits_fn`` works but is never cached.

    Args of the returned function: ``x (batch, ...)`` float32, ``labels``/``targets`` int32
    ``(batch,)`` (target ``-1`` = untargeted), ``keys`` ``(batch,)`` typed PRNG keys and
    :class:`Hyperparameters` (traced). With ``sweep=True`` the hyperparameters' ``eps`` and
    ``learning_rate`` carry a leading axis that is vmapped over, and a :class:`SweepResult` is
    returned (always one on-device loop).

    With ``slots=B`` (not with ``sweep``) the batch runs as a queue through ``B`` slots that
    are refilled as examples finish (:func:`attack_queue`), and the function returns
    ``(AttackResult, loop_steps)``.

    ``loop``: ``"device"`` (one jitted call with :func:`jax.lax.while_loop`), ``"host"`` (a
    Python loop over one jitted iteration, see :func:`default_loop` for why) or ``None`` =
    :func:`default_loop`.
    """
    if slots is not None and sweep:
        raise ValueError("slots (queue with refill) cannot be combined with an eps sweep")
    loop = default_loop() if loop is None else loop
    if loop not in LOOP_MODES:
        raise ValueError(f"loop must be one of {LOOP_MODES} or None, got {loop!r}")
    if sweep:
        loop = "device"
    return _cached(_compile_attack, logits_fn, config, build_spec, bool(sweep),
                   None if slots is None else int(slots), loop)


def _running(state: LoopState, max_iterations, config: AttackConfig):
    return (state.step < max_iterations) & ~(state.found & config.early_stop)


def _host_plain(logits_fn, config, build_spec):
    """Host-driven version of the vmapped :func:`attack_example` (same cond and body)."""
    def init(x, keys, hyper):
        spec = build_spec(config, hyper)
        return jax.vmap(lambda xi, ki: init_state(spec, xi, ki,
                                                  max_iterations=hyper.max_iterations))(x, keys)

    def body(x, labels, targets, state, hyper):
        spec = build_spec(config, hyper)

        def one(xi, li, ti, si):
            # What vmap of a while_loop does with a batched predicate: step, then select.
            new = step(spec, logits_fn, xi, Goal(li, ti), si, config)
            return _where(_running(si, hyper.max_iterations, config), new, si)

        state = jax.vmap(one)(x, labels, targets, state)
        return state, jnp.any(_running(state, hyper.max_iterations, config))

    def final(x, labels, targets, state, hyper):
        spec = build_spec(config, hyper)
        return jax.vmap(lambda xi, li, ti, si: finalize(spec, logits_fn, xi, Goal(li, ti), si,
                                                        config))(x, labels, targets, state)

    init_j, body_j, final_j = jax.jit(init), jax.jit(body, donate_argnums=3), jax.jit(final)

    def run(x, labels, targets, keys, hyper):
        state = init_j(x, keys, hyper)
        active = True  # every example starts running (step 0 < max_iterations >= 1)
        while active:
            state, any_running = body_j(x, labels, targets, state, hyper)
            active = bool(any_running)
        return final_j(x, labels, targets, state, hyper)

    return run


def _host_queue(logits_fn, config, build_spec, slots):
    """Host-driven version of :func:`attack_queue` (same pieces)."""
    def init(x, labels, targets, keys, hyper):
        return queue_init(build_spec(config, hyper), x, Goal(labels, targets), keys, slots=slots,
                          max_iterations=hyper.max_iterations)

    def body(x, labels, targets, keys, carry, hyper):
        carry = queue_body(build_spec(config, hyper), logits_fn, x, Goal(labels, targets), keys,
                           carry, max_iterations=hyper.max_iterations, config=config)
        return carry, queue_active(carry)

    def final(x, labels, targets, carry, hyper):
        return queue_finish(build_spec(config, hyper), logits_fn, x, Goal(labels, targets),
                            carry, config)

    init_j, body_j, final_j = jax.jit(init), jax.jit(body, donate_argnums=4), jax.jit(final)

    def run(x, labels, targets, keys, hyper):
        carry = init_j(x, labels, targets, keys, hyper)
        active = True
        while active:
            carry, any_active = body_j(x, labels, targets, keys, carry, hyper)
            active = bool(any_active)
        return final_j(x, labels, targets, carry, hyper)

    return run


@functools.lru_cache(maxsize=128)
def _compile_attack(logits_fn, config, build_spec, sweep, slots=None, loop="device"):
    if loop == "host":
        if slots is not None:
            return _host_queue(logits_fn, config, build_spec, slots)
        return _host_plain(logits_fn, config, build_spec)

    if slots is not None:
        def run_queue(x, labels, targets, keys, hyper):
            spec = build_spec(config, hyper)
            return attack_queue(spec, logits_fn, x, Goal(labels, targets), keys, slots=slots,
                                max_iterations=hyper.max_iterations, config=config)

        return jax.jit(run_queue)

    def run(x, labels, targets, keys, hyper):
        spec = build_spec(config, hyper)

        def one(x_i, label_i, target_i, key_i):
            return attack_example(spec, logits_fn, x_i, Goal(label_i, target_i), key_i,
                                  max_iterations=hyper.max_iterations, config=config)

        return jax.vmap(one)(x, labels, targets, keys)

    if not sweep:
        return jax.jit(run)

    def run_sweep(x, labels, targets, keys, hyper):
        axes = Hyperparameters(0, 0, None, None, None)
        res = jax.vmap(run, in_axes=(None, None, None, None, axes))(x, labels, targets, keys,
                                                                     hyper)
        return SweepResult(hyper.eps, res.success, res.snr_db, res.adversarial_prediction,
                           res.original_prediction[0])

    return jax.jit(run_sweep)


def clear_cache() -> None:
    """Forget compiled attacks (and the model references they hold)."""
    _compile_attack.cache_clear()
    _output_shape.cache_clear()


# --------------------------------------------------------------------------------------------
# Keys, targets, validation (thin Python wrappers on concrete arrays)
# --------------------------------------------------------------------------------------------


def _as_typed_keys(key):
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if key.dtype == jnp.uint32 and key.ndim >= 1 and key.shape[-1] == 2:
        return jax.random.wrap_key_data(key)
    raise ValueError(f"key must be a jax.random key (or raw uint32 key data), got dtype "
                     f"{key.dtype} shape {key.shape}")


def example_keys(key, batch_size: int):
    """Per-example keys ``(batch_size,)`` from one key (``jax.random.split``), or ``key`` itself
    if it already is a batch of ``batch_size`` keys.

    Example ``i`` uses ``fold_in(keys[i], 0)`` for its random start and ``fold_in(keys[i], 1)``
    for its random target, so running it alone with ``keys[i]`` reproduces the batch result.
    """
    keys = _as_typed_keys(key)
    if keys.ndim == 0:
        return jax.random.split(keys, batch_size)
    if keys.shape != (batch_size,):
        raise ValueError(f"key must be one key or a batch of {batch_size} keys, got shape "
                         f"{keys.shape}")
    return keys


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _random_targets(keys, labels, num_classes: int):
    def one(key, label):
        r = jax.random.randint(jax.random.fold_in(key, 1), (), 0, num_classes - 1)
        return jnp.where(r >= label, r + 1, r).astype(jnp.int32)

    return jax.vmap(one)(keys, labels)


def random_targets(key, labels, num_classes: int):
    """A uniformly random class other than ``labels[i]`` for every example (int32 ``(batch,)``).

    Reproducible for a given ``key``; never equal to the label.
    """
    labels = jnp.asarray(labels, jnp.int32)
    if num_classes < 2:
        raise ValueError(f"random targets need num_classes >= 2, got {num_classes}")
    return _random_targets(example_keys(key, labels.shape[0]), labels, num_classes)


def _start_keys(keys):
    return jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys)


@functools.lru_cache(maxsize=128)
def _output_shape(logits_fn, example_shape: tuple[int, ...]):
    out = jax.eval_shape(logits_fn, jax.ShapeDtypeStruct((1,) + example_shape, jnp.float32))
    return tuple(out.shape)


def num_classes(logits_fn: LogitsFn, example_shape: tuple[int, ...]) -> int:
    """Number of outputs of ``logits_fn`` for examples of ``example_shape`` (traced, cached)."""
    shape = _cached(_output_shape, logits_fn, tuple(int(s) for s in example_shape))
    if len(shape) != 2 or shape[0] != 1:
        raise ValueError(f"logits_fn must map (batch, ...) to (batch, num_outputs); it maps a "
                         f"batch of 1 to shape {shape}")
    return shape[1]


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """``value`` as a float, or ``ValueError`` if it is not finite and > 0 (>= 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


def check_max_iterations(max_iterations) -> int:
    """``max_iterations`` as an int, or ``ValueError`` unless it is an integer >= 1."""
    try:
        ok = int(max_iterations) == max_iterations and max_iterations >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    return int(max_iterations)


def check_slots(slots) -> Optional[int]:
    """``slots`` as an int (or ``None``), or ``ValueError`` unless it is an integer >= 1."""
    if slots is None:
        return None
    try:
        ok = not isinstance(slots, bool) and int(slots) == slots and slots >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"slots must be None or an integer >= 1, got {slots!r}")
    return int(slots)


def useful_steps(iterations, max_iterations: int):
    """Loop steps each example needed with early stopping: ``min(iterations + 1, max)``.

    ``iterations`` is :attr:`AttackResult.iterations` (first success step, ``max_iterations``
    when none was found); an example found at step ``k`` was evaluated ``k + 1`` times.
    """
    return np.minimum(np.asarray(iterations, np.int64) + 1, int(max_iterations))


class PreparedInputs(NamedTuple):
    """Validated inputs for the compiled core, plus the resolved static options."""

    x: Array
    labels: Array
    targets: Array
    keys: Array
    num_outputs: int
    clip_min: Optional[float]
    clip_max: Optional[float]
    snr_margin: int
    targeted: bool


def _resolve_bounds(domain, clip_min, clip_max):
    if domain == "waveform":
        lo = -1.0 if clip_min is None else float(clip_min)
        hi = 1.0 if clip_max is None else float(clip_max)
    else:
        lo = -math.inf if clip_min is None else float(clip_min)
        hi = math.inf if clip_max is None else float(clip_max)
    if math.isnan(lo) or math.isnan(hi) or lo >= hi:
        raise ValueError(f"need clip_min < clip_max, got clip_min={clip_min}, clip_max={clip_max}")
    return (None if lo == -math.inf else lo), (None if hi == math.inf else hi)


def prepare_inputs(logits_fn: LogitsFn, x, labels, *, target=None, key=None,
                   decision: str = "softmax", output_index: int = 0, domain: str = "waveform",
                   min_samples: Optional[int] = None, clip_min=None, clip_max=None,
                   threshold: float = 0.5, need_key: bool = False,
                   snr_margin: Optional[int] = None) -> PreparedInputs:
    """Validate concrete inputs and resolve targets/keys/bounds (raises ``ValueError``).

    ``target``: ``None`` (untargeted), an int class, ``"random"`` (a random other class per
    example, from ``key``) or an int array ``(batch,)``. Sigmoid decisions accept ``None`` or
    ``"random"``, both meaning: flip ``labels`` (the only other class).
    """
    if domain not in _DOMAINS:
        raise ValueError(f"domain must be one of {_DOMAINS}, got {domain!r}")
    if decision not in _DECISIONS:
        raise ValueError(f"decision must be one of {_DECISIONS}, got {decision!r}")
    x_np = np.asarray(x)
    if x_np.dtype == object or not np.issubdtype(x_np.dtype, np.number):
        raise ValueError(f"x must be a numeric array, got dtype {x_np.dtype}")
    if domain == "waveform":
        if x_np.ndim != 2:
            raise ValueError(f"x must be waveforms of shape (batch, samples), got shape "
                             f"{x_np.shape}")
        min_samples = 2048 if min_samples is None else int(min_samples)
        if x_np.shape[1] < min_samples:
            raise ValueError(f"x is too short: {x_np.shape[1]} samples, need at least "
                             f"min_samples={min_samples} (one analysis frame)")
        snr_margin = 2048 if snr_margin is None else int(snr_margin)
    else:
        if x_np.ndim < 2:
            raise ValueError(f"x must have a batch axis and at least one more axis, got shape "
                             f"{x_np.shape}")
        snr_margin = 0 if snr_margin is None else int(snr_margin)
    if x_np.shape[0] < 1 or x_np.size == 0:
        raise ValueError(f"x is empty, shape {x_np.shape}")
    if not np.all(np.isfinite(x_np)):
        bad = int(x_np.size - np.count_nonzero(np.isfinite(x_np)))
        raise ValueError(f"x contains {bad} NaN/Inf values")
    lo, hi = _resolve_bounds(domain, clip_min, clip_max)
    if (lo is not None and x_np.min() < lo) or (hi is not None and x_np.max() > hi):
        hint = (" (for spectrogram-domain attacks use domain='spectrogram', which is unbounded "
                "by default)" if domain == "waveform" else "")
        raise ValueError(f"x has values in [{x_np.min():.4g}, {x_np.max():.4g}], outside the "
                         f"bounds [clip_min, clip_max] = [{lo}, {hi}]{hint}")
    batch = x_np.shape[0]

    labels_np = np.asarray(labels)
    if labels_np.dtype == bool:
        labels_np = labels_np.astype(np.int32)
    if labels_np.shape != (batch,) or not np.issubdtype(labels_np.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({batch},), got dtype "
                         f"{labels_np.dtype} shape {labels_np.shape}")
    k = num_classes(logits_fn, x_np.shape[1:])

    random_target = decision == "softmax" and isinstance(target, str) and target == "random"
    if key is None:
        if need_key or random_target:
            raise ValueError("key is required (random start or random target); pass "
                             "key=jax.random.key(seed)")
        keys = jax.random.split(jax.random.key(0), batch)
    else:
        keys = example_keys(key, batch)

    if decision == "sigmoid":
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not 0 <= int(output_index) < k:
            raise ValueError(f"output_index must be in [0, {k}), got {output_index}")
        if np.any((labels_np != 0) & (labels_np != 1)):
            raise ValueError("labels must be 0 or 1 for decision='sigmoid'")
        if not (target is None or (isinstance(target, str) and target == "random")):
            raise ValueError("decision='sigmoid' always flips the output (the only other "
                             f"class); target must be None or 'random', got {target!r}")
        targets = jnp.asarray(1 - labels_np, jnp.int32)
        targeted = True
    else:
        if k < 2:
            raise ValueError(f"decision='softmax' needs at least 2 classes, logits_fn gives {k}; "
                             f"use decision='sigmoid' for a single logit")
        if labels_np.min() < 0 or labels_np.max() >= k:
            raise ValueError(f"labels must be class indices in [0, {k}), got range "
                             f"[{labels_np.min()}, {labels_np.max()}]")
        if target is None:
            targets = jnp.full((batch,), -1, jnp.int32)
            targeted = False
        elif isinstance(target, str):
            if target != "random":
                raise ValueError(f"target must be None, an int, 'random' or an array, got "
                                 f"{target!r}")
            targets = _random_targets(keys, jnp.asarray(labels_np, jnp.int32), k)
            targeted = True
        else:
            t = np.asarray(target)
            if not np.issubdtype(t.dtype, np.integer) or t.ndim > 1:
                raise ValueError(f"target must be an int or an int array of shape ({batch},), "
                                 f"got dtype {t.dtype} shape {t.shape}")
            t = np.broadcast_to(t, (batch,)) if t.ndim == 0 else t
            if t.shape != (batch,):
                raise ValueError(f"target must have shape ({batch},), got {t.shape}")
            if t.min() < 0 or t.max() >= k:
                raise ValueError(f"target must be class indices in [0, {k}), got range "
                                 f"[{t.min()}, {t.max()}]")
            same = np.flatnonzero(t == labels_np)
            if same.size:
                raise ValueError(f"target equals the true label for examples {same.tolist()}; "
                                 f"a targeted attack needs a different class (drop those "
                                 f"examples, e.g. x[labels != target])")
            targets = jnp.asarray(t, jnp.int32)
            targeted = True
    return PreparedInputs(
        x=jnp.asarray(x, jnp.float32), labels=jnp.asarray(labels_np, jnp.int32),
        targets=targets, keys=_start_keys(keys), num_outputs=k, clip_min=lo, clip_max=hi,
        snr_margin=snr_margin, targeted=targeted,
    )
