"""Psychoacoustic attack: a perturbation hidden under the clean clip's frequency-masking threshold.

Two stages, after Qin et al. (ICML 2019), on any classifier ``logits_fn``:

1. an L∞-bounded adversary: :func:`jaxaudio.attacks.pgd` (radius ``eps``);
2. from that adversary, signed-gradient Adam on ``hinge + alpha · class_loss``
   (the factory :func:`jaxaudio.attacks.specs.psychoacoustic`), where the hinge
   (:func:`hinge_distance`) penalises the perturbation's power spectral density only where it
   exceeds the clean clip's masking threshold (:func:`masking_threshold`, computed once per
   clip). ``alpha`` is adapted per example every ``check_every`` steps (Qin's schedule): when
   the iterate is adversarial the weight of the hinge grows ×1.2 (``alpha /= 1.2``), when it is
   not it shrinks ×0.8 (``alpha /= 0.8``), ``alpha`` kept in ``[alpha_min, alpha_max]``. At
   every check the adversarial iterate with the smallest hinge (ties: smallest energy) is kept;
   the stage-1 adversary is the first candidate.

The masking threshold follows the MPEG-1 psychoacoustic model 1 as Qin et al. use it: a centred
STFT with a periodic Hann window (scaled by sqrt(8/3)), the power spectral density normalised
so that the clip's loudest bin is 96 dB SPL, tonal maskers = local maxima of the PSD (power of
the bin and its two neighbours), kept only above the absolute threshold of hearing and when no
other masker within ±0.5 Bark is stronger (the standard decimation rule, written
vectorised), the two-slope spreading function (27 dB/Bark below the masker,
``27 - 0.37 max(P - 40, 0)`` dB/Bark above it) with offset ``-6.025 - 0.275 z``, and the global
threshold = sum of the individual thresholds and the absolute threshold of hearing (in power).
Pure ``jax.numpy``, ``jit``/``vmap``-safe, finite on silence (the normalisation reference has a
floor of :data:`REFERENCE_FLOOR`).

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
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio import frontend
from jaxaudio.attacks import driver, validation
from jaxaudio.attacks.containers import AttackConfig, AttackResult, Goal, LoopState
from jaxaudio.attacks.loop import Loop, finalize, init_state, step
from jaxaudio.attacks.pieces import config_decision, materialize, region_energy

__all__ = ["REFERENCE_FLOOR", "N_FFT", "HOP_LENGTH", "MaskingThreshold", "bark",
           "absolute_threshold_db", "power_spectral_density", "masking_threshold",
           "masking_threshold_example", "perturbation_psd", "hinge_distance", "excess_share",
           "stage2_loop", "psychoacoustic"]

#: Frame and hop of the PSD (Qin et al.: 2048 / 512 samples at 16 kHz).
N_FFT, HOP_LENGTH = 2048, 512
#: Floor of the normalisation reference (peak bin power, full scale = 1): about -100 dB, so a
#: silent clip gets a finite threshold (the absolute threshold of hearing alone).
REFERENCE_FLOOR = 1e-10
_SPL_PEAK_DB = 96.0
_POWER_FLOOR = 1e-30
_HANN_SCALE = math.sqrt(8.0 / 3.0)


class MaskingThreshold(NamedTuple):
    """The masking threshold of a clip (batched: a leading axis on both).

    Attributes:
      threshold: float32 ``(frames, bins)`` global masking threshold, linear power in the
        normalised units of :func:`power_spectral_density` (10^9.6 = the clip's loudest bin).
      reference: float32 ``()`` the clip's peak bin power (absolute, full scale = 1, floored at
        :data:`REFERENCE_FLOOR`): a perturbation's PSD is normalised by it
        (:func:`perturbation_psd`).
    """

    threshold: jax.Array
    reference: jax.Array


def bark(f):
    """Bark scale of frequencies ``f`` in Hz: ``13 atan(0.00076 f) + 3.5 atan((f / 7500)²)``."""
    f = np.asarray(f, np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def absolute_threshold_db(f):
    """Absolute threshold of hearing in dB SPL at ``f`` Hz (Terhardt, minus 12 dB as in Qin et
    al.); ``-inf`` (no threshold) below 1 Bark."""
    f = np.asarray(f, np.float64)
    khz = np.maximum(f, 1.0) * 1e-3
    ath = (3.64 * khz ** -0.8 - 6.5 * np.exp(-0.6 * (khz - 3.3) ** 2) + 1e-3 * khz ** 4 - 12.0)
    return np.where(bark(f) > 1.0, ath, -np.inf)


class _Tables(NamedTuple):
    bark: np.ndarray       # (bins,)
    ath_db: np.ndarray     # (bins,)
    ath_power: np.ndarray  # (bins,)
    lo: np.ndarray         # (bins,) first bin within 0.5 Bark
    hi: np.ndarray         # (bins,) last bin within 0.5 Bark
    levels: int            # sparse-table levels for the window maximum
    maskers: int           # most maskers a frame can keep


@functools.lru_cache(maxsize=None)
def _tables(sample_rate: int, n_fft: int) -> _Tables:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    z = bark(freqs)
    ath = absolute_threshold_db(freqs)
    lo = np.searchsorted(z, z - 0.5, side="right")  # first j with z[j] > z[k] - 0.5
    hi = np.searchsorted(z, z + 0.5, side="left") - 1  # last j with z[j] < z[k] + 0.5
    width = int((hi - lo + 1).max())
    # Kept maskers are the strongest within ±0.5 Bark: at least 0.5 Bark apart (ties aside).
    maskers = min(len(freqs), int(math.ceil(z[-1] / 0.5)) + 2)
    with np.errstate(over="ignore"):
        power = np.where(np.isfinite(ath), 10.0 ** (np.where(np.isfinite(ath), ath, 0) / 10), 0)
    return _Tables(z.astype(np.float32), ath.astype(np.float32), power.astype(np.float32),
                   lo.astype(np.int32), hi.astype(np.int32),
                   max(1, int(math.floor(math.log2(width))) + 1), maskers)


def _window_max(values, t: _Tables):
    """``max(values[lo_k : hi_k + 1])`` for every bin ``k`` (a sparse table; last axis bins)."""
    table, n = [values], values.shape[-1]
    for j in range(1, t.levels):
        prev, half = table[-1], 2 ** (j - 1)
        shifted = jnp.concatenate(
            [prev[..., half:], jnp.full(prev.shape[:-1] + (half,), -jnp.inf, prev.dtype)], -1)
        table.append(jnp.maximum(prev, shifted))
    length = t.hi - t.lo + 1
    level = np.floor(np.log2(length)).astype(np.int32)
    stacked = jnp.stack(table)  # (levels, ..., bins)
    first = stacked[level, ..., t.lo]  # (bins, ...)
    second = stacked[level, ..., np.minimum(t.hi - 2 ** level + 1, n - 1)]
    return jnp.moveaxis(jnp.maximum(first, second), 0, -1)


def power_spectral_density(wave, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """Absolute PSD of one waveform: ``(sqrt(8/3) |STFT| / n_fft)²`` (centred, zero-padded,
    periodic Hann; :func:`jaxaudio.frontend.stft`). ``wave (samples,)`` -> ``(frames, bins)``."""
    spec = frontend.stft(wave, n_fft=n_fft, hop_length=hop_length, pad_mode="constant")
    z = _HANN_SCALE * jnp.abs(spec) / n_fft
    return jnp.swapaxes(z * z, -1, -2)


def _frame_threshold(psd_db, t: _Tables):
    """Global masking threshold (linear power) of one frame's normalised PSD in dB ``(bins,)``."""
    prev, post = psd_db[:-2], psd_db[2:]
    mid = psd_db[1:-1]
    peak = jnp.pad((mid > prev) & (mid > post), (1, 1))  # boundary bins are no maskers
    p = 10.0 ** (psd_db / 10.0)
    p_tm = 10.0 * jnp.log10(jnp.pad(p[:-2] + p[1:-1] + p[2:], (1, 1)) + _POWER_FLOOR)
    candidate = jnp.where(peak & (p_tm >= t.ath_db), p_tm, -jnp.inf)
    keep = jnp.isfinite(candidate) & (candidate >= _window_max(candidate, t))
    level, index = jax.lax.top_k(jnp.where(keep, p_tm, -jnp.inf), t.maskers)
    valid = jnp.isfinite(level)
    level = jnp.where(valid, level, 0.0)
    z_m = jnp.asarray(t.bark)[index]
    dz = jnp.asarray(t.bark)[None, :] - z_m[:, None]  # (maskers, bins)
    upper = -27.0 + 0.37 * jnp.maximum(level - 40.0, 0.0)
    spread = jnp.where(dz > 0, upper[:, None] * dz, 27.0 * dz)
    individual = level[:, None] + (-6.025 - 0.275 * z_m)[:, None] + spread
    masked = jnp.where(valid[:, None], 10.0 ** (individual / 10.0), 0.0)
    return jnp.sum(masked, axis=0) + jnp.asarray(t.ath_power)


