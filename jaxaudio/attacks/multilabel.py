"""Attacks on multi-label taggers: remove a tag, add a tag, replace the tag set, change it.

A tagger's decision is a *set* of tags (``sigmoid(logit) > threshold`` per label), so an
attack's goal is a constraint on that set, written per example as two ``(C,)`` int vectors of
the :class:`~jaxaudio.attacks.Goal` (the ``"multilabel"`` decision value of
:func:`jaxaudio.attacks.make_decision`, passed to the one loop): ``label`` = the tag set attacked (0/1), ``target`` =
per tag 1 (must end on), 0 (must end off) or -1 (free). The four goals:

=========  ==========================================================  ====================
goal       target                                                      success
=========  ==========================================================  ====================
remove     tag ``k`` (present) must end off, the others free            ``k`` off
add        tag ``k`` (absent) must end on, the others free              ``k`` on
replace    every tag as in ``target_tags``                              tag set == target
change     untargeted                                                   tag set != ``tags``
=========  ==========================================================  ====================

The attack itself is PGD or C&W of :mod:`jaxaudio.attacks.specs` run by the one loop (same
optimiser, projection, early stopping, 16-bit grid and SNR as the single-label attacks), with
study 1's settings as defaults: PGD ``eps`` 5e-4, learning rate 1e-5; C&W ``alpha`` 0.01,
clip 0.01, learning rate 1e-5.
"""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp
import numpy as np

from jaxaudio.attacks import driver, specs, validation
from jaxaudio.attacks.containers import AttackConfig, AttackOptions, AttackResult
from jaxaudio.attacks.pieces import make_decision

__all__ = ["GOALS", "multilabel", "goal_targets"]

#: The multi-label goals.
GOALS = ("remove", "add", "replace", "change")
_ATTACKS = ("pgd", "cw")


def goal_targets(tags, *, goal: str, tag=None, target_tags=None) -> np.ndarray:
    """Per example and tag the required end state: 1 on, 0 off, -1 free ``(batch, C)`` int32.

    Parameters
    ----------
    tags : np.ndarray [shape=(batch, C)], 0/1
        The tag sets attacked (usually the tagger's clean predictions).
    goal : {"remove", "add", "replace", "change"}
    tag : int or np.ndarray [shape=(batch,)], int
        ``remove``: a tag present in ``tags``; ``add``: a tag absent from it.
    target_tags : np.ndarray [shape=(batch, C) or (C,)], 0/1
        ``replace``: the tag set to end with (must differ from ``tags``).
    """
    tags = np.asarray(tags)
    if tags.ndim != 2 or not np.all((tags == 0) | (tags == 1)):
        raise ValueError(f"tags must be a 0/1 array of shape (batch, num_tags), got shape "
                         f"{tags.shape}")
    batch, num = tags.shape
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")
    out = np.full((batch, num), -1, np.int32)
    if goal in ("remove", "add"):
        if tag is None:
            raise ValueError(f"goal={goal!r} needs tag= (an int or one per example)")
        k = np.broadcast_to(np.asarray(tag), (batch,))
        if not np.issubdtype(k.dtype, np.integer) or k.min() < 0 or k.max() >= num:
            raise ValueError(f"tag must be integers in [0, {num}), got {tag!r}")
        present = tags[np.arange(batch), k] == 1
        bad = np.flatnonzero(~present if goal == "remove" else present)
        if bad.size:
            state = "absent" if goal == "remove" else "present"
            raise ValueError(f"goal={goal!r}: tag is already {state} in the tag set of "
                             f"examples {bad[:5].tolist()}")
        out[np.arange(batch), k] = 0 if goal == "remove" else 1
    elif goal == "replace":
        if target_tags is None:
            raise ValueError("goal='replace' needs target_tags= (0/1, shape (num_tags,) or "
                             "(batch, num_tags))")
        want = np.broadcast_to(np.asarray(target_tags), (batch, num))
        if not np.all((want == 0) | (want == 1)):
            raise ValueError("target_tags must be 0/1")
        same = np.flatnonzero(np.all(want == tags, axis=1))
        if same.size:
            raise ValueError(f"target_tags equal the tag set of examples {same[:5].tolist()}")
        out[:] = want
    return out


