"""Typed containers of the attack library: results, the pieces of an attack, the loop carries.

Nothing here computes; see :mod:`jaxaudio.attacks.pieces` (decisions, projections, starts,
16-bit grid, SNR), :mod:`jaxaudio.attacks.loop` (the per-example step and the two loop
programs), :mod:`jaxaudio.attacks.driver` (compiling and driving them) and
:mod:`jaxaudio.attacks.specs` (one factory per attack).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import optax

__all__ = ["AttackResult", "SweepResult", "Goal", "Decision", "AttackSpec", "AttackConfig",
           "AttackOptions", "LoopState", "QueueState", "Array", "LogitsFn"]

Array = Any
LogitsFn = Callable[[Array], Array]


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
        (see :func:`jaxaudio.attacks.snr_db`); ``inf`` when nothing changed.
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
    """The pieces of one attack, as built by a factory of :mod:`jaxaudio.attacks.specs`.

    Attributes:
      objective: ``(x, x_adv, class_loss) -> scalar``, minimised; ``class_loss`` is the
        decision's classification term at ``x_adv`` (:attr:`Decision.loss`).
      optimizer: an :class:`optax.GradientTransformation` updating the perturbation ``delta``.
      project: ``(delta, x) -> delta``, back onto the constraint set.
      init_delta: ``(x, key) -> delta``, the starting perturbation (projected afterwards).
    """

    objective: Callable[[Array, Array, Array], Array]
    optimizer: optax.GradientTransformation
    project: Callable[[Array, Array], Array]
    init_delta: Callable[[Array, Array], Array]


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Static (hashable) settings of the compiled loop: they change the compiled graph.

    The attack's own hyperparameters are the keyword arguments of its factory
    (:mod:`jaxaudio.attacks.specs`), not fields here.

    Attributes:
      decision: the success test and classification term, a :class:`Decision` value
        (:func:`jaxaudio.attacks.pieces.make_decision` builds the softmax, sigmoid and
        multi-label ones, cached, so equal settings give the same object and one compiled
        program; a caller may pass its own).
      early_stop: freeze each example at its first success; otherwise run all iterations.
      clip_min, clip_max: value bounds of the adversarial (``None`` = unbounded).
      quantize_16bit: keep the evaluated/returned adversarial on the 16-bit PCM grid
        (``k / 32768``, ``k`` in ``[-32768, 32767]``).
      snr_margin: samples dropped at both ends of a waveform for the SNR (0 = whole input).
    """

    decision: Decision
    early_stop: bool = True
    clip_min: Optional[float] = -1.0
    clip_max: Optional[float] = 1.0
    quantize_16bit: bool = False
    snr_margin: int = 2048


@dataclasses.dataclass(frozen=True)
class AttackOptions:
    """The loop options every public attack shares, as one value (``options=``).

    Public attacks take ``options=AttackOptions(...)`` and/or the same names as keyword
    arguments (``attacks.pgd(..., max_iterations=100, slots=8)``); a keyword overrides the
    field of ``options``, an unknown keyword is a ``ValueError`` naming it
    (:func:`jaxaudio.attacks.validation.resolve_options`). An attack refuses a field it does
    not support when it differs from the default (e.g. ``decision`` for the psychoacoustic
    attack).

    Attributes:
      max_iterations: most optimiser steps, an integer >= 1; ``None`` = the attack's default
        (FGSM 1, PGD and C&W 500, psychoacoustic stage 2 200).
      early_stop: freeze each example at its first success (else run every iteration and
        return the successful iterate with the highest SNR).
      decision: ``"softmax"`` (argmax over classes) or ``"sigmoid"`` (output ``output_index``
        on when ``sigmoid(logit) > threshold``; labels 0/1, the attack flips them).
      threshold: sigmoid / multi-label decision threshold in (0, 1).
      output_index: the sigmoid output attacked.
      domain: ``"waveform"`` (``x (batch, samples)`` in [-1, 1], SNR without the first/last
        2048 samples) or ``"spectrogram"`` (any ``(batch, ...)``, unbounded by default).
      clip_min, clip_max: value bounds (``None`` = the domain's default; ``±inf`` unbounds).
      quantize_16bit: keep the adversarial on the 16-bit PCM grid (waveforms only).
      min_samples: shortest accepted waveform in samples (``None`` = 2048).
      slots: run the batch as a refilled queue through this many slots (``None`` = all at
        once; same per-example results).
      loop: ``"device"``, ``"host"`` or ``None`` (the backend's default,
        :func:`jaxaudio.attacks.driver.default_loop`).
      progress: a description: a tqdm bar of loop steps (``None`` = no bar).
    """

    max_iterations: Optional[int] = None
    early_stop: bool = True
    decision: str = "softmax"
    threshold: float = 0.5
    output_index: int = 0
    domain: str = "waveform"
    clip_min: Optional[float] = None
    clip_max: Optional[float] = None
    quantize_16bit: bool = False
    min_samples: Optional[int] = None
    slots: Optional[int] = None
    loop: Optional[str] = None
    progress: Optional[str] = None

    def replace(self, **changes) -> "AttackOptions":
        """A copy with ``changes`` (field names only)."""
        return dataclasses.replace(self, **changes)


class LoopState(NamedTuple):
    """Carry of one example's loop.

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


class QueueState(NamedTuple):
    """Carry of the refilled queue: ``slots`` examples in flight, the rest waiting or done.

    Attributes:
      slot_index: int32 ``(slots,)``: the example each slot works on; ``num_examples`` = empty.
      next_index: int32, the first example not yet loaded into a slot.
      slot_steps: int32, example-steps computed so far: the sum over loop iterations of the
        number of slots stepped (``slots`` per iteration unless the host driver narrowed the
        batch at the end, see :func:`jaxaudio.attacks.loop.queue_shrink`).
      x: ``(slots, ...)`` the examples in the slots.
      goal: :class:`Goal` of the examples in the slots.
      state: :class:`LoopState` batched over the slots.
      done: :class:`LoopState` (without ``opt_state``) batched over all examples: the final
        state of every example that has finished.
    """

    slot_index: Array
    next_index: Array
    slot_steps: Array
    x: Array
    goal: Goal
    state: LoopState
    done: LoopState
