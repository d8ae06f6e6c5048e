"""Gradient attacks: FGSM, PGD (L∞, L2), Carlini & Wagner and multi-scale C&W (docs/studies.md §1).

Every attack is a factory of :mod:`jaxaudio.attacks.specs` (objective + optax optimiser +
projection + start, its hyperparameters the factory's keyword arguments) run by the shared loop
(:mod:`jaxaudio.attacks.loop`, :mod:`jaxaudio.attacks.driver`); the functions here only
validate inputs and hyperparameters and call the cached compiled core.

``logits_fn(x) -> (batch, num_outputs)`` is any differentiable function, typically a Flax model
applied in eval mode and closed over its variables::

    logits_fn = jax.jit(lambda w: model.apply(variables, w, train=False))
    result = pgd(logits_fn, waves, labels, key=jax.random.key(0))

Pass the *same* ``logits_fn`` object to repeated calls: compiled attacks are cached per
``(logits_fn, static options)``. Numeric hyperparameters (``eps``, ``learning_rate``, ``alpha``,
``snr_db``, ``max_iterations``) are traced, so changing them does not recompile.

Domains. ``domain="waveform"`` (default): ``x`` is ``(batch, samples)`` in [-1, 1], the SNR leaves
out the first/last 2048 samples, clips need ``min_samples`` samples. ``domain="spectrogram"``:
``x`` is any ``(batch, ...)`` input — e.g. the front-end's output, attacked with
``logits_fn = lambda spec: model_on_features(spec)`` — unbounded unless ``clip_min``/``clip_max``
are given, SNR over all elements.

Decisions. ``decision="softmax"`` (argmax over classes) or ``decision="sigmoid"``: output
``output_index`` is on when ``sigmoid(logit) > threshold``; ``labels`` are then 0/1 and the
attack flips them (binary cross-entropy towards ``1 - label``).

Success, untargeted: ``argmax != label``. To attack "the prediction changes" rather than
"misclassified", pass the model's clean predictions as ``labels``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from jaxaudio.attacks import driver, losses, specs, validation
from jaxaudio.attacks.containers import AttackConfig, AttackResult, SweepResult
from jaxaudio.attacks.validation import check_max_iterations, check_positive, check_slots

__all__ = ["fgsm", "fgsm_sweep", "pgd", "pgd_l2", "carlini_wagner",
           "multiscale_carlini_wagner"]


def _run(factory, logits_fn, x, labels, *, hyper, options=None, max_iterations=1,
         need_key=False, target=None, key=None, early_stop=True, decision="softmax",
         threshold=0.5, output_index=0, domain="waveform", clip_min=None, clip_max=None,
         quantize_16bit=False, min_samples=None, sweep=False, slots=None, progress=None):
    """Validate the shared options and inputs, compile (cached) and run ``factory``.

    ``progress``: a description; shows a tqdm bar of loop steps (host loop; on the device loop
    the bar completes when the single compiled call returns).
    """
    if quantize_16bit and domain != "waveform":
        raise ValueError("quantize_16bit applies to waveforms (domain='waveform') only")
    slots = check_slots(slots)
    prepared = validation.prepare_inputs(
        logits_fn, x, labels, target=target, key=key, decision=decision,
        output_index=output_index, domain=domain, min_samples=min_samples, clip_min=clip_min,
        clip_max=clip_max, threshold=threshold, need_key=need_key,
    )
    config = AttackConfig(
        targeted=prepared.targeted, decision=decision, threshold=float(threshold),
        output_index=int(output_index), early_stop=bool(early_stop),
        clip_min=prepared.clip_min, clip_max=prepared.clip_max,
        quantize_16bit=bool(quantize_16bit), snr_margin=prepared.snr_margin,
    )
    options = tuple(sorted((options or {}).items()))
    fn = driver.compile_attack(logits_fn, config, factory, options, sweep, slots)
    args = (prepared.x, prepared.labels, prepared.targets, prepared.keys,
            driver.as_hyper(**hyper), jnp.asarray(max_iterations, jnp.int32))
    if progress is None:
        out = fn(*args)
    else:
        from tqdm.auto import tqdm

        with tqdm(desc=str(progress), unit="step", leave=False) as bar:
            out = fn(*args, on_step=bar.update) if isinstance(fn, driver.HostLoop) else fn(*args)
    return out if slots is None else out[0]


# --------------------------------------------------------------------------------------------
# Public attacks
# --------------------------------------------------------------------------------------------


def fgsm(logits_fn, x, labels, *, eps: float = 0.1, target=None, key=None,
         early_stop: bool = True, decision: str = "softmax", threshold: float = 0.5,
         output_index: int = 0, domain: str = "waveform", clip_min: Optional[float] = None,
         clip_max: Optional[float] = None, quantize_16bit: bool = False,
         min_samples: Optional[int] = None) -> AttackResult:
    """Fast gradient sign method: ``x_adv = clip(x + eps · sign(∇ loss), clip_min, clip_max)``.

    Untargeted: ascend the cross-entropy of ``labels``; targeted: descend that of ``target``.

    Args:
      logits_fn: ``(batch, ...) -> (batch, num_outputs)``, differentiable.
      x: ``(batch, samples)`` waveforms in [-1, 1] (or any ``(batch, ...)`` with
        ``domain="spectrogram"``).
      labels: int ``(batch,)`` true classes (0/1 for ``decision="sigmoid"``).
      eps: step size > 0 (docs/studies.md §1: 0.1).
      target: ``None``, an int class, ``"random"`` (needs ``key``) or an int array ``(batch,)``.
      key: PRNG key (only for ``target="random"``); one key or ``(batch,)`` keys.
      early_stop: leave examples that are already adversarial unchanged (``iterations == 0``).
      decision, threshold, output_index: see module docstring.
      domain: ``"waveform"`` or ``"spectrogram"``.
      clip_min, clip_max: value bounds; ``None`` = domain default ([-1, 1] for waveforms,
        unbounded otherwise); ``±inf`` unbounds.
      quantize_16bit: return an adversarial on the 16-bit PCM grid.
      min_samples: shortest accepted waveform (default 2048).

    Returns:
      :class:`~jaxaudio.attacks.AttackResult`.
    """
    return _run(specs.fgsm, logits_fn, x, labels, hyper=dict(eps=check_positive("eps", eps)),
                target=target, key=key, decision=decision, threshold=threshold,
                output_index=output_index, domain=domain, clip_min=clip_min, clip_max=clip_max,
                quantize_16bit=quantize_16bit, min_samples=min_samples, early_stop=early_stop)


def fgsm_sweep(logits_fn, x, labels, *, epsilons, target=None, key=None,
               early_stop: bool = True, decision: str = "softmax", threshold: float = 0.5,
               output_index: int = 0, domain: str = "waveform",
               clip_min: Optional[float] = None, clip_max: Optional[float] = None,
               quantize_16bit: bool = False,
               min_samples: Optional[int] = None) -> SweepResult:
    """FGSM for every step size in ``epsilons`` in one compiled call (vmapped over eps).

    Args:
      epsilons: ``(num_eps,)`` step sizes, all > 0.
      (others as :func:`fgsm`)

    Returns:
      :class:`~jaxaudio.attacks.SweepResult` with ``success``/``snr_db``/
      ``adversarial_prediction`` of shape ``(num_eps, batch)``. Adversarials are not returned
      (``num_eps × batch × samples`` would be large); rerun :func:`fgsm` for a chosen eps.
    """
    eps = np.asarray(epsilons, dtype=np.float64)
    if eps.ndim != 1 or eps.size == 0:
        raise ValueError(f"epsilons must be a non-empty 1-D array, got shape {eps.shape}")
    for e in eps:
        check_positive("every entry of epsilons", e)
    return _run(specs.fgsm, logits_fn, x, labels, hyper=dict(eps=jnp.asarray(eps, jnp.float32)),
                target=target, key=key, decision=decision, threshold=threshold,
                output_index=output_index, domain=domain, clip_min=clip_min, clip_max=clip_max,
                quantize_16bit=quantize_16bit, min_samples=min_samples, early_stop=early_stop,
                sweep=True)


def pgd(logits_fn, x, labels, *, key, eps: float = 5e-4, learning_rate: float = 1e-5,
        max_iterations: int = 500, snr_db: Optional[float] = None, random_start: bool = True,
        target=None, early_stop: bool = True, decision: str = "softmax",
        threshold: float = 0.5, output_index: int = 0, domain: str = "waveform",
        clip_min: Optional[float] = None, clip_max: Optional[float] = None,
        quantize_16bit: bool = False, min_samples: Optional[int] = None,
        slots: Optional[int] = None, progress: Optional[str] = None,
        step: str = "signed_adam") -> AttackResult:
    """Projected gradient descent with signed-gradient Adam (the paper's "PGDn").

    Uniform random start in ``[-eps, eps]``; each step ascends the cross-entropy of the true
    class (targeted: descends that of ``target``) with Adam on the sign of the gradient, then
    projects ``delta`` onto the L∞ ball of radius ``eps``; ``x_adv = clip(x + delta, -1, 1)``.
    Each example stops as soon as it is adversarial (``early_stop``).

    Args:
      key: PRNG key for the random start (and ``target="random"``): one key, split per example,
        or a batch of keys (example ``i`` alone with ``key[i]`` reproduces the batch result).
      eps: L∞ radius > 0 (default 5e-4); also the random-start radius.
      learning_rate: Adam step > 0 (default 1e-5).
      max_iterations: most steps, >= 1 (default 500).
      snr_db: instead of the L∞ ball, an L2 ball of radius ``||x|| · 10^(-snr_db/20)`` per example
        (``||x||`` over the SNR region), so the result's ``snr_db >= snr_db`` ("at least 40 dB").
        With ``quantize_16bit`` this holds exactly when ``x`` is on the 16-bit grid.
      random_start: set False to start from ``delta = 0``.
      step: ``"signed_adam"`` (default, the paper's) or ``"sign"``: the classic fixed step
        ``learning_rate · sign(gradient)`` of Madry et al. (Foolbox's ``LinfPGD``), which moves
        by the full step every iteration where Adam's moments shrink it when the gradient's
        sign flips (``benchmarks/attack_throughput.py`` compares them at equal steps).
      slots: with early stopping, run the batch as a queue through this many parallel slots:
        a slot whose example has finished is refilled with the next waiting example inside the
        compiled loop (:func:`jaxaudio.attacks.core.attack_queue`), so finished examples do
        not idle until the slowest one is done. Same per-example results; ``None`` (default)
        runs the whole batch at once.
      progress: a description to show a tqdm bar of loop steps (``None``: no bar).
      (others as :func:`fgsm`)

    With ``early_stop=False`` all ``max_iterations`` steps run; ``iterations`` is still the first
    success, and the returned adversarial is the successful iterate with the highest SNR (else
    the last iterate).
    """
    hyper = dict(eps=check_positive("eps", eps),
                 learning_rate=check_positive("learning_rate", learning_rate))
    max_iterations = check_max_iterations(max_iterations)
    slots = check_slots(slots)
    if step not in specs.STEPS:
        raise ValueError(f"step must be one of {specs.STEPS}, got {step!r}")
    options = dict(norm="linf", random_start=bool(random_start))
    if step != "signed_adam":  # the default stays out of the options: one compiled program
        options["step"] = step
    if snr_db is not None:
        hyper["snr_db"] = validation.check_finite("snr_db", snr_db, "a finite number of dB or None")
        options.update(norm="snr_l2", snr_margin=validation.default_snr_margin(domain))
    return _run(specs.pgd, logits_fn, x, labels, hyper=hyper, options=options,
                max_iterations=max_iterations, need_key=bool(random_start), target=target,
                key=key, decision=decision, threshold=threshold, output_index=output_index,
                domain=domain, clip_min=clip_min, clip_max=clip_max,
                quantize_16bit=quantize_16bit, min_samples=min_samples, early_stop=early_stop,
                slots=slots, progress=progress)


def pgd_l2(logits_fn, x, labels, *, key, eps: float = 0.1, learning_rate: float = 1e-5,
           max_iterations: int = 500, random_start: bool = True, **options) -> AttackResult:
    """PGD in the L2 ball ``||delta||_2 <= eps`` (signed-gradient Adam, as :func:`pgd`).

    The random start is uniform in the ball; after every step ``delta`` is projected back onto
    it (``optax.projections.projection_l2_ball``), so ``||perturbation||_2 <= eps`` (up to
    clipping to ``[clip_min, clip_max]``, which only shrinks it, and the 16-bit grid).
    Default ``eps`` 0.1: about an L∞ budget of 5e-4 spread over a 2.5 s clip at 16 kHz.

    Args:
      key, learning_rate, max_iterations, random_start: as :func:`pgd`.
      eps: L2 radius > 0.
      options: ``target``, ``early_stop``, ``decision``, ``threshold``, ``output_index``,
        ``domain``, ``clip_min``, ``clip_max``, ``quantize_16bit``, ``min_samples``, ``slots``,
        ``progress`` as :func:`pgd`.
    """
    hyper = dict(eps=check_positive("eps", eps),
                 learning_rate=check_positive("learning_rate", learning_rate))
    return _run(specs.pgd, logits_fn, x, labels, hyper=hyper,
                options=dict(norm="l2", random_start=bool(random_start)),
                max_iterations=check_max_iterations(max_iterations),
                need_key=bool(random_start), key=key, **options)


def carlini_wagner(logits_fn, x, labels, *, target="random", key=None, clip_eps: float = 0.01,
                   alpha: float = 0.01, learning_rate: float = 1e-5, max_iterations: int = 500,
                   early_stop: bool = True, decision: str = "softmax", threshold: float = 0.5,
                   output_index: int = 0, domain: str = "waveform",
                   clip_min: Optional[float] = None, clip_max: Optional[float] = None,
                   quantize_16bit: bool = False, min_samples: Optional[int] = None,
                   slots: Optional[int] = None, progress: Optional[str] = None) -> AttackResult:
    """Carlini & Wagner-style attack with signed-gradient Adam (docs/studies.md §1).

    Minimises ``||delta||² + alpha · CE(logits, target)`` (targeted, the default) or
    ``||delta||² - alpha · CE(logits, label)`` (``target=None``) from ``delta = 0``; after every
    step ``delta`` is clipped to ``±clip_eps``. Stops per example when ``argmax == target``
    (untargeted: ``!= label``). ``||delta||²`` is measured on the effective perturbation
    ``x_adv - x``.

    Args:
      target: ``"random"`` (default; a random other class per example, needs ``key``), an int
        class, an int array ``(batch,)`` or ``None`` (untargeted). Sigmoid decisions flip.
      clip_eps: L∞ clip of ``delta`` > 0 (default 0.01).
      alpha: weight of the classification term > 0 (default 0.01).
      learning_rate: Adam step > 0 (default 1e-5).
      max_iterations: most steps >= 1 (default 500).
      slots: refilled queue of this many slots (see :func:`pgd`).
      progress: a description to show a tqdm bar of loop steps (``None``: no bar).
      (others as :func:`fgsm`; ``early_stop=False`` as in :func:`pgd`)
    """
    return _cw(specs.carlini_wagner, {}, logits_fn, x, labels, target=target, key=key,
               clip_eps=clip_eps, alpha=alpha, learning_rate=learning_rate,
               max_iterations=max_iterations, early_stop=early_stop, decision=decision,
               threshold=threshold, output_index=output_index, domain=domain,
               clip_min=clip_min, clip_max=clip_max,
               quantize_16bit=quantize_16bit, min_samples=min_samples, slots=slots,
               progress=progress)


def multiscale_carlini_wagner(logits_fn, x, labels, *, target="random", key=None,
                              clip_eps: float = 0.01, alpha: float = 10.0,
                              learning_rate: float = 1e-5, max_iterations: int = 500,
                              fft_sizes: Sequence[int] = losses.DEFAULT_FFT_SIZES,
                              early_stop: bool = True, decision: str = "softmax",
                              threshold: float = 0.5, output_index: int = 0,
                              clip_min: Optional[float] = None,
                              clip_max: Optional[float] = None, quantize_16bit: bool = False,
                              min_samples: Optional[int] = None,
                              slots: Optional[int] = None,
                              progress: Optional[str] = None) -> AttackResult:
    """C&W with the multi-resolution spectral loss as distance (waveforms only).

    Distance: :func:`jaxaudio.attacks.losses.multiscale_spectral_distance` between ``x`` and
    ``x_adv`` (FFT sizes 2048…64, hop n/4, Hann, magnitude; linear + log differences). Default
    ``alpha`` 10. Clips need at least ``max(fft_sizes) // 2 + 1`` samples (and ``min_samples``).
    Other arguments as :func:`carlini_wagner`.
    """
    fft_sizes = tuple(int(n) for n in fft_sizes)
    if not fft_sizes or min(fft_sizes) < 4:
        raise ValueError(f"fft_sizes must be FFT sizes >= 4, got {fft_sizes}")
    need = max(fft_sizes) // 2 + 1
    num = np.shape(x)[-1] if np.ndim(x) else 0
    if num < need:
        raise ValueError(f"x is too short for the multi-scale spectral loss: {num} samples, need "
                         f"at least max(fft_sizes) // 2 + 1 = {need} (or pass smaller "
                         f"fft_sizes)")
    return _cw(specs.multiscale_carlini_wagner, dict(fft_sizes=fft_sizes), logits_fn, x,
               labels, target=target, key=key, clip_eps=clip_eps, alpha=alpha,
               learning_rate=learning_rate, max_iterations=max_iterations,
               early_stop=early_stop, decision=decision, threshold=threshold,
               output_index=output_index, domain="waveform", clip_min=clip_min,
               clip_max=clip_max, quantize_16bit=quantize_16bit, min_samples=min_samples,
               slots=slots, progress=progress)


def _cw(factory, options, logits_fn, x, labels, *, clip_eps, alpha, learning_rate,
        max_iterations, slots, **common):
    hyper = dict(clip_eps=check_positive("clip_eps", clip_eps),
                 alpha=check_positive("alpha", alpha),
                 learning_rate=check_positive("learning_rate", learning_rate))
    max_iterations = check_max_iterations(max_iterations)
    return _run(factory, logits_fn, x, labels, hyper=hyper, options=options,
                max_iterations=max_iterations, slots=check_slots(slots), **common)