def multilabel(logits_fn, x, tags, *, key=None, goal: str = "remove", tag=None,
               target_tags=None, attack: str = "pgd", eps: float = 5e-4,
               clip_eps: float = 0.01, alpha: float = 0.01, learning_rate: float = 1e-5,
               options: Optional[AttackOptions] = None, **loop_options) -> AttackResult:
    """Attack a multi-label tagger towards a goal on its tag set.

    Parameters
    ----------
    logits_fn : callable ``(batch, ...) -> (batch, C)``
        The tagger's logits (one sigmoid per tag), differentiable.
    x : np.ndarray [shape=(batch, samples)]
        Waveforms in [-1, 1] (or any input with ``domain="spectrogram"``).
    tags : np.ndarray [shape=(batch, C)], 0/1
        The tag sets attacked (for "change": success = the predicted set differs from it).
    key : PRNG key, needed by PGD's random start.
    goal : {"remove", "add", "replace", "change"}
    tag, target_tags : see :func:`goal_targets`.
    attack : {"pgd", "cw"}
        PGD: random start in the L∞ ball ``eps``, signed-gradient Adam, projection; C&W:
        ``||δ||² + alpha · loss`` from zero, ``δ`` clipped to ``±clip_eps``.
    eps, clip_eps, alpha, learning_rate : float > 0
        Study 1's settings by default (PGD eps 5e-4, C&W alpha 0.01 clip 0.01, lr 1e-5).
    options, loop_options
        The shared loop options (:class:`~jaxaudio.attacks.containers.AttackOptions`, as
        :func:`jaxaudio.attacks.pgd`; default ``max_iterations`` 500): ``threshold`` is the
        tagger's decision threshold in (0, 1); the decision is always ``"multilabel"``
        (``decision`` and ``output_index`` keep their defaults).

    Returns
    -------
    AttackResult
        ``success`` per goal (table above); ``original_prediction`` / ``adversarial_prediction``
        the tag sets ``(batch, C)`` int32; ``target`` the per-tag requirement ``(batch, C)``;
        ``snr_db``, ``iterations`` as for the other attacks.
    """
    opts = validation.resolve_options(options, loop_options, attack="multilabel",
                                      max_iterations=500,
                                      unsupported=("decision", "output_index"))
    threshold = opts.threshold
    if attack not in _ATTACKS:
        raise ValueError(f"attack must be one of {_ATTACKS}, got {attack!r}")
    if not (0.0 < float(threshold) < 1.0):
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    targets = goal_targets(tags, goal=goal, tag=tag, target_tags=target_tags)
    batch = np.shape(x)[0] if np.ndim(x) else 0
    if targets.shape[0] != batch:
        raise ValueError(f"tags must have one row per example ({batch}), got {targets.shape[0]}")
    check = validation.check_positive
    if attack == "pgd":
        factory, static = specs.pgd, {"norm": "linf", "random_start": True}
        hyper = dict(eps=check("eps", eps), learning_rate=check("learning_rate", learning_rate))
    else:
        factory, static = specs.carlini_wagner, {}
        hyper = dict(clip_eps=check("clip_eps", clip_eps), alpha=check("alpha", alpha),
                     learning_rate=check("learning_rate", learning_rate))
    # The shared checks of x, keys and bounds (labels as a dummy: tag sets are checked above).
    prepared = validation.prepare_inputs(
        logits_fn, x, np.zeros(batch, np.int32), key=key, domain=opts.domain,
        min_samples=opts.min_samples, clip_min=opts.clip_min, clip_max=opts.clip_max,
        need_key=attack == "pgd")
    if prepared.num_outputs != targets.shape[1]:
        raise ValueError(f"tags have {targets.shape[1]} columns but the tagger has "
                         f"{prepared.num_outputs} outputs")
    if opts.quantize_16bit and opts.domain != "waveform":
        raise ValueError("quantize_16bit applies to waveforms (domain='waveform') only")
    decision = make_decision(decision="multilabel", targeted=goal != "change",
                             threshold=float(threshold))
    config = AttackConfig(decision=decision, early_stop=bool(opts.early_stop),
                          clip_min=prepared.clip_min, clip_max=prepared.clip_max,
                          quantize_16bit=bool(opts.quantize_16bit),
                          snr_margin=prepared.snr_margin)
    fn = driver.compile_attack(logits_fn, config, factory, tuple(sorted(static.items())),
                               False, opts.slots, opts.loop)
    args = (prepared.x, jnp.asarray(np.asarray(tags), jnp.int32), jnp.asarray(targets),
            prepared.keys, driver.as_hyper(**hyper), jnp.asarray(opts.max_iterations, jnp.int32))
    out = driver.run_with_progress(fn, args, opts.progress)
    return out if opts.slots is None else out[0]