@functools.partial(jax.jit, static_argnames=("sample_rate", "n_fft", "hop_length"))
def masking_threshold_example(wave, *, sample_rate: int, n_fft: int = N_FFT,
                              hop_length: int = HOP_LENGTH) -> MaskingThreshold:
    """The masking threshold of one clip ``wave (samples,)`` in [-1, 1] (see module docstring).

    Returns a :class:`MaskingThreshold` with ``threshold (frames, bins)``, frames ``1 +
    samples // hop_length``, bins ``n_fft // 2 + 1``. No gradient flows through it. Jitted
    (``sample_rate``, ``n_fft``, ``hop_length`` static).
    """
    t = _tables(int(sample_rate), int(n_fft))
    psd = power_spectral_density(jax.lax.stop_gradient(jnp.asarray(wave, jnp.float32)),
                                 n_fft=n_fft, hop_length=hop_length)
    reference = jnp.maximum(jnp.max(psd), REFERENCE_FLOOR)
    psd_db = _SPL_PEAK_DB + 10.0 * jnp.log10(psd / reference + _POWER_FLOOR)
    return MaskingThreshold(jax.vmap(lambda f: _frame_threshold(f, t))(psd_db), reference)


@functools.partial(jax.jit, static_argnames=("sample_rate", "n_fft", "hop_length"))
def masking_threshold(x, *, sample_rate: int, n_fft: int = N_FFT,
                      hop_length: int = HOP_LENGTH) -> MaskingThreshold:
    """:func:`masking_threshold_example` of every clip of ``x (batch, samples)`` (vmapped)."""
    return jax.vmap(functools.partial(masking_threshold_example, sample_rate=int(sample_rate),
                                      n_fft=int(n_fft), hop_length=int(hop_length)))(x)


