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

Loop options. What every attack shares (``max_iterations``, ``early_stop``, ``decision``,
``threshold``, ``output_index``, ``domain``, ``clip_min``/``clip_max``, ``quantize_16bit``,
``min_samples``, ``slots``, ``loop``, ``progress``) is one value,
:class:`~jaxaudio.attacks.containers.AttackOptions`, passed as ``options=`` or as keywords
(``pgd(..., max_iterations=100)``); an unknown keyword is a ``ValueError`` naming it.

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
from jaxaudio.attacks.containers import AttackConfig, AttackOptions, AttackResult, SweepResult
from jaxaudio.attacks.pieces import make_decision
from jaxaudio.attacks.validation import check_positive, resolve_options

__all__ = ["fgsm", "fgsm_sweep", "pgd", "pgd_l2", "carlini_wagner",
           "multiscale_carlini_wagner", "run"]


def run(factory, logits_fn, x, labels, *, hyper: dict, opts: AttackOptions, static=None,
        need_key: bool = False, target=None, key=None, sweep: bool = False):
    """Check the inputs, compile (cached) and run ``factory`` on the one loop.

    ``hyper``: the factory's traced hyperparameters (checked); ``static``: its static options;
    ``opts``: the resolved :class:`AttackOptions`. ``opts.progress`` shows a tqdm bar of loop
    steps (host loop; on the device loop the bar completes when the single compiled call
    returns).
    """
    if opts.quantize_16bit and opts.domain != "waveform":
        raise ValueError("quantize_16bit applies to waveforms (domain='waveform') only")
    prepared = validation.prepare_inputs(
        logits_fn, x, labels, target=target, key=key, decision=opts.decision,
        output_index=opts.output_index, domain=opts.domain, min_samples=opts.min_samples,
        clip_min=opts.clip_min, clip_max=opts.clip_max, threshold=opts.threshold,
        need_key=need_key,
    )
    decision = make_decision(decision=opts.decision, targeted=prepared.targeted,
                             threshold=float(opts.threshold), output_index=int(opts.output_index))
    config = AttackConfig(decision=decision, early_stop=bool(opts.early_stop),
                          clip_min=prepared.clip_min, clip_max=prepared.clip_max,
                          quantize_16bit=bool(opts.quantize_16bit),
                          snr_margin=prepared.snr_margin)
    fn = driver.compile_attack(logits_fn, config, factory, tuple(sorted((static or {}).items())),
                               sweep, opts.slots, opts.loop)
    args = (prepared.x, prepared.labels, prepared.targets, prepared.keys,
            driver.as_hyper(**hyper), jnp.asarray(opts.max_iterations, jnp.int32))
    out = driver.run_with_progress(fn, args, opts.progress)
    return out if opts.slots is None else out[0]


# --------------------------------------------------------------------------------------------
# Public attacks
# --------------------------------------------------------------------------------------------


def fgsm(logits_fn, x, labels, *, key=None, target=None, eps: float = 0.1,
         options: Optional[AttackOptions] = None, **loop_options) -> AttackResult:
    """Fast gradient sign method: ``x_adv = clip(x + eps · sign(∇ loss), clip_min, clip_max)``.

    Untargeted: ascend the cross-entropy of ``labels``; targeted: descend that of ``target``.

    Args:
      logits_fn: ``(batch, ...) -> (batch, num_outputs)``, differentiable.
      x: ``(batch, samples)`` waveforms in [-1, 1] (or any ``(batch, ...)`` with
        ``domain="spectrogram"``).
      labels: int ``(batch,)`` true classes (0/1 for ``decision="sigmoid"``).
      key: PRNG key (only for ``target="random"``); one key or ``(batch,)`` keys.
      target: ``None``, an int class, ``"random"`` (needs ``key``) or an int array ``(batch,)``.
      eps: step size > 0 (docs/studies.md §1: 0.1).
      options, loop_options: the shared loop options (:class:`AttackOptions`; one step:
        ``max_iterations`` must stay 1). ``early_stop`` leaves examples that are already
        adversarial unchanged (``iterations == 0``).

    Returns:
      :class:`~jaxaudio.attacks.AttackResult`.
    """
    opts = resolve_options(options, loop_options, attack="fgsm", max_iterations=1)
    if opts.max_iterations != 1:
        raise ValueError(f"fgsm is one step: max_iterations must be 1, got {opts.max_iterations}")
    return run(specs.fgsm, logits_fn, x, labels, hyper=dict(eps=check_positive("eps", eps)),
               opts=opts, target=target, key=key)


