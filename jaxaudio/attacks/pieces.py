"""Pieces attacks are composed of: decisions, optimisers, projections, starts, the 16-bit grid
and the SNR. All pure ``jax.numpy``, safe under ``jit``/``vmap``/``grad``; numeric arguments
may be traced.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxaudio import metrics
from jaxaudio.attacks import losses
from jaxaudio.attacks.containers import Array, AttackConfig, Decision
from jaxaudio.data.audio import PCM16_MAX_INDEX, PCM16_MIN_INDEX, PCM16_SCALE

__all__ = [
    "DECISIONS", "make_decision", "sign_gradient", "signed_adam",
    "linf_projection", "l2_projection", "snr_l2_projection", "zero_start", "uniform_start",
    "uniform_l2_start", "quantize_16bit", "round_to_16bit", "materialize", "region_energy",
    "snr_db_example", "snr_db",
]

DECISIONS = ("softmax", "sigmoid", "multilabel")


# --------------------------------------------------------------------------------------------
# Decisions (classification term + stopping rule)
# --------------------------------------------------------------------------------------------


def make_decision(*, decision: str = "softmax", targeted: bool = False, threshold: float = 0.5,
                  output_index: int = 0) -> Decision:
    """Build the classification loss and success rule: the :class:`Decision` value the loop
    takes (:attr:`AttackConfig.decision`).

    Cached: equal settings return the same object, so they share one compiled attack.

    * ``"softmax"``, untargeted: loss ``-CE(logits, label)`` (ascend the true class's
      cross-entropy), success ``argmax != label``.
    * ``"softmax"``, targeted: loss ``CE(logits, target)``, success ``argmax == target``.
    * ``"sigmoid"``: output ``logits[output_index]``; prediction ``sigmoid(z) > threshold``;
      loss = binary CE towards the flipped label ``1 - label``; success ``prediction != label``.
    * ``"multilabel"`` (a tagger, :mod:`jaxaudio.attacks.multilabel`): prediction the tag set
      ``sigmoid(logits) > threshold`` ``(C,)``; ``goal.label`` the tag set attacked ``(C,)``
      0/1, ``goal.target`` per tag 1 (must be on), 0 (must be off) or -1 (free). Targeted:
      loss = mean binary CE of the constrained tags towards their target, success = every
      constrained tag as required. Untargeted ("change the tag set"): loss = a soft minimum
      over tags of the margin ``±(logit - logit(threshold))`` that keeps the tag as in
      ``label`` (pushes the easiest tag across), success = the tag set differs from ``label``.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    if decision == "softmax":  # threshold and output index play no part
        threshold, output_index = 0.5, 0
    return _make_decision(decision, bool(targeted), float(threshold), int(output_index))


@functools.lru_cache(maxsize=None)
def _make_decision(decision: str, targeted: bool, threshold: float, output_index: int):
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

    return _multilabel_decision(targeted=targeted, threshold=threshold)


def _multilabel_decision(*, targeted: bool, threshold) -> Decision:
    """The ``"multilabel"`` decision of :func:`make_decision`."""
    def logit_of_threshold():  # computed where it is used (inside the traced loop)
        return jnp.log(threshold) - jnp.log1p(-threshold)

    def predict(logits):
        return (logits > logit_of_threshold()).astype(jnp.int32)

    def probabilities(logits):
        return jax.nn.sigmoid(logits)

    if targeted:
        def loss(logits, goal):
            care = (goal.target >= 0).astype(logits.dtype)
            want = jnp.clip(goal.target, 0, 1).astype(logits.dtype)
            per_tag = optax.sigmoid_binary_cross_entropy(logits - logit_of_threshold(), want)
            return jnp.sum(care * per_tag) / jnp.maximum(jnp.sum(care), 1.0)

        def success(logits, goal):
            return jnp.all((goal.target < 0) | (predict(logits) == goal.target))
    else:
        def loss(logits, goal):
            keep = (2 * goal.label - 1).astype(logits.dtype) * (logits - logit_of_threshold())
            return -jax.nn.logsumexp(-keep)  # soft minimum of the margins

        def success(logits, goal):
            return jnp.any(predict(logits) != goal.label)
    return Decision(loss, success, predict, probabilities)


# --------------------------------------------------------------------------------------------
# Optimisers, projections, starts
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


def l2_projection(radius) -> Callable[[Array, Array], Array]:
    """Project ``delta`` onto the L2 ball of ``radius`` (``optax.projections``)."""
    def project(delta, x):
        del x
        return optax.projections.projection_l2_ball(delta, radius)

    return project


def snr_l2_projection(snr_db_budget, *, margin: int) -> Callable[[Array, Array], Array]:
    """Project ``delta`` onto the L2 ball of radius ``||x_region|| · 10^(-snr_db/20)``.

    ``x_region`` is the SNR region of ``x`` (:func:`snr_db_example`). Since the whole ``delta``
    is bounded by that radius, the SNR over the region is at least ``snr_db_budget``.
    """
    def project(delta, x):
        radius = jnp.sqrt(region_energy(x, margin)) * 10.0 ** (-snr_db_budget / 20.0)
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


def uniform_l2_start(radius) -> Callable[[Array, Array], Array]:
    """Uniform random start in the L2 ball of ``radius`` (normal direction, radius
    ``radius · u^(1/n)``), drawn from the example's key."""
    def init_delta(x, key):
        k_dir, k_len = jax.random.split(key)
        direction = jax.random.normal(k_dir, x.shape, jnp.float32)
        length = radius * jax.random.uniform(k_len, (), jnp.float32) ** (1.0 / x.size)
        return direction * (length / jnp.maximum(jnp.linalg.norm(direction), 1e-30))

    return init_delta


# --------------------------------------------------------------------------------------------
# From delta to the evaluated adversarial: value bounds and the 16-bit grid
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


def region_energy(a, margin: int):
    """``sum(a²)`` over the SNR region of one example."""
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
    (docs/studies.md §1: 2048 samples), unless the clip has at most ``2 * margin`` samples, in which
    case the whole clip is used. Examples with more than one axis (spectrograms) always use all
    elements. Returns float32 ``(batch,)``. Same values as :func:`jaxaudio.metrics.snr_db`
    (which it calls), in jax arrays.
    """
    return jax.vmap(functools.partial(snr_db_example, margin=margin))(x, x_adv)