def perturbation_psd(delta, reference, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """PSD of one perturbation ``delta (samples,)`` in the clip's normalised units:
    ``10^9.6 · psd(delta) / reference`` -> ``(frames, bins)``."""
    return (10.0 ** (_SPL_PEAK_DB / 10.0)) * power_spectral_density(
        delta, n_fft=n_fft, hop_length=hop_length) / reference


def hinge_distance(delta, masking: MaskingThreshold, *, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH):
    """Mean over frames and bins of ``relu(psd(delta) - threshold)`` for one example: zero when
    the perturbation sits below the clean clip's masking threshold everywhere."""
    psd = perturbation_psd(delta, masking.reference, n_fft=n_fft, hop_length=hop_length)
    return jnp.mean(jax.nn.relu(psd - masking.threshold))


def excess_share(delta, masking: MaskingThreshold, *, n_fft: int = N_FFT,
                 hop_length: int = HOP_LENGTH):
    """Share of one perturbation's PSD energy above the masking threshold:
    ``sum relu(psd - threshold) / sum psd`` in [0, 1] (0 for a zero perturbation)."""
    psd = perturbation_psd(delta, masking.reference, n_fft=n_fft, hop_length=hop_length)
    total = jnp.sum(psd)
    above = jnp.sum(jax.nn.relu(psd - masking.threshold))
    return jnp.where(total > 0, above / jnp.where(total > 0, total, 1.0), 0.0)


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
    decision = config_decision(config)
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


def psychoacoustic(logits_fn, x, labels, *, key, target=None, sample_rate: int = 16000,
                   eps: float = 5e-4, stage1_learning_rate: float = 1e-5,
                   stage1_iterations: int = 500, learning_rate: float = 1e-5,
                   max_iterations: int = 200, alpha: float = 0.1, alpha_min: float = 1e-6,
                   alpha_max: float = 1e4, check_every: int = 20, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH, quantize_16bit: bool = False,
                   min_samples: Optional[int] = None, slots: Optional[int] = None,
                   progress: Optional[str] = None, loop: Optional[str] = None,
                   start=None, start_iterations=None) -> AttackResult:
    """Two-stage psychoacoustic attack (module docstring), untargeted or targeted, waveforms.

    Args:
      logits_fn: ``(batch, samples) -> (batch, classes)``, differentiable (softmax decision).
      x: ``(batch, samples)`` waveforms in [-1, 1] at ``sample_rate`` Hz.
      labels: int ``(batch,)`` true classes.
      key: PRNG key (stage 1's random start: stage 1 is :func:`jaxaudio.attacks.pgd` with this
        key; ``target="random"``), one key or ``(batch,)`` keys.
      target: ``None`` (untargeted), an int class, ``"random"`` or an int array ``(batch,)``.
      sample_rate: Hz, for the Bark scale of the masking threshold.
      eps: L∞ radius of both stages > 0 (stage 1 = :func:`jaxaudio.attacks.pgd`).
      stage1_learning_rate, stage1_iterations: stage 1's Adam step and most steps.
      learning_rate: stage 2's signed-Adam step > 0 (full scale = 1).
      max_iterations: stage 2's steps (all run) >= 1.
      alpha: initial weight of the classification term in ``hinge + alpha · class_loss``;
        adapted per example within ``[alpha_min, alpha_max]`` every ``check_every`` steps.
      n_fft, hop_length: the PSD's frame and hop in samples.
      quantize_16bit: keep the adversarial on the 16-bit PCM grid (both stages).
      min_samples: shortest accepted clip (default 2048).
      slots: stage 1's refilled queue (see :func:`jaxaudio.attacks.pgd`).
      progress: a description: tqdm bars of both stages' steps.
      loop: ``"device"``, ``"host"`` or ``None`` (:func:`jaxaudio.attacks.driver.default_loop`).
      start: instead of running stage 1, its perturbations ``(batch, samples)`` (e.g. a PGD
        run with the same settings: ``adversarial - x``), projected onto the L∞ ball;
        ``start_iterations (batch,)`` its steps to success (default 0).

    Returns:
      :class:`~jaxaudio.attacks.AttackResult`; ``iterations`` = stage 1's steps to its first
      adversary (``stage1_iterations`` when it found none). An example whose stage 1 failed
      and whose stage 2 never became adversarial returns stage 2's last iterate.
    """
    from jaxaudio.attacks import gradient, specs

    check = validation.check_positive
    hyper = dict(alpha=check("alpha", alpha), clip_eps=check("eps", eps),
                 learning_rate=check("learning_rate", learning_rate),
                 alpha_min=check("alpha_min", alpha_min), alpha_max=check("alpha_max", alpha_max),
                 check_every=float(validation.check_max_iterations(check_every)))
    if not alpha_min <= alpha <= alpha_max:
        raise ValueError(f"need alpha_min <= alpha <= alpha_max, got {alpha_min}, {alpha}, "
                         f"{alpha_max}")
    max_iterations = validation.check_max_iterations(max_iterations)
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
    config = AttackConfig(targeted=prepared.targeted, early_stop=False,
                          clip_min=prepared.clip_min, clip_max=prepared.clip_max,
                          quantize_16bit=bool(quantize_16bit), snr_margin=prepared.snr_margin)
    masking = masking_threshold(prepared.x, sample_rate=int(sample_rate), n_fft=int(n_fft),
                                hop_length=int(hop_length))
    mode = driver.default_loop() if loop is None else loop
    if mode not in driver.LOOP_MODES:
        raise ValueError(f"loop must be one of {driver.LOOP_MODES} or None, got {loop!r}")
    options = (("hop_length", int(hop_length)), ("n_fft", int(n_fft)))
    fn = validation.cached_call(_compile_stage2, logits_fn, config, specs.psychoacoustic,
                                options, mode)
    args = (prepared.x, prepared.labels, prepared.targets, jnp.asarray(start), masking,
            driver.as_hyper(**hyper), jnp.asarray(max_iterations, jnp.int32))
    if progress is not None and isinstance(fn, driver.HostLoop):
        from tqdm.auto import tqdm

        with tqdm(desc=f"{progress} stage 2", total=max_iterations, unit="step",
                  leave=False) as bar:
            res = fn(*args, on_step=bar.update)
    else:
        res = fn(*args)
    return res._replace(iterations=jnp.asarray(start_iterations, jnp.int32))