def fgsm_sweep(logits_fn, x, labels, *, epsilons, key=None, target=None,
               options: Optional[AttackOptions] = None, **loop_options) -> SweepResult:
    """FGSM for every step size in ``epsilons`` in one compiled call (vmapped over eps).

    Args:
      epsilons: ``(num_eps,)`` step sizes, all > 0.
      (others as :func:`fgsm`; no ``slots``)

    Returns:
      :class:`~jaxaudio.attacks.SweepResult` with ``success``/``snr_db``/
      ``adversarial_prediction`` of shape ``(num_eps, batch)``. Adversarials are not returned
      (``num_eps × batch × samples`` would be large); rerun :func:`fgsm` for a chosen eps.
    """
    opts = resolve_options(options, loop_options, attack="fgsm_sweep", max_iterations=1,
                           unsupported=("slots",))
    if opts.max_iterations != 1:
        raise ValueError(f"fgsm_sweep is one step: max_iterations must be 1, got "
                         f"{opts.max_iterations}")
    eps = np.asarray(epsilons, dtype=np.float64)
    if eps.ndim != 1 or eps.size == 0:
        raise ValueError(f"epsilons must be a non-empty 1-D array, got shape {eps.shape}")
    for e in eps:
        check_positive("every entry of epsilons", e)
    return run(specs.fgsm, logits_fn, x, labels, hyper=dict(eps=jnp.asarray(eps, jnp.float32)),
               opts=opts, target=target, key=key, sweep=True)


def pgd(logits_fn, x, labels, *, key=None, target=None, eps: float = 5e-4,
        learning_rate: float = 1e-5, norm: str = "linf", snr_db: Optional[float] = None,
        random_start: bool = True, step: str = "signed_adam",
        options: Optional[AttackOptions] = None, **loop_options) -> AttackResult:
    """Projected gradient descent with signed-gradient Adam (the paper's "PGDn").

    Uniform random start in ``[-eps, eps]``; each step ascends the cross-entropy of the true
    class (targeted: descends that of ``target``) with Adam on the sign of the gradient, then
    projects ``delta`` onto the L∞ ball of radius ``eps``; ``x_adv = clip(x + delta, -1, 1)``.
    Each example stops as soon as it is adversarial (``early_stop``).

    Args:
      key: PRNG key for the random start (and ``target="random"``): one key, split per example,
        or a batch of keys (example ``i`` alone with ``key[i]`` reproduces the batch result).
        Required unless ``random_start=False``.
      target: as :func:`fgsm`.
      eps: radius > 0 (default 5e-4, L∞); also the random-start radius.
      learning_rate: Adam step > 0 (default 1e-5).
      norm: ``"linf"`` (default), ``"l2"`` (the L2 ball of radius ``eps``, as :func:`pgd_l2`)
        or ``"snr_l2"`` (needs ``snr_db``).
      snr_db: instead of the L∞ ball, an L2 ball of radius ``||x|| · 10^(-snr_db/20)`` per example
        (``||x||`` over the SNR region), so the result's ``snr_db >= snr_db`` ("at least 40 dB").
        With ``quantize_16bit`` this holds exactly when ``x`` is on the 16-bit grid.
      random_start: set False to start from ``delta = 0``.
      step: ``"signed_adam"`` (default, the paper's) or ``"sign"``: the classic fixed step
        ``learning_rate · sign(gradient)`` of Madry et al. (Foolbox's ``LinfPGD``), which moves
        by the full step every iteration where Adam's moments shrink it when the gradient's
        sign flips (``benchmarks/attack_throughput.py`` compares them at equal steps).
      options, loop_options: the shared loop options (:class:`AttackOptions`; default
        ``max_iterations`` 500). ``slots``: with early stopping, run the batch as a queue
        through this many parallel slots: a slot whose example has finished is refilled with
        the next waiting example inside the compiled loop
        (:func:`jaxaudio.attacks.driver.attack_queue`), so finished examples do not idle until
        the slowest one is done; same per-example results.

    With ``early_stop=False`` all ``max_iterations`` steps run; ``iterations`` is still the first
    success, and the returned adversarial is the successful iterate with the highest SNR (else
    the last iterate).
    """
    opts = resolve_options(options, loop_options, attack="pgd", max_iterations=500)
    hyper = dict(eps=check_positive("eps", eps),
                 learning_rate=check_positive("learning_rate", learning_rate))
    if step not in specs.STEPS:
        raise ValueError(f"step must be one of {specs.STEPS}, got {step!r}")
    if norm not in specs.NORMS:
        raise ValueError(f"norm must be one of {specs.NORMS}, got {norm!r}")
    if norm == "snr_l2" and snr_db is None:
        raise ValueError("norm='snr_l2' needs snr_db")
    if snr_db is not None and norm == "l2":
        raise ValueError("snr_db sets the SNR ball (norm='snr_l2'); it does not combine with "
                         "norm='l2'")
    static = dict(norm=norm, random_start=bool(random_start))
    if step != "signed_adam":  # the default stays out of the options: one compiled program
        static["step"] = step
    if snr_db is not None:
        hyper["snr_db"] = validation.check_finite("snr_db", snr_db, "a finite number of dB or None")
        static.update(norm="snr_l2", snr_margin=validation.default_snr_margin(opts.domain))
    return run(specs.pgd, logits_fn, x, labels, hyper=hyper, static=static, opts=opts,
               need_key=bool(random_start), target=target, key=key)


