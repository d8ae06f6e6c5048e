"""One factory per attack: its hyperparameters are the factory's keyword arguments.

Like an optax optimiser (``optax.adam(learning_rate)``), a factory closes over its
hyperparameters and returns the pieces of the attack, an
:class:`~jaxaudio.attacks.containers.AttackSpec`: objective, optax optimiser, projection and
start. The compiled core calls the factory inside ``jit`` with the numeric hyperparameters
traced (changing them does not recompile) and the others (``norm``, ``random_start``,
``fft_sizes``, ...) static. What is shared by every attack (decision, targets, value bounds,
16-bit grid, early stopping) is not a factory argument but the
:class:`~jaxaudio.attacks.containers.AttackConfig`.

Adding an attack = one factory here, a short public function that validates its
hyperparameters (:mod:`jaxaudio.attacks.gradient`, see ``pgd_l2`` there) and one entry in the
registry (:mod:`jaxaudio.attacks.registry`: names, aliases, factory, defaults), which the
package's ``__all__``, :func:`jaxaudio.attacks.make_attack` and the command line read.
"""

from __future__ import annotations

from typing import Sequence

import optax

from jaxaudio.attacks import losses, pieces
from jaxaudio.attacks.containers import AttackSpec
from jaxaudio.dsp.masking import MaskingThreshold, hinge_distance, masking_threshold_example

__all__ = ["NORMS", "STEPS", "fgsm", "pgd", "carlini_wagner", "multiscale_carlini_wagner",
           "psychoacoustic"]

#: Constraint sets of :func:`pgd`.
NORMS = ("linf", "l2", "snr_l2")

#: Step rules of :func:`pgd`: the paper's Adam on the sign of the gradient, or the classic
#: fixed step ``learning_rate · sign(gradient)`` (Madry et al.; Foolbox's ``LinfPGD``).
STEPS = ("signed_adam", "sign")


def _classification_only(x, x_adv, class_loss):
    del x, x_adv
    return class_loss


def fgsm(*, eps) -> AttackSpec:
    """One step of size ``eps`` along the sign of the loss gradient (run 1 iteration)."""
    return AttackSpec(
        objective=_classification_only,
        optimizer=optax.chain(pieces.sign_gradient(), optax.scale(-eps)),
        project=pieces.linf_projection(eps),
        init_delta=pieces.zero_start(),
    )


def pgd(*, eps, learning_rate, norm: str = "linf", snr_db=None, random_start: bool = True,
        snr_margin: int = 2048, step: str = "signed_adam") -> AttackSpec:
    """Signed-gradient Adam on the classification loss, projected after every step.

    ``step="sign"`` replaces Adam by the classic fixed step ``learning_rate · sign(grad)``.

    ``norm``: ``"linf"`` (L∞ ball of radius ``eps``, uniform start in it), ``"l2"`` (L2 ball
    of radius ``eps``, uniform start in it) or ``"snr_l2"`` (per example the L2 ball of radius
    ``||x|| · 10^(-snr_db/20)`` over the SNR region, ``snr_margin`` samples left out at both
    ends; start uniform in ``[-eps, eps]``, projected).
    """
    if norm == "linf":
        project, start = pieces.linf_projection(eps), pieces.uniform_start(eps)
    elif norm == "l2":
        project, start = pieces.l2_projection(eps), pieces.uniform_l2_start(eps)
    elif norm == "snr_l2":
        if snr_db is None:
            raise ValueError("norm='snr_l2' needs snr_db")
        project = pieces.snr_l2_projection(snr_db, margin=snr_margin)
        start = pieces.uniform_start(eps)
    else:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if step == "signed_adam":
        optimizer = pieces.signed_adam(learning_rate)
    elif step == "sign":
        optimizer = optax.chain(pieces.sign_gradient(), optax.scale(-learning_rate))
    else:
        raise ValueError(f"step must be one of {STEPS}, got {step!r}")
    return AttackSpec(
        objective=_classification_only,
        optimizer=optimizer,
        project=project,
        init_delta=start if random_start else pieces.zero_start(),
    )


def carlini_wagner(*, clip_eps, alpha, learning_rate,
                   distance=losses.squared_l2_distance) -> AttackSpec:
    """``distance(x, x_adv) + alpha · classification loss`` by signed-gradient Adam from zero;
    ``delta`` clipped to ``±clip_eps``."""
    def objective(x, x_adv, class_loss):
        return distance(x, x_adv) + alpha * class_loss

    return AttackSpec(
        objective=objective,
        optimizer=pieces.signed_adam(learning_rate),
        project=pieces.linf_projection(clip_eps),
        init_delta=pieces.zero_start(),
    )


def multiscale_carlini_wagner(*, clip_eps, alpha, learning_rate,
                              fft_sizes: Sequence[int] = losses.DEFAULT_FFT_SIZES,
                              ) -> AttackSpec:
    """:func:`carlini_wagner` with the multi-scale spectral distance
    (:func:`jaxaudio.attacks.losses.multiscale_spectral_distance`)."""
    fft_sizes = tuple(int(n) for n in fft_sizes)

    def distance(x, x_adv):
        return losses.multiscale_spectral_distance(x, x_adv, fft_sizes=fft_sizes)

    return carlini_wagner(clip_eps=clip_eps, alpha=alpha, learning_rate=learning_rate,
                          distance=distance)


def psychoacoustic(*, alpha, clip_eps, learning_rate, threshold=None, reference=None,
                   start=None, sample_rate: int = 16000, n_fft: int = 2048,
                   hop_length: int = 512) -> AttackSpec:
    """``hinge + alpha · classification loss`` by signed-gradient Adam; ``delta`` clipped to
    ``±clip_eps``. The hinge (:func:`jaxaudio.dsp.masking.hinge_distance`) is the
    mean excess of the perturbation's PSD over the clean clip's masking threshold.

    ``threshold (frames, bins)`` / ``reference ()``: the example's precomputed
    :class:`~jaxaudio.dsp.masking.MaskingThreshold` (the two-stage attack builds
    this spec per example); ``None`` = computed from ``x`` at every step (``sample_rate``
    then sets its Bark scale). ``start``: the starting perturbation (stage 1's adversary),
    ``None`` = zero. Run alone (:func:`jaxaudio.attacks.make_attack`) this is a one-stage
    attack with a fixed ``alpha``; :func:`jaxaudio.attacks.psychoacoustic.psychoacoustic`
    adapts ``alpha`` per example.
    """
    def masking_of(x):
        if threshold is not None:
            return MaskingThreshold(threshold, reference)
        return masking_threshold_example(x, sample_rate=sample_rate, n_fft=n_fft,
                                         hop_length=hop_length)

    def objective(x, x_adv, class_loss):
        hinge = hinge_distance(x_adv - x, masking_of(x), n_fft=n_fft,
                                   hop_length=hop_length)
        return hinge + alpha * class_loss

    return AttackSpec(
        objective=objective,
        optimizer=pieces.signed_adam(learning_rate),
        project=pieces.linf_projection(clip_eps),
        init_delta=pieces.zero_start() if start is None else (lambda x, key: start),
    )
