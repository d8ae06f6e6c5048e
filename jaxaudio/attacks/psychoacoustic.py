"""Psychoacoustic attack: a perturbation hidden under the clean clip's frequency-masking threshold.

Two stages, after Qin et al. (ICML 2019), on any classifier ``logits_fn``:

1. an L∞-bounded adversary: :func:`jaxaudio.attacks.pgd` (radius ``eps``);
2. from that adversary, signed-gradient Adam on ``hinge + alpha · class_loss``
   (the factory :func:`jaxaudio.attacks.specs.psychoacoustic`), where the hinge
   (:func:`jaxaudio.dsp.masking.hinge_distance`) penalises the perturbation's power spectral
   density only where it exceeds the clean clip's masking threshold
   (:func:`jaxaudio.dsp.masking.masking_threshold`, computed once per clip). ``alpha`` is adapted per example every ``check_every`` steps (Qin's schedule): when
   the iterate is adversarial the weight of the hinge grows ×1.2 (``alpha /= 1.2``), when it is
   not it shrinks ×0.8 (``alpha /= 0.8``), ``alpha`` kept in ``[alpha_min, alpha_max]``. At
   every check the adversarial iterate with the smallest hinge (ties: smallest energy) is kept;
   the stage-1 adversary is the first candidate.

The masking model itself (MPEG-1 psychoacoustic model 1, as Qin et al. use it) is signal
processing and lives in :mod:`jaxaudio.dsp.masking`; its names are re-exported here.

Why stage 2 has its own small loop program: the shared loop (:mod:`jaxaudio.attacks.loop`)
carries a fixed :class:`~jaxaudio.attacks.containers.LoopState` and builds one spec for the
whole batch from scalar hyperparameters, so it cannot hold a per-example weight that changes
during the run, a per-example start (the stage-1 adversary) or a per-example threshold. The
program here (:func:`stage2_loop`) is a :class:`~jaxaudio.attacks.loop.Loop` driven by the one
driver (:func:`jaxaudio.attacks.driver.drive`); its body builds the factory's spec per example
(with that example's ``alpha``, threshold and start) and calls the shared per-example
:func:`jaxaudio.attacks.loop.step` unchanged; the result is made by the shared
:func:`jaxaudio.attacks.loop.finalize`. Only the weight schedule and the choice of the kept
iterate are new.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.attacks import driver, gradient, specs, validation
from jaxaudio.attacks.containers import AttackConfig, AttackOptions, AttackResult, Goal, LoopState
from jaxaudio.attacks.loop import Loop, finalize, init_state, step
from jaxaudio.attacks.pieces import make_decision, materialize, region_energy
from jaxaudio.dsp.masking import (  # noqa: F401  (re-exported: the masking model's names)
    HOP_LENGTH,
    N_FFT,
    REFERENCE_FLOOR,
    MaskingThreshold,
    absolute_threshold_db,
    bark,
    excess_share,
    hinge_distance,
    masking_threshold,
    masking_threshold_example,
    perturbation_psd,
    power_spectral_density,
)

__all__ = ["REFERENCE_FLOOR", "N_FFT", "HOP_LENGTH", "MaskingThreshold", "bark",
           "absolute_threshold_db", "power_spectral_density", "masking_threshold",
           "masking_threshold_example", "perturbation_psd", "hinge_distance", "excess_share",
           "stage2_loop", "psychoacoustic"]

# --------------------------------------------------------------------------------------------
# Stage 2: the adaptive-weight loop program
# --------------------------------------------------------------------------------------------


class Stage2State(NamedTuple):
    """Carry of stage 2 (leading batch axis on all but ``step``).

    Attributes:
      state: the shared per-example :class:`LoopState` (delta, optimiser state, ...).
      alpha: float32 current weight of the classification term.
      found: bool, an adversarial iterate has been kept.
      best_delta: the kept iterate's perturbation.
      best_hinge: its hinge distance (``inf`` until found).
      best_energy: its energy over the SNR region (tie-break).
      step: int32 ``()``, steps done (the same for every example: no early stopping).
    """

    state: LoopState
    alpha: jax.Array
    found: jax.Array
    best_delta: jax.Array
    best_hinge: jax.Array
    best_energy: jax.Array
    step: jax.Array


def stage2_loop(factory, options: tuple, logits_fn, x, goal: Goal, start, masking, hyper: dict,
                *, max_iterations, config: AttackConfig) -> Loop:
    """The stage-2 :class:`~jaxaudio.attacks.loop.Loop` (see the module docstring).

    ``start (batch, samples)``: the stage-1 perturbations; ``masking``: batched
    :class:`MaskingThreshold`; ``hyper``: ``alpha`` (initial), ``clip_eps``, ``learning_rate``,
    ``alpha_min``, ``alpha_max``, ``check_every`` (float32 scalars). ``finish`` returns the
    batched :class:`AttackResult` (``iterations``: filled in by the caller).
    """
    opts = dict(options)
    n_fft, hop = opts["n_fft"], opts["hop_length"]
    decision = config.decision
    fixed = {k: hyper[k] for k in ("clip_eps", "learning_rate")}
    check_every = jnp.maximum(jnp.round(hyper["check_every"]).astype(jnp.int32), 1)

    def spec_of(alpha, masking_i, start_i):
        return factory(alpha=alpha, threshold=masking_i.threshold,
                       reference=masking_i.reference, start=start_i, **fixed, **opts)

    def evaluate(xi, gi, delta, masking_i):
        x_adv = materialize(delta, xi, config)
        ok = decision.success(logits_fn(x_adv[None])[0], gi)
        d = x_adv - xi
        return (ok, hinge_distance(d, masking_i, n_fft=n_fft, hop_length=hop),
                region_energy(d, config.snr_margin))

    def keep(c: Stage2State, ok, h, e) -> Stage2State:
        better = ok & ((h < c.best_hinge) | ((h == c.best_hinge) & (e < c.best_energy)))
        pick = lambda new, old: jnp.where(better.reshape(better.shape + (1,) * (new.ndim - 1)),
                                          new, old)
        return c._replace(found=c.found | ok, best_delta=pick(c.state.delta, c.best_delta),
                          best_hinge=pick(h, c.best_hinge), best_energy=pick(e, c.best_energy))

    def init():
        alpha = jnp.full(x.shape[:1], hyper["alpha"], jnp.float32)
        state = jax.vmap(lambda xi, a, m, s: init_state(spec_of(a, m, s), xi, None,
                                                        max_iterations=max_iterations))(
            x, alpha, masking, start)
        c = Stage2State(state, alpha, jnp.zeros(x.shape[:1], bool), state.delta,
                        jnp.full(x.shape[:1], jnp.inf), jnp.full(x.shape[:1], jnp.inf),
                        jnp.zeros((), jnp.int32))
        return keep(c, *jax.vmap(evaluate)(x, goal, state.delta, masking))

    def check(c: Stage2State) -> Stage2State:
        ok, h, e = jax.vmap(evaluate)(x, goal, c.state.delta, masking)
        c = keep(c, ok, h, e)
        alpha = jnp.where(ok, c.alpha / 1.2, c.alpha / 0.8)
        return c._replace(alpha=jnp.clip(alpha, hyper["alpha_min"], hyper["alpha_max"]))

    def body(c: Stage2State) -> Stage2State:
        state = jax.vmap(lambda xi, gi, si, a, m, s: step(spec_of(a, m, s), logits_fn, xi, gi,
                                                          si, config))(
            x, goal, c.state, c.alpha, masking, start)
        c = c._replace(state=state, step=c.step + 1)
        return jax.lax.cond(c.step % check_every == 0, check, lambda c: c, c)

    def finish(c: Stage2State):
        # The last iterate is a candidate too; then the shared finalize re-evaluates exactly
        # the kept perturbation (best_energy -inf: finalize's own choice keeps it).
        c = keep(c, *jax.vmap(evaluate)(x, goal, c.state.delta, masking))
        chosen = jnp.where(c.found[:, None], c.best_delta, c.state.delta)
        state = c.state._replace(delta=chosen, best_delta=chosen, found=c.found,
                                 best_energy=jnp.full(x.shape[:1], -jnp.inf))
        return jax.vmap(lambda xi, gi, si: finalize(None, logits_fn, xi, gi, si, config))(
            x, goal, state)

    return Loop(init=init, body=body, active=lambda c: c.step < max_iterations, finish=finish)


@functools.lru_cache(maxsize=32)
def _compile_stage2(logits_fn, config: AttackConfig, factory, options: tuple, loop: str):
    def build(x, labels, targets, start, masking, hyper, max_iterations):
        return stage2_loop(factory, options, logits_fn, x, Goal(labels, targets), start,
                           masking, hyper, max_iterations=max_iterations, config=config)

    return driver.drive(build, loop)


#: Loop options the two-stage attack does not take (softmax decision on waveforms, stage 2
#: runs every step, the default bounds).
_UNSUPPORTED = ("early_stop", "decision", "threshold", "output_index", "domain", "clip_min",
                "clip_max")


def psychoacoustic(logits_fn, x, labels, *, key=None, target=None, sample_rate: int = 16000,
                   eps: float = 5e-4, stage1_learning_rate: float = 1e-5,
                   stage1_iterations: int = 500, learning_rate: float = 1e-5,
                   alpha: float = 0.1, alpha_min: float = 1e-6, alpha_max: float = 1e4,
                   check_every: int = 20, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                   start=None, start_iterations=None, options: Optional[AttackOptions] = None,
                   **loop_options) -> AttackResult:
    """Two-stage psychoacoustic attack (module docstring), untargeted or targeted, waveforms.

    Args:
      logits_fn: ``(batch, samples) -> (batch, classes)``, differentiable (softmax decision).
      x: ``(batch, samples)`` waveforms in [-1, 1] at ``sample_rate`` Hz.
      labels: int ``(batch,)`` true classes.
      key: PRNG key (stage 1's random start: stage 1 is :func:`jaxaudio.attacks.pgd` with this
        key; ``target="random"``), one key or ``(batch,)`` keys; required.
      target: ``None`` (untargeted), an int class, ``"random"`` or an int array ``(batch,)``.
      sample_rate: Hz, for the Bark scale of the masking threshold.
      eps: L∞ radius of both stages > 0 (stage 1 = :func:`jaxaudio.attacks.pgd`).
      stage1_learning_rate, stage1_iterations: stage 1's Adam step and most steps.
      learning_rate: stage 2's signed-Adam step > 0 (full scale = 1).
      alpha: initial weight of the classification term in ``hinge + alpha · class_loss``;
        adapted per example within ``[alpha_min, alpha_max]`` every ``check_every`` steps.
      n_fft, hop_length: the PSD's frame and hop in samples.
      start: instead of running stage 1, its perturbations ``(batch, samples)`` (e.g. a PGD
        run with the same settings: ``adversarial - x``), projected onto the L∞ ball;
        ``start_iterations (batch,)`` its steps to success (default 0).
      options, loop_options: the shared loop options (:class:`AttackOptions`):
        ``max_iterations`` = stage 2's steps (all run; default 200), ``quantize_16bit`` (both
        stages), ``min_samples``, ``slots`` (stage 1's refilled queue), ``loop`` (stage 2's
        driver) and ``progress`` (tqdm bars of both stages); the others must keep their
        defaults.

    Returns:
      :class:`~jaxaudio.attacks.AttackResult`; ``iterations`` = stage 1's steps to its first
      adversary (``stage1_iterations`` when it found none). An example whose stage 1 failed
      and whose stage 2 never became adversarial returns stage 2's last iterate.
    """
    opts = validation.resolve_options(options, loop_options, attack="psychoacoustic",
                                      max_iterations=200, unsupported=_UNSUPPORTED)
    max_iterations, quantize_16bit = opts.max_iterations, opts.quantize_16bit
    min_samples, slots, progress = opts.min_samples, opts.slots, opts.progress
    check = validation.check_positive
    hyper = dict(alpha=check("alpha", alpha), clip_eps=check("eps", eps),
                 learning_rate=check("learning_rate", learning_rate),
                 alpha_min=check("alpha_min", alpha_min), alpha_max=check("alpha_max", alpha_max),
                 check_every=float(validation.check_max_iterations(check_every)))
    if not alpha_min <= alpha <= alpha_max:
        raise ValueError(f"need alpha_min <= alpha <= alpha_max, got {alpha_min}, {alpha}, "
                         f"{alpha_max}")
    if int(n_fft) != n_fft or n_fft < 4 or int(hop_length) != hop_length or hop_length < 1:
        raise ValueError(f"n_fft must be an integer >= 4 and hop_length >= 1, got {n_fft}, "
                         f"{hop_length}")
    if int(sample_rate) != sample_rate or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    prepared = validation.prepare_inputs(logits_fn, x, labels, target=target, key=key,
                                         domain="waveform", min_samples=min_samples,
                                         need_key=True)
    if start is None:
        # The caller's per-example keys: stage 1 is exactly attacks.pgd(..., key=key).
        keys = validation.example_keys(key, prepared.x.shape[0])
        first = gradient.pgd(logits_fn, prepared.x, prepared.labels, key=keys,
                             eps=eps, learning_rate=stage1_learning_rate,
                             max_iterations=stage1_iterations,
                             target=prepared.targets if prepared.targeted else None,
                             quantize_16bit=quantize_16bit, min_samples=min_samples,
                             slots=slots,
                             progress=None if progress is None else f"{progress} stage 1")
        start, start_iterations = first.perturbation, first.iterations
    else:
        start = np.asarray(start, np.float32)
        if start.shape != tuple(prepared.x.shape) or not np.all(np.isfinite(start)):
            raise ValueError(f"start must be finite perturbations of the shape of x "
                             f"{tuple(prepared.x.shape)}, got shape {start.shape}")
        start_iterations = np.zeros(start.shape[0], np.int32) if start_iterations is None \
            else np.asarray(start_iterations, np.int32).reshape(start.shape[0])
    config = AttackConfig(decision=make_decision(targeted=prepared.targeted), early_stop=False,
                          clip_min=prepared.clip_min, clip_max=prepared.clip_max,
                          quantize_16bit=bool(quantize_16bit), snr_margin=prepared.snr_margin)
    masking = masking_threshold(prepared.x, sample_rate=int(sample_rate), n_fft=int(n_fft),
                                hop_length=int(hop_length))
    mode = driver.check_loop(opts.loop)
    static = (("hop_length", int(hop_length)), ("n_fft", int(n_fft)))
    fn = validation.cached_call(_compile_stage2, logits_fn, config, specs.psychoacoustic,
                                static, mode)
    args = (prepared.x, prepared.labels, prepared.targets, jnp.asarray(start), masking,
            driver.as_hyper(**hyper), jnp.asarray(max_iterations, jnp.int32))
    res = driver.run_with_progress(fn, args, None if progress is None else f"{progress} stage 2",
                                   total=max_iterations)
    return res._replace(iterations=jnp.asarray(start_iterations, jnp.int32))