def pgd_l2(logits_fn, x, labels, *, key=None, target=None, eps: float = 0.1,
           learning_rate: float = 1e-5, random_start: bool = True,
           options: Optional[AttackOptions] = None, **loop_options) -> AttackResult:
    """PGD in the L2 ball ``||delta||_2 <= eps`` (signed-gradient Adam, as :func:`pgd`).

    The random start is uniform in the ball; after every step ``delta`` is projected back onto
    it (``optax.projections.projection_l2_ball``), so ``||perturbation||_2 <= eps`` (up to
    clipping to ``[clip_min, clip_max]``, which only shrinks it, and the 16-bit grid).
    Default ``eps`` 0.1: about an L∞ budget of 5e-4 spread over a 2.5 s clip at 16 kHz.
    Same as ``pgd(..., norm="l2")``.

    Args:
      key, target, learning_rate, random_start, options, loop_options: as :func:`pgd`.
      eps: L2 radius > 0.
    """
    return pgd(logits_fn, x, labels, key=key, target=target, eps=eps,
               learning_rate=learning_rate, norm="l2", random_start=random_start,
               options=options, **loop_options)


def carlini_wagner(logits_fn, x, labels, *, key=None, target="random", clip_eps: float = 0.01,
                   alpha: float = 0.01, learning_rate: float = 1e-5,
                   options: Optional[AttackOptions] = None, **loop_options) -> AttackResult:
    """Carlini & Wagner-style attack with signed-gradient Adam (docs/studies.md §1).

    Minimises ``||delta||² + alpha · CE(logits, target)`` (targeted, the default) or
    ``||delta||² - alpha · CE(logits, label)`` (``target=None``) from ``delta = 0``; after every
    step ``delta`` is clipped to ``±clip_eps``. Stops per example when ``argmax == target``
    (untargeted: ``!= label``). ``||delta||²`` is measured on the effective perturbation
    ``x_adv - x``.

    Args:
      key: PRNG key (for ``target="random"``).
      target: ``"random"`` (default; a random other class per example, needs ``key``), an int
        class, an int array ``(batch,)`` or ``None`` (untargeted). Sigmoid decisions flip.
      clip_eps: L∞ clip of ``delta`` > 0 (default 0.01).
      alpha: weight of the classification term > 0 (default 0.01).
      learning_rate: Adam step > 0 (default 1e-5).
      options, loop_options: as :func:`pgd` (default ``max_iterations`` 500).
    """
    opts = resolve_options(options, loop_options, attack="carlini_wagner", max_iterations=500)
    return run(specs.carlini_wagner, logits_fn, x, labels, opts=opts, target=target, key=key,
               hyper=_cw_hyper(clip_eps, alpha, learning_rate))


def multiscale_carlini_wagner(logits_fn, x, labels, *, key=None, target="random",
                              clip_eps: float = 0.01, alpha: float = 10.0,
                              learning_rate: float = 1e-5,
                              fft_sizes: Sequence[int] = losses.DEFAULT_FFT_SIZES,
                              options: Optional[AttackOptions] = None,
                              **loop_options) -> AttackResult:
    """C&W with the multi-resolution spectral loss as distance (waveforms only).

    Distance: :func:`jaxaudio.attacks.losses.multiscale_spectral_distance` between ``x`` and
    ``x_adv`` (FFT sizes 2048…64, hop n/4, Hann, magnitude; linear + log differences). Default
    ``alpha`` 10. Clips need at least ``max(fft_sizes) // 2 + 1`` samples (and ``min_samples``).
    Other arguments as :func:`carlini_wagner` (no ``domain``: waveforms only).
    """
    opts = resolve_options(options, loop_options, attack="multiscale_carlini_wagner",
                           max_iterations=500, unsupported=("domain",))
    fft_sizes = tuple(int(n) for n in fft_sizes)
    if not fft_sizes or min(fft_sizes) < 4:
        raise ValueError(f"fft_sizes must be FFT sizes >= 4, got {fft_sizes}")
    need = max(fft_sizes) // 2 + 1
    num = np.shape(x)[-1] if np.ndim(x) else 0
    if num < need:
        raise ValueError(f"x is too short for the multi-scale spectral loss: {num} samples, need "
                         f"at least max(fft_sizes) // 2 + 1 = {need} (or pass smaller "
                         f"fft_sizes)")
    return run(specs.multiscale_carlini_wagner, logits_fn, x, labels, opts=opts,
               static=dict(fft_sizes=fft_sizes), target=target, key=key,
               hyper=_cw_hyper(clip_eps, alpha, learning_rate))


def _cw_hyper(clip_eps, alpha, learning_rate) -> dict:
    return dict(clip_eps=check_positive("clip_eps", clip_eps),
                alpha=check_positive("alpha", alpha),
                learning_rate=check_positive("learning_rate", learning_rate))
